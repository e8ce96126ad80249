"""The audit trail on BigQuery: roots, verification, inclusion proofs, reverse
provenance, the canary's sample and legal holds — what roots.py, provenance_query.py,
canary.py and holds.py do on the local DuckDB store, in BigQuery SQL.

The rules are the same and so are the bytes: a root's leaves are the
``entail.row.v1`` encodings (row_encoding.py, computed here in Python from the
rows BigQuery returns) in ``decision_id`` order, the root row and its statement
come from :func:`roots.signed_root`, and verification is :func:`roots.verify_roots`.
tests/integration/audit/test_store_contract.py runs the trail on both adapters
and checks that a root built by one is the root the other builds.

BigQuery specifics:

- Every query on ``decisions`` carries a constant ``completed_at`` bound
  (``require_partition_filter``). The root job looks back :data:`LOOKBACK_DAYS`
  days for late rows (a row arriving later than that gets no supplementary root;
  the sink's backlog alert fires long before).
- BigQuery has no transactions across streaming inserts: a root's leaves are
  streamed first, then the root (insertIds ``tenant/day/seq[/position]``), so a
  root is never visible without its leaves; readers take each root and leaf once.
  A run that fails between the two leaves orphan leaves under a seq without a
  root (streamed rows cannot be deleted at once); the next run numbers its
  root past them (``seq`` = one more than any root *or leaf* of the day), and
  every reader goes from roots to leaves, so orphans are never read. A day's
  seqs may therefore skip a number; its windows stay contiguous.
- Holds are written with DML, not streamed: a streamed row cannot be UPDATEd
  while it is in the streaming buffer, and a release is an UPDATE.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import merkle
from .bigquery_store import _wire
from .provenance import token_filter
from .row_encoding import encode_row
from .schema import (
    DECISIONS_TABLE,
    LEGAL_HOLDS_TABLE,
    RETENTION_DAYS,
    parse_timestamp,
    row_to_decision,
)

if TYPE_CHECKING:
    from ..models import DecisionRecord
    from .bigquery_store import BigQueryAuditStore
    from .provenance_query import ProvenanceQuery
    from .roots import BuiltRoot, DaySource
    from .signing import Signer

#: how many days back the root job looks for rows that still need a root
LOOKBACK_DAYS = 31
_JSON_COLUMNS = tuple(c.name for c in DECISIONS_TABLE.columns if c.type == "JSON")


def _t(store: BigQueryAuditStore, name: str) -> str:
    return f"`{store.table_id(name)}`"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def encode_bigquery_row(row: dict[str, Any]) -> bytes:
    """The ``entail.row.v1`` bytes of a ``decisions`` row as the BigQuery client
    returns it (JSON columns already decoded, timestamps as datetimes)."""
    wire = _wire(DECISIONS_TABLE, row)
    for name in _JSON_COLUMNS:
        value = wire[name]
        if value is not None and not isinstance(value, dict | list):
            # the client decodes JSON; a decoded scalar is re-encoded, so that
            # encode_row never reads a JSON string's content as JSON text
            wire[name] = json.dumps(value)
    return encode_row(wire)


# --- roots ---------------------------------------------------------------------------


def _window_leaves(
    store: BigQueryAuditStore, tenant: str, day: date, lo: datetime | None, hi: datetime | None
) -> list[tuple[str, bytes]]:
    start = _midnight(day)
    where = ["tenant = @tenant", "completed_at >= @start", "completed_at < @end"]
    params: dict[str, Any] = {"tenant": tenant, "start": start, "end": start + timedelta(days=1)}
    if lo is not None:
        where.append("inserted_at >= @lo")
        params["lo"] = lo
    if hi is not None:
        where.append("inserted_at < @hi")
        params["hi"] = hi
    found = store.query(
        f"SELECT * FROM {_t(store, 'decisions')} WHERE {' AND '.join(where)} ORDER BY decision_id", params
    )
    leaves = [(str(r["decision_id"]), merkle.leaf_hash(encode_bigquery_row(r))) for r in found]
    leaves.sort(key=lambda leaf: leaf[0])  # code-point order, whatever the collation
    return leaves


def build_roots(
    store: BigQueryAuditStore,
    signer: Signer,
    *,
    now: datetime | None = None,
    grace: timedelta,
    tenant: str | None = None,
    lookback_days: int = LOOKBACK_DAYS,
) -> list[BuiltRoot]:
    """roots.build_roots on BigQuery: the same due rule, over the last ``lookback_days``."""
    from .roots import BuiltRoot, build_cutoff, signed_root

    cutoff = build_cutoff(now, grace)
    today = _midnight(cutoff.date())
    oldest = today - timedelta(days=lookback_days)
    params: dict[str, Any] = {
        "oldest": oldest,
        "oldest_day": oldest.date().isoformat(),
        "today": today,
        "cutoff": cutoff,
    }
    tenant_filter = ""
    if tenant is not None:
        tenant_filter = " AND tenant = @tenant"
        params["tenant"] = tenant
    due = store.query(
        "WITH last AS (SELECT tenant, day, MAX(seq) AS seq, MAX(inserted_to) AS upto"
        f" FROM {_t(store, 'audit_roots')} WHERE day >= @oldest_day GROUP BY tenant, day),"
        " leaf AS (SELECT tenant, day, MAX(seq) AS seq"
        f" FROM {_t(store, 'audit_leaves')} WHERE day >= @oldest_day GROUP BY tenant, day),"
        " d AS (SELECT tenant, FORMAT_TIMESTAMP('%Y-%m-%d', completed_at, 'UTC') AS day, inserted_at"
        f" FROM {_t(store, 'decisions')} WHERE completed_at >= @oldest AND completed_at < @today"
        f" AND inserted_at < @cutoff{tenant_filter})"
        " SELECT d.tenant AS tenant, d.day AS day, MAX(last.seq) AS last_seq, MAX(last.upto) AS upto,"
        " MAX(leaf.seq) AS leaf_seq"
        " FROM d LEFT JOIN last ON last.tenant = d.tenant AND last.day = d.day"
        " LEFT JOIN leaf ON leaf.tenant = d.tenant AND leaf.day = d.day"
        " WHERE last.upto IS NULL OR d.inserted_at >= last.upto"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    )
    built: list[BuiltRoot] = []
    for found in due:
        t, day = str(found["tenant"]), str(found["day"])
        # past any seq used before, orphan leaves of a failed run included
        used = [int(found[k]) for k in ("last_seq", "leaf_seq") if found[k] is not None]
        seq = max(used) + 1 if used else 0
        lo = found["upto"]
        leaves = _window_leaves(store, t, date.fromisoformat(day), lo, cutoff)
        row, root = signed_root(signer, t, day, seq, [h for _, h in leaves], lo, cutoff)
        key = f"{t}/{day}/{seq}"
        store.write_rows(
            "audit_leaves",
            [
                {"tenant": t, "day": day, "seq": seq, "position": i, "decision_id": d, "leaf_hash": h.hex()}
                for i, (d, h) in enumerate(leaves)
            ],
            [f"{key}/{i}" for i in range(len(leaves))],
        )
        store.write_rows("audit_roots", [row], [key])
        built.append(BuiltRoot(root.tenant, root.day, root.seq, root.leaf_count, root.root_hash))
    return built


def roots_of(store: BigQueryAuditStore, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """``audit_roots`` rows in wire form, each (tenant, day, seq) once."""
    from .schema import AUDIT_ROOTS_TABLE

    found = store.query(
        f"SELECT * FROM {_t(store, 'audit_roots')} WHERE {where} ORDER BY tenant, day, seq, built_at",
        params,
    )
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, int]] = set()
    for r in found:
        key = (str(r["tenant"]), str(r["day"]), int(r["seq"]))
        if key in seen:
            continue
        seen.add(key)
        row = _wire(AUDIT_ROOTS_TABLE, r)
        if not isinstance(row["statement"], str):  # the client decodes JSON columns
            row["statement"] = json.dumps(row["statement"], sort_keys=True, separators=(",", ":"))
        row["seq"], row["leaf_count"] = int(row["seq"]), int(row["leaf_count"])
        out.append(row)
    return out


def _stored_leaves(store: BigQueryAuditStore, tenant: str, day: str, seq: int) -> list[tuple[str, bytes]]:
    found = store.query(
        f"SELECT DISTINCT position, decision_id, leaf_hash FROM {_t(store, 'audit_leaves')}"
        " WHERE tenant = @tenant AND day = @day AND seq = @seq ORDER BY position",
        {"tenant": tenant, "day": day, "seq": seq},
    )
    return [(str(r["decision_id"]), bytes.fromhex(str(r["leaf_hash"]))) for r in found]


def trail_source(store: BigQueryAuditStore, tenant: str, day_s: str) -> DaySource:
    """What roots.verify_roots reads, from BigQuery."""
    from .roots import DaySource

    day = date.fromisoformat(day_s)

    def pending(since: datetime) -> int:
        start = _midnight(day)
        found = store.query(
            f"SELECT COUNT(*) AS n FROM {_t(store, 'decisions')} WHERE tenant = @tenant"
            " AND completed_at >= @start AND completed_at < @end AND inserted_at >= @since",
            {"tenant": tenant, "start": start, "end": start + timedelta(days=1), "since": since},
        )
        return int(found[0]["n"])

    return DaySource(
        roots=lambda: roots_of(store, "tenant = @tenant AND day = @day", {"tenant": tenant, "day": day_s}),
        stored_leaves=lambda seq: _stored_leaves(store, tenant, day_s, seq),
        current_leaves=lambda lo, hi: _window_leaves(store, tenant, day, lo, hi),
        pending=pending,
    )


def inclusion(store: BigQueryAuditStore, tenant: str, decision_id: str) -> dict[str, Any] | None:
    from .roots import inclusion_doc

    # the leaf of a root: orphan leaves of a failed run have none
    found = store.query(
        f"SELECT l.day AS day, l.seq AS seq, l.position AS position FROM {_t(store, 'audit_leaves')} l"
        f" JOIN {_t(store, 'audit_roots')} r ON r.tenant = l.tenant AND r.day = l.day AND r.seq = l.seq"
        " WHERE l.tenant = @tenant AND l.decision_id = @id ORDER BY 1, 2 LIMIT 1",
        {"tenant": tenant, "id": decision_id},
    )
    if not found:
        return None
    day, seq, position = str(found[0]["day"]), int(found[0]["seq"]), int(found[0]["position"])
    roots = roots_of(
        store, "tenant = @tenant AND day = @day AND seq = @seq", {"tenant": tenant, "day": day, "seq": seq}
    )
    if not roots:
        return None
    hashes = [h for _, h in _stored_leaves(store, tenant, day, seq)]
    start = _midnight(date.fromisoformat(day))
    rows = store.query(
        f"SELECT * FROM {_t(store, 'decisions')} WHERE tenant = @tenant AND decision_id = @id"
        " AND completed_at >= @start AND completed_at < @end LIMIT 1",
        {"tenant": tenant, "id": decision_id, "start": start, "end": start + timedelta(days=1)},
    )
    encoding = encode_bigquery_row(rows[0]).decode("utf-8") if rows else None
    return inclusion_doc(tenant, decision_id, roots[0], position, hashes, encoding)


# --- reverse provenance ----------------------------------------------------------------


def provenance_rows(
    store: BigQueryAuditStore, q: ProvenanceQuery, after: tuple[datetime, str] | None, limit: int
) -> list[tuple[Any, ...]]:
    """provenance_query.search's SQL on BigQuery: the same filters; a token match is
    ``STRPOS(column, ' token ') > 0`` on rows pruned by partition (time) and
    clustering (tenant, ruleset_name, ruleset_version, rule_ids)."""
    where = ["tenant = @tenant", "completed_at >= @start", "completed_at < @end"]
    params: dict[str, Any] = {"tenant": q.tenant, "start": q.start, "end": q.end}
    if q.ruleset_name is not None:
        where.append("ruleset_name = @ruleset_name")
        params["ruleset_name"] = q.ruleset_name
    if q.ruleset_version is not None:
        where.append("ruleset_version = @ruleset_version")
        params["ruleset_version"] = q.ruleset_version
    for column, value in (
        ("rule_ids", q.rule),
        ("fact_hashes", q.fact_token()),
        ("reason_codes", q.reason_code),
    ):
        if value is not None:
            where.append(f"STRPOS({column}, @{column}) > 0")
            params[column] = token_filter(value)
    if after is not None:
        where.append("(completed_at < @after_at OR (completed_at = @after_at AND decision_id < @after_id))")
        params["after_at"], params["after_id"] = after
    params["limit"] = limit
    found = store.query(
        "SELECT decision_id, completed_at, ruleset_name, ruleset_version, status, result_hash,"
        f" rule_ids, reason_codes, engine_version FROM {_t(store, 'decisions')} WHERE "
        + " AND ".join(where)
        + " ORDER BY completed_at DESC, decision_id DESC LIMIT @limit",
        params,
    )
    names = (
        "decision_id",
        "completed_at",
        "ruleset_name",
        "ruleset_version",
        "status",
        "result_hash",
        "rule_ids",
        "reason_codes",
        "engine_version",
    )
    return [tuple(r[n] for n in names) for r in found]


# --- the canary's sample ---------------------------------------------------------------


def canary_sample(
    store: BigQueryAuditStore,
    now: datetime,
    per_stratum: int | None,
    seed: str,
    tenant: str | None,
    bands: tuple[int, ...],
) -> tuple[list[DecisionRecord], int]:
    """canary.sample on BigQuery: the strata, and ``per_stratum`` rows of each picked by
    SHA-256 of (decision id, seed) — the same hex order as DuckDB's ``sha256``, so
    both stores sample the same decisions. ``per_stratum`` None: count strata only."""
    band = (
        "CASE "
        + " ".join(
            f"WHEN completed_at >= TIMESTAMP_SUB(@now, INTERVAL {days} DAY) THEN {i}"
            for i, days in enumerate(bands)
        )
        + f" ELSE {len(bands)} END"
    )
    where = (
        "status = 'succeeded' AND masked_predicates IS NULL"
        " AND completed_at >= @oldest AND completed_at < @now"
    )
    params: dict[str, Any] = {"now": now, "oldest": now - timedelta(days=RETENTION_DAYS)}
    if tenant is not None:
        where += " AND tenant = @tenant"
        params["tenant"] = tenant
    table = _t(store, "decisions")
    if per_stratum is None:
        found = store.query(
            "SELECT COUNT(*) AS n FROM (SELECT tenant, ruleset_name, ruleset_version, band FROM"
            f" (SELECT tenant, ruleset_name, ruleset_version, {band} AS band FROM {table} WHERE {where})"
            " GROUP BY tenant, ruleset_name, ruleset_version, band)",
            params,
        )
        return [], int(found[0]["n"]) if found else 0
    params["seed"], params["per"] = seed, per_stratum
    found = store.query(
        f"SELECT * EXCEPT (rn, band) FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant, ruleset_name,"
        " ruleset_version, band ORDER BY TO_HEX(SHA256(CONCAT(decision_id, @seed)))) AS rn FROM"
        f" (SELECT *, {band} AS band FROM {table} WHERE {where})) WHERE rn <= @per ORDER BY decision_id",
        params,
    )
    return [row_to_decision(_wire(DECISIONS_TABLE, r)) for r in found], 0


def canary_mismatches(store: BigQueryAuditStore, limit: int, days: int = 366) -> list[dict[str, Any]]:
    from .schema import CANARY_MISMATCHES_TABLE

    found = store.query(
        f"SELECT * FROM {_t(store, 'canary_mismatches')} WHERE checked_at >= @since"
        " ORDER BY checked_at DESC LIMIT @limit",
        {"since": datetime.now(UTC) - timedelta(days=days), "limit": limit},
    )
    out = []
    for r in found:
        row = _wire(CANARY_MISMATCHES_TABLE, r)
        if isinstance(row["detail"], str):
            row["detail"] = json.loads(row["detail"])
        row["ruleset_version"] = int(row["ruleset_version"])
        out.append(row)
    return out


# --- legal holds -------------------------------------------------------------------------


def insert_hold(store: BigQueryAuditStore, row: dict[str, Any]) -> None:
    """One ``legal_holds`` row by DML (it may be released, i.e. UPDATEd, at once)."""
    names = [c.name for c in LEGAL_HOLDS_TABLE.columns if row[c.name] is not None]
    values = []
    params: dict[str, Any] = {}
    for name in names:
        column = next(c for c in LEGAL_HOLDS_TABLE.columns if c.name == name)
        value = row[name]
        if column.type == "TIMESTAMP":
            value = parse_timestamp(value)
        values.append(f"PARSE_JSON(@{name})" if column.type == "JSON" else f"@{name}")
        params[name] = value
    store.dml(
        f"INSERT INTO {_t(store, 'legal_holds')} ({', '.join(names)}) VALUES ({', '.join(values)})", params
    )


def release_hold(store: BigQueryAuditStore, tenant: str, hold_id: str, at: datetime, actor: str) -> None:
    store.dml(
        f"UPDATE {_t(store, 'legal_holds')} SET released_at = @at, released_by = @actor"
        " WHERE hold_id = @id AND tenant = @tenant",
        {"at": at, "actor": actor, "id": hold_id, "tenant": tenant},
    )


def select_holds(
    store: BigQueryAuditStore, tenant: str, hold_id: str | None, in_force_only: bool
) -> list[dict[str, Any]]:
    where = "tenant = @tenant"
    params: dict[str, Any] = {"tenant": tenant}
    if hold_id is not None:
        where += " AND hold_id = @id"
        params["id"] = hold_id
    if in_force_only:
        where += " AND released_at IS NULL"
    found = store.query(
        f"SELECT * FROM {_t(store, 'legal_holds')} WHERE {where} ORDER BY created_at, hold_id", params
    )
    return [_wire(LEGAL_HOLDS_TABLE, r) for r in found]


def select_hold_events(store: BigQueryAuditStore, tenant: str) -> list[dict[str, Any]]:
    from .schema import HOLD_EVENTS_TABLE

    found = store.query(
        f"SELECT * FROM {_t(store, 'hold_events')} WHERE tenant = @tenant ORDER BY `at`, event_id",
        {"tenant": tenant},
    )
    return [_wire(HOLD_EVENTS_TABLE, r) for r in found]


#: which decisions a hold in force covers, for a decisions row ``d`` (BigQuery SQL)
def held_sql(store: BigQueryAuditStore) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {_t(store, 'legal_holds')} h WHERE h.released_at IS NULL"
        " AND h.tenant = d.tenant AND (h.scope = 'tenant'"
        " OR (h.scope = 'ruleset' AND h.ruleset_name = d.ruleset_name)"
        " OR (h.scope = 'decisions' AND d.decision_id IN UNNEST(JSON_VALUE_ARRAY(h.decision_ids)))))"
    )


def keep_held(store: BigQueryAuditStore, *, days_before_expiry: int = 30) -> int:
    """Copy the held rows of partitions that expire within ``days_before_expiry`` days
    into ``held_decisions`` (holds.bigquery_keep_held_sql); the rows copied."""
    from .holds import bigquery_keep_held_sql

    return store.dml(
        bigquery_keep_held_sql(store.project, store.dataset, days_before_expiry=days_before_expiry), {}
    )


__all__ = [
    "LOOKBACK_DAYS",
    "build_roots",
    "canary_mismatches",
    "canary_sample",
    "encode_bigquery_row",
    "held_sql",
    "inclusion",
    "insert_hold",
    "keep_held",
    "provenance_rows",
    "release_hold",
    "roots_of",
    "select_hold_events",
    "select_holds",
    "trail_source",
]
