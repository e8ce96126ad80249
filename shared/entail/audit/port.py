"""The audit-store port: what the audit sink, the search API and replay need.

The port is synchronous because the local adapter (DuckDB) is: its calls block
on disk and hold a lock. Async callers (the backend, the sink) wrap each call in
``await asyncio.to_thread(store.method, ...)``; the adapters are thread-safe.

Semantics every adapter keeps (tested against the DuckDB adapter):

- ``insert_decisions`` is idempotent on ``decision_id`` (Pub/Sub delivers at
  least once): a row already stored, or repeated in the batch, is skipped and
  counted as a duplicate. A row that can never succeed (not a valid
  DecisionRecord, a non-final status, no ``completed_at``) is not an error for
  the batch: it is returned as rejected with the reason and also written to the
  ``rejected`` table with its raw payload, so the sink can ack the message
  instead of redelivering it forever.
- Reads are tenant-isolated: a tenant never sees another tenant's rows, even by id.
- ``search_decisions`` needs a time range (BigQuery's ``require_partition_filter``),
  half-open ``[start, end)`` on ``completed_at``, newest first by
  ``(completed_at desc, decision_id desc)``, paginated by an opaque keyset token
  (never OFFSET: stable while rows arrive, cheap at any depth).
- Rulesets are idempotent on (tenant, name, version) and never expire; decisions
  expire after ``RETENTION_DAYS`` (seven years).
- ``put_batch_run`` is idempotent on ``batch_run_id`` (``batch_reason`` writes one
  row per run, refused or failed runs included).
"""

from __future__ import annotations

import base64
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from ..models import DecisionRecord, RulesetRecord
from .schema import decision_to_row, format_timestamp, parse_timestamp

#: Largest page a search may ask for.
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Rejection:
    """One row that was not stored and why; ``payload`` is the row as received."""

    decision_id: str | None
    tenant: str | None
    reason: str
    payload: Any


@dataclass(frozen=True)
class InsertResult:
    inserted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True)
class SearchPage:
    items: list[DecisionRecord]
    next_page_token: str | None


@runtime_checkable
class AuditStore(Protocol):
    def insert_decisions(self, records: Iterable[DecisionRecord | dict[str, Any]]) -> InsertResult:
        """Store final decisions; dicts are validated as DecisionRecord (a topic payload)."""
        ...

    def get_decision(self, tenant: str, decision_id: str) -> DecisionRecord | None: ...

    def search_decisions(
        self,
        tenant: str,
        start: datetime | str,
        end: datetime | str,
        *,
        ruleset_name: str | None = None,
        ruleset_version: int | None = None,
        status: str | None = None,
        predicate: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> SearchPage:
        """Decisions completed in ``[start, end)``; ``predicate`` is ``name/arity``
        and matches decisions with at least one answer atom of that predicate."""
        ...

    def put_ruleset(self, record: RulesetRecord) -> bool:
        """True when stored, False when that (tenant, name, version) already was."""
        ...

    def get_ruleset(self, tenant: str, name: str, version: int) -> RulesetRecord | None: ...

    def expire(self, now: datetime | str) -> int:
        """Delete decisions completed more than RETENTION_DAYS before ``now``; the count."""
        ...

    def put_batch_run(self, row: dict[str, Any]) -> bool:
        """Record one audited batch run (a ``batch_runs`` wire row, docs/batch.md);
        idempotent on ``batch_run_id``: True when stored, False when it already was."""
        ...

    def put_decision_report(self, row: dict[str, Any]) -> bool:
        """Record the SHA-256 of a generated decision report (a ``decision_reports`` wire
        row, entail/report.py); idempotent on (decision_id, report_sha256)."""
        ...

    def close(self) -> None: ...


# --- helpers shared by adapters ------------------------------------------------------


@dataclass(frozen=True)
class SearchQuery:
    """A validated search: UTC bounds, filters and the decoded keyset cursor."""

    tenant: str
    start: datetime
    end: datetime
    ruleset_name: str | None
    ruleset_version: int | None
    status: str | None
    predicate: tuple[str, int] | None
    page_size: int
    after: tuple[datetime, str] | None

    def equal_filters(self) -> list[tuple[str, str | int]]:
        """The optional column = value filters that are set, as (column, value)."""
        pairs: list[tuple[str, str | int | None]] = [
            ("ruleset_name", self.ruleset_name),
            ("ruleset_version", self.ruleset_version),
            ("status", self.status),
        ]
        return [(column, value) for column, value in pairs if value is not None]

    def fingerprint(self) -> str:
        """Binds a page token to the search that produced it."""
        doc = [
            self.tenant,
            format_timestamp(self.start),
            format_timestamp(self.end),
            self.ruleset_name,
            self.ruleset_version,
            self.status,
            list(self.predicate) if self.predicate else None,
        ]
        return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]

    def next_token(self, completed_at: datetime, decision_id: str) -> str:
        return encode_page_token(completed_at, decision_id, self.fingerprint())


