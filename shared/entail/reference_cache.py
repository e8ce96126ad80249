"""The worker's materialised reference models: a byte-bounded LRU, single-flight.

For each (ruleset hash, dataset hashes) a compute pool process materialises once
the part of the model no case fact can reach (``Ruleset.materialise``,
docs/datasets.md) and every decision of that ruleset version over those dataset
versions that the pool sends there starts from it (entail/dataset_eval.py). One
cache per pool process; entries are read-only once made, so decisions share one
without copying.

- **Bounded in bytes**, not entries: one materialised org chart may be kilobytes,
  a permissions graph gigabytes. Each value reports its size (``nbytes``); the
  least recently used entries are evicted until the total fits
  ``ENTAIL_REFERENCE_CACHE_BYTES``. A value larger than the whole budget is
  still returned to its caller (the decision is answered), just not kept.
- **Single-flight**: the first decisions after a new dataset version arrive
  together; one of them materialises, the others wait for its result rather
  than each reading and evaluating the dataset again. A load that fails fails
  every waiter of that flight and is not cached: the next request tries again.

Blocking by design (a lock and events of :mod:`threading`): loads read files and
run the engine, so it lives in a pool process (one task at a time there; the
single flight matters to a caller that shares one cache between threads), never
on an event loop.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


V = TypeVar("V", bound=Sized)

#: (ruleset hash, ((binding, dataset hash), ...) sorted by binding)
ReferenceKey = tuple[str, tuple[tuple[str, str], ...]]


def reference_key(ruleset_hash: str, datasets: Sequence[tuple[str, str]]) -> ReferenceKey:
    """The cache key of a ruleset version over dataset versions: (binding, hash) pairs
    in binding order, so the order a caller lists them in does not matter."""
    return ruleset_hash, tuple(sorted(datasets))


@dataclass
class _Flight(Generic[V]):
    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int
    loads: int
    evictions: int


class ReferenceCache(Generic[V]):
    """``get_or_load(key, load)``: the cached value, or ``load()``'s, made once however
    many threads ask at the same time."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self._bytes = 0
        self._flights: dict[Hashable, _Flight[V]] = {}
        self._lock = threading.Lock()
        self._hits = self._misses = self._loads = self._evictions = 0

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self._hits += 1
                self._remeasure(key, found)
                return found
            self._misses += 1
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.value is not None
            return flight.value
        try:
            value = load()
        except BaseException as exc:
            flight.error = exc
            with self._lock:
                del self._flights[key]
            flight.done.set()
            raise
        flight.value = value
        with self._lock:
            self._loads += 1
            del self._flights[key]
            self._keep(key, value)
        flight.done.set()
        return value

    def _keep(self, key: Hashable, value: V) -> None:
        size = max(0, int(value.nbytes))
        if size > self.max_bytes:
            return  # answered, not kept: it would evict everything and still not fit
        self._items[key] = value
        self._sizes[key] = size
        self._bytes += size
        while self._bytes > self.max_bytes:
            old, _ = self._items.popitem(last=False)
            self._bytes -= self._sizes.pop(old)
            self._evictions += 1

    def _remeasure(self, key: Hashable, value: V) -> None:
        """A kept value may grow after it was made (the proofs of a materialised model are
        computed on its first explained use): charge the growth, and evict others (the
        value itself last: it is in use) until the total fits again."""
        size = max(0, int(value.nbytes))
        grown = size - self._sizes[key]
        if grown == 0:
            return
        self._sizes[key] = size
        self._bytes += grown
        while self._bytes > self.max_bytes and len(self._items) > 1:
            old, _ = self._items.popitem(last=False)
            self._bytes -= self._sizes.pop(old)
            self._evictions += 1

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                entries=len(self._items),
                bytes=self._bytes,
                max_bytes=self.max_bytes,
                hits=self._hits,
                misses=self._misses,
                loads=self._loads,
                evictions=self._evictions,
            )
