"""Queries: an atom with variables, answered from the model.

``decision(A, D)`` matches every fact of ``decision/2``; constants narrow the
match, a repeated variable requires equal arguments, ``_`` matches anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ProgramError, QueryError
from .parse import parse_atom
from .syntax import Minus, Num, Var, ground_value
from .terms import Term


@dataclass(frozen=True)
class Query:
    text: str
    predicate: str
    arity: int
    constants: tuple[tuple[int, Term], ...]  # positions that must equal a value
    variables: tuple[tuple[int, str], ...]  # named variables by position (first occurrence)
    repeats: tuple[tuple[int, int], ...]  # (position, earlier position) that must be equal

    @property
    def signature(self) -> tuple[str, int]:
        return (self.predicate, self.arity)

    def matches(self, facts: set[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        consts, repeats = self.constants, self.repeats
        if not consts and not repeats:
            return list(facts)
        return [
            f for f in facts if all(f[i] == v for i, v in consts) and all(f[i] == f[j] for i, j in repeats)
        ]

    def bindings(self, fact: tuple[Any, ...]) -> dict[str, Term]:
        return {name: fact[i] for i, name in self.variables}


def parse_query(text: str) -> Query:
    """Parse a query atom; raise QueryError with the column of the problem.

    >>> q = parse_query('loan(L, "ann", approved)')
    >>> q.signature, q.variables, q.constants
    (('loan', 3), ((0, 'L'),), ((1, 'ann'), (2, Const('approved'))))
    >>> parse_query("loan(L,")
    Traceback (most recent call last):
    ...
    entail.reasoning.errors.QueryError: ...
    """
    try:
        atom = parse_atom(text.strip())
    except ProgramError as exc:
        d = exc.diagnostics[0]
        raise QueryError(text, d.message, d.column) from None
    constants: list[tuple[int, Term]] = []
    variables: list[tuple[int, str]] = []
    repeats: list[tuple[int, int]] = []
    first: dict[str, int] = {}
    for i, arg in enumerate(atom.args):
        if isinstance(arg, Var):
            if arg.anonymous:
                continue
            if arg.name in first:
                repeats.append((i, first[arg.name]))
            else:
                first[arg.name] = i
                variables.append((i, arg.name))
            continue
        value = ground_value(arg)
        if value is None and isinstance(arg, Minus) and isinstance(arg.operand, Num):
            value = -arg.operand.value
        if value is None:
            raise QueryError(
                text,
                "query arguments must be variables, integers, strings or constants",
                arg.span.column,
            )
        constants.append((i, value))
    return Query(text.strip(), atom.predicate, atom.arity, tuple(constants), tuple(variables), tuple(repeats))
