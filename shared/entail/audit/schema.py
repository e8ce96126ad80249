"""The one definition of the audit tables (BigQuery dataset ``entail_audit``, docs/design.md).

Both adapters build their tables from this module: the local DuckDB store
(``duckdb_store.py``) and the BigQuery store (``bigquery_store.py``). Keeping the
schema as data — columns with a logical type, a mode and a description, plus table options —
means the two cannot drift: a column added here appears in both, in the same
order, and ``bigquery_schema_json`` is exactly what ``bq mk``/Terraform take.

Rows are plain dicts in a portable wire form: TIMESTAMP columns hold the UTC
ISO strings of ``models.utcnow()`` ("2026-11-28T10:00:00.000Z"), JSON columns
hold canonical JSON text (what BigQuery's streaming insert accepts for JSON),
the rest are ``str``/``int``/``bool``/``None``. Adapters convert to their
native types at the edge.

No google import here: this module is pure data and pure functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ..models import DatasetRef, DecisionError, DecisionRecord, RulesetRef, canonical_json
from ..models import RulesetRecord as RulesetRecord  # re-exported: the adapters import it from here
from . import provenance

LogicalType = Literal["STRING", "INT64", "BOOL", "TIMESTAMP", "JSON"]
Mode = Literal["REQUIRED", "NULLABLE"]

DATASET = "entail_audit"
DECISIONS = "decisions"
RULESETS = "rulesets"
REJECTED = "rejected"

#: Seven years (7 * 365 + 2 leap days): the audit retention of decisions.
RETENTION_DAYS = 2557

#: Decision statuses that may be recorded; pending/running rows are never final.
FINAL_STATUSES = ("succeeded", "failed")


@dataclass(frozen=True)
class Column:
    name: str
    type: LogicalType
    mode: Mode
    description: str

    @property
    def required(self) -> bool:
        return self.mode == "REQUIRED"


@dataclass(frozen=True)
class Table:
    """A table and the options BigQuery needs; ``primary_key`` is the idempotency key
    (a unique constraint locally, the insertId / MERGE key in BigQuery)."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    clustering: tuple[str, ...] = ()
    partition_field: str | None = None
    partition_type: Literal["DAY"] | None = None
    partition_expiration_days: int | None = None  # None: never expires
    require_partition_filter: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")


def _c(name: str, type_: LogicalType, mode: Mode, description: str) -> Column:
    return Column(name, type_, mode, description)


