"""Group commit in front of a real DuckDB store: batching, per-caller outcomes, failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_duckdb_store import DAY_END, DAY_START, record

from entail.audit import DuckDBAuditStore
from entail.audit.group_commit import GroupCommitter, Outcome
from entail.audit.port import InsertResult
from entail.models import DecisionRecord


class GatedStore(DuckDBAuditStore):
    """The real store, whose first write waits until ``release`` is set, so the
    test decides what queues up behind it; ``fail_on`` ids make a write raise."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls: list[int] = []
        self.fail_on: set[str] = set()

    def insert_decisions(self, records: Iterable[DecisionRecord | dict[str, Any]]) -> InsertResult:
        items = list(records)
        self.calls.append(len(items))
        self.entered.set()
        assert self.release.wait(10)
        ids = {i.decision_id if isinstance(i, DecisionRecord) else i.get("decision_id") for i in items}
        if ids & self.fail_on:
            raise OSError(f"disk trouble writing {sorted(ids & self.fail_on)}")
        return super().insert_decisions(items)


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[GatedStore]:
    s = GatedStore(tmp_path / "audit.duckdb")
    yield s
    s.close()


def run_all(
    committer: GroupCommitter, store: GatedStore, payloads: list[Any]
) -> list[Outcome | BaseException]:
    """The first payload enters the store and is held there until every other
    caller has queued; then all are released. Outcomes in payload order."""
    results: list[Outcome | BaseException | None] = [None] * len(payloads)

    def call(i: int) -> None:
        try:
            results[i] = committer.insert(payloads[i])
        except BaseException as exc:
            results[i] = exc

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert store.entered.wait(10)
    rest = [threading.Thread(target=call, args=(i,)) for i in range(1, len(payloads))]
    for t in rest:
        t.start()
    deadline = time.monotonic() + 10
    while committer.queued < len(rest) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert committer.queued == len(rest)
    store.release.set()
    for t in [first, *rest]:
        t.join(10)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def stored_ids(store: DuckDBAuditStore, tenant: str = "acme") -> list[str]:
    page = store.search_decisions(tenant, DAY_START, DAY_END, page_size=1000)
    return sorted(r.decision_id for r in page.items)


def test_one_caller_is_one_call(tmp_path: Path) -> None:
    store = DuckDBAuditStore(tmp_path / "a.duckdb")
    committer = GroupCommitter(lambda: store)
    outcome = committer.insert(record(1))
    assert outcome == Outcome(stored=True, rejection=None, batch_size=1)
    assert stored_ids(store) == ["dec_000001"]
    assert (committer.stats.calls, committer.stats.rows) == (1, 1)


def test_callers_arriving_during_a_write_share_the_next_call(gated: GatedStore) -> None:
    committer = GroupCommitter(lambda: gated)
    outcomes = run_all(committer, gated, [record(i) for i in range(40)])
    assert gated.calls == [1, 39]
    assert all(isinstance(o, Outcome) and o.stored for o in outcomes)
    assert [o.batch_size for o in outcomes if isinstance(o, Outcome)] == [1] + [39] * 39
    assert stored_ids(gated) == [f"dec_{i:06d}" for i in range(40)]


def test_an_arrival_does_not_wake_the_callers_waiting_for_a_write(gated: GatedStore) -> None:
    """Callers queued behind a write wake when a write ends, not whenever another
    caller arrives (waking every waiting thread on each arrival made 338 wakeups here)."""
    committer = GroupCommitter(lambda: gated)
    run_all(committer, gated, [record(i) for i in range(32)])
    assert gated.calls == [1, 31]
    # each of the 31 wakes once when the first write ends (one of them to lead)
    # and the 30 others once more when their batch is written
    assert committer.stats.wakeups <= 31 + 30


def test_max_batch_bounds_each_call(gated: GatedStore) -> None:
    committer = GroupCommitter(lambda: gated, max_batch=10)
    run_all(committer, gated, [record(i) for i in range(26)])
    assert gated.calls == [1, 10, 10, 5]
    assert committer.stats.largest_batch == 10
    assert len(stored_ids(gated)) == 26


