"""Legal holds: keep a tenant's, a ruleset's or a set of decisions' rows past the
seven-year expiry while a matter is open.

A hold is a ``legal_holds`` row; it is in force until released
(``released_at`` set). Expiry consults it: locally ``DuckDBAuditStore.expire``
deletes no row a hold in force covers; in BigQuery, where partition expiration
drops whole day partitions without asking, the scheduled trail job runs
:func:`bigquery_keep_held_sql`: it copies the rows a hold covers into
``held_decisions``, a table without expiration, from partitions within 30 days
of their expiry (docs/audit.md).

Every place and release is also appended to ``hold_events`` — who, when, what
— which is never updated or deleted: the hold table says what is in force, the
events say how it got there.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from .duckdb_store import DuckDBAuditStore
from .schema import format_timestamp

if TYPE_CHECKING:
    from .bigquery_store import BigQueryAuditStore

Scope = Literal["tenant", "ruleset", "decisions"]
SCOPES: tuple[Scope, ...] = ("tenant", "ruleset", "decisions")
MAX_DECISIONS = 10_000


@dataclass(frozen=True)
class Hold:
    hold_id: str
    tenant: str
    scope: str
    ruleset_name: str | None
    decision_ids: list[str] | None
    reason: str
    created_at: str
    created_by: str
    released_at: str | None
    released_by: str | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _now() -> str:
    return format_timestamp(datetime.now(UTC))


def _event(
    store: DuckDBAuditStore | BigQueryAuditStore,
    hold_id: str,
    tenant: str,
    action: str,
    actor: str,
    detail: Any,
) -> None:
    store.write_rows(
        "hold_events",
        [
            {
                # time-ordered ids: events of the same millisecond keep their order
                "event_id": f"hev_{time.time_ns():016x}{secrets.token_hex(4)}",
                "hold_id": hold_id,
                "tenant": tenant,
                "action": action,
                "actor": actor,
                "at": _now(),
                "detail": json.dumps(detail, sort_keys=True),
            }
        ],
    )


def place(
    store: DuckDBAuditStore | BigQueryAuditStore,
    tenant: str,
    scope: str,
    *,
    reason: str,
    actor: str,
    ruleset_name: str | None = None,
    decision_ids: list[str] | None = None,
) -> Hold:
    """Place a hold; ValueError for a scope without its target or with another's."""
    if scope not in SCOPES:
        raise ValueError(f"unknown hold scope {scope!r}; one of {', '.join(SCOPES)}")
    if not reason.strip():
        raise ValueError("a hold needs a reason (the matter it is for)")
    if (scope == "ruleset") != (ruleset_name is not None):
        raise ValueError("a ruleset hold names exactly one ruleset (and only a ruleset hold does)")
    if scope == "decisions":
        if not decision_ids:
            raise ValueError("a decisions hold lists the decision ids")
        if len(decision_ids) > MAX_DECISIONS:
            raise ValueError(f"at most {MAX_DECISIONS} decision ids per hold")
    elif decision_ids is not None:
        raise ValueError("only a decisions hold lists decision ids")
    hold = Hold(
        hold_id="hold_" + secrets.token_hex(8),
        tenant=tenant,
        scope=scope,
        ruleset_name=ruleset_name,
        decision_ids=sorted(set(decision_ids)) if decision_ids else None,
        reason=reason,
        created_at=_now(),
        created_by=actor,
        released_at=None,
        released_by=None,
    )
    row = hold.to_json()
    row["decision_ids"] = json.dumps(hold.decision_ids) if hold.decision_ids is not None else None
    if isinstance(store, DuckDBAuditStore):
        store.write_rows("legal_holds", [row])
    else:
        from .bigquery_trail import insert_hold

        insert_hold(store, row)
    _event(store, hold.hold_id, tenant, "hold", actor, hold.to_json())
    return hold


def release(
    store: DuckDBAuditStore | BigQueryAuditStore, tenant: str, hold_id: str, *, actor: str, reason: str
) -> Hold:
    """Release a hold in force; KeyError when the tenant has no such hold in force."""
    current = get(store, tenant, hold_id)
    if current is None or current.released_at is not None:
        raise KeyError(f"no hold {hold_id!r} in force for tenant {tenant!r}")
    at = datetime.fromisoformat(_now().replace("Z", "+00:00"))
    if isinstance(store, DuckDBAuditStore):
        store.execute(
            "UPDATE legal_holds SET released_at = ?, released_by = ? WHERE hold_id = ? AND tenant = ?",
            [at, actor, hold_id, tenant],
        )
    else:
        from .bigquery_trail import release_hold

        release_hold(store, tenant, hold_id, at, actor)
    _event(store, hold_id, tenant, "release", actor, {"reason": reason})
    released = get(store, tenant, hold_id)
    assert released is not None
    return released


