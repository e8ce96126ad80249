"""Stage 3 — plan: order each rule's body into a join plan.

Contract: ``plan_rule(rule, recursive_sigs)`` returns one :class:`RulePlan`
with a plan that reads every body atom from the full relations (used in a
stratum's first round) and, for a rule of a recursive stratum, one plan per
body atom of that stratum which reads that atom from the delta of the last
round (semi-naive evaluation). Plans put the delta atom first, then greedily
any literal whose variables are bound (filters, assignments, negations,
aggregates) before the positive atom with the most bound arguments, so each
scan can use a hash index on its bound columns.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .bindings import (
    Signature,
    aggregate_globals,
    aggregate_needs,
    assigned_var,
    binds,
    linear,
    solve_equation,
)
from .shapes import RuleShape, rule_shape
from .syntax import (
    Aggregate,
    AggregateElement,
    Atom,
    Comparison,
    ConditionLiteral,
    Literal,
    Negative,
    Num,
    Positive,
    Rule,
    Str,
    Sym,
    Var,
    term_vars,
)


@dataclass(frozen=True, slots=True)
class Scan:
    """Match a positive atom against a relation (``delta`` or ``full``)."""

    atom: Atom
    delta: bool
    bound: frozenset[str]  # variables of the atom bound before this step
    literal_index: int  # position in the rule body (or element condition)


@dataclass(frozen=True, slots=True)
class Filter:
    comparison: Comparison
    literal_index: int


@dataclass(frozen=True, slots=True)
class Assign:
    """``Var = term`` with the term's variables bound; with ``inverse = (m, n)`` the
    other side is ``m*Var + n`` and ``Var`` is solved for (``X+1 = Y``), as gringo does."""

    var: str
    comparison: Comparison
    value_on_right: bool
    literal_index: int
    inverse: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Absent:
    """``not atom``: anonymous variables are projected away."""

    atom: Atom
    literal_index: int


@dataclass(frozen=True, slots=True)
class ElementPlan:
    element: AggregateElement
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class AggregateStep:
    aggregate: Aggregate
    assigns: str | None
    elements: tuple[ElementPlan, ...]
    literal_index: int


Step = Scan | Filter | Assign | Absent | AggregateStep


@dataclass(slots=True)
class RulePlan:
    rule: Rule
    full: list[Step]
    deltas: list[list[Step]] = field(default_factory=list)
    shape: RuleShape | None = None  # set when planned with a cache: code generation reuses it


def _ground(term: object) -> bool:
    return isinstance(term, Num | Str | Sym)


def _bound_args(atom: Atom, bound: set[str]) -> int:
    n = 0
    for a in atom.args:
        if _ground(a):
            n += 1
        elif isinstance(a, Var):
            n += a.name in bound
        elif all(v.name in bound for v in term_vars(a)):
            n += 1
    return n


def _schedulable(atom: Atom, bound: set[str]) -> bool:
    """An atom can be scanned once every variable of its arithmetic arguments is
    bound: before it, by a plain variable argument of the atom itself
    (``e(X, X+1)``), or by inverting a linear argument (``e(X+1)``, in any
    argument position: ``q(X-X, X+1)`` inverts ``X+1`` and then checks ``X-X``)."""
    own: set[str] | None = None  # what the atom binds itself, computed only if needed
    for a in atom.args:
        if isinstance(a, Var | Num | Str | Sym):
            continue
        if own is None:
            own = binds(Positive(atom), bound, {})
        for v in term_vars(a):
            if v.name not in bound and v.name not in own:
                return False
    return True


def _rank(lit: Literal | ConditionLiteral, bound: set[str], globals_of: dict[int, set[str]]) -> int | None:
    """When a non-atom literal is ready: 0 filter, 1 assignment, 2 negation, 3 aggregate."""
    if isinstance(lit, Comparison):
        if all(v.name in bound for v in term_vars(lit.left) + term_vars(lit.right)):
            return 0
        return 1 if binds(lit, bound, globals_of) else None
    if isinstance(lit, Negative):
        return 2 if all(v.name in bound for v in lit.atom.vars() if not v.anonymous) else None
    if isinstance(lit, Aggregate):
        var = assigned_var(lit, globals_of)
        target = var if var is not None and var not in bound else None
        return 3 if all(v in bound for v in aggregate_needs(lit, target, globals_of)) else None
    return None


def order(
    literals: list[tuple[int, Literal | ConditionLiteral]],
    bound: set[str],
    globals_of: dict[int, set[str]],
    first: int | None = None,
    tick: Callable[[], None] | None = None,
) -> list[Step]:
    """Greedy join order. ``first`` is the index of the literal read from delta.

    At each step: a ready filter, else a ready assignment, negation or aggregate
    (each the earliest in the body), else the schedulable positive atom with the
    most bound arguments (the earliest on a tie). Readiness is kept up to date
    incrementally (a literal is re-examined only when one of its variables gets
    bound, and heaps give the next choice), so planning is O(n log n) in the
    size of the rule rather than quadratic. ``tick`` is called once per step
    (the compile-time limit).
    """
    bound = set(bound)
    lits = dict(literals)
    pending = set(lits)
    steps: list[Step] = []
    watchers: dict[str, list[int]] = {}
    for idx, lit in literals:
        for name in _watched(lit, globals_of):
            watchers.setdefault(name, []).append(idx)
    ready: list[list[int]] = [[], [], [], []]  # per rank, heaps of body positions
    atoms: list[tuple[int, int]] = []  # heap of (-bound arguments, body position)

    def classify(idx: int) -> None:
        lit = lits[idx]
        if isinstance(lit, Positive):
            if _schedulable(lit.atom, bound):
                heapq.heappush(atoms, (-_bound_args(lit.atom, bound), idx))
        else:
            rank = _rank(lit, bound, globals_of)
            if rank is not None:
                heapq.heappush(ready[rank], idx)

    def take(idx: int) -> None:
        lit = lits[idx]
        pending.discard(idx)
        steps.append(_step(idx, lit, bound, globals_of, delta=(idx == first)))
        new = binds(lit, bound, globals_of) - bound
        bound.update(new)
        touched: set[int] = set()
        for name in new:
            touched.update(watchers.get(name, ()))
        for j in touched & pending:
            classify(j)

    def next_ready() -> int | None:
        for rank, heap in enumerate(ready):
            while heap:
                idx = heap[0]
                if idx in pending and _rank(lits[idx], bound, globals_of) == rank:
                    return idx
                heapq.heappop(heap)  # stale: taken, or ready for another rank now
        while atoms:
            score, idx = atoms[0]
            lit = lits[idx]
            if idx in pending and isinstance(lit, Positive) and -score == _bound_args(lit.atom, bound):
                return idx
            heapq.heappop(atoms)  # stale: taken, or a newer entry scores it higher
        return None

    if first is not None:
        lead = lits.get(first)
        # the delta atom leads unless its arithmetic needs variables bound elsewhere
        if isinstance(lead, Positive) and _schedulable(lead.atom, bound):
            take(first)
    for idx in sorted(pending):
        classify(idx)
    while pending:
        if tick is not None:
            tick()
        chosen = next_ready()
        if chosen is None:
            raise AssertionError(f"unsafe literals left after analysis: {sorted(pending)}")
        take(chosen)
    return steps


def _watched(lit: Literal | ConditionLiteral, globals_of: dict[int, set[str]]) -> set[str]:
    """Variables whose binding can change when (or how well) ``lit`` can be scheduled."""
    if isinstance(lit, Positive | Negative):
        return {v.name for v in lit.atom.vars()}
    if isinstance(lit, Comparison):
        return {v.name for v in term_vars(lit.left) + term_vars(lit.right)}
    return aggregate_needs(lit, None, globals_of)


def _step(
    idx: int,
    lit: Literal | ConditionLiteral,
    bound: set[str],
    globals_of: dict[int, set[str]],
    delta: bool,
) -> Step:
    if isinstance(lit, Positive):
        return Scan(lit.atom, delta, frozenset(v.name for v in lit.atom.vars() if v.name in bound), idx)
    if isinstance(lit, Negative):
        return Absent(lit.atom, idx)
    if isinstance(lit, Comparison):
        solved = solve_equation(lit, bound) if lit.op == "=" else None
        if solved is None:
            return Filter(lit, idx)
        solved_var, target, source = solved
        inverse = None
        if not isinstance(target, Var):
            lin = linear(target)
            assert lin is not None
            inverse = (lin[1], lin[2])
        return Assign(solved_var, lit, value_on_right=source is lit.right, literal_index=idx, inverse=inverse)
    var = assigned_var(lit, globals_of)
    assigns = var if var is not None and var not in bound else None
    # the elements only see the aggregate's global variables (all bound by now)
    inner_bound = set(globals_of.get(id(lit), set()))
    elements = tuple(
        ElementPlan(el, tuple(order(list(enumerate(el.condition)), inner_bound, globals_of)))
        for el in lit.elements
    )
    return AggregateStep(lit, assigns, elements, idx)


# a flat rule's plans with the literals left out: (kind, body position, details)
_Template = list[list[tuple[Any, ...]]]
_Cached = tuple[tuple[object, ...], _Template]  # a shape's key (shared by its rules) and plans


def plan_rule(
    rule: Rule,
    recursive: set[Signature],
    tick: Callable[[], None] | None = None,
    cache: dict[tuple[object, ...], _Cached] | None = None,
) -> RulePlan:
    """Join plans for one rule; ``recursive`` holds the signatures of its stratum.

    ``tick`` is called once per planned literal (the compile-time limit). With a
    ``cache`` (one per program), a rule with the shape of a rule planned before
    (:mod:`.shapes`) gets that rule's plans, filled with its own literals."""
    if cache is None:
        return _plan_rule(rule, recursive, tick)
    shape = rule_shape(rule, recursive)
    if shape is None:
        return _plan_rule(rule, recursive, tick)
    known = cache.get(shape.key)
    if known is None:
        result = _plan_rule(rule, recursive, tick)
        cache[shape.key] = (shape.key, [_template(v) for v in [result.full, *result.deltas]])
        result.shape = shape
        return result
    if tick is not None:
        tick()
    key, template = known
    full, *deltas = [[_fill(rule, d) for d in variant] for variant in template]
    # the first rule's key, shared: this rule's own copy (a dozen tuples) is freed now
    return RulePlan(rule, full, deltas, RuleShape(key, shape.predicates, shape.constants))