def test_a_rejected_payload_is_rejected_for_its_caller_only(gated: GatedStore) -> None:
    bad = {"decision_id": "dec_bad", "tenant": "acme", "status": "running"}
    committer = GroupCommitter(lambda: gated)
    outcomes = run_all(committer, gated, [record(0), record(1), bad, record(2)])
    assert [o.stored for o in outcomes if isinstance(o, Outcome)] == [True, True, False, True]
    rejected = outcomes[2]
    assert isinstance(rejected, Outcome) and rejected.rejection is not None
    assert rejected.rejection.decision_id == "dec_bad"
    assert stored_ids(gated) == ["dec_000000", "dec_000001", "dec_000002"]


def test_an_id_taken_by_another_tenant_is_matched_by_decision_id(gated: GatedStore) -> None:
    gated.release.set()
    gated.insert_decisions([record(5, tenant="other")])
    gated.release.clear()
    gated.entered.clear()
    committer = GroupCommitter(lambda: gated)
    outcomes = run_all(committer, gated, [record(1), record(5), record(6)])
    assert [o.stored for o in outcomes if isinstance(o, Outcome)] == [True, False, True]
    clash = outcomes[1]
    assert isinstance(clash, Outcome) and clash.rejection is not None
    assert "another tenant" in clash.rejection.reason


def test_the_same_decision_twice_in_a_batch_is_stored_once(gated: GatedStore) -> None:
    committer = GroupCommitter(lambda: gated)
    outcomes = run_all(committer, gated, [record(0), record(3), record(3).model_dump(mode="json")])
    assert all(isinstance(o, Outcome) and o.stored for o in outcomes)
    assert stored_ids(gated) == ["dec_000000", "dec_000003"]


def test_a_failing_batch_is_retried_row_by_row(gated: GatedStore) -> None:
    gated.fail_on = {"dec_000002"}
    committer = GroupCommitter(lambda: gated)
    outcomes = run_all(committer, gated, [record(0), record(1), record(2), record(3)])
    assert isinstance(outcomes[2], OSError)
    assert [isinstance(o, Outcome) and o.stored for o in outcomes] == [True, True, False, True]
    assert gated.calls == [1, 3, 1, 1, 1]  # the batch of three failed, then one call each
    assert committer.stats.fallbacks == 1
    assert stored_ids(gated) == ["dec_000000", "dec_000001", "dec_000003"]


def test_a_failed_open_fails_the_callers_and_the_next_call_tries_again(tmp_path: Path) -> None:
    opened: list[DuckDBAuditStore] = []

    def store() -> DuckDBAuditStore:
        if not opened:
            opened.append(DuckDBAuditStore(tmp_path / "late.duckdb"))
            raise OSError("audit store not reachable yet")
        return opened[0]

    committer = GroupCommitter(store)
    with pytest.raises(OSError, match="not reachable"):
        committer.insert(record(1))
    assert committer.insert(record(1)).stored
    assert stored_ids(opened[0]) == ["dec_000001"]


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommitter(lambda: DuckDBAuditStore(), max_batch=0)


def test_gathering_callers_arriving_apart_share_one_call(tmp_path: Path) -> None:
    """With ``gather_ms`` the leader waits for company: decisions arriving a few
    ms apart (as the relay's deliveries do) go in one store call, not one each."""
    store = DuckDBAuditStore(tmp_path / "a.duckdb")
    committer = GroupCommitter(lambda: store, gather_ms=2_000, gather_rows=4)
    results: list[Outcome] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(committer.insert(record(i)))) for i in range(4)
    ]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join(10)
    assert committer.stats.calls == 1 and [o.batch_size for o in results] == [4] * 4
    assert stored_ids(store) == [f"dec_{i:06d}" for i in range(4)]


def test_gathering_never_holds_a_lone_caller_past_the_deadline(tmp_path: Path) -> None:
    store = DuckDBAuditStore(tmp_path / "a.duckdb")
    store.insert_decisions([record(0)])  # the store's first write is not what is timed
    committer = GroupCommitter(lambda: store, gather_ms=150, gather_rows=8)
    started = time.monotonic()
    assert committer.insert(record(1)).stored
    waited = time.monotonic() - started
    assert 0.14 <= waited < 5.0
    assert committer.stats.calls == 1


def test_gather_rows_default_to_the_framework_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADS", "24")
    assert GroupCommitter(lambda: DuckDBAuditStore(), gather_ms=10).gather_rows == 24
    monkeypatch.setenv("THREADS", "1000")
    assert GroupCommitter(lambda: DuckDBAuditStore(), gather_ms=10, max_batch=50).gather_rows == 50
    with pytest.raises(ValueError, match="gather_ms"):
        GroupCommitter(lambda: DuckDBAuditStore(), gather_ms=-1)
