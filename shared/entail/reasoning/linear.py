"""Linear recursion as closure: the stratum of ``p(X, Z) :- p(X, Y), e(Y, Z).``.

A stratum whose only predicate ``p/2`` is derived by non-recursive rules and by
rules of the transitive-closure shape, all passing the same column through
unchanged:

- right-linear, column 0 passes: ``p(X, Z) :- p(X, Y), e(Y, Z).``
- left-linear, column 1 passes: ``p(X, Z) :- e(X, Y), p(Y, Z).``

(either body order, ``e`` read either way round, ``e`` of a lower stratum), has
the model ``p = {(x, z) : (x, y) in p0, y ->* z}`` where ``p0`` is what the
other rules (and the input) give ``p`` and ``->`` is the union of the step
relations. So the stratum is evaluated as a graph closure instead of semi-naive
rounds: the strongly connected components of the step graph (only the part
reachable from ``p0``'s moving column), then, sinks first, one set per
component of everything it reaches, built with C-level set unions (members of a
component share one set), and last the tuples of ``p``, made in C by
``zip(repeat(x), ...)``. A chain of 1,000 nodes is 1,000 set unions instead of
499,500 Python-level joins.

A stratum of the same-generation shape, ``p(X, Y) :- a(X, XP), p(XP, YP),
b(Y, YP).`` (one such rule besides the seeds), moves both columns, so nothing
is shared between sources; it keeps its semi-naive rounds, but grouped
(:class:`GroupedRounds`): per ``XP`` with new ``YP``s one union of their
``b``-neighbours, then per ``X`` (an ``a``-neighbour of ``XP``) the candidate
tuples made and tested against the relation with C-level set operations.

The model is the same as semi-naive evaluation's; the generic path stays for
explaining (proofs need each fact's premises) and for every other shape. The
limits hold: the wall time is checked as the sets are built, and a closure
whose intermediate sets outgrow the derived-facts limit is given back to the
generic rounds (which then stop at the limit as they always did), so no
program stops here that the rounds would have finished.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from itertools import compress, repeat
from operator import itemgetter, or_
from typing import Any

from .bindings import Signature
from .closed import SELECTORS, ClosedRelation
from .errors import DerivedFactsLimitExceeded, WallTimeLimitExceeded
from .syntax import Atom, Comparison, Negative, Positive, Rule, Var

Indexes = list[defaultdict[Any, list[tuple[Any, ...]]]]
Getters = list[list[tuple[int, Callable[[tuple[Any, ...]], Any]]]]
# how many component sets are built between two wall-time checks
CHECK_EVERY = 256
# the most the ints of close_bits may hold in all before it leaves the closure to the
# sets of close (tc-random-2000's 2.55M facts are under 1 MB of them; a graph whose
# targets are few and far apart in the numbering would waste bits on the gaps)
BITS_MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class Step:
    """One recursive rule's step relation: ``pid``'s column ``src`` to column ``dst``."""

    pid: int
    src: int
    dst: int


@dataclass(frozen=True)
class LinearClosure:
    """A stratum evaluated as a closure: ``pid``'s column ``keep`` passes through,
    the other column moves along ``steps``; ``recursive_rules``: their indexes."""

    pid: int
    keep: int
    steps: tuple[Step, ...]
    recursive_rules: frozenset[int]


@dataclass(frozen=True)
class GroupedRounds:
    """A stratum of ``p(X, Y) :- a(X, XP), p(XP, YP), b(Y, YP).`` (same generation):
    both columns move, column 0 along ``left``, column 1 along ``right``; evaluated
    by semi-naive rounds over ``p`` grouped by its first column, one set operation
    per group instead of one Python-level join per fact."""

    pid: int
    left: Step
    right: Step


class GiveUp(Exception):
    """The closure's intermediate sets outgrew the derived-facts limit; ``added``:
    the facts already added to the relation (and its indexes)."""

    def __init__(self, added: int) -> None:
        super().__init__(added)
        self.added = added


def _plain_var(term: object) -> str | None:
    if isinstance(term, Var) and not term.anonymous:
        return term.name
    return None


def _linear_step(rule: Rule, head_sig: Signature) -> tuple[int, Atom, int, int] | None:
    """For ``rule`` of the closure shape: (kept column, the step atom, its source
    column, its target column); None otherwise."""
    head = rule.head
    if head.signature != head_sig or len(rule.body) != 2:
        return None
    if not all(isinstance(lit, Positive) for lit in rule.body):
        return None
    atoms = [lit.atom for lit in rule.body if isinstance(lit, Positive)]
    own = [a for a in atoms if a.signature == head_sig]
    other = [a for a in atoms if a.signature != head_sig]
    if len(own) != 1 or len(other) != 1 or other[0].arity != 2:
        return None
    rec, step = own[0], other[0]
    h = [_plain_var(t) for t in head.args]
    r = [_plain_var(t) for t in rec.args]
    s = [_plain_var(t) for t in step.args]
    names = h + r + s
    if any(n is None for n in names) or h[0] == h[1] or r[0] == r[1] or s[0] == s[1]:
        return None
    for keep in (0, 1):
        move = 1 - keep
        # p(.., H) :- p(.., R), e(..): the kept variable in the same column of both,
        # the recursive atom's moving variable joins e, e's other variable is the head's
        if h[keep] != r[keep] or h[keep] in s or h[move] == r[move]:
            continue
        if set(s) != {r[move], h[move]}:
            continue
        src = s.index(r[move])
        # right-linear (keep 0): from p's Y along e to Z; left-linear (keep 1): from
        # p's Y back along e to X, i.e. e read from its Y column to its X column
        return keep, step, src, 1 - src
    return None


def _lift_steps(rule: Rule, head_sig: Signature) -> tuple[tuple[Atom, int], tuple[Atom, int]] | None:
    """For ``p(X, Y) :- a(X, XP), p(XP, YP), b(Y, YP).`` (any body order, ``a`` and
    ``b`` read either way round): ``a`` and the column of ``XP`` in it, ``b`` and
    the column of ``YP`` in it; None for any other rule."""
    if len(rule.body) != 3 or not all(isinstance(lit, Positive) for lit in rule.body):
        return None
    atoms = [lit.atom for lit in rule.body if isinstance(lit, Positive)]
    own = [a for a in atoms if a.signature == head_sig]
    others = [a for a in atoms if a.signature != head_sig]
    if len(own) != 1 or len(others) != 2 or any(a.arity != 2 for a in others):
        return None
    h = [_plain_var(t) for t in rule.head.args]
    r = [_plain_var(t) for t in own[0].args]
    names = [*h, *r]
    if any(n is None for n in names) or len(set(names)) != 4:
        return None
    found: list[tuple[Atom, int]] = []
    for col in (0, 1):
        want = {h[col], r[col]}
        match = [a for a in others if {_plain_var(t) for t in a.args} == want]
        if len(match) != 1:
            return None
        args = [_plain_var(t) for t in match[0].args]
        found.append((match[0], args.index(r[col])))
    if found[0][0] is found[1][0]:
        return None
    return found[0], found[1]


def detect(
    rules: Sequence[Rule],
    stratum_sigs: Sequence[Signature],
    recursive: bool,
    pid_of: Callable[[Signature], int],
) -> LinearClosure | GroupedRounds | None:
    """The closure form of a stratum, or None when it has another shape."""
    if not recursive or len(stratum_sigs) != 1 or stratum_sigs[0][1] != 2:
        return None
    sig = stratum_sigs[0]
    keeps: set[int] = set()
    steps: list[Step] = []
    rec_rules: set[int] = set()
    lifted_rules: list[tuple[int, tuple[tuple[Atom, int], tuple[Atom, int]]]] = []
    for rule in rules:
        if not all(isinstance(lit, Positive | Negative | Comparison) for lit in rule.body):
            return None  # an aggregate: left to the rounds
        if not any(isinstance(lit, Positive | Negative) and lit.atom.signature == sig for lit in rule.body):
            continue  # a seed rule (run once, by its generated code)
        found = _linear_step(rule, sig)
        if found is None:
            lifted = _lift_steps(rule, sig)
            if lifted is None:
                return None
            lifted_rules.append((rule.index, lifted))
            continue
        keep, atom, src, dst = found
        keeps.add(keep)
        steps.append(Step(pid_of(atom.signature), src, dst))
        rec_rules.add(rule.index)
    if lifted_rules:
        if steps or len(lifted_rules) != 1:
            return None
        (left, right) = lifted_rules[0][1]
        return GroupedRounds(
            pid_of(sig),
            Step(pid_of(left[0].signature), left[1], 1 - left[1]),
            Step(pid_of(right[0].signature), right[1], 1 - right[1]),
        )
    if len(keeps) != 1 or not steps:
        return None
    return LinearClosure(pid_of(sig), keeps.pop(), tuple(steps), frozenset(rec_rules))


def _components(roots: set[Any], succ: dict[Any, set[Any]]) -> tuple[list[list[Any]], dict[Any, int]]:
    """Tarjan's strongly connected components of the graph ``succ`` reachable from
    ``roots``, iteratively, sinks first; and each node's component number."""
    index: dict[Any, int] = {}
    low: dict[Any, int] = {}
    comp: dict[Any, int] = {}
    stack: list[Any] = []
    on_stack: set[Any] = set()
    comps: list[list[Any]] = []
    empty: set[Any] = set()
    counter = 0
    for root in roots:
        if root in index:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[Any, Any]] = [(root, iter(succ.get(root, empty)))]
        while work:
            node, it = work[-1]
            pushed = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ.get(nxt, empty))))
                    pushed = True
                    break
                if nxt in on_stack and index[nxt] < low[node]:
                    low[node] = index[nxt]
            if pushed:
                continue
            work.pop()
            if work and low[node] < low[work[-1][0]]:
                low[work[-1][0]] = low[node]
            if low[node] == index[node]:
                members: list[Any] = []
                cid = len(comps)
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp[m] = cid
                    members.append(m)
                    if m == node:
                        break
                comps.append(members)
    return comps, comp


