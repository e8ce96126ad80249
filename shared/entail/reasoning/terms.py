"""Ground terms: how values are represented, ordered, printed and serialised.

Values are plain Python objects so the evaluator's inner loops stay cheap:
``int`` for integers, ``str`` for strings and :class:`Const` for symbolic
constants (interned, so equality is identity). The special constants ``#inf``
and ``#sup`` (results of ``#max``/``#min`` over empty sets) are ``Const``
instances ordered below and above everything else, as in clingo.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, ClassVar

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


class Const:
    """A symbolic constant such as ``approved``. Interned: ``Const("a") is Const("a")``."""

    __slots__ = ("__weakref__", "name", "rank")
    _interned: ClassVar[dict[str, Const]] = {}
    name: str
    rank: int

    def __new__(cls, name: str) -> Const:
        existing = cls._interned.get(name)
        if existing is not None:
            return existing
        self = object.__new__(cls)
        self.name = name
        # rank places #inf first and #sup last in the total term order
        self.rank = 0 if name == "#inf" else 4 if name == "#sup" else 2
        cls._interned[name] = self
        return self

    def __repr__(self) -> str:
        return f"Const({self.name!r})"

    def __str__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple[Any, ...]:
        return (Const, (self.name,))


INF = Const("#inf")
SUP = Const("#sup")

Term = int | str | Const


def wrap32(value: int) -> int:
    """Two's complement 32-bit wrap-around: clingo's integers are 32-bit."""
    return ((value - INT_MIN) & 0xFFFFFFFF) + INT_MIN


def rank(value: Term) -> int:
    """Position of a term's type in gringo's total order: #inf < int < const < str < #sup."""
    if type(value) is int:
        return 1
    if type(value) is str:
        return 3
    return value.rank  # type: ignore[union-attr]


def sort_key(value: Term) -> tuple[int, Any]:
    """Key realising gringo's total order of terms."""
    if type(value) is int:
        return (1, value)
    if type(value) is str:
        return (3, value)
    assert isinstance(value, Const)
    return (value.rank, value.name)


def compare(a: Term, b: Term) -> int:
    """-1, 0 or 1 as ``a`` is below, equal to or above ``b`` in the term order."""
    ta = type(a)
    if ta is type(b) and ta is not Const:
        return -1 if a < b else (1 if a > b else 0)  # type: ignore[operator]
    ka, kb = sort_key(a), sort_key(b)
    return -1 if ka < kb else (1 if ka > kb else 0)


def lt(a: Term, b: Term) -> bool:
    return compare(a, b) < 0


def le(a: Term, b: Term) -> bool:
    return compare(a, b) <= 0


def gt(a: Term, b: Term) -> bool:
    return compare(a, b) > 0


def ge(a: Term, b: Term) -> bool:
    return compare(a, b) >= 0


