"""The term encoding: every ground term is one signed 64-bit integer.

The SQL path stores each argument of each atom as a single ``BIGINT``/``INT64``
column whose numeric order *is* gringo's total order of terms
(docs/decisions/0005-sql-term-encoding.md):

=================  ===========================================  ==========================
term               code                                         why
=================  ===========================================  ==========================
``#inf``           ``-2**40``                                   below every integer
integers           the integer itself (``-2**31 .. 2**31-1``)   arithmetic works on codes
constants, strings ``2**32 + rank`` in the symbol dictionary     ranks: constants by name,
                                                                then strings by bytes
``#sup``           ``2**40``                                    above every symbol
=================  ===========================================  ==========================

So ``=``, ``<`` and ``GROUP BY`` on codes are the language's comparisons and
set semantics, joins are on one integer column, and "is an integer" is a range
test. Rules never create symbols (there are no string operations), so the
dictionary is complete once the program's and the inputs' symbols are in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..terms import INF, INT_MAX, INT_MIN, SUP, Const, Term

SYMBOL_BASE = 2**32
INF_CODE = -(2**40)
SUP_CODE = 2**40
KIND_CONST = 0
KIND_STRING = 1


@dataclass(frozen=True)
class SymbolTable:
    """The dictionary of constants and strings, in term order.

    ``codes[(kind, text)]`` is the code of a symbol; ``symbols[code - SYMBOL_BASE]``
    inverts it.
    """

    symbols: tuple[tuple[int, str], ...]

    @classmethod
    def build(cls, entries: set[tuple[int, str]]) -> SymbolTable:
        # Python orders str by code point, which is UTF-8 byte order: clingo's string order
        return cls(tuple(sorted(entries)))

    def code_map(self) -> dict[tuple[int, str], int]:
        return {entry: SYMBOL_BASE + i for i, entry in enumerate(self.symbols)}


def is_int_sql(expr: str) -> str:
    """SQL condition: the code is an integer term."""
    return f"({expr} BETWEEN {INT_MIN} AND {INT_MAX})"


def encode(value: Term, codes: dict[tuple[int, str], int]) -> int:
    """Code of a Python term (``int``, ``str`` or :class:`Const`)."""
    if type(value) is int:
        return value
    if type(value) is str:
        return codes[(KIND_STRING, value)]
    assert isinstance(value, Const)
    if value is INF:
        return INF_CODE
    if value is SUP:
        return SUP_CODE
    return codes[(KIND_CONST, value.name)]


def decode(code: int, symbols: tuple[tuple[int, str], ...]) -> Term:
    """Python term of a code (inverse of :func:`encode`)."""
    if INT_MIN <= code <= INT_MAX:
        return code
    if code == INF_CODE:
        return INF
    if code == SUP_CODE:
        return SUP
    kind, text = symbols[code - SYMBOL_BASE]
    return text if kind == KIND_STRING else Const(text)