DECISIONS_TABLE = Table(
    name=DECISIONS,
    description="One row per final decision (the message on topic `decisions`); replayable.",
    columns=(
        _c("decision_id", "STRING", "REQUIRED", "Unique decision id (dec_…); the idempotency key."),
        _c("tenant", "STRING", "REQUIRED", "Tenant that owns the decision."),
        _c("ruleset_name", "STRING", "REQUIRED", "Ruleset name."),
        _c("ruleset_version", "INT64", "REQUIRED", "Ruleset version, from 1 per tenant and name."),
        _c("ruleset_hash", "STRING", "REQUIRED", "sha256 of the ruleset source."),
        _c("request_hash", "STRING", "REQUIRED", "Canonical hash of facts, query, explain and limits."),
        _c("status", "STRING", "REQUIRED", "Final status: succeeded or failed."),
        _c("facts", "JSON", "NULLABLE", "The case facts as submitted."),
        _c("query", "JSON", "REQUIRED", "The queries (list of strings)."),
        _c("explain", "BOOL", "REQUIRED", "Whether proofs were requested."),
        _c("answers", "JSON", "NULLABLE", "Per query {query, answers:[{atom, args, bindings, proof?}]}."),
        _c("result_hash", "STRING", "NULLABLE", "Deterministic hash of the result."),
        _c("error", "JSON", "NULLABLE", "{code, message, diagnostics} when the decision failed."),
        _c("stats", "JSON", "REQUIRED", "Engine statistics."),
        _c("engine_version", "STRING", "REQUIRED", "Engine version that computed the decision."),
        _c("worker", "STRING", "NULLABLE", "Worker instance that computed the decision."),
        _c("cached", "BOOL", "REQUIRED", "Answered from the result cache."),
        _c("cached_from", "STRING", "NULLABLE", "For a cache hit: the decision whose result it repeats."),
        _c("submitted_at", "TIMESTAMP", "REQUIRED", "When the request was accepted."),
        _c("started_at", "TIMESTAMP", "NULLABLE", "When evaluation started."),
        _c("completed_at", "TIMESTAMP", "REQUIRED", "When the decision became final; partition column."),
        _c("masked_predicates", "JSON", "NULLABLE", "Predicates whose facts were masked in this row."),
        _c("inserted_at", "TIMESTAMP", "REQUIRED", "When the audit store recorded the row."),
        _c(
            "rule_ids",
            "STRING",
            "NULLABLE",
            "Rule indexes used by the answers' proofs, ' 4 14 ' (NULL: not explained; provenance.py).",
        ),
        _c("fact_hashes", "STRING", "NULLABLE", "Content hashes of the base facts used by the proofs."),
        _c(
            "reason_codes",
            "STRING",
            "NULLABLE",
            "Reason template codes of the answers (' L02 L03 '); without templates, the symbolic "
            "constants cited in them (' high_dti ').",
        ),
        _c(
            "datasets",
            "JSON",
            "NULLABLE",
            "The dataset versions the decision read: [{binding, name, version, hash}] sorted by "
            "binding (NULL: none).",
        ),
    ),
    primary_key=("decision_id",),
    # rule_ids last: decisions of one version that used the same rules sit together
    clustering=("tenant", "ruleset_name", "ruleset_version", "rule_ids"),
    partition_field="completed_at",
    partition_type="DAY",
    partition_expiration_days=RETENTION_DAYS,
    require_partition_filter=True,
)

RULESETS_TABLE = Table(
    name=RULESETS,
    description="Every published ruleset version with its source; never expires (replay).",
    columns=(
        _c("tenant", "STRING", "REQUIRED", "Tenant that owns the ruleset."),
        _c("name", "STRING", "REQUIRED", "Ruleset name."),
        _c("version", "INT64", "REQUIRED", "Version number, from 1 per tenant and name."),
        _c("hash", "STRING", "REQUIRED", "sha256 of the source."),
        _c("source", "STRING", "REQUIRED", "The ruleset source text."),
        _c("description", "STRING", "NULLABLE", "Free-text description."),
        _c("tests", "JSON", "REQUIRED", "Test cases run at publish."),
        _c("published_at", "TIMESTAMP", "REQUIRED", "When the version was published."),
        _c("published_by", "STRING", "REQUIRED", "Who published it (key id or principal)."),
    ),
    primary_key=("tenant", "name", "version"),
    clustering=("tenant", "name"),
)

REJECTED_TABLE = Table(
    name=REJECTED,
    description="Audit rows that can never be inserted, with the reason and the raw payload.",
    columns=(
        _c("rejected_at", "TIMESTAMP", "REQUIRED", "When the row was rejected."),
        _c("decision_id", "STRING", "NULLABLE", "Decision id, when the payload had one."),
        _c("tenant", "STRING", "NULLABLE", "Tenant, when the payload had one."),
        _c("reason", "STRING", "REQUIRED", "Why the row was rejected."),
        _c("payload", "JSON", "REQUIRED", "The payload as received."),
    ),
    primary_key=(),
    clustering=("tenant",),
    partition_field="rejected_at",
    partition_type="DAY",
    partition_expiration_days=RETENTION_DAYS,
)

BATCH_RUNS = "batch_runs"

