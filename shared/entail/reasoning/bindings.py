"""Which variables a rule's literals bind: the helpers the analyser, the planner,
the code generator and the SQL compiler share.

gringo's binding rules, written once: a positive atom binds its variables (and
inverts a linear term such as ``X+1``), an ``=`` comparison assigns one side from
the other, and an aggregate with an ``=`` guard assigns its guard variable once
its global variables are bound.

>>> from entail.reasoning.parse import parse
>>> rule = parse("q(X, Y) :- p(X+1), Y = X * 2.").rules[0]
>>> sorted(binding_closure(rule.body, set(), aggregate_globals(rule)))
['X', 'Y']
"""

from __future__ import annotations

from collections.abc import Iterable

from .syntax import (
    Aggregate,
    AggregateElement,
    BinOp,
    Comparison,
    ConditionLiteral,
    Literal,
    Minus,
    Negative,
    Num,
    Positive,
    Rule,
    TermNode,
    Var,
    term_vars,
)

Signature = tuple[str, int]
AggGlobals = dict[int, set[str]]  # id(aggregate) -> its global variables, per rule


def sig_text(sig: Signature) -> str:
    """The ``name/arity`` form of a signature.

    >>> sig_text(("path", 2))
    'path/2'
    """
    return f"{sig[0]}/{sig[1]}"


def is_arith(term: TermNode) -> bool:
    return isinstance(term, BinOp | Minus)


def binding_closure(
    literals: Iterable[Literal | ConditionLiteral], bound: set[str], globals_of: AggGlobals
) -> set[str]:
    """Variables bound by positive atoms and assignments, to a fixpoint.

    A worklist: a literal is looked at again only when one of its variables
    becomes bound, so the cost is linear in the size of the rule even when
    assignments are written in reverse order.
    """
    bound = set(bound)
    pending = list(literals)
    watchers: dict[str, list[Literal | ConditionLiteral]] = {}
    for lit in pending:
        if isinstance(lit, Comparison | Aggregate):
            for v in literal_vars(lit):
                watchers.setdefault(v.name, []).append(lit)
    while pending:
        lit = pending.pop()
        new = binds(lit, bound, globals_of) - bound
        if new:
            bound |= new
            for name in new:
                pending.extend(watchers.get(name, ()))
    return bound


def binds(lit: Literal | ConditionLiteral, bound: set[str], globals_of: AggGlobals) -> set[str]:
    """Variables ``lit`` binds once the variables in ``bound`` are bound.

    >>> from entail.reasoning.parse import parse
    >>> body = parse("h :- p(X), Y = X + 1, #count{Z : q(Z)} = N.").rules[0].body
    >>> [sorted(binds(lit, {"X"}, {})) for lit in body]
    [['X'], ['Y'], ['N']]
    """
    if isinstance(lit, Positive):
        out = set()
        for a in lit.atom.args:
            if isinstance(a, Var):
                out.add(a.name)
            elif (lin := linear(a)) is not None:
                out.add(lin[0])
        return out
    if isinstance(lit, Comparison) and lit.op == "=":
        solved = solve_equation(lit, bound)
        return set() if solved is None else {solved[0]}
    if isinstance(lit, Aggregate):
        name = assigned_var(lit, globals_of)
        if name is not None and all(v in bound for v in aggregate_needs(lit, name, globals_of)):
            return {name}
    return set()


def solve_equation(lit: Comparison, bound: set[str]) -> tuple[str, TermNode, TermNode] | None:
    """``(X, target, source)`` when ``lit`` (an ``=``) can assign ``X``, else ``None``.

    One side (the target) is ``X`` or linear in ``X`` (``m*X + n``, see :func:`linear`)
    with ``X`` unbound, and every variable of the other side (the source) is bound:
    gringo solves ``X+1 = Y`` for ``X`` as it inverts ``p(X+1)``. The left side is
    tried first, as for a plain assignment.
    """
    for target, source in ((lit.left, lit.right), (lit.right, lit.left)):
        lin = linear(target)
        if lin is not None and lin[0] not in bound:
            if all(v.name in bound for v in term_vars(source)):
                return lin[0], target, source
    return None


