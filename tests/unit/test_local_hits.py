"""LocalHits: a backend's short memory of the records it served cache hits from.
It must never outlive the cache entry or the record it stands for, and stays
bounded in bytes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from entail.models import DecisionRecord, RulesetRef
from entail.state.cache import LOCAL_HIT_MAX_RECORD_BYTES, LocalHits


def succeeded(decision_id: str = "dec_1", completed_at: float | None = None) -> DecisionRecord:
    stamp = datetime.fromtimestamp(time.time() if completed_at is None else completed_at, UTC)
    text = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return DecisionRecord(
        decision_id=decision_id,
        tenant="acme",
        ruleset=RulesetRef(tenant="acme", name="loan", version=1, hash="h"),
        request_hash="r",
        status="succeeded",
        answers=[],
        submitted_at=text,
        completed_at=text,
    )


def put(hits: LocalHits, record: DecisionRecord, request: str = "r", size: int = 100, **kw: float) -> None:
    args = {"keep_s": 5.0, "cache_ttl_s": 3600.0, "record_ttl_s": 3600.0, **kw}
    hits.put("acme", "h", request, record, size, **args)


class Clock:
    """time.monotonic, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(time, "monotonic", c)  # what entail.state.cache reads
    return c


def test_a_hit_is_remembered_for_keep_s_then_forgotten(clock: Clock) -> None:
    hits = LocalHits()
    record = succeeded()
    put(hits, record)
    assert hits.get("acme", "h", "r") is record
    # the key is the whole cache key: another tenant, ruleset or request is a miss
    assert hits.get("beta", "h", "r") is None
    assert hits.get("acme", "h2", "r") is None
    assert hits.get("acme", "h", "r2") is None
    clock.now += 4.9
    assert hits.get("acme", "h", "r") is record
    clock.now += 0.2
    assert hits.get("acme", "h", "r") is None
    assert len(hits) == 0


def test_never_past_the_cache_entry_or_the_record(clock: Clock) -> None:
    hits = LocalHits()
    # completed 3598 s ago with a one-hour cache entry: 2 s are left, not keep_s's 5
    put(hits, succeeded(completed_at=time.time() - 3598))
    clock.now += 2.5
    assert hits.get("acme", "h", "r") is None
    # the record's shorter lifetime bounds it the same way
    put(hits, succeeded(completed_at=time.time() - 59), record_ttl_s=60.0)
    clock.now += 1.5
    assert hits.get("acme", "h", "r") is None
    # already expired in Redis: not remembered at all
    put(hits, succeeded(completed_at=time.time() - 7200))
    assert hits.get("acme", "h", "r") is None


def test_off_big_records_and_records_without_completion_are_not_remembered(clock: Clock) -> None:
    hits = LocalHits()
    put(hits, succeeded(), keep_s=0.0)
    put(hits, succeeded(), request="big", size=LOCAL_HIT_MAX_RECORD_BYTES + 1)
    put(hits, succeeded().model_copy(update={"completed_at": None}), request="open")
    assert len(hits) == 0


def test_bounded_in_bytes_least_recently_used_out(clock: Clock) -> None:
    hits = LocalHits(max_bytes=300)
    for name in ("a", "b", "c"):
        put(hits, succeeded(name), request=name)
    assert hits.get("acme", "h", "a") is not None  # a is now the most recently used
    put(hits, succeeded("d"), request="d")  # 400 bytes: b goes
    assert [hits.get("acme", "h", n) is not None for n in "abcd"] == [True, False, True, True]
    # replacing an entry does not count it twice
    put(hits, succeeded("d2"), request="d")
    assert len(hits) == 3
    replaced = hits.get("acme", "h", "d")
    assert replaced is not None and replaced.decision_id == "d2"
