"""Signed daily Merkle roots over each tenant's decisions (docs/audit.md).

**What a root covers.** Root ``(tenant, day, seq)`` covers the tenant's
decisions whose ``completed_at`` falls on ``day`` (UTC) and whose
``inserted_at`` lies in ``[inserted_from, inserted_to)``; leaves are the rows'
``entail.row.v1`` encodings (row_encoding.py) in ``decision_id`` order.

**When roots are built (the late-row rule).** ``build_roots`` runs on a
schedule. With ``cutoff = now - grace`` (grace, 5 minutes by default, covers
a row whose insert began before the cutoff and committed after it):

- day D gets its root (seq 0) once D has ended before the cutoff; it covers
  every row of D inserted before the cutoff;
- a row of D that arrives later (a redelivery after midnight, a sink backlog)
  is covered by a *supplementary* root, seq 1, 2, …, built by the next run
  that sees it: it covers the rows of D inserted in
  ``[previous inserted_to, cutoff)``. A root, once written, never changes.

So the windows of a day's roots are contiguous and every row of a day
inserted before the last ``inserted_to`` is in exactly one root; a row after
it is *pending* (reported by verify, covered by the next run).

**The signed statement** is the canonical JSON (keys sorted, no spaces,
UTF-8) of ``{"v": "entail.root.v1", tenant, day, seq, encoding, leaf_count,
root_hash, inserted_from, inserted_to, key_id, algorithm}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..models import canonical_json
from . import merkle
from .duckdb_store import DuckDBAuditStore, _from_native
from .row_encoding import ENCODING, encode_row, encoding_sql, leaf_hash_sql
from .schema import AUDIT_ROOTS_TABLE, DECISIONS_TABLE, format_timestamp, parse_timestamp
from .signing import Keyring, Signer, verify_signature

if TYPE_CHECKING:
    from .bigquery_store import BigQueryAuditStore

STATEMENT_VERSION = "entail.root.v1"
DEFAULT_GRACE = timedelta(minutes=5)
_COLS = ", ".join(f'"{c}"' for c in DECISIONS_TABLE.column_names)


def parse_day(day: str | date) -> date:
    if isinstance(day, date):
        return day
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"invalid day {day!r}: expected YYYY-MM-DD") from None


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def statement(root: dict[str, Any]) -> bytes:
    """The bytes a root's signature covers."""
    doc = {
        "v": STATEMENT_VERSION,
        **{
            k: root[k]
            for k in (
                "tenant",
                "day",
                "seq",
                "encoding",
                "leaf_count",
                "root_hash",
                "inserted_from",
                "inserted_to",
                "key_id",
                "algorithm",
            )
        },
    }
    return canonical_json(doc).encode("utf-8")


def _window_where(tenant: str, day: date, lo: datetime | None, hi: datetime | None) -> tuple[str, list[Any]]:
    start, end = _day_bounds(day)
    where = ["tenant = ?", "completed_at >= ?", "completed_at < ?"]
    params: list[Any] = [tenant, start, end]
    if lo is not None:
        where.append("inserted_at >= ?")
        params.append(lo)
    if hi is not None:
        where.append("inserted_at < ?")
        params.append(hi)
    return " AND ".join(where), params


def row_encodings(store: DuckDBAuditStore, where: str, params: Sequence[Any]) -> list[tuple[str, bytes]]:
    """(decision_id, entail.row.v1 bytes) of the matching rows in decision_id order:
    encoded by DuckDB, the rare rows it cannot encode exactly by Python."""
    found = store.fetch(
        f"SELECT decision_id, {encoding_sql()} FROM decisions WHERE {where} ORDER BY decision_id", params
    )
    return [
        (str(d), e.encode("utf-8") if e is not None else _python_encoding(store, str(d))) for d, e in found
    ]


def _python_encoding(store: DuckDBAuditStore, decision_id: str) -> bytes:
    row = store.fetch(f"SELECT {_COLS} FROM decisions WHERE decision_id = ?", [decision_id])
    return encode_row(_from_native(DECISIONS_TABLE, row[0]))


def _window_leaves(
    store: DuckDBAuditStore, tenant: str, day: date, lo: datetime | None, hi: datetime | None
) -> list[tuple[str, bytes]]:
    """(decision_id, leaf hash) of a root's window, in decision_id order; the leaf
    hashes come from DuckDB (sha256 over 0x00 || encoding) in one pass."""
    where, params = _window_where(tenant, day, lo, hi)
    found = store.fetch(
        f"SELECT decision_id, {leaf_hash_sql()} FROM decisions WHERE {where} ORDER BY decision_id", params
    )
    return [
        (str(d), bytes.fromhex(h) if h is not None else merkle.leaf_hash(_python_encoding(store, str(d))))
        for d, h in found
    ]