BATCH_RUNS_TABLE = Table(
    name=BATCH_RUNS,
    description="One row per batch run of a ruleset over warehouse tables (docs/batch.md).",
    columns=(
        _c("batch_run_id", "STRING", "REQUIRED", "Unique run id (bat_…); the idempotency key."),
        _c("tenant", "STRING", "REQUIRED", "Tenant that ran the batch."),
        _c("ruleset_name", "STRING", "REQUIRED", "Ruleset name."),
        _c("ruleset_version", "INT64", "REQUIRED", "Ruleset version."),
        _c("ruleset_hash", "STRING", "REQUIRED", "sha256 of the ruleset source."),
        _c("dialect", "STRING", "REQUIRED", "Where the SQL ran: bigquery or duckdb."),
        _c("status", "STRING", "REQUIRED", "succeeded or failed."),
        _c("destination", "STRING", "NULLABLE", "Dataset (schema) of the output tables."),
        _c("inputs", "JSON", "REQUIRED", "Per input predicate {source, rows, snapshot_time}."),
        _c("outputs", "JSON", "REQUIRED", "Per output predicate {table, rows}."),
        _c("stats", "JSON", "REQUIRED", "Derived rows, bytes, job statistics, strata."),
        _c("error", "JSON", "NULLABLE", "{code, message} when the run failed."),
        _c("engine_version", "STRING", "REQUIRED", "Engine version that compiled the SQL."),
        _c("started_at", "TIMESTAMP", "REQUIRED", "When the run started."),
        _c("completed_at", "TIMESTAMP", "REQUIRED", "When the run ended; partition column."),
        _c("inserted_at", "TIMESTAMP", "REQUIRED", "When the audit store recorded the row."),
    ),
    primary_key=("batch_run_id",),
    clustering=("tenant", "ruleset_name"),
    partition_field="completed_at",
    partition_type="DAY",
    partition_expiration_days=RETENTION_DAYS,
    require_partition_filter=True,
)

AUDIT_ROOTS = "audit_roots"
AUDIT_LEAVES = "audit_leaves"
LEGAL_HOLDS = "legal_holds"
HOLD_EVENTS = "hold_events"
HELD_DECISIONS = "held_decisions"
CANARY_MISMATCHES = "canary_mismatches"

AUDIT_ROOTS_TABLE = Table(
    name=AUDIT_ROOTS,
    description="Signed Merkle roots of each tenant's decisions per UTC day (docs/audit.md); never expires.",
    columns=(
        _c("tenant", "STRING", "REQUIRED", "Tenant whose decisions the root covers."),
        _c("day", "STRING", "REQUIRED", "UTC day of completed_at, YYYY-MM-DD."),
        _c("seq", "INT64", "REQUIRED", "0: the day's root; 1, 2, …: supplementary roots for late rows."),
        _c("encoding", "STRING", "REQUIRED", "Row encoding of the leaves (entail.row.v1)."),
        _c("leaf_count", "INT64", "REQUIRED", "Number of rows (leaves)."),
        _c("root_hash", "STRING", "REQUIRED", "Merkle root, hex (RFC 6962 hashing)."),
        _c(
            "inserted_from",
            "TIMESTAMP",
            "NULLABLE",
            "Covers rows inserted at or after (NULL: from the start).",
        ),
        _c("inserted_to", "TIMESTAMP", "REQUIRED", "Covers rows inserted before this instant."),
        _c("statement", "JSON", "REQUIRED", "The signed statement (canonical JSON)."),
        _c("key_id", "STRING", "REQUIRED", "Id of the signing key."),
        _c("algorithm", "STRING", "REQUIRED", "ed25519 or ecdsa-p256-sha256."),
        _c("signature", "STRING", "REQUIRED", "Signature over the statement, base64."),
        _c("built_at", "TIMESTAMP", "REQUIRED", "When the root was built."),
    ),
    primary_key=("tenant", "day", "seq"),
    clustering=("tenant", "day"),
)

