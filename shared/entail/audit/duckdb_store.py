"""The local audit store: one DuckDB file (or ``:memory:`` in tests).

Tables are created from ``schema.py`` — the same definition the BigQuery
adapter uses — mapping the logical types to DuckDB's (STRING→VARCHAR,
INT64→BIGINT, BOOL→BOOLEAN, TIMESTAMP→TIMESTAMPTZ, JSON→JSON). BigQuery has no
enforced keys; here the idempotency keys are PRIMARY KEYs, and an index on
(tenant, completed_at) stands in for partitioning + clustering.

One connection guarded by a lock: DuckDB allows a single writing process per
file, and serialising the calls keeps "check duplicates, then insert" atomic.
In shared mode (two processes taking turns) each open-to-close span also
passes ``file_gate``: DuckDB's own hand-over between processes lost rows.
The session time zone is UTC so TIMESTAMPTZ values come back as UTC datetimes,
which are returned in the ``models.utcnow()`` string form.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb

from ..models import DecisionRecord
from .file_gate import FileGate
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
    AUDIT_ROOTS_TABLE,
    BATCH_RUNS_TABLE,
    DECISION_REPORTS_TABLE,
    DECISIONS_TABLE,
    REJECTED_TABLE,
    RETENTION_DAYS,
    RULESETS_TABLE,
    TABLES,
    LogicalType,
    RulesetRecord,
    Table,
    check_row,
    format_timestamp,
    parse_timestamp,
    row_to_decision,
    row_to_ruleset,
    ruleset_to_row,
)

INSERT_CHUNK = 200
COLUMNS_CHUNK = 2_000  # rows per column-list INSERT (list parameters of this length)

#: A decisions row ``d`` covered by a legal hold in force (holds.py documents scopes).
HELD_SQL = (
    "EXISTS (SELECT 1 FROM legal_holds h WHERE h.released_at IS NULL AND h.tenant = d.tenant AND ("
    "h.scope = 'tenant'"
    " OR (h.scope = 'ruleset' AND h.ruleset_name = d.ruleset_name)"
    " OR (h.scope = 'decisions' AND list_contains("
    "CAST(json_extract_string(h.decision_ids, '$[*]') AS VARCHAR[]), d.decision_id))))"
)

DUCKDB_TYPES: dict[LogicalType, str] = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "JSON": "JSON",
}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_table_sql(table: Table) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a schema.py table, columns in schema order."""
    parts = [f"{_q(c.name)} {DUCKDB_TYPES[c.type]}{' NOT NULL' if c.required else ''}" for c in table.columns]
    if table.primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(_q(k) for k in table.primary_key)})")
    return f"CREATE TABLE IF NOT EXISTS {_q(table.name)} (\n  " + ",\n  ".join(parts) + "\n)"


def _insert_sql(table: Table, *, on_conflict_ignore: bool) -> str:
    cols = ", ".join(_q(c) for c in table.column_names)
    marks = ", ".join("?" for _ in table.columns)
    tail = " ON CONFLICT DO NOTHING" if on_conflict_ignore else ""
    return f"INSERT INTO {_q(table.name)} ({cols}) VALUES ({marks}){tail}"


def _insert_many(
    conn: duckdb.DuckDBPyConnection, table: Table, rows: list[dict[str, Any]], *, on_conflict_ignore: bool
) -> None:
    """One multi-row INSERT per chunk: DuckDB's executemany runs a statement per
    row, about a hundred times slower."""
    cols = ", ".join(_q(c) for c in table.column_names)
    one = "(" + ", ".join("?" for _ in table.columns) + ")"
    tail = " ON CONFLICT DO NOTHING" if on_conflict_ignore else ""
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        values = ", ".join(one for _ in chunk)
        params = [v for row in chunk for v in _to_native(table, row)]
        conn.execute(f"INSERT INTO {_q(table.name)} ({cols}) VALUES {values}{tail}", params)


