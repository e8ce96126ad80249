"""Helpers the generated rule functions call: clingo's integer semantics and aggregates."""

from __future__ import annotations

from typing import Any

from .terms import INF, INT_MAX, INT_MIN, SUP, Term, gt, lt, sort_key, wrap32

__all__ = ["NAMESPACE"]


def _div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as clingo (C) does."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _mod(a: int, b: int) -> int:
    """Remainder with the sign of the dividend, as clingo (C) does."""
    return a - b * _div(a, b)


def _le(a: Term, b: Term) -> bool:
    return not gt(a, b)


def _ge(a: Term, b: Term) -> bool:
    return not lt(a, b)


def _agg_count(elements: Any) -> int:
    return len(elements)


def _agg_sum(elements: Any) -> int:
    total = 0
    for tup in elements:
        w = tup[0]
        if type(w) is int:
            total += w
    return wrap32(total)


def _agg_sum_guard(elements: Any) -> int:
    """``#sum`` compared in a guard: clingo clamps the total to the 32-bit range there
    (an assigned ``N = #sum{..}`` wraps), so ``#sum{..} >= 2147483647`` holds when the
    total overflows."""
    total = 0
    for tup in elements:
        w = tup[0]
        if type(w) is int:
            total += w
    return min(max(total, INT_MIN), INT_MAX)


def _agg_min(elements: Any) -> Term:
    if not elements:
        return SUP
    best: Term = min((tup[0] for tup in elements), key=sort_key)
    return best


def _agg_max(elements: Any) -> Term:
    if not elements:
        return INF
    best: Term = max((tup[0] for tup in elements), key=sort_key)
    return best


def _flat(chain: Any) -> list[Any]:
    """The values a split rule moved into its chain ``(previous, (v, ...))``, in order."""
    parts: list[Any] = []
    while chain is not None:
        chain, part = chain
        parts.append(part)
    out: list[Any] = []
    for part in reversed(parts):
        out.extend(part)
    return out


NAMESPACE: dict[str, Any] = {
    "_flat": _flat,
    "_wrap": wrap32,
    "_div": _div,
    "_mod": _mod,
    "_lt": lt,
    "_le": _le,
    "_gt": gt,
    "_ge": _ge,
    "_agg_count": _agg_count,
    "_agg_sum": _agg_sum,
    "_agg_sum_guard": _agg_sum_guard,
    "_agg_min": _agg_min,
    "_agg_max": _agg_max,
}


def evaluate_term(term: Any, env: dict[str, Term]) -> Term | None:
    """Value of a syntax term under ``env`` with clingo's semantics; None if undefined."""
    from .syntax import BinOp, Minus, Num, Str, Sym, Var
    from .terms import Const

    if isinstance(term, Num):
        return term.value
    if isinstance(term, Str):
        return term.value
    if isinstance(term, Sym):
        return Const(term.name)
    if isinstance(term, Var):
        return env.get(term.name)
    if isinstance(term, Minus):
        v = evaluate_term(term.operand, env)
        return wrap32(-v) if type(v) is int else None
    assert isinstance(term, BinOp)
    a = evaluate_term(term.left, env)
    b = evaluate_term(term.right, env)
    if type(a) is not int or type(b) is not int:
        return None
    assert isinstance(a, int) and isinstance(b, int)
    if term.op == "+":
        return wrap32(a + b)
    if term.op == "-":
        return wrap32(a - b)
    if term.op == "*":
        return wrap32(a * b)
    if b == 0:
        return None
    if term.op == "/":
        return wrap32(_div(a, b))
    return wrap32(_mod(a, b))