def linear(term: TermNode) -> tuple[str, int, int] | None:
    """``(X, m, n)`` when ``term`` is ``m*X + n`` with ``m != 0``, else ``None``.

    gringo inverts such a term in a positive body atom to bind ``X`` (``p(X+1)``
    matched against ``p(5)`` binds ``X = 4``). The term must hold exactly one
    occurrence of one named variable, combined with integers by ``+ - *`` and
    unary minus: ``(X+1)*2`` is linear, ``X+X``, ``X*X``, ``X/2`` and ``X*0`` are not.

    >>> from entail.reasoning.parse import parse_atom
    >>> [linear(parse_atom(f"p({t})").args[0]) for t in ("(X+1)*2", "-X", "X*X", "7")]
    [('X', 2, 2), ('X', -1, 0), None, None]
    """
    found = _linear(term)
    if found is None or found[0] is None or found[1] == 0:
        return None
    return found[0], found[1], found[2]


def _linear(term: TermNode) -> tuple[str | None, int, int] | None:
    if isinstance(term, Num):
        return None, 0, term.value
    if isinstance(term, Var):
        return None if term.anonymous else (term.name, 1, 0)
    if isinstance(term, Minus):
        inner = _linear(term.operand)
        return None if inner is None else (inner[0], -inner[1], -inner[2])
    if not isinstance(term, BinOp) or term.op not in "+-*":
        return None
    left, right = _linear(term.left), _linear(term.right)
    if left is None or right is None or (left[0] is not None and right[0] is not None):
        return None
    var = left[0] if left[0] is not None else right[0]
    if term.op == "+":
        return var, left[1] + right[1], left[2] + right[2]
    if term.op == "-":
        return var, left[1] - right[1], left[2] - right[2]
    factor, other = (right[2], left) if right[0] is None else (left[2], right)
    if factor == 0 and var is not None:
        return None
    return var, other[1] * factor, other[2] * factor


def assigned_var(agg: Aggregate, globals_of: AggGlobals) -> str | None:
    """The variable an aggregate can assign (``N = #count{..}`` / ``#count{..} = N``), if any.

    As in gringo, a guard variable that also occurs inside the aggregate's elements
    is global there and must be bound by another literal: ``#count{X : e(X)} = X``
    does not bind ``X``.
    """
    for guard in (agg.left, agg.right):
        if guard is not None and guard.op == "=" and isinstance(guard.term, Var):
            if (agg.left is None) != (agg.right is None):
                name = guard.term.name
                return None if name in globals_of.get(id(agg), set()) else name
    return None


def aggregate_needs(agg: Aggregate, assigned: str | None, globals_of: AggGlobals) -> set[str]:
    """Named variables of an aggregate that must be bound before it is evaluated:
    its guard variables (except the one it assigns) and its global variables."""
    needed = set(globals_of.get(id(agg), set()))
    for guard in (agg.left, agg.right):
        if guard is not None:
            needed |= {v.name for v in term_vars(guard.term)}
    needed.discard(assigned or "")
    return needed


def aggregate_global_vars(rule: Rule, agg: Aggregate, outside: set[str] | None = None) -> set[str]:
    """Element variables of ``agg`` that occur elsewhere in ``rule``."""
    if outside is None:
        outside = outside_vars(rule)
    inside = {v.name for el in agg.elements for v in element_vars(el)}
    return inside & outside


def outside_vars(rule: Rule) -> set[str]:
    # variables inside the elements of any aggregate are local to it unless they
    # also occur in the head, a plain body literal or an aggregate guard
    outside: set[str] = {v.name for v in rule.head.vars()}
    for lit in rule.body:
        if isinstance(lit, Aggregate):
            for guard in (lit.left, lit.right):
                if guard is not None:
                    outside |= {v.name for v in term_vars(guard.term)}
            continue
        outside |= {v.name for v in literal_vars(lit)}
    return outside


def element_vars(el: AggregateElement) -> list[Var]:
    out = [v for t in el.terms for v in term_vars(t)]
    for c in el.condition:
        out.extend(literal_vars(c))
    return out


def literal_vars(lit: Literal | ConditionLiteral) -> list[Var]:
    if isinstance(lit, Positive | Negative):
        return lit.atom.vars()
    if isinstance(lit, Comparison):
        return term_vars(lit.left) + term_vars(lit.right)
    out: list[Var] = []
    for guard in (lit.left, lit.right):
        if guard is not None:
            out.extend(term_vars(guard.term))
    for el in lit.elements:
        out.extend(element_vars(el))
    return out


def aggregate_globals(rule: Rule) -> AggGlobals:
    """For each aggregate of the rule (by id), its global variables."""
    aggregates = [lit for lit in rule.body if isinstance(lit, Aggregate)]
    if not aggregates:
        return {}
    outside = outside_vars(rule)  # the same for every aggregate: computed once
    return {id(lit): aggregate_global_vars(rule, lit, outside) for lit in aggregates}