def _columns_insert_sql(table: Table) -> str:
    """An INSERT of a whole batch from one list parameter per column (``unnest`` of
    each, zipped row by row): one statement whose cost hardly grows with the rows."""
    cols = ", ".join(_q(c) for c in table.column_names)
    values = ", ".join(f"CAST(unnest(?) AS {DUCKDB_TYPES[c.type]})" for c in table.columns)
    return f"INSERT INTO {_q(table.name)} ({cols}) SELECT {values}"


def _insert_columns(
    conn: duckdb.DuckDBPyConnection, table: Table, sql: str, rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows`` with :func:`_columns_insert_sql`'s statement, in chunks.

    DuckDB spends some 3 ms of CPU planning and running any INSERT of this
    table's 26 columns, whether it carries one row or hundreds, and its
    multi-row VALUES form binds every value on its own; so the audit sink's
    per-row cost is the Python conversion of the values and little more."""
    native = [_to_native(table, row) for row in rows]
    for start in range(0, len(native), COLUMNS_CHUNK):
        chunk = native[start : start + COLUMNS_CHUNK]
        conn.execute(sql, [[row[i] for row in chunk] for i in range(len(table.columns))])


def _to_native(table: Table, row: dict[str, Any]) -> list[Any]:
    return [
        parse_timestamp(row[c.name]) if c.type == "TIMESTAMP" and row[c.name] is not None else row[c.name]
        for c in table.columns
    ]


def _from_native(table: Table, values: Sequence[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c, v in zip(table.columns, values, strict=True):
        out[c.name] = format_timestamp(v) if c.type == "TIMESTAMP" and v is not None else v
    return out


def _add_missing_columns(
    conn: duckdb.DuckDBPyConnection, table: Table, existing: dict[str, set[str]] | None = None
) -> None:
    """A file written before a column was added to schema.py gets it (NULL in
    old rows), as BigQuery's additive schema updates do. Only optional columns
    are ever added to the schema, so old rows stay valid. ``existing``: the
    columns of every table, read once by the caller (opening stays cheap)."""
    if existing is not None:
        have = existing.get(table.name, set())
    else:
        have = {
            str(r[0])
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table.name]
            ).fetchall()
        }
    for c in table.columns:
        if c.name not in have:
            conn.execute(f"ALTER TABLE {_q(table.name)} ADD COLUMN {_q(c.name)} {DUCKDB_TYPES[c.type]}")


def ask_for_the_file(path: str | Path) -> None:
    """Tell a :class:`DuckDBAuditStore` lingering on the file ``path`` in another
    process that we wait for it (touch ``<path>.wanted``): it lets go at its next
    operation or idle check. Any process that opens the audit file while the
    sink runs should call this between its attempts."""
    wanted = str(path) + ".wanted"
    with contextlib.suppress(OSError):
        with open(wanted, "a"):
            pass
        os.utime(wanted)


CONFLICT_RETRIES = 8  # an insert racing another store of this process on the same ids
LOCK_WAIT_S = 10.0  # shared mode: how long to wait for another process's lock
RELEASE_GAP_S = 0.03  # shared mode: after a long hold, how long the file is left to others
# the audit sink's linger (bootstrap.open_audit_store, steady_writer): the relay's
# read window spaces its batches 100 to 250 ms apart, and at 200 ms the file was
# closed and reopened between batches (some 25 ms of CPU each, a tenth of the
# sink's samples); a process asking for the file still gets it within a check
STEADY_WRITER_LINGER_MS = 1_000
IDLE_CHECK_S = 0.05  # shared mode: how often a lingering holder looks for idleness and a waiting process


class DuckDBAuditStore(SearchableStore):
    """AuditStore on DuckDB. ``path`` is a file (created with its tables) or ``:memory:``."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        shared: bool = False,
        linger_ms: int = 0,
        max_hold_ms: int = 5_000,
    ) -> None:
        """``shared=True`` opens the file for each operation and retries while
        another process holds it: DuckDB allows one writing process at a time,
        and locally the audit sink and the backend both use the file.

        Opening costs about 15 ms of CPU (DuckDB builds a database instance each
        time), which a steady writer cannot pay per batch. ``linger_ms`` keeps the
        file open after an operation until it has been idle that long, but never
        longer than ``max_hold_ms`` in one go: then it is closed and left alone for
        :data:`RELEASE_GAP_S`, so another process waiting for the file gets in.

        A store of this class that finds the file locked says so: it touches
        ``<path>.wanted`` while it waits, and the holder lets go at its next
        operation or idle check (within ~50 ms) instead of at the end of its hold.
        Reopening cost the sink a third of its CPU when it let go twice a second
        whether or not anyone waited; ``max_hold_ms`` now bounds only the wait of
        a process that does not ask (a DuckDB shell). An open and the close's
        checkpoint cost some 25 ms of CPU together, so a 5 s hold costs a steady
        writer 5 ms a second (a 1 s hold, 0.2 to 0.4 ms a decision at the local
        stack's rates)."""
        self.path = str(path)
        self.shared = shared and self.path != ":memory:"
        self.linger_s = linger_ms / 1000 if self.shared else 0.0
        self.max_hold_s = max_hold_ms / 1000
        self._lock = threading.Lock()
        self._held: duckdb.DuckDBPyConnection | None = None  # lingering shared connection
        self._held_since = 0.0
        self._held_since_ns = 0  # wall clock, compared with the wanted marker's mtime
        self._wanted = self.path + ".wanted"
        self._last_used = 0.0
        self._released_at = 0.0
        self._closer: threading.Thread | None = None
        # taken before each open and given back after the close (file_gate: DuckDB's
        # own hand-over between processes lost committed rows)
        self._gate = FileGate(self.path) if self.shared else None
        self._conn: duckdb.DuckDBPyConnection | None = None if self.shared else self._open()
        with self._session() as conn:
            existing: dict[str, set[str]] = {}
            for name, column in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
            ).fetchall():
                existing.setdefault(str(name), set()).add(str(column))
            for t in TABLES.values():
                if t.name not in existing:
                    conn.execute(create_table_sql(t))
                else:
                    _add_missing_columns(conn, t, existing)
            conn.execute(
                "CREATE INDEX IF NOT EXISTS decisions_tenant_completed ON decisions (tenant, completed_at)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS leaves_decision ON audit_leaves (tenant, decision_id)")
        self._decision_cols = ", ".join(_q(c) for c in DECISIONS_TABLE.column_names)
        self._ruleset_cols = ", ".join(_q(c) for c in RULESETS_TABLE.column_names)
        self._decisions_insert = _columns_insert_sql(DECISIONS_TABLE)

    def _open(self) -> duckdb.DuckDBPyConnection:
        conn = duckdb.connect(self.path)
        conn.execute("SET TimeZone = 'UTC'")
        return conn

    @contextmanager
    def _session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            if self._conn is not None:
                yield self._conn
                return
            if not self.shared:
                raise RuntimeError("the audit store is closed")
            if self._held is not None and (
                time.monotonic() - self._held_since >= self.max_hold_s or self._someone_waits()
            ):
                self._release()
            conn = self._held
            if conn is None:
                gap = RELEASE_GAP_S - (time.monotonic() - self._released_at)
                if gap > 0:  # just let go after a long hold: give a waiting process its turn
                    time.sleep(gap)
                conn = self._open_waiting()
            try:
                yield conn
            finally:
                if self.linger_s > 0:
                    if self._held is None:
                        self._held, self._held_since = conn, time.monotonic()
                        self._held_since_ns = time.time_ns()
                    self._last_used = time.monotonic()
                    self._start_closer()
                else:
                    self._close_shared(conn)

    def _open_waiting(self) -> duckdb.DuckDBPyConnection:
        """Pass the gate, then open: waits up to :data:`LOCK_WAIT_S` in all for
        another process of ours (the gate) and for one that opened the file
        without it (DuckDB's own lock, a DuckDB shell)."""
        assert self._gate is not None
        deadline = time.monotonic() + LOCK_WAIT_S
        self._gate.acquire(LOCK_WAIT_S, self._ask_for_the_file)
        try:
            while True:
                try:
                    return self._open()
                except duckdb.IOException as exc:  # a process outside the gate holds the file
                    if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)
        except BaseException:
            self._gate.release()
            raise

    def _close_shared(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Close a shared-mode connection, and only then let the next process in."""
        try:
            conn.close()
        finally:
            assert self._gate is not None
            self._gate.release()

    def _ask_for_the_file(self) -> None:
        ask_for_the_file(self.path)

    def _someone_waits(self) -> bool:
        """Another process asked for the file since we took hold of it."""
        try:
            return os.stat(self._wanted).st_mtime_ns >= self._held_since_ns
        except OSError:
            return False

    def _release(self) -> None:
        """Close the lingering connection (the caller holds ``_lock``)."""
        if self._held is not None:
            held, self._held = self._held, None
            self._close_shared(held)
            self._released_at = time.monotonic()

    def _start_closer(self) -> None:
        if self._closer is None or not self._closer.is_alive():
            self._closer = threading.Thread(target=self._close_when_idle, name="audit-closer", daemon=True)
            self._closer.start()

    def _close_when_idle(self) -> None:
        """Close the lingering connection once idle for ``linger_s`` or held for
        ``max_hold_s``; ends when nothing is held."""
        while True:
            # however long the linger, a process asking for the file gets it within a check
            time.sleep(min(self.linger_s / 4, self.max_hold_s / 4, IDLE_CHECK_S))
            with self._lock:
                if self._held is None:
                    return
                now = time.monotonic()
                if (
                    now - self._last_used >= self.linger_s
                    or now - self._held_since >= self.max_hold_s
                    or self._someone_waits()
                ):
                    self._release()
                    return

    # --- decisions ---------------------------------------------------------------

    def insert_decisions(self, records: Iterable[DecisionRecord | dict[str, Any]]) -> InsertResult:
        now = format_timestamp(datetime.now(UTC))
        prepared = prepare_decisions(records, now)
        with self._session() as conn:
            if prepared.rows and not prepared.rejected and len(prepared.rows) <= COLUMNS_CHUNK:
                try:
                    # the usual batch, all new: one statement, its own transaction;
                    # the check for stored ids (a statement of its own, with BEGIN
                    # and COMMIT, about a fifth of the sink's cost per batch) only
                    # when the primary key refuses one of them: a redelivery
                    _insert_columns(conn, DECISIONS_TABLE, self._decisions_insert, prepared.rows)
                    return InsertResult(inserted=len(prepared.rows), duplicates=prepared.duplicates)
                except (duckdb.ConstraintException, duckdb.TransactionException):
                    pass  # nothing was written (the statement was its own transaction): check
            for attempt in range(CONFLICT_RETRIES + 1):
                try:
                    return self._insert_prepared(
                        conn, prepared.rows, list(prepared.rejected), prepared.duplicates, now
                    )
                except (duckdb.ConstraintException, duckdb.TransactionException):
                    # another connection of this process (a second store on the
                    # file) is inserting one of these ids: once it commits, the
                    # check, run again, counts the id as stored
                    if attempt == CONFLICT_RETRIES:
                        raise
                    time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def _insert_prepared(
        self,
        conn: duckdb.DuckDBPyConnection,
        rows: list[dict[str, Any]],
        rejected: list[Rejection],
        duplicates: int,
        now: str,
    ) -> InsertResult:
        """Check for stored ids and insert the rest, in one transaction: the check
        and the insert see the same state, so no ``ON CONFLICT`` clause is needed
        (it tripled the cost of a small batch)."""
        conn.begin()
        try:
            existing: dict[str, str] = {}
            if rows:
                marks = ", ".join("?" for _ in rows)
                found = conn.execute(
                    f"SELECT decision_id, tenant FROM decisions WHERE decision_id IN ({marks})",
                    [r["decision_id"] for r in rows],
                ).fetchall()
                existing = {str(d): str(t) for d, t in found}
            fresh: list[dict[str, Any]] = []
            for row in rows:
                owner = existing.get(row["decision_id"])
                if owner is None:
                    fresh.append(row)
                elif owner == row["tenant"]:
                    duplicates += 1
                else:
                    rejected.append(Rejection(row["decision_id"], row["tenant"], ANOTHER_TENANT, row))
            if fresh:
                _insert_columns(conn, DECISIONS_TABLE, self._decisions_insert, fresh)
            if rejected:
                conn.executemany(
                    _insert_sql(REJECTED_TABLE, on_conflict_ignore=False),
                    [
                        _to_native(
                            REJECTED_TABLE,
                            {
                                "rejected_at": now,
                                "decision_id": r.decision_id,
                                "tenant": r.tenant,
                                "reason": r.reason,
                                "payload": json.dumps(r.payload, default=str, ensure_ascii=False),
                            },
                        )
                        for r in rejected
                    ],
                )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return InsertResult(inserted=len(fresh), duplicates=duplicates, rejected=rejected)

    def get_decision(self, tenant: str, decision_id: str) -> DecisionRecord | None:
        with self._session() as conn:
            found = conn.execute(
                f"SELECT {self._decision_cols} FROM decisions WHERE decision_id = ? AND tenant = ?",
                [decision_id, tenant],
            ).fetchone()
        return row_to_decision(_from_native(DECISIONS_TABLE, found)) if found is not None else None

    def _search(self, q: SearchQuery) -> SearchPage:
        where = ["tenant = ?", "completed_at >= ?", "completed_at < ?"]
        params: list[Any] = [q.tenant, q.start, q.end]
        for column, value in q.equal_filters():
            where.append(f"{column} = ?")
            params.append(value)
        if q.predicate is not None:
            # answers: [{"query", "answers": [{"atom": "decision(a, b)", "args": [...]}]}]
            where.append(
                "EXISTS (SELECT 1 FROM unnest(json_extract(answers, '$[*].answers[*]')) AS u(a)"
                " WHERE split_part(a ->> '$.atom', '(', 1) = ?"
                " AND coalesce(json_array_length(a -> '$.args'), 0) = ?)"
            )
            params.extend(q.predicate)
        if q.after is not None:
            where.append("(completed_at < ? OR (completed_at = ? AND decision_id < ?))")
            params.extend([q.after[0], q.after[0], q.after[1]])
        sql = (
            f"SELECT {self._decision_cols} FROM decisions WHERE {' AND '.join(where)}"
            " ORDER BY completed_at DESC, decision_id DESC LIMIT ?"
        )
        params.append(q.page_size + 1)
        with self._session() as conn:
            found = conn.execute(sql, params).fetchall()
        more = len(found) > q.page_size
        found = found[: q.page_size]
        items = [row_to_decision(_from_native(DECISIONS_TABLE, r)) for r in found]
        token = None
        if more:
            last = found[-1]
            names = DECISIONS_TABLE.column_names
            token = q.next_token(last[names.index("completed_at")], last[names.index("decision_id")])
        return SearchPage(items=items, next_page_token=token)

    def rejected(self, limit: int = 100) -> list[Rejection]:
        """The most recent rejected rows (operator view; not part of the port)."""
        with self._session() as conn:
            found = conn.execute(
                "SELECT decision_id, tenant, reason, payload FROM rejected ORDER BY rejected_at DESC LIMIT ?",
                [limit],
            ).fetchall()
        return [Rejection(d, t, r, json.loads(p)) for d, t, r, p in found]

    def expire(self, now: datetime | str) -> int:
        """Rows under a legal hold in force (``legal_holds``, holds.py) are kept."""
        cutoff = parse_timestamp(now) - timedelta(days=RETENTION_DAYS)
        with self._session() as conn:
            deleted = conn.execute(
                f"DELETE FROM decisions d WHERE completed_at < ? AND NOT ({HELD_SQL})", [cutoff]
            ).fetchone()
        return int(deleted[0]) if deleted else 0

    # --- trail: roots, holds, canary (roots.py, holds.py, canary.py) ----------------

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query; rows as tuples (TIMESTAMPTZ as UTC datetimes)."""
        with self._session() as conn:
            return conn.execute(sql, list(params)).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._session() as conn:
            conn.execute(sql, list(params))

    def write_rows(self, table_name: str, rows: list[dict[str, Any]]) -> None:
        """Insert wire-form rows of a schema.py table in one transaction; a row whose
        key is already stored is an error (roots and leaves are written once)."""
        t = TABLES[table_name]
        for row in rows:
            check_row(t, row)
        with self._session() as conn:
            conn.begin()
            try:
                _insert_many(conn, t, rows, on_conflict_ignore=False)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def write_root(self, root: dict[str, Any], decision_ids: list[str], leaf_hashes: list[str]) -> None:
        """A signed root and its leaves, in one transaction (roots.py). The leaves go
        in as two list parameters unnested by DuckDB: a million leaves in one
        statement instead of thousands of multi-row INSERTs."""
        check_row(AUDIT_ROOTS_TABLE, root)
        with self._session() as conn:
            conn.begin()
            try:
                _insert_many(conn, AUDIT_ROOTS_TABLE, [root], on_conflict_ignore=False)
                if decision_ids:
                    conn.execute(
                        "INSERT INTO audit_leaves SELECT ?, ?, ?, unnest(range(?)), "
                        "unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                        [
                            root["tenant"],
                            root["day"],
                            root["seq"],
                            len(decision_ids),
                            decision_ids,
                            leaf_hashes,
                        ],
                    )
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def copy_to_parquet(self, sql: str, params: Sequence[Any], path: Path) -> int:
        """``COPY (sql) TO path (FORMAT parquet)``; the number of rows written."""
        target = str(path).replace("'", "''")
        with self._session() as conn:
            conn.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)", list(params))
            found = conn.execute(f"SELECT count(*) FROM read_parquet('{target}')").fetchone()
        return int(found[0]) if found else 0

    # --- rulesets ------------------------------------------------------------------

    def put_ruleset(self, record: RulesetRecord) -> bool:
        """Idempotent on (tenant, name, version). A version is immutable: the same key
        with a different hash is a ValueError, never an overwrite."""
        row = ruleset_to_row(record)
        with self._session() as conn:
            found = conn.execute(
                "SELECT hash FROM rulesets WHERE tenant = ? AND name = ? AND version = ?",
                [record.tenant, record.name, record.version],
            ).fetchone()
            if found is not None:
                if found[0] != record.hash:
                    raise ValueError(
                        f"ruleset {record.name}@{record.version} of tenant {record.tenant} is already "
                        f"recorded with hash {found[0]}, not {record.hash}: versions are immutable"
                    )
                return False
            conn.execute(
                _insert_sql(RULESETS_TABLE, on_conflict_ignore=True), _to_native(RULESETS_TABLE, row)
            )
        return True

    def get_ruleset(self, tenant: str, name: str, version: int) -> RulesetRecord | None:
        with self._session() as conn:
            found = conn.execute(
                f"SELECT {self._ruleset_cols} FROM rulesets WHERE tenant = ? AND name = ? AND version = ?",
                [tenant, name, version],
            ).fetchone()
        return row_to_ruleset(_from_native(RULESETS_TABLE, found)) if found is not None else None

    # --- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._release()

    def __enter__(self) -> DuckDBAuditStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- batch runs ------------------------------------------------------------------

    def put_batch_run(self, row: dict[str, Any]) -> bool:
        """Record one batch run (a ``batch_runs`` wire row, docs/batch.md); idempotent on
        ``batch_run_id``: True when stored, False when that run was already recorded."""
        check_row(BATCH_RUNS_TABLE, row)
        with self._session() as conn:
            found = conn.execute(
                "SELECT 1 FROM batch_runs WHERE batch_run_id = ?", [row["batch_run_id"]]
            ).fetchone()
            if found is not None:
                return False
            conn.execute(
                _insert_sql(BATCH_RUNS_TABLE, on_conflict_ignore=True), _to_native(BATCH_RUNS_TABLE, row)
            )
        return True

    # --- decision reports --------------------------------------------------------------

    def put_decision_report(self, row: dict[str, Any]) -> bool:
        """Record a generated report's hash (a ``decision_reports`` wire row, report.py);
        idempotent on (decision_id, report_sha256): True when stored, False when it was."""
        check_row(DECISION_REPORTS_TABLE, row)
        with self._session() as conn:
            found = conn.execute(
                "INSERT INTO decision_reports SELECT ?, ?, ?, ?, ? ON CONFLICT DO NOTHING RETURNING 1",
                _to_native(DECISION_REPORTS_TABLE, row),
            ).fetchall()
        return bool(found)
