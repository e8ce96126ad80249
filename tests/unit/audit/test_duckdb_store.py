"""The DuckDB audit store against real DuckDB files: schema, idempotency, rejection,
tenant isolation, search filters, keyset pagination, retention, rulesets."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from support.records import T0
from support.records import audited as record

from entail.audit import (
    DECISIONS_TABLE,
    RETENTION_DAYS,
    RULESETS_TABLE,
    TABLES,
    AuditStore,
    DuckDBAuditStore,
    RulesetRecord,
    bigquery_schema_json,
    decision_to_row,
    row_to_decision,
)
from entail.audit.duckdb_store import DUCKDB_TYPES, STEADY_WRITER_LINGER_MS
from entail.audit.schema import format_timestamp
from entail.models import DecisionError, DecisionRecord, RulesetRef, RulesetVersion

TESTS = Path(__file__).resolve().parents[2]  # tests/, where the shared support lives
DAY_START = "2026-11-01T00:00:00.000Z"
DAY_END = "2026-12-31T00:00:00.000Z"


def ts(dt: datetime) -> str:
    return format_timestamp(dt)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBAuditStore]:
    s = DuckDBAuditStore(tmp_path / "audit.duckdb")
    yield s
    s.close()


def ids(items: list[DecisionRecord]) -> list[str]:
    return [r.decision_id for r in items]


# --- schema ----------------------------------------------------------------------


def test_tables_created_from_schema(tmp_path: Path) -> None:
    path = tmp_path / "a.duckdb"
    DuckDBAuditStore(path).close()
    DuckDBAuditStore(path).close()  # reopening an existing file is fine
    conn = duckdb.connect(str(path))
    try:
        for table in TABLES.values():
            cols = conn.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position",
                [table.name],
            ).fetchall()
            assert [c[0] for c in cols] == table.column_names
            for (_, data_type, nullable), col in zip(cols, table.columns, strict=True):
                expected = DUCKDB_TYPES[col.type].replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")
                assert data_type == expected, col.name
                assert (nullable == "NO") == col.required, col.name
        indexes = [r[0] for r in conn.execute("SELECT index_name FROM duckdb_indexes()").fetchall()]
        assert "decisions_tenant_completed" in indexes
    finally:
        conn.close()


def test_bigquery_schema_json_matches_duckdb_columns(store: DuckDBAuditStore) -> None:
    for name in ("decisions", "rulesets", "rejected"):
        bq = bigquery_schema_json(name)
        duck = [r[0] for r in store._conn.execute(f"DESCRIBE {name}").fetchall()]
        assert [c["name"] for c in bq] == duck
        assert all(set(c) == {"name", "type", "mode", "description"} for c in bq)
        assert all(c["type"] in {"STRING", "INT64", "BOOL", "TIMESTAMP", "JSON"} for c in bq)
        assert all(c["mode"] in {"REQUIRED", "NULLABLE"} and c["description"] for c in bq)
    completed = next(c for c in bigquery_schema_json("decisions") if c["name"] == "completed_at")
    assert completed == {**completed, "type": "TIMESTAMP", "mode": "REQUIRED"}
    with pytest.raises(KeyError, match="unknown audit table"):
        bigquery_schema_json("nope")


def test_table_options() -> None:
    d = DECISIONS_TABLE
    assert (d.partition_type, d.partition_field) == ("DAY", "completed_at")
    assert d.partition_expiration_days == RETENTION_DAYS == 2557
    assert d.require_partition_filter is True
    assert d.clustering == ("tenant", "ruleset_name", "ruleset_version", "rule_ids")
    assert RULESETS_TABLE.partition_expiration_days is None
    assert RULESETS_TABLE.clustering == ("tenant", "name")
    assert RULESETS_TABLE.primary_key == ("tenant", "name", "version")


def test_store_satisfies_port(store: DuckDBAuditStore) -> None:
    assert isinstance(store, AuditStore)


def test_row_round_trip() -> None:
    r = record(1, status="failed", error=DecisionError(code="E_LIMIT", message="too big"), atoms=[])
    row = decision_to_row(r, inserted_at="2026-11-28T10:00:05.000Z")
    assert list(row) == DECISIONS_TABLE.column_names
    assert row["ruleset_name"] == "loan" and row["query"] == '["decision(A, D)"]'
    assert row_to_decision(row) == r


# --- insert ----------------------------------------------------------------------


def test_insert_and_get_round_trip(store: DuckDBAuditStore) -> None:
    r = record(1, explain=True, cached=True)
    result = store.insert_decisions([r])
    assert (result.inserted, result.duplicates, result.rejected) == (1, 0, [])
    got = store.get_decision("acme", r.decision_id)
    assert got == r
    assert got is not None and got.completed_at == "2026-11-28T10:00:01.000Z"


def test_insert_is_idempotent(store: DuckDBAuditStore) -> None:
    r = record(1)
    assert store.insert_decisions([r]).inserted == 1
    again = store.insert_decisions([r, r, record(2)])
    assert (again.inserted, again.duplicates) == (1, 2)
    count = store._conn.execute("SELECT count(*) FROM decisions WHERE decision_id = ?", [r.decision_id])
    assert count.fetchone() == (1,)


def test_rejected_rows_are_recorded_with_reason(store: DuckDBAuditStore) -> None:
    running = record(2, status="running")
    no_completed = record(3).model_copy(update={"completed_at": None})
    garbage = {"decision_id": "dec_bad", "tenant": "acme", "status": "succeeded"}
    bad_ts = record(4).model_copy(update={"completed_at": "yesterday"})
    result = store.insert_decisions([record(1), running, no_completed, garbage, bad_ts])
    assert result.inserted == 1
    reasons = {r.decision_id: r.reason for r in result.rejected}
    assert "not final" in reasons["dec_000002"]
    assert "completed_at is missing" in reasons["dec_000003"]
    assert reasons["dec_bad"].startswith("not a valid decision record") and "ruleset" in reasons["dec_bad"]
    assert "invalid timestamp 'yesterday'" in reasons["dec_000004"]
    stored = {r.decision_id: r for r in store.rejected()}
    assert set(stored) == {"dec_000002", "dec_000003", "dec_bad", "dec_000004"}
    assert stored["dec_bad"].payload == garbage
    assert stored["dec_000002"].payload["status"] == "running"
    assert stored["dec_000002"].tenant == "acme"
    assert store.get_decision("acme", "dec_000002") is None


def test_same_id_from_another_tenant_is_rejected(store: DuckDBAuditStore) -> None:
    store.insert_decisions([record(1, tenant="acme")])
    result = store.insert_decisions([record(1, tenant="evil")])
    assert result.inserted == 0 and result.duplicates == 0
    assert result.rejected[0].reason == "decision_id already recorded for another tenant"
    assert store.get_decision("evil", "dec_000001") is None


def test_concurrent_inserts_from_threads(store: DuckDBAuditStore) -> None:
    batch = [record(i) for i in range(40)]
    results: list[int] = []

    def work() -> None:
        results.append(store.insert_decisions(batch).inserted)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 40
    assert store._conn.execute("SELECT count(*) FROM decisions").fetchone() == (40,)


# --- reads -----------------------------------------------------------------------


def test_tenant_isolation(store: DuckDBAuditStore) -> None:
    store.insert_decisions([record(1, tenant="acme"), record(2, tenant="globex")])
    assert store.get_decision("globex", "dec_000001") is None
    assert store.get_decision("acme", "dec_000001") is not None
    page = store.search_decisions("acme", DAY_START, DAY_END)
    assert ids(page.items) == ["dec_000001"]
    assert ids(store.search_decisions("globex", DAY_START, DAY_END).items) == ["dec_000002"]
    assert store.search_decisions("initech", DAY_START, DAY_END).items == []


def test_search_filters(store: DuckDBAuditStore) -> None:
    store.insert_decisions(
        [
            record(1, ruleset="loan", version=1),
            record(2, ruleset="loan", version=2),
            record(3, ruleset="loan", version=2, status="failed", atoms=[]),
            record(4, ruleset="kyc", version=1),
        ]
    )

    def search(**kw: Any) -> list[str]:
        return ids(store.search_decisions("acme", DAY_START, DAY_END, **kw).items)

    assert search() == ["dec_000004", "dec_000003", "dec_000002", "dec_000001"]
    assert search(ruleset_name="loan") == ["dec_000003", "dec_000002", "dec_000001"]
    assert search(ruleset_name="loan", ruleset_version=2) == ["dec_000003", "dec_000002"]
    assert search(ruleset_version=1) == ["dec_000004", "dec_000001"]
    assert search(status="failed") == ["dec_000003"]
    assert search(status="succeeded", ruleset_name="kyc") == ["dec_000004"]
    assert search(ruleset_name="nope") == []


def test_search_time_range_is_half_open(store: DuckDBAuditStore) -> None:
    store.insert_decisions([record(i) for i in range(1, 6)])  # completed T0+1s … T0+5s
    page = store.search_decisions("acme", T0 + timedelta(seconds=2), ts(T0 + timedelta(seconds=4)))
    assert ids(page.items) == ["dec_000003", "dec_000002"]
    with pytest.raises(ValueError, match="empty time range"):
        store.search_decisions("acme", DAY_END, DAY_START)
    with pytest.raises(ValueError, match="no time zone"):
        store.search_decisions("acme", datetime(2026, 1, 1), DAY_END)
    with pytest.raises(ValueError, match="page_size"):
        store.search_decisions("acme", DAY_START, DAY_END, page_size=0)


def test_search_by_predicate(store: DuckDBAuditStore) -> None:
    store.insert_decisions(
        [
            record(1, atoms=[("decision", ["alice", "approve"])]),
            record(2, atoms=[("decision", ["bob"])]),
            record(3, atoms=[("risk", ["carol", "high"]), ("decision", ["carol", "deny"])]),
            record(4, atoms=[("flagged", [])]),
            record(5, status="failed", atoms=[]),
            record(6).model_copy(update={"answers": None}),
            record(7, atoms=[("decisions", ["x", "y"])]),
        ]
    )

    def search(p: str) -> list[str]:
        return ids(store.search_decisions("acme", DAY_START, DAY_END, predicate=p).items)

    assert search("decision/2") == ["dec_000003", "dec_000001"]
    assert search("decision/1") == ["dec_000002"]
    assert search("risk/2") == ["dec_000003"]
    assert search("flagged/0") == ["dec_000004"]
    assert search("missing/1") == []
    with pytest.raises(ValueError, match="name/arity"):
        search("decision")


def test_pagination_with_equal_timestamps(store: DuckDBAuditStore) -> None:
    # 120 rows in 40 distinct timestamps: keyset ties are broken by decision_id
    rows = [record(i, completed=T0 + timedelta(seconds=i // 3)) for i in range(120)]
    store.insert_decisions(rows)
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        page = store.search_decisions("acme", DAY_START, DAY_END, page_size=50, page_token=token)
        pages.append(ids(page.items))
        token = page.next_page_token
        if token is None:
            break
    assert [len(p) for p in pages] == [50, 50, 20]
    flat = [i for p in pages for i in p]
    assert len(set(flat)) == 120
    assert flat == sorted(flat, reverse=True)  # newest first == highest id here, no gaps


def test_pagination_is_stable_while_rows_arrive(store: DuckDBAuditStore) -> None:
    store.insert_decisions([record(i) for i in range(10, 20)])
    first = store.search_decisions("acme", DAY_START, DAY_END, page_size=4)
    store.insert_decisions([record(i) for i in range(20, 25)])  # newer rows: must not shift pages
    second = store.search_decisions("acme", DAY_START, DAY_END, page_size=4, page_token=first.next_page_token)
    assert ids(first.items) == ["dec_000019", "dec_000018", "dec_000017", "dec_000016"]
    assert ids(second.items) == ["dec_000015", "dec_000014", "dec_000013", "dec_000012"]


def test_exact_page_boundary_has_no_next_token(store: DuckDBAuditStore) -> None:
    store.insert_decisions([record(i) for i in range(4)])
    page = store.search_decisions("acme", DAY_START, DAY_END, page_size=4)
    assert len(page.items) == 4 and page.next_page_token is None


@pytest.mark.parametrize("token", ["not-base64!!", "e30", "eyJjIjogMX0", ""])
def test_invalid_page_token(store: DuckDBAuditStore, token: str) -> None:
    with pytest.raises(ValueError, match="invalid page token"):
        store.search_decisions("acme", DAY_START, DAY_END, page_token=token)


def test_page_token_bound_to_its_search(store: DuckDBAuditStore) -> None:
    store.insert_decisions([record(i) for i in range(5)])
    token = store.search_decisions("acme", DAY_START, DAY_END, page_size=2).next_page_token
    assert token is not None
    with pytest.raises(ValueError, match="different tenant, time range or filters"):
        store.search_decisions("globex", DAY_START, DAY_END, page_size=2, page_token=token)
    with pytest.raises(ValueError, match="different tenant, time range or filters"):
        store.search_decisions("acme", DAY_START, DAY_END, status="failed", page_token=token)


# --- retention -------------------------------------------------------------------


def test_expire(store: DuckDBAuditStore) -> None:
    now = T0
    old = record(1, completed=now - timedelta(days=2558))
    young = record(2, completed=now - timedelta(days=2556))
    recent = record(3, completed=now - timedelta(hours=1))
    store.insert_decisions([old, young, recent])
    store.put_ruleset(ruleset(1, published_at=ts(now - timedelta(days=4000))))
    assert store.expire(ts(now)) == 1
    assert store.get_decision("acme", old.decision_id) is None
    assert store.get_decision("acme", young.decision_id) is not None
    assert store.get_decision("acme", recent.decision_id) is not None
    assert store.get_ruleset("acme", "loan", 1) is not None  # rulesets never expire
    assert store.expire(now) == 0


# --- rulesets --------------------------------------------------------------------


def ruleset(version: int, *, tenant: str = "acme", source: str = "a. b :- a.", **kw: Any) -> RulesetRecord:
    v = RulesetVersion(
        tenant=tenant,
        name="loan",
        version=version,
        hash=f"{version:064d}",
        description="loans",
        tests=[{"name": "t1", "facts": {}, "expect": ["b"]}],
        published_at=kw.pop("published_at", "2026-11-28T09:00:00.000Z"),
        published_by="key_1",
    )
    return RulesetRecord.from_version(v, source)


def test_rulesets_put_get_idempotent(store: DuckDBAuditStore) -> None:
    r1 = ruleset(1)
    assert store.put_ruleset(r1) is True
    assert store.put_ruleset(r1) is False
    assert store.put_ruleset(ruleset(2)) is True
    assert store.get_ruleset("acme", "loan", 1) == r1
    assert store.get_ruleset("acme", "loan", 3) is None
    assert store.get_ruleset("globex", "loan", 1) is None  # tenant-isolated
    assert store._conn.execute("SELECT count(*) FROM rulesets").fetchone() == (2,)
    changed = r1.model_copy(update={"hash": "f" * 64})
    with pytest.raises(ValueError, match="versions are immutable"):
        store.put_ruleset(changed)


def test_memory_store_and_ref_fields() -> None:
    with DuckDBAuditStore(":memory:") as s:
        r = record(9, version=7)
        s.insert_decisions([r.model_dump(mode="json", by_alias=True)])  # a topic payload
        got = s.get_decision("acme", r.decision_id)
        assert got is not None
        assert got.ruleset == RulesetRef(tenant="acme", name="loan", version=7, hash="h" * 64)


_WRITER = """
import sys
from datetime import timedelta
sys.path.insert(0, {tests!r})
sys.path.insert(0, {root!r})  # the shared test support
from test_duckdb_store import record
from entail.audit import DuckDBAuditStore
store = DuckDBAuditStore({path!r}, shared=True)
for n in range({start}, {start} + 60):
    assert store.insert_decisions([record(n)]).inserted == 1