@dataclass(frozen=True)
class BuiltRoot:
    tenant: str
    day: str
    seq: int
    leaf_count: int
    root_hash: str


ROOT_COLUMNS = ", ".join(AUDIT_ROOTS_TABLE.column_names)


def root_dicts(store: DuckDBAuditStore, where: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    """``audit_roots`` rows in wire form (timestamps as strings, statement as text)."""
    found = store.fetch(
        f"SELECT {ROOT_COLUMNS} FROM audit_roots WHERE {where} ORDER BY tenant, day, seq", params
    )
    out = []
    for values in found:
        row = dict(zip(AUDIT_ROOTS_TABLE.column_names, values, strict=True))
        for k in ("inserted_from", "inserted_to", "built_at"):
            row[k] = format_timestamp(row[k]) if row[k] is not None else None
        out.append(row)
    return out


def _roots_of(store: DuckDBAuditStore, tenant: str, day: str) -> list[dict[str, Any]]:
    return root_dicts(store, "tenant = ? AND day = ?", [tenant, day])


def build_roots(
    store: DuckDBAuditStore | BigQueryAuditStore,
    signer: Signer,
    *,
    now: datetime | None = None,
    grace: timedelta = DEFAULT_GRACE,
    tenant: str | None = None,
) -> list[BuiltRoot]:
    """Build and sign every root that is due (see the module doc); idempotent:
    run twice, the second run builds nothing."""
    if not isinstance(store, DuckDBAuditStore):  # BigQuery: the same rule in its SQL
        from .bigquery_trail import build_roots as bigquery_build_roots

        return bigquery_build_roots(store, signer, now=now, grace=grace, tenant=tenant)
    cutoff = build_cutoff(now, grace)
    today = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
    params: list[Any] = [today, cutoff]
    tenant_filter = ""
    if tenant is not None:
        tenant_filter = " AND d.tenant = ?"
        params.append(tenant)
    # (tenant, day) with rows inserted after the last root's window, days that have ended
    due = store.fetch(
        "WITH last AS (SELECT tenant, day, max(seq) AS seq, max(inserted_to) AS upto FROM audit_roots"
        " GROUP BY tenant, day)"
        " SELECT d.tenant, strftime(d.completed_at, '%Y-%m-%d') AS day,"
        " any_value(last.seq), any_value(last.upto)"
        " FROM decisions d LEFT JOIN last ON last.tenant = d.tenant"
        " AND last.day = strftime(d.completed_at, '%Y-%m-%d')"
        " WHERE d.completed_at < ? AND d.inserted_at < ?"
        " AND (last.upto IS NULL OR d.inserted_at >= last.upto)"
        + tenant_filter
        + " GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    )
    built: list[BuiltRoot] = []
    for t, day, last_seq, upto in due:
        built.append(
            _build_one(
                store, signer, str(t), str(day), -1 if last_seq is None else int(last_seq), upto, cutoff
            )
        )
    return built


def _build_one(
    store: DuckDBAuditStore,
    signer: Signer,
    tenant: str,
    day: str,
    last_seq: int,
    lo: datetime | None,
    hi: datetime,
) -> BuiltRoot:
    leaves = _window_leaves(store, tenant, parse_day(day), lo, hi)
    row, built = signed_root(signer, tenant, day, last_seq + 1, [h for _, h in leaves], lo, hi)
    store.write_root(row, [d for d, _ in leaves], [h.hex() for _, h in leaves])
    return built


def signed_root(
    signer: Signer,
    tenant: str,
    day: str,
    seq: int,
    leaf_hashes: Sequence[bytes],
    lo: datetime | None,
    hi: datetime,
) -> tuple[dict[str, Any], BuiltRoot]:
    """The ``audit_roots`` row (wire form, signed) of a window's leaf hashes; every
    adapter stores exactly this row."""
    root_hash = merkle.root_of(leaf_hashes).hex()
    root: dict[str, Any] = {
        "tenant": tenant,
        "day": day,
        "seq": seq,
        "encoding": ENCODING,
        "leaf_count": len(leaf_hashes),
        "root_hash": root_hash,
        "inserted_from": format_timestamp(lo) if lo is not None else None,
        "inserted_to": format_timestamp(hi),
        "key_id": signer.key_id,
        "algorithm": signer.algorithm,
    }
    message = statement(root)
    row = {
        **{k: root[k] for k in ("tenant", "day", "seq", "encoding", "leaf_count", "root_hash")},
        "inserted_from": root["inserted_from"],
        "inserted_to": root["inserted_to"],
        "statement": message.decode("utf-8"),
        "key_id": signer.key_id,
        "algorithm": signer.algorithm,
        "signature": base64.b64encode(signer.sign(message)).decode(),
        "built_at": format_timestamp(datetime.now(UTC)),
    }
    return row, BuiltRoot(tenant, day, seq, len(leaf_hashes), root_hash)


def build_cutoff(now: datetime | None, grace: timedelta) -> datetime:
    """``now - grace``, never past the clock (a row inserted after the build must not
    fall in its window), at the stored precision."""
    clock = datetime.now(UTC)
    cutoff = min(now or clock, clock) - grace
    return parse_timestamp(format_timestamp(cutoff))


# --- verification -------------------------------------------------------------------


@dataclass
class Problem:
    kind: str  # signature, statement, leaves, edited, deleted, inserted
    message: str
    seq: int | None = None
    decision_id: str | None = None


@dataclass
class Verification:
    tenant: str
    day: str
    roots: int = 0
    rows: int = 0
    pending: int = 0  # rows after the last root's window: covered by the next run
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.roots > 0 and not self.problems

    def to_json(self) -> dict[str, Any]:
        first = self.problems[0] if self.problems else None
        return {
            "tenant": self.tenant,
            "day": self.day,
            "ok": self.ok,
            "roots": self.roots,
            "rows": self.rows,
            "pending": self.pending,
            "first_mismatch": None
            if first is None
            else {
                "kind": first.kind,
                "seq": first.seq,
                "decision_id": first.decision_id,
                "message": first.message,
            },
            "problems": [
                {"kind": p.kind, "seq": p.seq, "decision_id": p.decision_id, "message": p.message}
                for p in self.problems
            ],
        }


def check_root_signature(root: dict[str, Any], keyring: Keyring) -> Problem | None:
    """The stored statement is the statement of the root's fields, and it is signed
    by a key of the keyring."""
    seq = int(root["seq"])
    stored = root["statement"]
    stored_text = stored if isinstance(stored, str) else json.dumps(stored)
    expected = statement(root)
    if json.loads(stored_text) != json.loads(expected):
        return Problem("statement", f"root {seq}: its fields differ from the signed statement", seq)
    public = keyring.get(str(root["key_id"]))
    if public is None:
        return Problem("signature", f"root {seq}: signing key {root['key_id']} is not in the keyring", seq)
    if not verify_signature(str(root["algorithm"]), public, expected, base64.b64decode(root["signature"])):
        return Problem(
            "signature", f"root {seq}: the signature does not verify with key {root['key_id']}", seq
        )
    return None


def verify_day(
    store: DuckDBAuditStore | BigQueryAuditStore, keyring: Keyring, tenant: str, day: str | date
) -> Verification:
    """Recompute every root of (tenant, day) from the rows and check its signature;
    problems in the order found, the first being the first row that does not match."""
    day_s = parse_day(day).isoformat()
    if not isinstance(store, DuckDBAuditStore):
        from .bigquery_trail import trail_source

        return verify_roots(trail_source(store, tenant, day_s), keyring, tenant, day_s)

    def stored(seq: int) -> list[tuple[str, bytes]]:
        found = store.fetch(
            "SELECT decision_id, leaf_hash FROM audit_leaves WHERE tenant = ? AND day = ? AND seq = ?"
            " ORDER BY position",
            [tenant, day_s, seq],
        )
        return [(str(d), bytes.fromhex(h)) for d, h in found]

    def current(lo: datetime | None, hi: datetime) -> list[tuple[str, bytes]]:
        return _window_leaves(store, tenant, parse_day(day_s), lo, hi)

    def pending(since: datetime) -> int:
        start, end = _day_bounds(parse_day(day_s))
        found = store.fetch(
            "SELECT count(*) FROM decisions WHERE tenant = ? AND completed_at >= ? AND completed_at < ?"
            " AND inserted_at >= ?",
            [tenant, start, end, since],
        )
        return int(found[0][0])

    source = DaySource(lambda: _roots_of(store, tenant, day_s), stored, current, pending)
    return verify_roots(source, keyring, tenant, day_s)


@dataclass(frozen=True)
class DaySource:
    """What verifying one (tenant, day) reads from a store: its roots, a root's
    stored leaves, the current leaves of a window, and the rows after a cut."""

    roots: Callable[[], list[dict[str, Any]]]
    stored_leaves: Callable[[int], list[tuple[str, bytes]]]
    current_leaves: Callable[[datetime | None, datetime], list[tuple[str, bytes]]]
    pending: Callable[[datetime], int]


def verify_roots(source: DaySource, keyring: Keyring, tenant: str, day_s: str) -> Verification:
    """The verification itself, the same for every adapter."""
    report = Verification(tenant, day_s)
    roots = source.roots()
    report.roots = len(roots)
    if not roots:
        report.problems.append(Problem("missing", f"no root for tenant {tenant!r} on {day_s}"))
    for root in roots:
        seq = int(root["seq"])
        problem = check_root_signature(root, keyring)
        if problem is not None:
            report.problems.append(problem)
            continue
        stored_leaves = source.stored_leaves(seq)
        if (
            len(stored_leaves) != root["leaf_count"]
            or merkle.root_of([h for _, h in stored_leaves]).hex() != root["root_hash"]
        ):
            report.problems.append(
                Problem("leaves", f"root {seq}: the stored leaves do not give the signed root", seq)
            )
            continue
        lo = parse_timestamp(root["inserted_from"]) if root["inserted_from"] else None
        now = source.current_leaves(lo, parse_timestamp(root["inserted_to"]))
        report.rows += len(now)
        if now != stored_leaves:  # both in decision_id order: equal lists are the common case
            report.problems.extend(_compare(seq, dict(stored_leaves), now))
    if roots:
        report.pending = source.pending(parse_timestamp(roots[-1]["inserted_to"]))
    return report


def _compare(seq: int, signed: dict[str, bytes], now: list[tuple[str, bytes]]) -> list[Problem]:
    problems: list[Problem] = []
    present = dict(now)
    for decision_id in sorted(set(signed) | set(present)):
        before, after = signed.get(decision_id), present.get(decision_id)
        if before is None:
            problems.append(
                Problem(
                    "inserted", f"root {seq}: row {decision_id} is not in the signed root", seq, decision_id
                )
            )
        elif after is None:
            problems.append(
                Problem(
                    "deleted",
                    f"root {seq}: row {decision_id} is signed but missing from the store",
                    seq,
                    decision_id,
                )
            )
        elif before != after:
            problems.append(
                Problem(
                    "edited", f"root {seq}: row {decision_id} differs from the signed row", seq, decision_id
                )
            )
    return problems


# --- inclusion proofs -----------------------------------------------------------------


def inclusion(
    store: DuckDBAuditStore | BigQueryAuditStore, tenant: str, decision_id: str
) -> dict[str, Any] | None:
    """The inclusion proof of a decision in its signed root, or None when the
    decision is not in any root (yet). Everything an auditor needs except the
    public key: the row's encoding, the leaf index, the audit path and the root."""
    if not isinstance(store, DuckDBAuditStore):
        from .bigquery_trail import inclusion as bigquery_inclusion

        return bigquery_inclusion(store, tenant, decision_id)
    found = store.fetch(
        "SELECT day, seq, position FROM audit_leaves WHERE tenant = ? AND decision_id = ?",
        [tenant, decision_id],
    )
    if not found:
        return None
    day, seq, position = str(found[0][0]), int(found[0][1]), int(found[0][2])
    root = next(r for r in _roots_of(store, tenant, day) if int(r["seq"]) == seq)
    hashes = [
        bytes.fromhex(h)
        for (h,) in store.fetch(
            "SELECT leaf_hash FROM audit_leaves WHERE tenant = ? AND day = ? AND seq = ? ORDER BY position",
            [tenant, day, seq],
        )
    ]
    encoded = row_encodings(store, "tenant = ? AND decision_id = ?", [tenant, decision_id])
    encoding = encoded[0][1].decode("utf-8") if encoded else None
    return inclusion_doc(tenant, decision_id, root, position, hashes, encoding)


def inclusion_doc(
    tenant: str,
    decision_id: str,
    root: dict[str, Any],
    position: int,
    hashes: Sequence[bytes],
    encoding: str | None,
) -> dict[str, Any]:
    """The proof document (docs/auditors.md), the same for every adapter."""
    return {
        "decision_id": decision_id,
        "tenant": tenant,
        "day": str(root["day"]),
        "seq": int(root["seq"]),
        "leaf_index": position,
        "tree_size": len(hashes),
        "leaf_hash": hashes[position].hex(),
        "row_encoding": encoding,
        "audit_path": [h.hex() for h in merkle.inclusion_proof(hashes, position)],
        "root": {
            "root_hash": root["root_hash"],
            "statement": root["statement"]
            if isinstance(root["statement"], str)
            else canonical_json(root["statement"]),
            "key_id": root["key_id"],
            "algorithm": root["algorithm"],
            "signature": root["signature"],
        },
    }