def close(
    spec: LinearClosure,
    relations: list[set[tuple[Any, ...]]],
    indexes: Indexes,
    getters: Getters,
    budget: int,
    deadline: float,
    start: float,
    wall_time_ms: int,
    derived_limit: int,
    derived: int,
) -> int:
    """Add the closure of ``spec.pid`` to ``relations`` (and its indexes); the
    number of facts added. Raises GiveUp when the sets built pass ``budget``
    elements in all (the facts added by then are correct, and counted in it)."""
    keep, move = spec.keep, 1 - spec.keep
    facts = relations[spec.pid]
    seed: defaultdict[Any, set[Any]] = defaultdict(set)
    for t in facts:
        seed[t[keep]].add(t[move])
    succ: defaultdict[Any, set[Any]] = defaultdict(set)
    for step in spec.steps:
        src, dst = step.src, step.dst
        for e in relations[step.pid]:
            succ[e[src]].add(e[dst])
    roots: set[Any] = set().union(*seed.values()) if seed else set()
    comps, comp = _components(roots, succ)
    n = len(comps)
    # what each component's set is still needed for: the components with a step
    # into it and the sources whose seed is in it; a set no one needs is dropped,
    # so the sets held at once stay few (a chain holds two, not a thousand)
    empty: set[Any] = set()
    directs: list[set[Any] | None] = []
    outs: list[set[int]] = []
    users = [0] * n
    for cid, members in enumerate(comps):
        direct: set[Any] = set().union(*(succ.get(m, empty) for m in members))
        out_c = {comp[v] for v in direct}
        out_c.discard(cid)
        for d in out_c:
            users[d] += 1
        directs.append(direct)
        outs.append(out_c)
    del succ
    waiting: defaultdict[int, list[Any]] = defaultdict(list)
    source_comps: dict[Any, set[int]] = {}
    remaining: dict[Any, int] = {}
    for x, ys in seed.items():
        cids = {comp[y] for y in ys}
        source_comps[x] = cids
        remaining[x] = len(cids)
        for c in cids:
            users[c] += 1
            waiting[c].append(x)
    del seed, comp
    own_getters = getters[spec.pid]
    # reach[c]: every node a path of one step or more leads to from component c,
    # built sinks first (members of a component share one set)
    reach: list[set[Any] | None] = [None] * n
    held = 0
    added = 0

    def release(c: int) -> None:
        users[c] -= 1
        if users[c] == 0:
            reach[c] = None

    def emit(x: Any) -> int:
        """Add the facts of source ``x``: its seed's components' sets, as tuples
        made in C; the count is what the relation grew by."""
        before = len(facts)
        sets = [reach[c] for c in source_comps[x]]
        if own_getters:
            new: set[tuple[Any, ...]] = set()
            for got in sets:
                assert got is not None
                rows = zip(repeat(x), got) if keep == 0 else zip(got, repeat(x))
                new |= set(rows).difference(facts)  # C-level: iterates the new rows only
            facts.update(new)
            for slot, key in own_getters:
                index = indexes[slot]
                for t in new:
                    index[key(t)].append(t)
        else:
            for got in sets:
                assert got is not None
                facts.update(zip(repeat(x), got) if keep == 0 else zip(got, repeat(x)))
        return len(facts) - before

    for cid in range(n):
        out = directs[cid]
        assert out is not None
        directs[cid] = None
        for d in outs[cid]:
            got = reach[d]
            assert got is not None
            out |= got
            release(d)
        reach[cid] = out
        held += len(out)
        if held > budget:
            raise GiveUp(added)
        if cid % CHECK_EVERY == 0:
            now = time.monotonic()
            if now > deadline:
                raise WallTimeLimitExceeded(wall_time_ms, int((now - start) * 1000))
        for x in waiting.pop(cid, ()):
            remaining[x] -= 1
            if remaining[x] == 0:
                added += emit(x)
                if derived + added > derived_limit:
                    raise DerivedFactsLimitExceeded(derived_limit, derived + added)
                for c in source_comps.pop(x):
                    release(c)
    return added