"""


def test_shared_mode_lets_two_processes_use_one_file(tmp_path: Path) -> None:
    """Locally the audit sink writes while the backend reads and writes rulesets."""
    path = tmp_path / "audit.duckdb"
    mine = DuckDBAuditStore(path, shared=True)
    script = _WRITER.format(tests=str(Path(__file__).parent), root=str(TESTS), path=str(path), start=1000)
    other = subprocess.Popen([sys.executable, "-c", script])
    for n in range(60):
        assert mine.insert_decisions([record(n)]).inserted == 1
        mine.get_decision("acme", f"dec_{n:06d}")
    assert other.wait(timeout=60) == 0
    page = mine.search_decisions("acme", T0 - timedelta(days=1), T0 + timedelta(days=1), page_size=1000)
    assert len(page.items) == 120
    mine.close()


def test_a_file_from_before_a_new_column_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    DuckDBAuditStore(path).close()
    with duckdb.connect(str(path)) as conn:
        conn.execute("DROP INDEX decisions_tenant_completed")  # an index pins the columns
        conn.execute('ALTER TABLE decisions DROP COLUMN "cached_from"')
    reopened = DuckDBAuditStore(path)
    hit = record(1, cached=True, cached_from="dec_000000")
    reopened.insert_decisions([hit])
    got = reopened.get_decision("acme", hit.decision_id)
    assert got is not None and got.cached_from == "dec_000000"
    reopened.close()


_READER = """
import sys, time
sys.path.insert(0, {tests!r})
sys.path.insert(0, {root!r})  # the shared test support
from test_duckdb_store import T0
from datetime import timedelta
from entail.audit import DuckDBAuditStore
waits = []
for _ in range(5):
    t = time.monotonic()
    store = DuckDBAuditStore({path!r}, shared=True)
    store.search_decisions("acme", T0 - timedelta(days=1), T0 + timedelta(days=1))
    store.close()
    waits.append(time.monotonic() - t)
    time.sleep(0.05)
