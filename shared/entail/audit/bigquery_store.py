"""The cloud audit store: BigQuery dataset ``entail_audit`` (google-cloud-bigquery).

Tables come from ``schema.py`` — the definition the DuckDB adapter and the
Terraform use — with their options: ``decisions`` DAY-partitioned on
``completed_at`` with 2557-day partition expiry, ``require_partition_filter``
and clustering by tenant and ruleset; ``rulesets`` never expires.

Idempotency: BigQuery has no unique keys. Each row is streamed with
``insertId = decision_id`` (BigQuery's best-effort de-duplication, about a
minute) *and* the adapter first asks which ids of the batch are already stored,
so a redelivery hours later is still one row. Two deliveries of one decision
racing through two sink instances in the same instant could both pass the check;
the insertId covers exactly that window.

Every query is parameterised and carries a filter on ``completed_at``, which
``require_partition_filter`` demands: searches have their time range; reads by
id derive a lower bound from the id itself (``dec_`` + 12 hex digits of the
submission time in ms, which precedes completion), less a day of clock skew.

Thin on purpose: validation, rows, page tokens and the row ↔ record mapping are
shared with the DuckDB adapter (``port.py``, ``schema.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..models import DecisionRecord
from .port import (
    ANOTHER_TENANT,
    InsertResult,
    Rejection,
    SearchableStore,
    SearchPage,
    SearchQuery,
    prepare_decisions,
)
from .schema import (
    BATCH_RUNS_TABLE,
    DATASET,
    DECISION_REPORTS_TABLE,
    DECISIONS_TABLE,
    REJECTED_TABLE,
    RETENTION_DAYS,
    RULESETS_TABLE,
    TABLES,
    RulesetRecord,
    Table,
    check_row,
    format_timestamp,
    parse_timestamp,
    row_to_decision,
    row_to_ruleset,
    ruleset_to_row,
)

if TYPE_CHECKING:
    from google.cloud import bigquery

    from ..settings import Settings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)


class AuditInsertError(RuntimeError):
    """BigQuery refused rows of a streaming insert: the caller should retry (the
    sink answers 500 and the message is redelivered)."""


def bigquery_table(project: str, dataset: str, table: Table) -> bigquery.Table:
    """The BigQuery Table resource for a schema.py table, options included."""
    from google.cloud import bigquery

    fields = [
        bigquery.SchemaField(c.name, c.type, mode=c.mode, description=c.description) for c in table.columns
    ]
    resource = bigquery.Table(f"{project}.{dataset}.{table.name}", schema=fields)
    resource.description = table.description
    if table.partition_field is not None:
        resource.time_partitioning = bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY,
            field=table.partition_field,
            expiration_ms=(
                table.partition_expiration_days * 86_400_000 if table.partition_expiration_days else None
            ),
        )
        resource.require_partition_filter = table.require_partition_filter
    if table.clustering:
        resource.clustering_fields = list(table.clustering)
    return resource


def _id_lower_bound(decision_ids: Iterable[str]) -> datetime:
    """The earliest ``completed_at`` decisions with these ids can have."""
    bound: datetime | None = None
    for decision_id in decision_ids:
        try:
            ms = int(decision_id[4:16], 16) if decision_id.startswith("dec_") else -1
        except ValueError:
            ms = -1
        if ms < 0:
            return EPOCH  # not one of our ids (imported, tests): no bound
        at = datetime.fromtimestamp(ms / 1000, UTC) - CLOCK_SKEW
        bound = at if bound is None or at < bound else bound
    return max(bound or EPOCH, EPOCH)


class BigQueryAuditStore(SearchableStore):
    """AuditStore on BigQuery. ``retry`` is passed to every API call (``None`` in
    tests, so an error surfaces at once; otherwise the library's default policy,
    bounded by ``timeout_s``).

    ``timeout_s`` bounds every call: each HTTP request, and the retries of the
    default policy together (the library's own default is no request timeout and
    600 s of retries). The sink writes in group commits, so one request that
    hangs would otherwise hold every decision queued behind it; with the bound
    the call raises, the sink answers 500 and Pub/Sub delivers again."""

    def __init__(
        self,
        client: bigquery.Client,
        *,
        dataset: str = DATASET,
        location: str = "US",
        retry: Any = "default",
        timeout_s: float = 30.0,
    ) -> None:
        from google.cloud.bigquery import DEFAULT_RETRY
        from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY

        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.client = client
        self.project = str(client.project)
        self.dataset = dataset
        self.location = location
        self.timeout_s = timeout_s
        self._retry = DEFAULT_RETRY.with_timeout(timeout_s) if retry == "default" else retry
        # a query job that fails with a retryable reason is run again, within the same bound
        self._job_retry = DEFAULT_JOB_RETRY.with_timeout(timeout_s) if retry == "default" else None

    @classmethod
    def from_settings(cls, settings: Settings) -> BigQueryAuditStore:
        """A client for ``ENTAIL_BIGQUERY_PROJECT``; with ``ENTAIL_BIGQUERY_ENDPOINT``
        (an emulator) anonymous credentials at that endpoint, else the default
        credentials of the environment (the service account on Cloud Run)."""
        from google.api_core.client_options import ClientOptions
        from google.cloud import bigquery

        project = settings.bigquery_project or settings.gcp_project
        if not project:
            raise ValueError("ENTAIL_AUDIT_STORE=bigquery needs ENTAIL_BIGQUERY_PROJECT or a GCP project")
        if settings.bigquery_endpoint:
            from google.auth.credentials import AnonymousCredentials

            client = bigquery.Client(
                project=project,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options=ClientOptions(api_endpoint=settings.bigquery_endpoint),
            )
        else:
            client = bigquery.Client(project=project, location=settings.bigquery_location)
        return cls(
            client,
            dataset=settings.bigquery_dataset,
            location=settings.bigquery_location,
            timeout_s=settings.bigquery_timeout_s,
        )

    def table_id(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    def ensure_tables(self) -> None:
        """Create the dataset and the tables when missing (Terraform does this in
        the cloud; local tools and tests call it). Existing tables are left as they are."""
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.project}.{self.dataset}")
        dataset.location = self.location
        self.client.create_dataset(dataset, exists_ok=True, retry=self._retry, timeout=self.timeout_s)
        for table in TABLES.values():
            self.client.create_table(
                bigquery_table(self.project, self.dataset, table),
                exists_ok=True,
                retry=self._retry,
                timeout=self.timeout_s,
            )

    # --- queries -----------------------------------------------------------------

    def _start_query(self, sql: str, config: Any) -> Any:
        # job_retry=None: otherwise the library wraps jobs.insert in a retry of its
        # own with a fixed 600 s deadline; self._retry (bounded) still retries the request
        return self.client.query(
            sql,
            job_config=config,
            location=self.location,
            retry=self._retry,
            timeout=self.timeout_s,
            job_retry=None,
        )

    def _query(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(query_parameters=[_param(k, v) for k, v in params.items()])
        job = self._start_query(sql, config)
        rows = job.result(retry=self._retry, timeout=self.timeout_s, job_retry=self._job_retry)
        return [dict(row.items()) for row in rows]

    def _dml(self, sql: str, params: Mapping[str, Any]) -> int:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(query_parameters=[_param(k, v) for k, v in params.items()])
        job = self._start_query(sql, config)
        job.result(retry=self._retry, timeout=self.timeout_s, job_retry=self._job_retry)
        return int(job.num_dml_affected_rows or 0)

    def _insert(self, table: Table, rows: list[dict[str, Any]], row_ids: list[str] | None) -> None:
        errors = self.client.insert_rows_json(
            self.table_id(table.name),
            rows,
            row_ids=row_ids if row_ids is not None else [None] * len(rows),
            retry=self._retry,
            timeout=self.timeout_s,
        )
        if errors:
            raise AuditInsertError(f"BigQuery refused rows of {table.name}: {json.dumps(errors)[:2000]}")

    def _insert_decision_rows(self, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        """Stream decision rows; the rows BigQuery will never accept, with its reason.

        BigQuery answers per row: ``invalid`` for a row it refuses (too deep, too
        big, a value it cannot take) and ``stopped`` for the valid rows of that
        request, which it did not insert either. Invalid rows are returned (the
        caller rejects them, so the message is acked, not redelivered forever);
        stopped rows are sent again (same insertIds). Any other error raises
        AuditInsertError, so the message is redelivered."""
        refused: list[tuple[dict[str, Any], str]] = []
        pending = list(rows)
        while pending:
            errors = self.client.insert_rows_json(
                self.table_id(DECISIONS_TABLE.name),
                pending,
                row_ids=[r["decision_id"] for r in pending],
                retry=self._retry,
                timeout=self.timeout_s,
            )
            if not errors:
                break
            invalid, retry_all = split_insert_errors(errors)
            if retry_all or not invalid:
                raise AuditInsertError(f"BigQuery refused rows of decisions: {json.dumps(errors)[:2000]}")
            refused.extend((pending[i], reason) for i, reason in invalid.items())
            pending = [r for i, r in enumerate(pending) if i not in invalid]
        return refused

    # --- decisions ---------------------------------------------------------------

    def insert_decisions(self, records: Iterable[DecisionRecord | dict[str, Any]]) -> InsertResult:
        now = format_timestamp(datetime.now(UTC))
        prepared = prepare_decisions(records, now)
        rejected = list(prepared.rejected)
        duplicates = prepared.duplicates
        fresh: list[dict[str, Any]] = []
        if prepared.rows:
            ids = [r["decision_id"] for r in prepared.rows]
            found = self._query(
                f"SELECT decision_id, tenant FROM `{self.table_id('decisions')}`"
                " WHERE completed_at >= @since AND decision_id IN UNNEST(@ids)",
                {"since": _id_lower_bound(ids), "ids": ids},
            )
            owners = {str(r["decision_id"]): str(r["tenant"]) for r in found}
            for row in prepared.rows:
                owner = owners.get(row["decision_id"])
                if owner is None:
                    fresh.append(row)
                elif owner == row["tenant"]:
                    duplicates += 1
                else:
                    rejected.append(Rejection(row["decision_id"], row["tenant"], ANOTHER_TENANT, row))
        if fresh:
            for row, reason in self._insert_decision_rows(fresh):
                fresh.remove(row)
                rejected.append(Rejection(row["decision_id"], row["tenant"], reason, row))
        if rejected:
            rows = [
                {
                    "rejected_at": now,
                    "decision_id": r.decision_id,
                    "tenant": r.tenant,
                    "reason": r.reason,
                    "payload": json.dumps(r.payload, default=str, ensure_ascii=False),
                }
                for r in rejected
            ]
            self._insert(REJECTED_TABLE, rows, None)
        return InsertResult(inserted=len(fresh), duplicates=duplicates, rejected=rejected)

    def get_decision(self, tenant: str, decision_id: str) -> DecisionRecord | None:
        found = self._query(
            f"SELECT * FROM `{self.table_id('decisions')}`"
            " WHERE completed_at >= @since AND decision_id = @id AND tenant = @tenant LIMIT 1",
            {"since": _id_lower_bound([decision_id]), "id": decision_id, "tenant": tenant},
        )
        return row_to_decision(_wire(DECISIONS_TABLE, found[0])) if found else None

    def _search(self, q: SearchQuery) -> SearchPage:
        where = ["tenant = @tenant", "completed_at >= @start", "completed_at < @end"]
        params: dict[str, Any] = {"tenant": q.tenant, "start": q.start, "end": q.end}
        for column, value in q.equal_filters():
            where.append(f"{column} = @{column}")
            params[column] = value
        if q.predicate is not None:
            # answers: [{"query", "answers": [{"atom": "decision(a, b)", "args": [...]}]}]
            where.append(
                "EXISTS (SELECT 1 FROM UNNEST(JSON_QUERY_ARRAY(answers)) AS q,"
                " UNNEST(JSON_QUERY_ARRAY(q, '$.answers')) AS a"
                " WHERE SPLIT(JSON_VALUE(a, '$.atom'), '(')[OFFSET(0)] = @pred_name"
                " AND ARRAY_LENGTH(IFNULL(JSON_QUERY_ARRAY(a, '$.args'), [])) = @pred_arity)"
            )
            params["pred_name"], params["pred_arity"] = q.predicate
        if q.after is not None:
            where.append(
                "(completed_at < @after_at OR (completed_at = @after_at AND decision_id < @after_id))"
            )
            params["after_at"], params["after_id"] = q.after
        params["limit"] = q.page_size + 1
        found = self._query(
            f"SELECT * FROM `{self.table_id('decisions')}` WHERE {' AND '.join(where)}"
            " ORDER BY completed_at DESC, decision_id DESC LIMIT @limit",
            params,
        )
        more = len(found) > q.page_size
        found = found[: q.page_size]
        items = [row_to_decision(_wire(DECISIONS_TABLE, r)) for r in found]
        token = None
        if more:
            token = q.next_token(found[-1]["completed_at"], str(found[-1]["decision_id"]))
        return SearchPage(items=items, next_page_token=token)

    def rejected(self, limit: int = 100, *, days: int = 7) -> list[Rejection]:
        """The most recent rejected rows of the last ``days`` (operator view; not part of the port)."""
        found = self._query(
            f"SELECT decision_id, tenant, reason, payload FROM `{self.table_id('rejected')}`"
            " WHERE rejected_at >= @since ORDER BY rejected_at DESC LIMIT @limit",
            {"since": datetime.now(UTC) - timedelta(days=days), "limit": limit},
        )
        # the client decodes JSON columns itself: decoding again would turn a
        # payload that was a JSON string into whatever that string spells
        return [Rejection(r["decision_id"], r["tenant"], r["reason"], r["payload"]) for r in found]

    def expire(self, now: datetime | str) -> int:
        """Partition expiration already drops whole days older than 2557 days; this
        deletes the rows of the boundary day too, so the cut is exact, as locally.
        Rows under a legal hold in force are not deleted here (as locally); the
        daily trail job has copied them to ``held_decisions`` before their
        partition expires (bigquery_trail.keep_held)."""
        from .bigquery_trail import held_sql

        cutoff = parse_timestamp(now) - timedelta(days=RETENTION_DAYS)
        return self._dml(
            f"DELETE FROM `{self.table_id('decisions')}` d WHERE completed_at < @cutoff"
            f" AND NOT {held_sql(self)}",
            {"cutoff": cutoff},
        )

    # --- trail (bigquery_trail.py: roots, provenance, canary, holds) ----------------

    def query(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A parameterised read query's rows (the trail modules' SQL)."""
        return self._query(sql, params)

    def dml(self, sql: str, params: Mapping[str, Any]) -> int:
        """A parameterised DML statement; the rows it affected."""
        return self._dml(sql, params)

    def write_rows(
        self, table_name: str, rows: list[dict[str, Any]], row_ids: list[str] | None = None
    ) -> None:
        """Stream wire-form rows of a schema.py table (checked first), in requests of
        at most 5,000 rows; ``row_ids`` become insertIds."""
        t = TABLES[table_name]
        for row in rows:
            check_row(t, row)
        for i in range(0, len(rows), 5000):
            chunk = rows[i : i + 5000]
            self._insert(t, chunk, row_ids[i : i + 5000] if row_ids is not None else None)

    # --- rulesets ----------------------------------------------------------------

    def put_ruleset(self, record: RulesetRecord) -> bool:
        if self.get_ruleset(record.tenant, record.name, record.version) is not None:
            return False
        row = ruleset_to_row(record)
        self._insert(RULESETS_TABLE, [row], [f"{record.tenant}/{record.name}/{record.version}"])
        return True

    def get_ruleset(self, tenant: str, name: str, version: int) -> RulesetRecord | None:
        found = self._query(
            f"SELECT * FROM `{self.table_id('rulesets')}`"
            " WHERE tenant = @tenant AND name = @name AND version = @version LIMIT 1",
            {"tenant": tenant, "name": name, "version": version},
        )
        return row_to_ruleset(_wire(RULESETS_TABLE, found[0])) if found else None

    # --- batch runs ---------------------------------------------------------------

    def put_batch_run(self, row: dict[str, Any]) -> bool:
        """Record one batch run (a ``batch_runs`` wire row); idempotent on ``batch_run_id``
        (asked first, then streamed with it as insertId). The partition filter comes from
        the row's own ``started_at`` less a day of clock skew."""
        check_row(BATCH_RUNS_TABLE, row)
        found = self._query(
            f"SELECT 1 AS one FROM `{self.table_id('batch_runs')}`"
            " WHERE completed_at >= @since AND batch_run_id = @id LIMIT 1",
            {"since": parse_timestamp(row["started_at"]) - CLOCK_SKEW, "id": row["batch_run_id"]},
        )
        if found:
            return False
        self._insert(BATCH_RUNS_TABLE, [row], [row["batch_run_id"]])
        return True

    # --- decision reports -----------------------------------------------------------

    def put_decision_report(self, row: dict[str, Any]) -> bool:
        """Record a generated report's hash (report.py); idempotent on (decision_id,
        report_sha256): asked first, then streamed with that pair as insertId (which
        also dedups two racing requests within BigQuery's insertId window)."""
        check_row(DECISION_REPORTS_TABLE, row)
        found = self._query(
            f"SELECT 1 AS one FROM `{self.table_id('decision_reports')}`"
            " WHERE tenant = @tenant AND decision_id = @id AND report_sha256 = @sha LIMIT 1",
            {"tenant": row["tenant"], "id": row["decision_id"], "sha": row["report_sha256"]},
        )
        if found:
            return False
        self._insert(DECISION_REPORTS_TABLE, [row], [f"{row['decision_id']}/{row['report_sha256']}"])
        return True

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]


