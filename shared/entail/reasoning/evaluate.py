"""Stage 4 — evaluate: run a compiled program to its fixpoint over one fact set.

Contract: ``evaluate(program, facts, limits, explain)`` returns a
:class:`Store` holding the full model (one set of tuples per predicate) and,
with ``explain``, the provenance of every derived fact. Strata run in order;
inside a recursive stratum the semi-naive loop runs each rule's delta
variants over the facts the previous round added (``D``) until a round adds
nothing. Wall time and derived-fact limits are checked inside the generated
loops (every few thousand steps) as well as between rounds, so a runaway
program stops with a named error and bounded memory.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

from .codegen import TICK
from .errors import DerivedFactsLimitExceeded, LimitExceeded, WallTimeLimitExceeded
from .limits import Limits
from .linear import (
    GiveUp,
    GroupedRounds,
    LinearClosure,
    close,
    close_bits,
    grouped_rounds,
    grouped_rounds_bits,
)

RuleFn = Callable[..., None]
RELEASE_S_PER_ELEMENT = 4e-7
_EMPTY: frozenset[tuple[Any, ...]] = frozenset()


@dataclass
class CompiledStratum:
    pids: list[int]
    recursive: bool
    full: list[RuleFn]
    delta: list[tuple[RuleFn, int]]  # function and the predicate it reads from delta
    # linear recursion of the closure shape (linear.py): after the first round the
    # stratum is closed in one step instead of by rounds (plain evaluation only)
    closure: LinearClosure | GroupedRounds | None = None
    # a rule of another stratum reads the closure's predicate (so its indexes, if it
    # has any, must hold every fact)
    closure_read_later: bool = True


@dataclass
class Store:
    """The model after evaluation: ``F[pid]`` is the set of tuples of predicate ``pid``."""

    F: list[set[tuple[Any, ...]]]
    P: list[dict[tuple[Any, ...], Any]] | None
    derived: int = 0
    rounds: int = 0
    elapsed_ms: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)
    # the hash indexes (per slot), kept for a materialised model (reference.py)
    I: list[defaultdict[Any, list[tuple[Any, ...]]]] | None = None


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Suspend the cyclic garbage collector while facts are derived.

    Evaluation allocates millions of tuples and creates no reference cycles;
    with the collector on, CPython re-scans the growing relations on every
    generation-2 collection, which costs a large share of the run. The pause
    is reference-counted so concurrent evaluations in threads compose: the last
    one out restores the state the first one found.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def _key_fn(cols: tuple[int, ...]) -> Callable[[tuple[Any, ...]], Any]:
    return itemgetter(*cols)


def evaluate(
    strata: list[CompiledStratum],
    n_preds: int,
    index_specs: list[list[tuple[int, tuple[int, ...]]]],
    n_slots: int,
    base: list[set[tuple[Any, ...]]],
    limits: Limits,
    explain: bool,
    keep_indexes: bool = False,
    grown_specs: list[list[tuple[int, tuple[int, ...]]]] | None = None,
) -> Store:
    """Run ``strata`` over ``base`` (ruleset facts and case facts, per predicate id);
    ``keep_indexes``: the store keeps the indexes (a materialised model shares them);
    ``grown_specs``: the slots kept up to date as facts are derived (default: all of
    ``index_specs``); the others hold the base facts only (see reference.py)."""
    start = time.monotonic()
    deadline = start + limits.wall_time_ms / 1000.0
    F = base
    N: list[set[tuple[Any, ...]]] = [set() for _ in range(n_preds)]
    D: list[frozenset[tuple[Any, ...]] | set[tuple[Any, ...]]] = [_EMPTY] * n_preds
    P: list[dict[tuple[Any, ...], Any]] | None = [{} for _ in range(n_preds)] if explain else None
    I: list[defaultdict[Any, list[tuple[Any, ...]]]] = [defaultdict(list) for _ in range(n_slots)]
    getters = [[(slot, _key_fn(cols)) for slot, cols in specs] for specs in index_specs]
    for pid, facts in enumerate(F[:n_preds]):  # beyond n_preds: facts no rule reads
        if facts:
            for slot, key in getters[pid]:
                index = I[slot]
                for t in facts:
                    index[key(t)].append(t)
    if grown_specs is not None:
        getters = [[(slot, _key_fn(cols)) for slot, cols in specs] for specs in grown_specs]

    derived = 0
    rounds = 0
    current: list[int] = []
    # a closure may be kept grouped (closed.py) only in a model nothing extends: not
    # one materialised for reference data, whose relations later cases add to
    grouped_ok = not keep_indexes and grown_specs is None

    def check(collecting: int = 0) -> int:
        """Called by the generated loops every TICK steps; ``collecting`` is the size
        of the element set of the aggregate being collected, which counts toward the
        derived-facts limit (it holds tuples just like derived facts do)."""
        now = time.monotonic()
        # releasing a large element set takes time too (measured: 0.2-0.4 µs a tuple): reserve it,
        # so that stopping, freeing included, ends close to the limit
        if now + collecting * RELEASE_S_PER_ELEMENT > deadline:
            raise WallTimeLimitExceeded(limits.wall_time_ms, int((now - start) * 1000))
        pending = derived + sum(len(N[p]) for p in current) + collecting
        if pending > limits.derived_facts:
            raise DerivedFactsLimitExceeded(limits.derived_facts, pending)
        return TICK

    def commit() -> bool:
        nonlocal derived
        grew = False
        for pid in current:
            new = N[pid]
            if new:
                grew = True
                F[pid] |= new
                for slot, key in getters[pid]:
                    index = I[slot]
                    for t in new:
                        index[key(t)].append(t)
                derived += len(new)
                N[pid] = set()
                D[pid] = new
            else:
                D[pid] = _EMPTY
        if derived > limits.derived_facts:
            raise DerivedFactsLimitExceeded(limits.derived_facts, derived)
        return grew

    try:
        for stratum in strata:
            current = stratum.pids
            for fn in stratum.full:
                fn(F, N, D, I, P, check)
            rounds += 1
            grew = commit()
            if not stratum.recursive:
                continue
            if grew and isinstance(stratum.closure, GroupedRounds) and grouped_ok:
                pid = stratum.closure.pid
                if not getters[pid] or not stratum.closure_read_later:
                    grouped = grouped_rounds_bits(
                        stratum.closure,
                        F,
                        D[pid],
                        deadline,
                        start,
                        limits.wall_time_ms,
                        limits.derived_facts,
                        derived,
                    )
                    if grouped is not None:
                        # read-only from here on, as the closure's below
                        F[pid] = cast(set[tuple[Any, ...]], grouped[0])
                        derived += grouped[1]
                        rounds += grouped[2]
                        grew = False
            if grew and isinstance(stratum.closure, GroupedRounds):
                pid = stratum.closure.pid
                more, run = grouped_rounds(
                    stratum.closure,
                    F,
                    D[pid],
                    I,
                    getters,
                    deadline,
                    start,
                    limits.wall_time_ms,
                    limits.derived_facts,
                    derived,
                )
                derived += more
                rounds += run
                grew = False
            if grew and isinstance(stratum.closure, LinearClosure) and grouped_ok:
                pid = stratum.closure.pid
                if not getters[pid] or not stratum.closure_read_later:
                    closed = close_bits(
                        stratum.closure,
                        F,
                        deadline,
                        start,
                        limits.wall_time_ms,
                        limits.derived_facts,
                        derived,
                    )
                    if closed is not None:
                        # read-only from here on (no index of it is read again, nothing
                        # extends it: see grouped_ok): a Set that reads like the set
                        # it replaces
                        F[pid] = cast(set[tuple[Any, ...]], closed[0])
                        derived += closed[1]
                        rounds += 1
                        grew = False
            if grew and isinstance(stratum.closure, LinearClosure):
                try:
                    derived += close(
                        stratum.closure,
                        F,
                        I,
                        getters,
                        limits.derived_facts,
                        deadline,
                        start,
                        limits.wall_time_ms,
                        limits.derived_facts,
                        derived,
                    )
                    rounds += 1
                    grew = False
                except GiveUp as partial:
                    # too large to close in sets: the rounds go on (and stop at the
                    # limit as usual), the next one over every fact of the relation,
                    # since the closure added some without a delta
                    derived += partial.added
                    D[stratum.closure.pid] = set(F[stratum.closure.pid])
            while grew:
                check()
                for fn, delta_pid in stratum.delta:
                    if D[delta_pid]:
                        fn(F, N, D, I, P, check)
                rounds += 1
                grew = commit()
            for pid in current:
                D[pid] = _EMPTY
    except LimitExceeded as exc:
        # the traceback holds the generated functions' frames and with them every
        # partial result (an aggregate's element set can be millions of tuples):
        # drop it here, while the collector is still paused, so they are freed now
        # and not traversed by the next full collection
        raise exc.with_traceback(None) from None
    store = Store(F, P, derived, rounds, (time.monotonic() - start) * 1000.0)
    if keep_indexes:
        store.I = I
    return store