def parse_predicate(predicate: str) -> tuple[str, int]:
    name, sep, arity = predicate.strip().rpartition("/")
    if not sep or not name or not arity.isdigit():
        raise ValueError(f"invalid predicate {predicate!r}: expected name/arity, e.g. 'decision/2'")
    return name, int(arity)


def encode_page_token(completed_at: datetime, decision_id: str, fingerprint: str) -> str:
    doc = {"c": completed_at.isoformat(timespec="microseconds"), "d": decision_id, "f": fingerprint}
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_page_token(token: str, fingerprint: str) -> tuple[datetime, str]:
    """The (completed_at, decision_id) keyset of a token; ValueError if it is not
    one of ours or belongs to a different search."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        completed_at = parse_timestamp(doc["c"])
        decision_id = doc["d"]
        token_fingerprint = doc["f"]
        if not isinstance(decision_id, str) or not isinstance(token_fingerprint, str):
            raise TypeError("wrong field types")
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError("invalid page token: pass the next_page_token of a previous page unchanged") from exc
    if token_fingerprint != fingerprint:
        raise ValueError(
            "invalid page token: it belongs to a search with a different tenant, time range or filters"
        )
    return completed_at, decision_id


def build_search(
    tenant: str,
    start: datetime | str,
    end: datetime | str,
    *,
    ruleset_name: str | None,
    ruleset_version: int | None,
    status: str | None,
    predicate: str | None,
    page_size: int,
    page_token: str | None,
) -> SearchQuery:
    """Validate search arguments (ValueError with a clear message) for any adapter."""
    lo, hi = parse_timestamp(start), parse_timestamp(end)
    if lo >= hi:
        raise ValueError(f"empty time range: start {format_timestamp(lo)} must be before end")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
    query = SearchQuery(
        tenant=tenant,
        start=lo,
        end=hi,
        ruleset_name=ruleset_name,
        ruleset_version=ruleset_version,
        status=status,
        predicate=parse_predicate(predicate) if predicate is not None else None,
        page_size=page_size,
        after=None,
    )
    if page_token is None:
        return query
    after = decode_page_token(page_token, query.fingerprint())
    return replace(query, after=after)


class SearchableStore(ABC):
    """The search entry point both adapters share: arguments are validated into a
    :class:`SearchQuery` once (``build_search``), and an adapter only turns that
    query into its SQL (``_search``)."""

    def search_decisions(
        self,
        tenant: str,
        start: datetime | str,
        end: datetime | str,
        *,
        ruleset_name: str | None = None,
        ruleset_version: int | None = None,
        status: str | None = None,
        predicate: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> SearchPage:
        return self._search(
            build_search(
                tenant,
                start,
                end,
                ruleset_name=ruleset_name,
                ruleset_version=ruleset_version,
                status=status,
                predicate=predicate,
                page_size=page_size,
                page_token=page_token,
            )
        )

    @abstractmethod
    def _search(self, q: SearchQuery) -> SearchPage: ...


@dataclass
class PreparedDecisions:
    """A batch checked before it meets a store: ``rows`` to insert (first of each
    decision_id), ``rejected`` payloads that can never be rows, and how many
    repeats within the batch were dropped."""

    rows: list[dict[str, Any]]
    rejected: list[Rejection]
    duplicates: int


def prepare_decisions(
    records: Iterable[DecisionRecord | dict[str, Any]], inserted_at: str
) -> PreparedDecisions:
    """Validate a batch of decisions (records, or topic payload dicts) into rows;
    every adapter stores exactly these rows and rejects exactly these payloads."""
    rows: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    seen: set[str] = set()
    duplicates = 0
    for item in records:
        payload: Any = item
        if isinstance(item, DecisionRecord):
            payload = item.model_dump(mode="json", by_alias=True)
        try:
            record = item if isinstance(item, DecisionRecord) else DecisionRecord.model_validate(item)
            row = decision_to_row(record, inserted_at=inserted_at)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            ids = _field(payload, "decision_id"), _field(payload, "tenant")
            rejected.append(Rejection(*ids, _reason(exc), payload))
            continue
        if row["decision_id"] in seen:
            duplicates += 1
            continue
        seen.add(row["decision_id"])
        rows.append(row)
    return PreparedDecisions(rows, rejected, duplicates)


def _reason(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]
        )
        return f"not a valid decision record: {details}"
    return str(exc)


def _field(payload: Any, name: str) -> str | None:
    value = payload.get(name) if isinstance(payload, dict) else None
    return value if isinstance(value, str) else None


ANOTHER_TENANT = "decision_id already recorded for another tenant"