AUDIT_LEAVES_TABLE = Table(
    name=AUDIT_LEAVES,
    description="The leaves of each root in order: which decision each leaf hash stands for.",
    columns=(
        _c("tenant", "STRING", "REQUIRED", "Tenant."),
        _c("day", "STRING", "REQUIRED", "UTC day, YYYY-MM-DD."),
        _c("seq", "INT64", "REQUIRED", "The root's seq."),
        _c("position", "INT64", "REQUIRED", "Leaf index, from 0, in decision_id order."),
        _c("decision_id", "STRING", "REQUIRED", "The decision the leaf encodes."),
        _c("leaf_hash", "STRING", "REQUIRED", "SHA-256(0x00 || row encoding), hex."),
    ),
    primary_key=(),  # written once per root, with the root, in one transaction
    clustering=("tenant", "day", "decision_id"),
)

LEGAL_HOLDS_TABLE = Table(
    name=LEGAL_HOLDS,
    description="Legal holds: rows they cover are kept past the retention (holds.py); never expires.",
    columns=(
        _c("hold_id", "STRING", "REQUIRED", "Hold id (hold_…)."),
        _c("tenant", "STRING", "REQUIRED", "Tenant whose rows are held."),
        _c("scope", "STRING", "REQUIRED", "tenant, ruleset or decisions."),
        _c("ruleset_name", "STRING", "NULLABLE", "For scope ruleset: its name."),
        _c("decision_ids", "JSON", "NULLABLE", "For scope decisions: the ids."),
        _c("reason", "STRING", "REQUIRED", "Why (matter, case number)."),
        _c("created_at", "TIMESTAMP", "REQUIRED", "When the hold was placed."),
        _c("created_by", "STRING", "REQUIRED", "Who placed it."),
        _c("released_at", "TIMESTAMP", "NULLABLE", "When it was released (NULL: in force)."),
        _c("released_by", "STRING", "NULLABLE", "Who released it."),
    ),
    primary_key=("hold_id",),
    clustering=("tenant",),
)

HOLD_EVENTS_TABLE = Table(
    name=HOLD_EVENTS,
    description="Every hold placed and released, append-only; never expires.",
    columns=(
        _c("event_id", "STRING", "REQUIRED", "Event id."),
        _c("hold_id", "STRING", "REQUIRED", "The hold."),
        _c("tenant", "STRING", "REQUIRED", "Tenant."),
        _c("action", "STRING", "REQUIRED", "hold or release."),
        _c("actor", "STRING", "REQUIRED", "Who did it."),
        _c("at", "TIMESTAMP", "REQUIRED", "When."),
        _c("detail", "JSON", "REQUIRED", "The hold as placed, or the release reason."),
    ),
    primary_key=("event_id",),
    clustering=("tenant",),
)

HELD_DECISIONS_TABLE = Table(
    name=HELD_DECISIONS,
    description="Decisions under a legal hold copied out of the expiring decisions table (BigQuery).",
    columns=DECISIONS_TABLE.columns,
    primary_key=("decision_id",),
    clustering=("tenant", "ruleset_name"),
)

CANARY_MISMATCHES_TABLE = Table(
    name=CANARY_MISMATCHES,
    description="Archived decisions whose replay by the current engine gave another result (canary.py).",
    columns=(
        _c("run_id", "STRING", "REQUIRED", "Canary run id."),
        _c("decision_id", "STRING", "REQUIRED", "The replayed decision."),
        _c("tenant", "STRING", "REQUIRED", "Tenant."),
        _c("ruleset_name", "STRING", "REQUIRED", "Ruleset name."),
        _c("ruleset_version", "INT64", "REQUIRED", "Ruleset version."),
        _c("original_engine_version", "STRING", "REQUIRED", "Engine that made the decision."),
        _c("replay_engine_version", "STRING", "REQUIRED", "Engine that replayed it."),
        _c("original_result_hash", "STRING", "NULLABLE", "Stored result hash."),
        _c("replay_result_hash", "STRING", "NULLABLE", "Result hash of the replay (NULL: it failed)."),
        _c("detail", "JSON", "REQUIRED", "Added/removed answers or the replay error."),
        _c("checked_at", "TIMESTAMP", "REQUIRED", "When the canary ran."),
    ),
    primary_key=("run_id", "decision_id"),
    clustering=("tenant", "ruleset_name"),
)