def close_bits(
    spec: LinearClosure,
    relations: list[set[tuple[Any, ...]]],
    deadline: float,
    start: float,
    wall_time_ms: int,
    derived_limit: int,
    derived: int,
) -> tuple[ClosedRelation, int] | None:
    """The closure of ``spec.pid`` kept grouped (closed.py): per source one int whose
    bits are its targets; and the number of facts it adds to ``relations[spec.pid]``
    (which it replaces). None when the ints pass ``BITS_MAX_BYTES`` in all (targets
    spread thinly over many nodes): then :func:`close` builds the tuples instead.

    The nodes are numbered in the order Tarjan closes their components, sinks
    first, so a component reaches only lower numbers, and what one tree of the
    graph reaches is numbered together; each int starts at the lowest number it
    holds (its offset), so its length is the span of its targets, not the number
    of nodes. A union of reaches is one C-level ``|`` of two shifted ints."""
    keep, move = spec.keep, 1 - spec.keep
    facts = relations[spec.pid]
    seed: defaultdict[Any, set[Any]] = defaultdict(set)
    for t in facts:
        seed[t[keep]].add(t[move])
    succ: defaultdict[Any, set[Any]] = defaultdict(set)
    for step in spec.steps:
        src, dst = step.src, step.dst
        for e in relations[step.pid]:
            succ[e[src]].add(e[dst])
    roots: set[Any] = set().union(*seed.values()) if seed else set()
    comps, comp = _components(roots, succ)
    nodes = [m for members in comps for m in members]
    ids = {v: i for i, v in enumerate(nodes)}
    empty: set[Any] = set()
    limit_bits = BITS_MAX_BYTES * 8
    held = 0
    # reach[c]: (offset, bits) of the nodes a path of one step or more leads to from
    # component c; bits 0 when there are none
    reach: list[tuple[int, int]] = []
    for cid, members in enumerate(comps):
        targets = {ids[v] for m in members for v in succ.get(m, empty)}
        outs = {comp[nodes[i]] for i in targets}
        outs.discard(cid)
        joined = [reach[d] for d in outs if reach[d][1]]
        lo = min(min(targets, default=0), min((o for o, _ in joined), default=len(nodes)))
        bits = 0
        for i in targets:
            bits |= 1 << (i - lo)
        for o, b in joined:
            bits |= b << (o - lo)
        reach.append((lo, bits))
        held += bits.bit_length()
        if held > limit_bits:
            return None
        if cid % CHECK_EVERY == 0:
            now = time.monotonic()
            if now > deadline:
                raise WallTimeLimitExceeded(wall_time_ms, int((now - start) * 1000))
    del succ
    rows: dict[Any, tuple[int, int]] = {}
    for x, ys in seed.items():
        own = [ids[y] for y in ys]
        joined = [reach[c] for c in {comp[y] for y in ys} if reach[c][1]]
        lo = min(min(own), min((o for o, _ in joined), default=len(nodes)))
        bits = 0
        for i in own:
            bits |= 1 << (i - lo)
        for o, b in joined:
            bits |= b << (o - lo)
        rows[x] = (lo, bits)
        held += bits.bit_length()
        if held > limit_bits:
            return None
    del reach
    relation = ClosedRelation(rows, nodes, ids, keep)
    added = len(relation) - len(facts)
    if derived + added > derived_limit:
        raise DerivedFactsLimitExceeded(derived_limit, derived + added)
    return relation, added