_COLS = (
    "hold_id, tenant, scope, ruleset_name, decision_ids, reason, created_at, created_by,"
    " released_at, released_by"
)


def _hold(values: tuple[Any, ...]) -> Hold:
    (hid, tenant, scope, ruleset, ids, reason, created, by, released, released_by) = values
    return Hold(
        hid,
        tenant,
        scope,
        ruleset,
        json.loads(ids) if ids is not None else None,
        reason,
        format_timestamp(created),
        by,
        format_timestamp(released) if released is not None else None,
        released_by,
    )


def _from_wire(row: dict[str, Any]) -> Hold:
    ids = row["decision_ids"]
    return Hold(
        row["hold_id"],
        row["tenant"],
        row["scope"],
        row["ruleset_name"],
        json.loads(ids) if isinstance(ids, str) else ids,
        row["reason"],
        row["created_at"],
        row["created_by"],
        row["released_at"],
        row["released_by"],
    )


def get(store: DuckDBAuditStore | BigQueryAuditStore, tenant: str, hold_id: str) -> Hold | None:
    if not isinstance(store, DuckDBAuditStore):
        from .bigquery_trail import select_holds

        rows = select_holds(store, tenant, hold_id, False)
        return _from_wire(rows[0]) if rows else None
    found = store.fetch(
        f"SELECT {_COLS} FROM legal_holds WHERE tenant = ? AND hold_id = ?", [tenant, hold_id]
    )
    return _hold(found[0]) if found else None


def list_holds(
    store: DuckDBAuditStore | BigQueryAuditStore, tenant: str, *, in_force_only: bool = False
) -> list[Hold]:
    if not isinstance(store, DuckDBAuditStore):
        from .bigquery_trail import select_holds

        return [_from_wire(r) for r in select_holds(store, tenant, None, in_force_only)]
    where = "tenant = ?" + (" AND released_at IS NULL" if in_force_only else "")
    found = store.fetch(f"SELECT {_COLS} FROM legal_holds WHERE {where} ORDER BY created_at", [tenant])
    return [_hold(v) for v in found]


def events(store: DuckDBAuditStore | BigQueryAuditStore, tenant: str) -> list[dict[str, Any]]:
    if not isinstance(store, DuckDBAuditStore):
        from .bigquery_trail import select_hold_events

        return [
            {
                **{k: e[k] for k in ("event_id", "hold_id", "action", "actor", "at")},
                "detail": json.loads(e["detail"]) if isinstance(e["detail"], str) else e["detail"],
            }
            for e in select_hold_events(store, tenant)
        ]
    found = store.fetch(
        'SELECT event_id, hold_id, action, actor, "at", detail FROM hold_events WHERE tenant = ?'
        ' ORDER BY "at", event_id',
        [tenant],
    )
    return [
        {
            "event_id": e,
            "hold_id": h,
            "action": a,
            "actor": who,
            "at": format_timestamp(at),
            "detail": json.loads(d),
        }
        for e, h, a, who, at, d in found
    ]


def bigquery_keep_held_sql(project: str, dataset: str, *, days_before_expiry: int = 30) -> str:
    """The MERGE that keeps held rows in BigQuery: rows of partitions that expire
    within ``days_before_expiry`` days and that a hold in force covers are copied
    into ``held_decisions`` (idempotent on decision_id)."""
    from .schema import DECISIONS_TABLE, RETENTION_DAYS

    cols = ", ".join(f"`{c}`" for c in DECISIONS_TABLE.column_names)
    src = ", ".join(f"d.`{c}`" for c in DECISIONS_TABLE.column_names)
    ds = f"`{project}.{dataset}`"
    return (
        f"MERGE {ds[:-1]}.held_decisions` t USING ("
        f" SELECT {src} FROM {ds[:-1]}.decisions` d"
        f" WHERE d.completed_at < TIMESTAMP_SUB(CURRENT_TIMESTAMP(),"
        f" INTERVAL {RETENTION_DAYS - days_before_expiry} DAY)"
        f" AND EXISTS (SELECT 1 FROM {ds[:-1]}.legal_holds` h WHERE h.released_at IS NULL"
        " AND h.tenant = d.tenant AND (h.scope = 'tenant'"
        " OR (h.scope = 'ruleset' AND h.ruleset_name = d.ruleset_name)"
        " OR (h.scope = 'decisions' AND d.decision_id IN UNNEST(JSON_VALUE_ARRAY(h.decision_ids))))))"
        " s ON t.decision_id = s.decision_id"
        f" WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({cols})"
    )