print(max(waits))
"""


def test_a_lingering_writer_lets_another_process_in(tmp_path: Path) -> None:
    """The sink keeps the file open while it writes, yet the backend's reads get in
    within a hold (``max_hold_ms``) and every row is written once."""
    path = tmp_path / "audit.duckdb"
    writer = DuckDBAuditStore(path, shared=True, linger_ms=200, max_hold_ms=300)
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        n = 0
        while not stop.is_set():
            assert writer.insert_decisions([record(n)]).inserted == 1
            written.append(n)
            n += 1

    thread = threading.Thread(target=write)
    thread.start()
    script = _READER.format(tests=str(Path(__file__).parent), root=str(TESTS), path=str(path))
    reader = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    stop.set()
    thread.join(10)
    assert reader.returncode == 0, reader.stderr
    # A deadline, not a timing: without the hold the writer keeps the file for as long as it
    # writes (the whole test); with it the reader gets in after one hold (0.3 s) plus its own
    # open, which a loaded 2-core machine has stretched to a few seconds.
    assert float(reader.stdout) < 15.0
    page = writer.search_decisions("acme", T0 - timedelta(days=1), T0 + timedelta(days=10), page_size=1000)
    assert sorted(int(r.decision_id[4:]) for r in page.items) == written
    writer.close()


def test_a_lingering_writer_lets_go_when_idle(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    writer = DuckDBAuditStore(path, shared=True, linger_ms=2000, max_hold_ms=60_000)
    writer.insert_decisions([record(1)])
    opener = [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}).close()"]
    held = subprocess.run(opener, capture_output=True, text=True)
    assert held.returncode != 0 and "lock" in held.stderr.lower()  # still open, in use
    time.sleep(3.5)  # released within 1.25 x linger_ms
    subprocess.run(opener, check=True)  # idle past linger_ms: released
    writer.close()


def test_the_audit_sinks_store_keeps_the_file_open_between_batches(tmp_path: Path) -> None:
    """The sink's store (the composition root's steady writer) keeps the file open
    across the gaps between its batches (the relay's read window spaces them 100
    to 250 ms apart): with a 200 ms linger it was closed and reopened between
    them, some 25 ms of CPU each time. It still lets go once idle."""
    from entail.bootstrap import open_audit_store
    from entail.settings import Settings

    store = open_audit_store(Settings(data_dir=tmp_path), steady_writer=True)
    assert isinstance(store, DuckDBAuditStore)
    for n in range(3):
        store.insert_decisions([record(n)])
        held = store._held
        assert held is not None
        time.sleep(0.3)  # a gap between two batches
        assert store._held is held, "the file was closed between two batches"
    time.sleep(STEADY_WRITER_LINGER_MS / 1000 * 1.5)
    assert store._held is None  # idle: released
    store.close()


def test_two_stores_in_one_process_racing_on_an_id_store_it_once(tmp_path: Path) -> None:
    """The insert has no ON CONFLICT clause (the duplicate check runs in its
    transaction); two stores of one process on one file (DuckDB shares the
    database between them) racing to insert the same decisions still store each
    once, and neither caller sees an error."""
    path = tmp_path / "audit.duckdb"
    first, second = DuckDBAuditStore(path), DuckDBAuditStore(path)
    batch = [record(i) for i in range(30)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def insert(store: DuckDBAuditStore) -> None:
        barrier.wait()
        try:
            for start in range(0, 30, 3):
                store.insert_decisions(batch[start : start + 3])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    page = first.search_decisions("acme", DAY_START, DAY_END, page_size=1000)
    assert sorted(ids(page.items)) == sorted(r.decision_id for r in batch)
    second.close()
    first.close()


def test_a_batch_with_empty_and_mixed_columns_round_trips(store: DuckDBAuditStore) -> None:
    """Decisions go in as one list per column: a column that is null in every row
    (no errors, no cache hits) and rows that differ in which columns are set
    come back as they went in."""
    failed = record(2).model_copy(
        update={
            "status": "failed",
            "answers": None,
            "result_hash": None,
            "error": DecisionError(code="x", message="boom"),
        }
    )
    cached = record(3, cached=True, cached_from="dec_000001")
    for batch in ([record(0), record(1)], [failed, cached]):
        assert store.insert_decisions(batch).inserted == len(batch)
        for r in batch:
            assert store.get_decision("acme", r.decision_id) == r


def test_a_writer_holding_the_file_long_lets_a_waiting_process_in_at_once(tmp_path: Path) -> None:
    """A steady writer keeps the file open for as long as ``max_hold_ms`` (here a
    minute): a store in another process that finds it locked asks for it (the
    ``.wanted`` marker) and gets in within a check, not after the hold."""
    path = tmp_path / "audit.duckdb"
    writer = DuckDBAuditStore(path, shared=True, linger_ms=60_000, max_hold_ms=60_000)
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        n = 0
        while not stop.is_set():
            assert writer.insert_decisions([record(n)]).inserted == 1
            written.append(n)
            n += 1
            time.sleep(0.01)

    thread = threading.Thread(target=write)
    thread.start()
    script = _READER.format(tests=str(Path(__file__).parent), root=str(TESTS), path=str(path))
    reader = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    stop.set()
    thread.join(10)
    assert reader.returncode == 0, reader.stderr  # before the marker: a lock error after 10 s
    assert float(reader.stdout) < 5.0
    page = writer.search_decisions("acme", T0 - timedelta(days=1), T0 + timedelta(days=10), page_size=1000)
    assert sorted(int(r.decision_id[4:]) for r in page.items) == written
    writer.close()
