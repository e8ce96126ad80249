"""The SQL path on BigQuery: every compiled statement is a query job.

Working tables live in one dataset (created with a default table expiration, so
the tables of a run that died are removed by BigQuery itself), named with a
per-run prefix so concurrent runs can share it; outputs go to the destination
dataset. Before any work the driver asks for a dry-run estimate of every input
query (:meth:`BigQueryBackend.estimate_bytes`) and refuses above the cap; after
each statement the bytes the job processed are added up, and every job carries
``maximum_bytes_billed`` so BigQuery itself refuses a single job above the cap.

Job statistics (bytes processed and billed, slot milliseconds, DML rows) are
collected per job and summed in :meth:`BigQueryBackend.job_stats`.

A dry run may report 0 or no bytes (the emulator does; so does BigQuery for a
query answered from metadata or the cache): the estimate is then ``0`` / ``None``
and only the running total and ``maximum_bytes_billed`` guard the cap.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .backend import Backend
from .dialect import BIGQUERY
from .errors import BatchInputError

if TYPE_CHECKING:
    from google.cloud import bigquery

_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}\Z")
_PROJECT = re.compile(r"[a-z][a-z0-9\-.:]{2,62}\Z")
#: working tables expire on their own after a day (a run that died leaves nothing for long)
WORK_TABLE_EXPIRATION_MS = 86_400_000


@dataclass
class JobStats:
    """What the query jobs of one run cost, summed (``None`` where BigQuery said nothing)."""

    jobs: int = 0
    dry_runs: int = 0
    bytes_processed: int = 0
    bytes_billed: int = 0
    slot_ms: int | None = None
    dml_rows: int = 0
    estimated_bytes: int | None = None  # the inputs' estimate, before any work
    estimate_method: str = "dry-run"  # or "logical-size" (a dry run said 0 bytes)
    job_ids: list[str] = field(default_factory=list)  # the first MAX_JOB_IDS

    MAX_JOB_IDS = 20

    def to_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "dry_runs": self.dry_runs,
            "bytes_processed": self.bytes_processed,
            "bytes_billed": self.bytes_billed,
            "slot_ms": self.slot_ms,
            "dml_rows": self.dml_rows,
            "estimated_bytes": self.estimated_bytes,
            "estimate_method": self.estimate_method,
            "job_ids": list(self.job_ids),
        }


class BigQueryBackend(Backend):
    """Runs the compiled statements as BigQuery query jobs.

    ``work_dataset`` holds the run's working tables (prefix ``run_<id>_``),
    ``dest_dataset`` the outputs (one table per output predicate, replaced).
    ``max_bytes_billed`` is set on every job (BigQuery refuses a job above it).
    ``retry`` is passed to every API call (``None`` in tests: errors surface at once).
    """

    dialect = BIGQUERY
    recursive_cte = False  # BigQuery's recursive CTEs allow only UNION ALL: driven rounds

    def __init__(
        self,
        client: bigquery.Client,
        *,
        work_dataset: str,
        dest_dataset: str,
        location: str = "US",
        max_bytes_billed: int | None = None,
        retry: Any = "default",
        run_id: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        from google.cloud.bigquery import DEFAULT_RETRY

        for what, name in (("work_dataset", work_dataset), ("dest_dataset", dest_dataset)):
            if not _DATASET.match(name):
                raise BatchInputError(f"{what}: {name!r} is not a BigQuery dataset name (letters, digits, _)")
        self.client = client
        self.project = str(client.project)
        self.work_dataset = work_dataset
        self.dest_dataset = dest_dataset
        self.location = location
        self.max_bytes_billed = max_bytes_billed
        self.retry = DEFAULT_RETRY if retry == "default" else retry
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.labels = dict(labels or {})
        self.stats = JobStats()
        self.bytes_scanned = 0

    # naming ---------------------------------------------------------------------------
    def _qualified(self, dataset: str, table: str) -> str:
        return self.dialect.quote_ident(f"{self.project}.{dataset}.{table}")

    def work_table(self, name: str) -> str:
        return self._qualified(self.work_dataset, f"run_{self.run_id}_{name}")

    def dest_table(self, name: str) -> str:
        return self._qualified(self.dest_dataset, name)

    def input_table(self, table: str) -> str:
        """``dataset.table`` or ``project.dataset.table`` (backticks optional) → a quoted reference."""
        bare = table.replace("`", "")
        parts = bare.split(".")
        if len(parts) == 2:
            parts.insert(0, self.project)
        if len(parts) != 3 or not _PROJECT.match(parts[0]) or not all(_DATASET.match(p) for p in parts[1:]):
            raise BatchInputError(
                f"{table!r} is not a BigQuery table name (dataset.table or project.dataset.table)"
            )
        return self.dialect.quote_ident(".".join(parts))

    def rename(self, table: str, new_table: str) -> None:
        bare = new_table.strip("`").rsplit(".", 1)[-1]
        self.execute(f"ALTER TABLE {table} RENAME TO {self.dialect.quote_ident(bare)}")

    # jobs -----------------------------------------------------------------------------
    def _config(self, *, dry_run: bool = False) -> bigquery.QueryJobConfig:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(dry_run=dry_run, use_query_cache=False, labels=self.labels)
        if self.max_bytes_billed is not None and not dry_run:
            config.maximum_bytes_billed = self.max_bytes_billed
        return config

    def _run(self, sql: str) -> bigquery.QueryJob:
        job = self.client.query(sql, job_config=self._config(), location=self.location, retry=self.retry)
        result = job.result(retry=self.retry)
        self._account(job)
        job._entail_result = result  # type: ignore[attr-defined]
        return job

    def _account(self, job: bigquery.QueryJob) -> None:
        s = self.stats
        s.jobs += 1
        if len(s.job_ids) < JobStats.MAX_JOB_IDS and job.job_id:
            s.job_ids.append(str(job.job_id))
        processed = int(job.total_bytes_processed or 0)
        s.bytes_processed += processed
        s.bytes_billed += int(job.total_bytes_billed or 0)
        if job.slot_millis is not None:
            s.slot_ms = (s.slot_ms or 0) + int(job.slot_millis)
        s.dml_rows += int(job.num_dml_affected_rows or 0)
        self.bytes_scanned = s.bytes_processed

    def execute(self, sql: str) -> None:
        self._run(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        job = self._run(sql)
        return [tuple(row.values()) for row in job._entail_result]  # type: ignore[attr-defined]

    def estimate_bytes(self, sql: str) -> int | None:
        """The dry run's ``total_bytes_processed``. When it says 0 (or nothing), the
        input's logical size by BigQuery's data sizes (INT64 8 bytes, STRING 2 + its
        UTF-8 bytes) from one query: on BigQuery a 0-byte dry run of an input means
        it is empty, so that query reads nothing; bqemulator answers 0 for every dry
        run, and this keeps the byte cap meaningful there."""
        job = self.client.query(
            sql, job_config=self._config(dry_run=True), location=self.location, retry=self.retry
        )
        self.stats.dry_runs += 1
        estimate = int(job.total_bytes_processed or 0)
        if estimate == 0:
            estimate = self._logical_bytes(sql)
            self.stats.estimate_method = "logical-size"
        self.stats.estimated_bytes = (self.stats.estimated_bytes or 0) + estimate
        return estimate

    def _logical_bytes(self, sql: str) -> int:
        sizes = []
        for name, type_name in self.describe(sql):
            col = f"s.{self.dialect.quote_ident(name)}"
            size = f"2 + BYTE_LENGTH({col})" if self.dialect.is_text_type(type_name) else "8"
            sizes.append(f"IFNULL(SUM(CASE WHEN {col} IS NULL THEN 0 ELSE {size} END), 0)")
        if not sizes:
            return 0
        (row,) = self.rows(f"SELECT {' + '.join(sizes)} AS n FROM ({sql}) AS s")
        return int(row[0] or 0)

    def describe(self, select: str) -> list[tuple[str, str]]:
        """The result schema from a dry run (no bytes); where the dry run carries no
        schema (bqemulator), from a ``LIMIT 0`` query."""
        dry = self.client.query(
            select, job_config=self._config(dry_run=True), location=self.location, retry=self.retry
        )
        self.stats.dry_runs += 1
        schema = dry.schema
        if not schema:
            job = self._run(f"SELECT * FROM ({select}) AS src LIMIT 0")
            schema = job._entail_result.schema  # type: ignore[attr-defined]
        return [(f.name, str(f.field_type)) for f in schema]

    # datasets and tables --------------------------------------------------------------
    def prepare(self) -> None:
        from google.cloud import bigquery

        for name, expiration in ((self.work_dataset, WORK_TABLE_EXPIRATION_MS), (self.dest_dataset, None)):
            dataset = bigquery.Dataset(f"{self.project}.{name}")
            dataset.location = self.location
            if expiration is not None:
                dataset.default_table_expiration_ms = expiration
            self.client.create_dataset(dataset, exists_ok=True, retry=self.retry)

    def table_exists(self, table: str) -> bool:
        from google.api_core.exceptions import NotFound

        try:
            self.client.get_table(table.replace("`", ""), retry=self.retry)
        except NotFound:
            return False
        return True

    def snapshot_time(self, table: str) -> str | None:
        """The table's last modification time (``modified``) — the state the run read."""
        ref = self.input_table(table).strip("`")
        modified = self.client.get_table(ref, retry=self.retry).modified
        return modified.isoformat() if modified is not None else None

    def job_stats(self) -> dict[str, Any]:
        return self.stats.to_json()