def grouped_rounds_bits(
    spec: GroupedRounds,
    relations: list[set[tuple[Any, ...]]],
    delta: set[tuple[Any, ...]] | frozenset[tuple[Any, ...]],
    deadline: float,
    start: float,
    wall_time_ms: int,
    derived_limit: int,
    derived: int,
) -> tuple[ClosedRelation, int, int] | None:
    """:func:`grouped_rounds` with each group an int (closed.py): per first value, its
    second values as the bits of one int over a numbering of the values the second
    column can take; a round is, per ``XP`` with new ``YP``s, one ``|`` of their
    ``b``-neighbours' ints and per ``X`` one ``& ~`` against what ``X`` has. Returns
    the relation that replaces ``relations[spec.pid]``, the facts added and the
    rounds run; None (before any work) when the ints could pass ``BITS_MAX_BYTES``."""
    facts = relations[spec.pid]
    up: defaultdict[Any, set[Any]] = defaultdict(set)
    for e in relations[spec.left.pid]:
        up[e[spec.left.src]].add(e[spec.left.dst])
    across: defaultdict[Any, set[Any]] = defaultdict(set)
    for e in relations[spec.right.pid]:
        across[e[spec.right.src]].add(e[spec.right.dst])
    ids: dict[Any, int] = {}
    for t in facts:
        ids.setdefault(t[1], len(ids))
    for ys in across.values():
        for y in ys:
            ids.setdefault(y, len(ids))
    sources = {t[0] for t in facts}.union(*up.values())
    if len(sources) * (len(ids) // 8 + 1) > BITS_MAX_BYTES:
        return None
    nodes = list(ids)
    # across_bits[i]: the b-neighbours of the value numbered i, as bits
    across_bits = [0] * len(nodes)
    for yp, ys in across.items():
        i = ids.get(yp)
        if i is not None:
            bits = 0
            for y in ys:
                bits |= 1 << ids[y]
            across_bits[i] = bits
    del across
    rows: dict[Any, int] = {}
    for t in facts:
        rows[t[0]] = rows.get(t[0], 0) | 1 << ids[t[1]]
    news: dict[Any, int] = {}
    for t in delta:
        news[t[0]] = news.get(t[0], 0) | 1 << ids[t[1]]
    added = 0
    rounds = 0
    while news:
        rounds += 1
        now = time.monotonic()
        if now > deadline:
            raise WallTimeLimitExceeded(wall_time_ms, int((now - start) * 1000))
        following: dict[Any, int] = {}
        for step, (xp, yps) in enumerate(news.items()):
            if derived + added > derived_limit:
                raise DerivedFactsLimitExceeded(derived_limit, derived + added)
            if step % CHECK_EVERY == CHECK_EVERY - 1:
                now = time.monotonic()
                if now > deadline:
                    raise WallTimeLimitExceeded(wall_time_ms, int((now - start) * 1000))
            xs = up.get(xp)
            if not xs:
                continue
            # the b-neighbours of every new YP: their ints picked by the bits of yps
            # and joined, all in C
            picked = compress(across_bits, bin(yps)[:1:-1].encode("ascii").translate(SELECTORS))
            reached: int = reduce(or_, picked, 0)
            if not reached:
                continue
            for x in xs:
                old = rows.get(x, 0)
                new = reached & ~old
                if new:
                    rows[x] = old | new
                    following[x] = following.get(x, 0) | new
                    added += new.bit_count()
        if derived + added > derived_limit:
            raise DerivedFactsLimitExceeded(derived_limit, derived + added)
        news = following
    return ClosedRelation({x: (0, bits) for x, bits in rows.items()}, nodes, ids, 0), added, rounds


def grouped_rounds(
    spec: GroupedRounds,
    relations: list[set[tuple[Any, ...]]],
    delta: set[tuple[Any, ...]] | frozenset[tuple[Any, ...]],
    indexes: Indexes,
    getters: Getters,
    deadline: float,
    start: float,
    wall_time_ms: int,
    derived_limit: int,
    derived: int,
) -> tuple[int, int]:
    """Run ``spec``'s rounds from ``delta`` (the facts the first round added) to the
    fixpoint; (facts added, rounds run). The relation is grouped by its first column
    (a set of second values per first value) while the rounds run, and its new
    tuples are made in C at the end."""
    facts = relations[spec.pid]
    news: defaultdict[Any, set[Any]] = defaultdict(set)
    for t in delta:
        news[t[0]].add(t[1])
    up: defaultdict[Any, set[Any]] = defaultdict(set)
    for e in relations[spec.left.pid]:
        up[e[spec.left.src]].add(e[spec.left.dst])
    across: defaultdict[Any, set[Any]] = defaultdict(set)
    for e in relations[spec.right.pid]:
        across[e[spec.right.src]].add(e[spec.right.dst])
    empty: set[Any] = set()
    across_get = across.get
    second = itemgetter(1)
    own_getters = getters[spec.pid]
    added = 0
    rounds = 0
    while news:
        rounds += 1
        now = time.monotonic()
        if now > deadline:
            raise WallTimeLimitExceeded(wall_time_ms, int((now - start) * 1000))
        following: defaultdict[Any, set[Any]] = defaultdict(set)
        for step, (xp, yps) in enumerate(news.items()):
            # the limits inside a round too: one round can be most of the model
            if derived + added > derived_limit:
                raise DerivedFactsLimitExceeded(derived_limit, derived + added)
            if step % CHECK_EVERY == CHECK_EVERY - 1:
                now = time.monotonic()
                if now > deadline:
                    raise WallTimeLimitExceeded(wall_time_ms, int((now - start) * 1000))
            xs = up.get(xp)
            if not xs:
                continue
            ys = set().union(*map(across_get, yps, repeat(empty)))
            if not ys:
                continue
            for x in xs:
                # the candidate tuples, made and tested against the relation in C
                # (the relation itself is the membership test: no second copy)
                new = set(zip(repeat(x), ys)).difference(facts)
                if new:
                    facts |= new
                    following[x].update(map(second, new))
                    added += len(new)
                    for slot, key in own_getters:
                        index = indexes[slot]
                        for t in new:
                            index[key(t)].append(t)
        if derived + added > derived_limit:
            raise DerivedFactsLimitExceeded(derived_limit, derived + added)
        news = following
    return added, rounds
