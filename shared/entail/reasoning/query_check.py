"""Diagnostics about queries: the ones that can never have an answer, and hints
when one has none.

A query naming a predicate that neither the program nor the case facts hold, or
a known predicate with another number of arguments, answers nothing without a
word; :func:`query_diagnostics` says so, with the column in the query text and
the closest known predicate. When a query has no answers but the model holds
atoms of its predicate that differ only in writing a constant where the model
has a string (``approved`` vs ``"approved"``) or the reverse,
:func:`zero_answer_hints` names them: the commonest silent empty answer.

>>> known = [("path", 2), ("edge", 2)]
>>> for d in query_diagnostics("pth(X, Y)", known):
...     print(d.code, d.column, d.message)
query-unknown-predicate 1 predicate 'pth/2' is neither in the program nor in the case facts:
the query has no answers; did you mean 'path/2'?
>>> for d in query_diagnostics("path(X)", known):
...     print(d.code, d.column, d.message)
query-arity-mismatch 1 predicate 'path' has 2 argument(s), not 1:
the query has no answers; did you mean 'path/2'?
>>> query_diagnostics("path(1, X)", known)
[]
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Set
from typing import Any

from .bindings import Signature, sig_text
from .errors import Diagnostic
from .parse import parse_atom
from .query import Query
from .terms import Const, format_atom, format_term, sort_rows

UNKNOWN_PREDICATE = "query-unknown-predicate"
ARITY_MISMATCH = "query-arity-mismatch"
CONSTANT_OR_STRING = "query-constant-or-string"
HINT_EXAMPLES = 3  # atoms quoted in one zero-answer hint


def query_diagnostics(text: str, known: Iterable[Signature], filename: str = "<query>") -> list[Diagnostic]:
    """Warnings for a query (already known to parse) that cannot have an answer.

    ``known`` holds every signature the model can contain: the program's, its
    ``#defined`` ones and the case facts'. Positions are in ``text`` as given.
    """
    stripped = text.strip()
    offset = len(text) - len(text.lstrip())
    atom = parse_atom(stripped)
    sig = atom.signature
    arities: dict[str, set[int]] = {}
    for name, arity in known:
        arities.setdefault(name, set()).add(arity)
    if atom.arity in arities.get(atom.predicate, ()):
        return []
    column = atom.span.column + offset
    width = len(atom.predicate)
    if atom.predicate in arities:
        others = sorted(arities[atom.predicate])
        code = ARITY_MISMATCH
        message = (
            f"predicate '{atom.predicate}' has {' or '.join(map(str, others))} argument(s), "
            f"not {atom.arity}: the query has no answers"
        )
        suggestion: Signature | None = (atom.predicate, others[0])
    else:
        code = UNKNOWN_PREDICATE
        message = (
            f"predicate '{sig_text(sig)}' is neither in the program nor in the case facts: "
            "the query has no answers"
        )
        suggestion = closest(sig, {(n, a) for n, ars in arities.items() for a in ars})
    if suggestion is not None:
        message += f"; did you mean '{sig_text(suggestion)}'?"
    return [Diagnostic(code, message, 1, column, "warning", column + width, filename, text.rstrip("\n"))]


def closest(sig: Signature, known: Set[Signature]) -> Signature | None:
    """The known signature whose name is most like ``sig``'s (same arity first).

    >>> closest(("aproved", 1), {("approved", 1), ("approved", 2), ("declined", 1)})
    ('approved', 1)
    >>> closest(("zzz", 1), {("approved", 1)}) is None
    True
    """
    names = sorted({name for name, _ in known})
    found = difflib.get_close_matches(sig[0], names, n=1, cutoff=0.6)
    if not found:
        return None
    arities = sorted(a for n, a in known if n == found[0])
    return (found[0], sig[1] if sig[1] in arities else arities[0])


def _loose(value: Any) -> Any:
    # a constant and a string with the same text compare equal here, and only here
    return value.name if isinstance(value, Const) else value


def zero_answer_hints(
    query: Query, rows: Iterable[tuple[Any, ...]], filename: str = "<query>"
) -> list[Diagnostic]:
    """For a query with no answers: the model's atoms of its predicate that would
    match if a constant of the query were a string or a string a constant.

    >>> from entail.reasoning.query import parse_query
    >>> q = parse_query('decision("ann", D)')
    >>> for d in zero_answer_hints(q, {(Const("ann"), Const("approved"))}):
    ...     print(d.column, d.message)
    10 no answers, but the model holds decision(ann,approved): the model has the constant ann
    where the query has the string "ann"; write decision(ann, D) to match it
    """
    consts = [(i, v) for i, v in query.constants if isinstance(v, str | Const)]
    if not consts:
        return []
    loose = [(i, _loose(v)) for i, v in consts]
    # the query's other constants (integers) must hold exactly: a hint is about a
    # string written for a constant or the reverse, nothing else
    exact = [(i, v) for i, v in query.constants if not isinstance(v, str | Const)]
    near = sort_rows(
        [
            row
            for row in rows
            if all(_loose(row[i]) == v for i, v in loose)
            and all(row[i] == v for i, v in exact)
            and all(row[i] == row[j] for i, j in query.repeats)
        ]
    )
    if not near:
        return []
    more = len(near) - HINT_EXAMPLES
    near = near[:HINT_EXAMPLES]
    first = near[0]
    differs = [(i, v) for i, v in consts if first[i] != v]
    if not differs:  # the row matches the query: not a query without answers
        return []
    what = "; ".join(
        f"the model has {_kind(first[i])} {format_term(first[i])} where the query has "
        f"{_kind(v)} {format_term(v)}"
        for i, v in differs
    )
    atoms = ", ".join(format_atom(query.predicate, r) for r in near)
    if more > 0:
        atoms += f" and {more} more"
    atom = parse_atom(query.text)
    args = [str(a) for a in atom.args]
    for i, _ in differs:
        args[i] = format_term(first[i])
    fixed = f"{query.predicate}({', '.join(args)})"
    message = f"no answers, but the model holds {atoms}: {what}; write {fixed} to match it"
    span = atom.args[differs[0][0]].span
    end = span.end_column if span.end_column is not None else span.column + len(args[differs[0][0]])
    return [Diagnostic(CONSTANT_OR_STRING, message, 1, span.column, "warning", end, filename, query.text)]


def _kind(value: Any) -> str:
    return "the constant" if isinstance(value, Const) else "the string"
