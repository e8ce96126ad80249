"""The audit store: every final decision and every ruleset version, kept for replay.

``schema.py`` is the one definition of the BigQuery dataset ``entail_audit``
(tables as data); ``port.py`` is the interface the sink, the audit API and
replay use; ``duckdb_store.py`` is the local adapter (the BigQuery adapter
builds the same tables from the same schema).
"""

from .duckdb_store import DuckDBAuditStore
from .port import MAX_PAGE_SIZE, AuditStore, InsertResult, Rejection, SearchPage
from .schema import (
    DATASET,
    DECISIONS_TABLE,
    FINAL_STATUSES,
    REJECTED_TABLE,
    RETENTION_DAYS,
    RULESETS_TABLE,
    TABLES,
    Column,
    RulesetRecord,
    Table,
    bigquery_schema_json,
    decision_to_row,
    row_to_decision,
    row_to_ruleset,
    ruleset_to_row,
)

__all__ = [
    "DATASET",
    "DECISIONS_TABLE",
    "FINAL_STATUSES",
    "MAX_PAGE_SIZE",
    "REJECTED_TABLE",
    "RETENTION_DAYS",
    "RULESETS_TABLE",
    "TABLES",
    "AuditStore",
    "Column",
    "DuckDBAuditStore",
    "InsertResult",
    "Rejection",
    "RulesetRecord",
    "SearchPage",
    "Table",
    "bigquery_schema_json",
    "decision_to_row",
    "row_to_decision",
    "row_to_ruleset",
    "ruleset_to_row",
]