def quote(text: str) -> str:
    """A string literal as clingo prints it (escapes exactly ``\\``, ``"`` and newline)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def format_term(value: Term) -> str:
    """A term as clingo prints it: ``1``, ``"a"``, ``b``."""
    if type(value) is str:
        return quote(value)
    return str(value)


def format_atom(predicate: str, args: tuple[Term, ...]) -> str:
    """An atom as clingo prints it: ``p(1,"a",b)``; a 0-ary atom is its name."""
    if not args:
        return predicate
    # str() prints ints and constants; only strings need quoting (this is a hot path)
    return f"{predicate}({','.join([quote(a) if type(a) is str else str(a) for a in args])})"


def format_atoms(predicate: str, rows: Sequence[tuple[Term, ...]]) -> list[str]:
    """:func:`format_atom` of each row of one predicate (all of one arity).

    Rows of integers go through one ``%d`` template in C (printing half a
    million atoms was a third of an ``entail run``); rows without strings
    through one ``%s`` template.
    """
    if not rows:
        return []
    arity = len(rows[0])
    if arity == 0:
        return [predicate] * len(rows)
    if _all_ints(rows[0]):
        try:  # '%d' refuses a str or a constant: then the check below decides
            return list(map(_template(predicate, arity, "%d").__mod__, rows))
        except TypeError:
            pass
    if str not in set(map(type, chain.from_iterable(rows))):
        return list(map(_template(predicate, arity, "%s").__mod__, rows))
    return [format_atom(predicate, row) for row in rows]


def format_atoms_text(predicate: str, rows: Sequence[tuple[Term, ...]]) -> str:
    """:func:`format_atoms` as one text, each atom followed by a newline (what ``entail run`` prints).

    Rows of integers are formatted by one ``%`` of a template repeated per row
    over all their values at once: no string per atom, no join.
    """
    if not rows:
        return ""
    arity = len(rows[0])
    if arity and _all_ints(rows[0]):
        try:
            template = _template(predicate, arity, "%d") + "\n"
            return template * len(rows) % tuple(chain.from_iterable(rows))
        except TypeError:
            pass
    return "\n".join(format_atoms(predicate, rows)) + "\n"


def _template(predicate: str, arity: int, conversion: str) -> str:
    return f"{predicate.replace('%', '%%')}({','.join([conversion] * arity)})"


def _all_ints(row: tuple[Term, ...]) -> bool:
    return all(type(value) is int for value in row)


def to_json(value: Term) -> Any:
    """Typed JSON of a term: int, string, or ``{"const": name}``."""
    if type(value) is int or type(value) is str:
        return value
    assert isinstance(value, Const)
    return {"const": value.name}


def from_json(value: Any) -> Term:
    """Inverse of :func:`to_json`."""
    if isinstance(value, dict):
        return Const(value["const"])
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"not a typed JSON term: {value!r}")
    return value


def row_key(row: tuple[Term, ...]) -> tuple[tuple[int, Any], ...]:
    return tuple(sort_key(v) for v in row)


# below this many rows one native sort is as fast as anything else
_BUCKETED_FROM = 4096
_GET_HEAD = itemgetter(0)


def sort_rows(rows: Any) -> list[tuple[Term, ...]]:
    """Tuples (all of one arity) in canonical (term) order.

    Native tuple comparison agrees with the term order whenever it only ever
    compares values of the same type (int or str); it raises TypeError on a
    mixed comparison or a constant, and then the exact key is used.
    """
    try:
        if len(rows) >= _BUCKETED_FROM:
            return _sort_large(rows)
        return sorted(rows)
    except TypeError:
        return sorted(rows, key=row_key)


def _sort_large(rows: Collection[tuple[Term, ...]]) -> list[tuple[Term, ...]]:
    """:func:`sort_rows` of a large relation; raises TypeError where a native comparison does.

    ``sorted`` on tuples pays a generic equality and a generic comparison
    whenever two rows share their first value (the transitive closure of a
    1000-node chain: 0.4 s for its 499,500 rows). Grouping the rows by their
    first value first and sorting each group by the rest compares only values,
    each comparison one C call (0.1 s). Only where many rows share a first value:
    with mostly distinct first values the grouping costs more than it saves.
    """
    arity = len(next(iter(rows)))
    if arity < 2:
        return sorted(rows)
    heads = set(map(_GET_HEAD, rows))
    if len(heads) == len(rows):
        return sorted(rows, key=_GET_HEAD)  # no ties: the first value decides
    if len(heads) * 8 > len(rows):
        return sorted(rows)
    groups: dict[Term, list[tuple[Term, ...]]] = {head: [] for head in heads}
    for row in rows:
        groups[row[0]].append(row)
    rest = itemgetter(*range(1, arity))
    ordered: list[tuple[Term, ...]] = []
    for head in sorted(heads):  # mixed types or a constant: TypeError, as in sort_rows
        group = groups[head]
        if len(group) > 1:
            group.sort(key=rest)
        ordered += group
    return ordered
