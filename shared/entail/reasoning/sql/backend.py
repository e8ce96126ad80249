"""Where the SQL runs: a small port with a DuckDB and a BigQuery adapter.

The driver (:mod:`.run`) only executes statements, reads small results and
names tables through this port; everything dialect-specific in the SQL text
comes from :mod:`.dialect`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from .dialect import DUCKDB, Dialect


class Backend(ABC):
    dialect: Dialect
    bytes_scanned: int = 0
    recursive_cte: bool = False  # run linear recursion as one WITH RECURSIVE ... UNION

    @abstractmethod
    def execute(self, sql: str) -> None:
        """Run one statement."""

    @abstractmethod
    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query and return its (small) result."""

    @abstractmethod
    def work_table(self, name: str) -> str:
        """Qualified name of a working table (created and dropped by the run)."""

    @abstractmethod
    def dest_table(self, name: str) -> str:
        """Qualified name of an output table."""

    @abstractmethod
    def describe(self, select: str) -> list[tuple[str, str]]:
        """Column names and types of a query's result, without running it."""

    def rename(self, table: str, new_table: str) -> None:
        """Rename a working table (both names qualified, same namespace)."""
        bare = new_table.rsplit(".", 1)[-1]
        self.execute(f"ALTER TABLE {table} RENAME TO {bare}")

    def prepare(self) -> None:  # noqa: B027 (optional hook)
        """Create the working and destination namespaces if needed."""

    def snapshot_time(self, table: str) -> str | None:
        """When an input table last changed (ISO 8601), where the warehouse knows."""
        return None

    def estimate_bytes(self, sql: str) -> int | None:
        """Bytes a query would scan (a dry run), where the warehouse can tell."""
        return None

    def table_exists(self, table: str) -> bool:
        """Whether a (quoted, qualified) table exists; the dataset path asks before it reads
        a predicate's table, which the cloud store creates only for a predicate with rows."""
        return True

    def input_table(self, table: str) -> str:
        """How SQL names an input table given in the mapping (BigQuery quotes and qualifies it)."""
        return table

    def job_stats(self) -> dict[str, Any] | None:
        """What the warehouse's jobs cost so far (BigQuery), for the manifest."""
        return None


class DuckDBBackend(Backend):
    """Runs on a DuckDB connection: working tables in one schema, outputs in another."""

    dialect = DUCKDB

    def __init__(
        self,
        connection: Any,
        *,
        work_schema: str = "entail_work",
        dest_schema: str = "main",
        work_in_memory: bool = True,
        recursive_cte: bool = True,
    ) -> None:
        for schema in (work_schema, dest_schema):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", schema):
                raise ValueError(f"not a schema name: {schema!r}")
        self.con = connection
        self.work_schema = work_schema
        self.dest_schema = dest_schema
        # each round's small statements would write a file database's WAL: the working
        # tables live in an attached in-memory catalog (which DuckDB spills to its temp
        # directory under memory pressure); only the outputs go to the file
        self.work_in_memory = work_in_memory
        self.recursive_cte = recursive_cte
        self.statements = 0

    def prepare(self) -> None:
        q = self.dialect.quote_ident
        if self.work_in_memory:
            self.con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {q(self.work_schema)}")
        else:
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(self.work_schema)}")
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(self.dest_schema)}")

    def execute(self, sql: str) -> None:
        self.statements += 1
        self.con.execute(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        self.statements += 1
        result: list[tuple[Any, ...]] = self.con.execute(sql).fetchall()
        return result

    def work_table(self, name: str) -> str:
        q = self.dialect.quote_ident
        if self.work_in_memory:
            return f"{q(self.work_schema)}.main.{q(name)}"
        return f"{q(self.work_schema)}.{q(name)}"

    def dest_table(self, name: str) -> str:
        return f"{self.dialect.quote_ident(self.dest_schema)}.{self.dialect.quote_ident(name)}"

    def describe(self, select: str) -> list[tuple[str, str]]:
        rel = self.con.execute(f"SELECT * FROM ({select}) AS src LIMIT 0")
        return [(d[0], str(d[1])) for d in rel.description]