def split_insert_errors(errors: Iterable[Mapping[str, Any]]) -> tuple[dict[int, str], bool]:
    """From insertAll's per-row errors: the rows BigQuery marks ``invalid`` (index →
    its message), and whether any error other than ``invalid``/``stopped`` means
    the request as a whole should be retried."""
    invalid: dict[int, str] = {}
    retry_all = False
    for entry in errors:
        reasons = entry.get("errors") or []
        bad = [e for e in reasons if e.get("reason") == "invalid"]
        if bad:
            where = bad[0].get("location")
            message = bad[0].get("message") or "invalid row"
            invalid[int(entry.get("index", -1))] = f"BigQuery refused the row: {message}" + (
                f" (at {where})" if where else ""
            )
        elif any(e.get("reason") != "stopped" for e in reasons):
            retry_all = True
    return invalid, retry_all


def _param(name: str, value: Any) -> Any:
    from google.cloud import bigquery

    if isinstance(value, list):
        return bigquery.ArrayQueryParameter(name, "STRING", value)
    if isinstance(value, bool):
        return bigquery.ScalarQueryParameter(name, "BOOL", value)
    if isinstance(value, int):
        return bigquery.ScalarQueryParameter(name, "INT64", value)
    if isinstance(value, datetime):
        return bigquery.ScalarQueryParameter(name, "TIMESTAMP", value)
    return bigquery.ScalarQueryParameter(name, "STRING", value)


def _wire(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """A BigQuery result row in the portable wire form of schema.py (timestamps as
    ``…Z`` strings; JSON columns are decoded values, which row_to_* accept)."""
    out: dict[str, Any] = {}
    for c in table.columns:
        value = row.get(c.name)
        if c.type == "TIMESTAMP" and isinstance(value, datetime):
            value = format_timestamp(value)
        out[c.name] = value
    return out