DECISION_REPORTS = "decision_reports"

DECISION_REPORTS_TABLE = Table(
    name=DECISION_REPORTS,
    description=(
        "The SHA-256 of each distinct decision report generated (entail/report.py); apart from "
        "the decisions table, whose rows are immutable and signed column by column (docs/audit.md)."
    ),
    columns=(
        _c("decision_id", "STRING", "REQUIRED", "The decision the report is of."),
        _c("tenant", "STRING", "REQUIRED", "Tenant that owns the decision."),
        _c("report_sha256", "STRING", "REQUIRED", "SHA-256 of the report's HTML bytes, hex."),
        _c("generated_at", "TIMESTAMP", "REQUIRED", "When that report was first generated."),
        _c("generator_version", "STRING", "REQUIRED", "Report layout version (entail.report.v1)."),
    ),
    # one row per distinct report: asking again for the same report records nothing
    primary_key=("decision_id", "report_sha256"),
    clustering=("tenant", "decision_id"),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        DECISIONS_TABLE,
        RULESETS_TABLE,
        REJECTED_TABLE,
        BATCH_RUNS_TABLE,
        AUDIT_ROOTS_TABLE,
        AUDIT_LEAVES_TABLE,
        LEGAL_HOLDS_TABLE,
        HOLD_EVENTS_TABLE,
        HELD_DECISIONS_TABLE,
        CANARY_MISMATCHES_TABLE,
        DECISION_REPORTS_TABLE,
    )
}


def check_row(table: Table, row: dict[str, Any]) -> None:
    """A wire-form row has exactly the table's columns, its required ones set and its
    timestamps valid; else ValueError naming the column."""
    if list(row) != table.column_names:
        raise ValueError(f"a {table.name} row needs the columns {table.column_names}, got {list(row)}")
    for c in table.columns:
        if c.required and row[c.name] is None:
            raise ValueError(f"{table.name}.{c.name} is required")
        if c.type == "TIMESTAMP" and row[c.name] is not None:
            parse_timestamp(row[c.name])


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown audit table {name!r}; known: {sorted(TABLES)}") from None


def bigquery_schema_json(table_name: str) -> list[dict[str, str]]:
    """The BigQuery JSON schema of a table: ``[{name, type, mode, description}]``."""
    return [
        {"name": c.name, "type": c.type, "mode": c.mode, "description": c.description}
        for c in table(table_name).columns
    ]


# --- timestamps -----------------------------------------------------------------


