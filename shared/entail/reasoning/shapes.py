"""Rule shapes: what planning and code generation of a rule depend on.

Two rules have the same shape when they differ only in predicate names and
constants (``r1(X, Y) :- e(X, Y), n(Y, 1).`` and ``r2(X, Y) :- e(X, Y),
n(Y, 2).``), with the same pattern of equal predicates and equal constants and
the same membership of their predicates in the stratum's recursive set. The
planner and the code generator give such rules the same plan and the same
function shape, so a program of thousands of similar rules plans and writes
each shape once and only instantiates it for the other rules (the compile
time of 20,000 one-line rules, bench ``compile-rules-20000``).

Only flat rules have a shape: atoms and comparisons over variables and
constants. Arithmetic and aggregates are planned and written rule by rule
(their generated code inlines numbers and helper functions).
"""

from __future__ import annotations

from dataclasses import dataclass

from .bindings import Signature
from .syntax import Comparison, Negative, Num, Positive, Rule, Str, Sym, TermNode, Var

Constant = Num | Str | Sym


@dataclass(frozen=True)
class RuleShape:
    """A rule's shape (``key``) and what fills its placeholders in this rule."""

    key: tuple[object, ...]
    predicates: tuple[Signature, ...]  # placeholder i -> this rule's signature
    constants: tuple[Constant, ...]  # placeholder i -> this rule's constant


def rule_shape(rule: Rule, recursive: set[Signature] | frozenset[Signature]) -> RuleShape | None:
    """The shape of a flat rule, or None for a rule with arithmetic or aggregates."""
    preds: dict[Signature, int] = {}
    consts: dict[tuple[str, object], int] = {}
    const_nodes: list[Constant] = []

    def term(t: TermNode) -> tuple[object, ...] | None:
        if isinstance(t, Var):
            return ("v", t.name, t.anonymous)
        if isinstance(t, Num):
            ckey: tuple[str, object] = ("n", t.value)
        elif isinstance(t, Str):
            ckey = ("s", t.value)
        elif isinstance(t, Sym):
            ckey = ("y", t.name)
        else:
            return None
        at = consts.get(ckey)
        if at is None:
            at = consts[ckey] = len(const_nodes)
            const_nodes.append(t)
        return ("c", at)

    def atom(predicate: str, args: tuple[TermNode, ...]) -> tuple[object, ...] | None:
        sig = (predicate, len(args))
        at = preds.get(sig)
        if at is None:
            at = preds[sig] = len(preds)
        out: list[object] = [at]
        for a in args:
            t = term(a)
            if t is None:
                return None
            out.append(t)
        return tuple(out)

    head = atom(rule.head.predicate, rule.head.args)
    if head is None:
        return None
    body: list[object] = []
    for lit in rule.body:
        if isinstance(lit, Positive | Negative):
            a = atom(lit.atom.predicate, lit.atom.args)
            if a is None:
                return None
            body.append(("+" if isinstance(lit, Positive) else "-", a))
        elif isinstance(lit, Comparison):
            left, right = term(lit.left), term(lit.right)
            if left is None or right is None:
                return None
            body.append((lit.op, left, right))
        else:
            return None
    signatures = tuple(preds)
    flags = tuple(sig in recursive for sig in signatures)
    return RuleShape((head, tuple(body), flags), signatures, tuple(const_nodes))