def _template(steps: list[Step]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for s in steps:
        if isinstance(s, Scan):
            out.append(("scan", s.literal_index, s.delta, s.bound))
        elif isinstance(s, Filter):
            out.append(("filter", s.literal_index))
        elif isinstance(s, Assign):
            out.append(("assign", s.literal_index, s.var, s.value_on_right, s.inverse))
        elif isinstance(s, Absent):
            out.append(("absent", s.literal_index))
        else:
            raise AssertionError("a flat rule has no aggregate")
    return out


def _fill(rule: Rule, d: tuple[Any, ...]) -> Step:
    lit = rule.body[d[1]]
    kind = d[0]
    if kind == "scan":
        assert isinstance(lit, Positive)
        return Scan(lit.atom, d[2], d[3], d[1])
    if kind == "absent":
        assert isinstance(lit, Negative)
        return Absent(lit.atom, d[1])
    assert isinstance(lit, Comparison)
    if kind == "filter":
        return Filter(lit, d[1])
    return Assign(d[2], lit, d[3], d[1], d[4])


def _plan_rule(rule: Rule, recursive: set[Signature], tick: Callable[[], None] | None) -> RulePlan:
    globals_of = aggregate_globals(rule)
    lits = list(enumerate(rule.body))
    result = RulePlan(rule, order(lits, set(), globals_of, tick=tick))
    for idx, lit in lits:
        if isinstance(lit, Positive) and lit.atom.signature in recursive:
            result.deltas.append(order(lits, set(), globals_of, first=idx, tick=tick))
    return result
