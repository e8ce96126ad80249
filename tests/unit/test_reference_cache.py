"""The worker's byte-bounded, single-flight LRU of materialised reference models."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from entail.reference_cache import ReferenceCache, reference_key


@dataclass(frozen=True)
class Blob:
    name: str
    nbytes: int


def test_key_ignores_the_order_datasets_are_listed_in() -> None:
    a = reference_key("r", [("org", "h1"), ("rates", "h2")])
    b = reference_key("r", [("rates", "h2"), ("org", "h1")])
    assert a == b
    assert a != reference_key("r", [("org", "h1"), ("rates", "h3")])  # a new version: a new entry


def test_a_hit_does_not_load_again() -> None:
    cache: ReferenceCache[Blob] = ReferenceCache(100)
    loads: list[str] = []

    def load() -> Blob:
        loads.append("a")
        return Blob("a", 10)

    first = cache.get_or_load("a", load)
    assert cache.get_or_load("a", load) is first
    assert loads == ["a"]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.loads, stats.bytes) == (1, 1, 1, 10)


def test_evicts_least_recently_used_until_the_bytes_fit() -> None:
    cache: ReferenceCache[Blob] = ReferenceCache(100)
    cache.get_or_load("a", lambda: Blob("a", 40))
    cache.get_or_load("b", lambda: Blob("b", 40))
    cache.get_or_load("a", lambda: Blob("a!", 40))  # a used again: b is now the oldest
    cache.get_or_load("c", lambda: Blob("c", 40))  # 120 > 100: one must go
    assert "a" in cache and "c" in cache and "b" not in cache
    stats = cache.stats()
    assert stats.bytes == 80 and stats.evictions == 1 and stats.entries == 2
    # a big one evicts as many as it takes
    cache.get_or_load("d", lambda: Blob("d", 95))
    assert [k for k in "abcd" if k in cache] == ["d"]
    assert cache.stats().bytes == 95


@dataclass
class Growing:
    """A model whose proofs are computed after it was cached."""

    nbytes: int


def test_a_value_that_grows_is_charged_again_on_its_next_hit() -> None:
    cache: ReferenceCache[Growing] = ReferenceCache(100)
    cache.get_or_load("a", lambda: Growing(30))
    grows = cache.get_or_load("b", lambda: Growing(30))
    assert cache.stats().bytes == 60
    grows.nbytes = 90  # its first explained decision kept the proofs
    assert cache.get_or_load("b", lambda: Growing(1)) is grows
    # 30 + 90 > 100: the least recently used other entry goes; the grown one is in use
    assert "a" not in cache and "b" in cache
    stats = cache.stats()
    assert stats.bytes == 90 and stats.evictions == 1


def test_a_value_larger_than_the_budget_is_answered_not_kept() -> None:
    cache: ReferenceCache[Blob] = ReferenceCache(100)
    cache.get_or_load("a", lambda: Blob("a", 50))
    huge = cache.get_or_load("huge", lambda: Blob("huge", 101))
    assert huge.name == "huge"
    assert "huge" not in cache and "a" in cache  # nothing evicted for it
    assert cache.stats().bytes == 50


def test_concurrent_first_requests_load_once() -> None:
    cache: ReferenceCache[Blob] = ReferenceCache(1000)
    started = threading.Event()
    release = threading.Event()
    calls = 0

    def slow() -> Blob:
        nonlocal calls
        calls += 1
        started.set()
        assert release.wait(5)
        return Blob("m", 10)

    got: list[Blob] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get_or_load("k", slow))) for _ in range(8)]
    for t in threads:
        t.start()
    assert started.wait(5)
    time.sleep(0.05)  # the other seven are waiting on the flight, not loading
    release.set()
    for t in threads:
        t.join(5)
    assert calls == 1
    assert len(got) == 8 and all(g is got[0] for g in got)


def test_a_failed_load_fails_its_waiters_and_is_not_cached() -> None:
    cache: ReferenceCache[Blob] = ReferenceCache(1000)
    started = threading.Event()
    release = threading.Event()

    def broken() -> Blob:
        started.set()
        assert release.wait(5)
        raise OSError("the dataset file is gone")

    errors: list[BaseException] = []

    def ask() -> None:
        try:
            cache.get_or_load("k", broken)
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    assert started.wait(5)
    time.sleep(0.05)
    release.set()
    for t in threads:
        t.join(5)
    assert len(errors) == 3
    assert "k" not in cache
    # the next request loads again
    assert cache.get_or_load("k", lambda: Blob("ok", 1)).name == "ok"


def test_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        ReferenceCache(-1)
