"""A dataset version's rows in BigQuery: the SQL batch path's tables.

One table per (tenant, dataset, predicate, arity), named and laid out by
:mod:`entail.reasoning.sql.dataset_tables` (``version`` INT64, then the Parquet
file's columns), created on first use. A version is appended by one load job of
its Parquet file with the ``version`` column added (DuckDB, on disk: never whole
in memory). A load appends all of its file or nothing, so a version with rows is
loaded and is not loaded again; the job's id is derived from the table, the
version and its hash, so a load retried while the first still runs is refused by
BigQuery (409: that job exists) and the first one's outcome is awaited instead.

Blocking (google-cloud-bigquery): the store calls it in a thread. The dataset is
Terraform's (datasets.tf); :meth:`DatasetTables.ensure_dataset` creates it only
where nobody else does (emulators, tests).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..reasoning.sql.dataset_tables import bigquery_columns, bigquery_table_name
from .ingest import sql_path
from .port import DatasetError, DatasetVersion

if TYPE_CHECKING:
    from google.cloud import bigquery


def _unavailable(what: str, detail: object) -> DatasetError:
    return DatasetError("dataset-storage-unavailable", f"BigQuery: {what}: {detail}", status=503)


class DatasetTables:
    """Load and remove versions of the per-predicate tables of one BigQuery dataset."""

    def __init__(
        self, client: bigquery.Client, dataset: str, *, timeout_s: float = 300.0, retries: bool = True
    ) -> None:
        from google.api_core.retry import Retry

        self.client = client
        self.project = client.project
        self.dataset = dataset
        self.timeout_s = timeout_s
        # retries=False: a failure surfaces at once (tests on the emulator)
        self.retry: Any = Retry(timeout=timeout_s) if retries else None

    def table_id(self, version: DatasetVersion, predicate: str, arity: int) -> str:
        name = bigquery_table_name(version.tenant, version.name, predicate, arity)
        return f"{self.project}.{self.dataset}.{name}"

    def ensure_dataset(self, location: str | None = None) -> None:
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.project}.{self.dataset}")
        if location:
            dataset.location = location
        self.client.create_dataset(dataset, exists_ok=True, retry=self.retry, timeout=self.timeout_s)

    def _ensure_table(self, table_id: str, arity: int) -> None:
        from google.cloud import bigquery

        schema = [
            bigquery.SchemaField(column, kind, mode="REQUIRED" if column in {"version", "u"} else "NULLABLE")
            for column, kind in bigquery_columns(arity)
        ]
        table = bigquery.Table(table_id, schema=schema)
        table.description = "Entail dataset facts: one row per fact and version (docs/datasets.md, Storage)"
        # a query of one version (the batch path's, the load's check) reads its blocks only
        table.clustering_fields = ["version"]
        self.client.create_table(table, exists_ok=True, retry=self.retry, timeout=self.timeout_s)

    def load(self, version: DatasetVersion, directory: Path) -> None:
        """Append every predicate of ``version`` (files ``directory/<predicate>.parquet``)
        to its table, once."""
        for stats in version.predicates:
            if stats.rows == 0:
                # no rows to load, but the batch path reads the table all the same
                self._ensure(self.table_id(version, stats.name, stats.arity), stats.arity)
                continue
            self._load_one(version, stats.name, stats.arity, directory / f"{stats.name}.parquet")

    def _ensure(self, table_id: str, arity: int) -> None:
        from google.api_core.exceptions import GoogleAPIError

        try:
            self._ensure_table(table_id, arity)
        except GoogleAPIError as e:
            raise _unavailable(f"creating {table_id}", e) from e

    def _load_one(self, version: DatasetVersion, predicate: str, arity: int, source: Path) -> None:
        from google.api_core.exceptions import Conflict, GoogleAPIError
        from google.cloud import bigquery

        table_id = self.table_id(version, predicate, arity)
        key = f"{table_id}\n{version.version}\n{version.hash}".encode()
        job_id = "entail_dataset_load_" + hashlib.sha256(key).hexdigest()[:40]
        columns = ", ".join(name for name, _ in bigquery_columns(arity)[1:])
        try:
            self._ensure_table(table_id, arity)
            if self._count(table_id, version.version):
                return  # loaded before: a load job appends all of its file or nothing
            with tempfile.TemporaryDirectory(prefix="entail-bq-load-", dir=source.parent) as work:
                staged = Path(work) / "rows.parquet"
                con = duckdb.connect()
                try:
                    con.execute(
                        f"COPY (SELECT CAST({int(version.version)} AS BIGINT) AS version, {columns} "
                        f"FROM read_parquet('{sql_path(source)}')) "
                        f"TO '{sql_path(staged)}' (FORMAT parquet, COMPRESSION zstd)"
                    )
                finally:
                    con.close()
                config = bigquery.LoadJobConfig(
                    source_format=bigquery.SourceFormat.PARQUET,
                    write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                )
                job: Any
                try:
                    with staged.open("rb") as body:
                        job = self.client.load_table_from_file(
                            body, table_id, job_id=job_id, job_config=config, timeout=self.timeout_s
                        )
                except Conflict:
                    # a load of this very version ran before (a retried upload):
                    # its rows are in, or its failure is reported below
                    job = self.client.get_job(job_id, retry=self.retry, timeout=self.timeout_s)
                job.result(retry=self.retry, timeout=self.timeout_s)
        except GoogleAPIError as e:
            raise _unavailable(f"loading {version.ref} {predicate}/{arity} into {table_id}", e) from e

    def remove(self, version: DatasetVersion) -> None:
        """Delete the rows of ``version`` (a load whose version was then not committed)."""
        from google.api_core.exceptions import GoogleAPIError, NotFound
        from google.cloud import bigquery

        for stats in version.predicates:
            table_id = self.table_id(version, stats.name, stats.arity)
            config = bigquery.QueryJobConfig(
                query_parameters=[bigquery.ScalarQueryParameter("version", "INT64", version.version)]
            )
            try:
                self.client.query(
                    f"DELETE FROM `{table_id}` WHERE version = @version", job_config=config
                ).result(retry=self.retry, timeout=self.timeout_s)
            except NotFound:
                continue
            except GoogleAPIError as e:
                raise _unavailable(f"removing {version.ref} from {table_id}", e) from e

    def count(self, version: DatasetVersion, predicate: str, arity: int) -> int:
        """Rows of ``predicate`` in ``version``'s table."""
        return self._count(self.table_id(version, predicate, arity), version.version)

    def _count(self, table_id: str, version: int) -> int:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("version", "INT64", version)]
        )
        rows = list(
            self.client.query(
                f"SELECT COUNT(*) AS n FROM `{table_id}` WHERE version = @version", job_config=config
            ).result(retry=self.retry, timeout=self.timeout_s)
        )
        return int(rows[0]["n"])