def parse_timestamp(value: str | datetime) -> datetime:
    """An aware UTC datetime from an ISO string (``Z`` or an offset) or an aware datetime.

    Naive values are refused: an audit timestamp without a zone is ambiguous.
    """
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"invalid timestamp {value!r}: expected ISO-8601 with a zone") from exc
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"timestamp {value!r} has no time zone; use UTC ('…Z')")
    return dt.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """The ``models.utcnow()`` form: milliseconds, ``Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- decisions -------------------------------------------------------------------


def _json(value: Any) -> str | None:
    return None if value is None else canonical_json(value)


def _unjson(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def decision_to_row(record: DecisionRecord, *, inserted_at: str | None = None) -> dict[str, Any]:
    """A final DecisionRecord → a ``decisions`` row (wire form, column order).

    Raises ValueError for a record that can never be stored: a status that is not
    final, or a missing/invalid ``completed_at`` (the partition column).
    """
    if record.status not in FINAL_STATUSES:
        raise ValueError(f"status {record.status!r} is not final (expected one of {FINAL_STATUSES})")
    if not record.completed_at:
        raise ValueError("completed_at is missing (required: it is the partition column)")
    for name in ("submitted_at", "started_at", "completed_at"):
        value = getattr(record, name)
        if value is not None:
            parse_timestamp(value)  # raises ValueError with the field's value
    if inserted_at is None:
        inserted_at = format_timestamp(datetime.now(UTC))
    row: dict[str, Any] = {
        "decision_id": record.decision_id,
        "tenant": record.tenant,
        "ruleset_name": record.ruleset.name,
        "ruleset_version": record.ruleset.version,
        "ruleset_hash": record.ruleset.hash,
        "request_hash": record.request_hash,
        "status": record.status,
        "facts": _json(record.facts),
        "query": _json(record.query),
        "explain": record.explain,
        "answers": _json(record.answers),
        "result_hash": record.result_hash,
        "error": _json(record.error.model_dump() if record.error is not None else None),
        "stats": _json(record.stats),
        "engine_version": record.engine_version,
        "worker": record.worker,
        "cached": record.cached,
        "cached_from": record.cached_from,
        "submitted_at": record.submitted_at,
        "started_at": record.started_at,
        "completed_at": record.completed_at,
        # not (yet) a DecisionRecord field; carried when a producer sets it
        "masked_predicates": _json(record.masked_predicates or None),
        "inserted_at": inserted_at,
    }
    used = provenance.of_answers(record.answers, explain=record.explain)
    row["rule_ids"], row["fact_hashes"], row["reason_codes"] = (
        used.rule_ids,
        used.fact_hashes,
        used.reason_codes,
    )
    row["datasets"] = _json([d.model_dump() for d in record.datasets] or None)
    assert list(row) == DECISIONS_TABLE.column_names
    return row


def row_to_decision(row: dict[str, Any]) -> DecisionRecord:
    """A ``decisions`` row (JSON as text or already decoded) → DecisionRecord."""
    error = _unjson(row.get("error"))
    return DecisionRecord(
        decision_id=row["decision_id"],
        tenant=row["tenant"],
        ruleset=RulesetRef(
            tenant=row["tenant"],
            name=row["ruleset_name"],
            version=int(row["ruleset_version"]),
            hash=row["ruleset_hash"],
        ),
        request_hash=row["request_hash"],
        status=row["status"],
        facts=_unjson(row.get("facts")),
        query=_unjson(row.get("query")) or [],
        explain=bool(row["explain"]),
        answers=_unjson(row.get("answers")),
        result_hash=row.get("result_hash"),
        error=DecisionError.model_validate(error) if error is not None else None,
        stats=_unjson(row.get("stats")) or {},
        engine_version=row["engine_version"],
        worker=row.get("worker"),
        cached=bool(row["cached"]),
        cached_from=row.get("cached_from"),
        masked_predicates=_unjson(row.get("masked_predicates")) or [],
        datasets=[DatasetRef.model_validate(d) for d in _unjson(row.get("datasets")) or []],
        submitted_at=row["submitted_at"],
        started_at=row.get("started_at"),
        completed_at=row.get("completed_at"),
    )


# --- rulesets --------------------------------------------------------------------


def ruleset_to_row(record: RulesetRecord) -> dict[str, Any]:
    parse_timestamp(record.published_at)
    row: dict[str, Any] = {
        "tenant": record.tenant,
        "name": record.name,
        "version": record.version,
        "hash": record.hash,
        "source": record.source,
        "description": record.description,
        "tests": canonical_json(record.tests),
        "published_at": record.published_at,
        "published_by": record.published_by,
    }
    assert list(row) == RULESETS_TABLE.column_names
    return row


def row_to_ruleset(row: dict[str, Any]) -> RulesetRecord:
    return RulesetRecord(
        tenant=row["tenant"],
        name=row["name"],
        version=int(row["version"]),
        hash=row["hash"],
        source=row["source"],
        description=row.get("description") or "",
        tests=_unjson(row.get("tests")) or [],
        published_at=row["published_at"],
        published_by=row["published_by"],
    )
