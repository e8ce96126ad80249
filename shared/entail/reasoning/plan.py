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

from dataclasses import dataclass, field

from .analyse import Signature, aggregate_globals, aggregate_needs, assigned_var, binds
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


@dataclass(frozen=True)
class Scan:
    """Match a positive atom against a relation (``delta`` or ``full``)."""

    atom: Atom
    delta: bool
    bound: frozenset[str]  # variables bound before this step
    literal_index: int  # position in the rule body (or element condition)


@dataclass(frozen=True)
class Filter:
    comparison: Comparison
    literal_index: int


@dataclass(frozen=True)
class Assign:
    """``Var = term`` with the term's variables bound."""

    var: str
    comparison: Comparison
    value_on_right: bool
    literal_index: int


@dataclass(frozen=True)
class Absent:
    """``not atom``: anonymous variables are projected away."""

    atom: Atom
    literal_index: int


@dataclass(frozen=True)
class ElementPlan:
    element: AggregateElement
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class AggregateStep:
    aggregate: Aggregate
    assigns: str | None
    elements: tuple[ElementPlan, ...]
    literal_index: int


Step = Scan | Filter | Assign | Absent | AggregateStep


@dataclass
class RulePlan:
    rule: Rule
    full: list[Step]
    deltas: list[list[Step]] = field(default_factory=list)


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
    (``e(X, X+1)``), or by inverting a linear argument (``e(X+1)``)."""
    own = bound | binds(Positive(atom), bound, {})
    return all(v.name in own for a in atom.args if not isinstance(a, Var) for v in term_vars(a))


def order(
    literals: list[tuple[int, Literal | ConditionLiteral]],
    bound: set[str],
    globals_of: dict[int, set[str]],
    first: int | None = None,
) -> list[Step]:
    """Greedy join order. ``first`` is the index of the literal read from delta."""
    bound = set(bound)
    pending = list(literals)
    steps: list[Step] = []

    def take(idx: int, lit: Literal | ConditionLiteral) -> None:
        pending.remove((idx, lit))
        steps.append(_step(idx, lit, bound, globals_of, delta=(idx == first)))
        bound.update(binds(lit, bound, globals_of))

    if first is not None:
        for idx, lit in pending:
            # the delta atom leads unless its arithmetic needs variables bound elsewhere
            if idx == first and isinstance(lit, Positive) and _schedulable(lit.atom, bound):
                take(idx, lit)
                break
    while pending:
        ready = _ready_non_atom(pending, bound, globals_of)
        if ready is not None:
            take(*ready)
            continue
        atoms = [
            (i, lit) for i, lit in pending if isinstance(lit, Positive) and _schedulable(lit.atom, bound)
        ]
        if not atoms:
            raise AssertionError(f"unsafe literals left after analysis: {pending}")
        best: tuple[int, Literal | ConditionLiteral] = max(
            atoms, key=lambda p: (_bound_args(p[1].atom, bound), -p[0])
        )
        take(*best)
    return steps


def _ready_non_atom(
    pending: list[tuple[int, Literal | ConditionLiteral]],
    bound: set[str],
    globals_of: dict[int, set[str]],
) -> tuple[int, Literal | ConditionLiteral] | None:
    # filters first (they only shrink), then assignments, negations, aggregates
    for rank in range(4):
        for idx, lit in pending:
            if rank == 0 and isinstance(lit, Comparison):
                if all(v.name in bound for v in term_vars(lit.left) + term_vars(lit.right)):
                    return idx, lit
            elif rank == 1 and isinstance(lit, Comparison) and binds(lit, bound, globals_of):
                return idx, lit
            elif rank == 2 and isinstance(lit, Negative):
                if all(v.name in bound for v in lit.atom.vars() if not v.anonymous):
                    return idx, lit
            elif rank == 3 and isinstance(lit, Aggregate):
                var = assigned_var(lit, globals_of)
                target = var if var is not None and var not in bound else None
                if all(v in bound for v in aggregate_needs(lit, target, globals_of)):
                    return idx, lit
    return None


def _step(
    idx: int,
    lit: Literal | ConditionLiteral,
    bound: set[str],
    globals_of: dict[int, set[str]],
    delta: bool,
) -> Step:
    if isinstance(lit, Positive):
        return Scan(lit.atom, delta, frozenset(bound), idx)
    if isinstance(lit, Negative):
        return Absent(lit.atom, idx)
    if isinstance(lit, Comparison):
        if all(v.name in bound for v in term_vars(lit.left) + term_vars(lit.right)):
            return Filter(lit, idx)
        target = lit.left if isinstance(lit.left, Var) and lit.left.name not in bound else lit.right
        assert isinstance(target, Var)
        return Assign(target.name, lit, value_on_right=target is lit.left, literal_index=idx)
    var = assigned_var(lit, globals_of)
    assigns = var if var is not None and var not in bound else None
    inner_bound = bound | globals_of.get(id(lit), set())
    elements = tuple(
        ElementPlan(el, tuple(order(list(enumerate(el.condition)), inner_bound, globals_of)))
        for el in lit.elements
    )
    return AggregateStep(lit, assigns, elements, idx)


def plan_rule(rule: Rule, recursive: set[Signature]) -> RulePlan:
    """Join plans for one rule; ``recursive`` holds the signatures of its stratum."""
    globals_of = aggregate_globals(rule)
    lits = list(enumerate(rule.body))
    result = RulePlan(rule, order(lits, set(), globals_of))
    for idx, lit in lits:
        if isinstance(lit, Positive) and lit.atom.signature in recursive:
            result.deltas.append(order(lits, set(), globals_of, first=idx))
    return result
