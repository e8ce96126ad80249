"""A closure's relation kept grouped: per source, its targets as the bits of one int.

The model of a transitive-closure stratum (linear.py) as a set of 2-tuples costs
about 90 bytes a fact (a 56-byte tuple, 16 bytes of hash table at most 60%
full, and the table's old copy while it grows): 2.55M facts are 290 MiB before
anyone reads them. Kept grouped, ``p(x, z)`` is bit ``z`` of ``x``'s int over a
numbering of the step graph's nodes: 2,000 sources over 2,000 nodes are 500 KB.
The tuples are made only when the relation is iterated (``zip`` over
``itertools.compress``, all in C), so a caller that lists the answers holds
one copy of them, not two; membership is a dict lookup and a shift.

It is a read-only :class:`collections.abc.Set`: what reads a model (queries,
shown atoms, why-not, the generated code of later strata: ``in``, iteration,
truth) reads it like the set it stands for. Only the evaluation decides to
keep a relation this way, and only where nothing needs it as a ``set``
(no index on it, no materialised model, no proofs): see ``linear.close_bits``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from itertools import chain, compress, repeat
from typing import Any

# bin(bits)[:1:-1] is the bits as '0'/'1', lowest first; this maps them to bytes 0/1,
# the selectors itertools.compress wants
SELECTORS = bytes.maketrans(b"01", b"\x00\x01")


class ClosedRelation(Set[tuple[Any, ...]]):
    """``{(x, nodes[lo + i]) : rows[x] == (lo, bits), bit i of bits}`` (``keep`` 0), or
    with the columns the other way round (``keep`` 1: a left-linear closure passes
    its second column). ``lo``, the offset, keeps an int as short as the span of
    its targets in the numbering."""

    __slots__ = ("_ids", "_keep", "_len", "_nodes", "_rows")

    def __init__(
        self, rows: dict[Any, tuple[int, int]], nodes: list[Any], ids: dict[Any, int], keep: int
    ) -> None:
        self._rows = rows
        self._nodes = nodes
        self._ids = ids
        self._keep = keep
        self._len = sum(bits.bit_count() for _, bits in rows.values())

    def __len__(self) -> int:
        return self._len

    def __contains__(self, fact: object) -> bool:
        if not isinstance(fact, tuple) or len(fact) != 2:
            return False
        row = self._rows.get(fact[self._keep])
        i = self._ids.get(fact[1 - self._keep])
        if row is None or i is None or i < row[0]:
            return False
        return bool(row[1] >> (i - row[0]) & 1)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return chain.from_iterable(map(self._source_rows, self._rows.items()))

    def _source_rows(self, item: tuple[Any, tuple[int, int]]) -> Iterator[tuple[Any, ...]]:
        x, (lo, bits) = item
        selectors = bin(bits)[:1:-1].encode("ascii").translate(SELECTORS)
        # a slice, not islice: islice walks the `lo` nodes it skips, one by one
        targets = compress(self._nodes[lo : lo + len(selectors)], selectors)
        return zip(repeat(x), targets) if self._keep == 0 else zip(targets, repeat(x))

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> set[Any]:
        # what `|`, `&`, `-` of collections.abc.Set build: a plain set
        return set(it)

    def __repr__(self) -> str:
        return f"ClosedRelation({len(self._rows)} sources, {self._len} facts)"
