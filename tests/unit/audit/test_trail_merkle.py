"""Merkle trees (RFC 6962 shape) and the row encoding: the level-by-level root
equals the RFC's recursive definition, every inclusion proof verifies and a
wrong one does not, and the encoding covers every stored column."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from entail.audit import merkle
from entail.audit.row_encoding import ENCODING, V2_COLUMNS, encode_row, encoding_sql
from entail.audit.schema import DECISIONS_TABLE


def rfc_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 verbatim (recursive), the reference."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(rfc_root(leaves[:k]), rfc_root(leaves[k:]))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33])
def test_root_and_every_inclusion_proof(n: int) -> None:
    leaves = [merkle.leaf_hash(f"row {i}".encode()) for i in range(n)]
    root = merkle.root_of(leaves)
    assert root == rfc_root(leaves)
    for i in range(n):
        path = merkle.inclusion_proof(leaves, i)
        assert merkle.root_from_proof(leaves[i], i, n, path) == root
        if n > 1:  # another leaf, index or path gives another root
            assert merkle.root_from_proof(leaves[(i + 1) % n], i, n, path) != root
            with pytest.raises(ValueError, match="proof is shorter"):
                merkle.root_from_proof(leaves[i], i, n, path[:-1])


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.leaf_hash(a + b) != merkle.node_hash(a, b)


def test_encoding_covers_every_column_and_is_canonical() -> None:
    # a column added to the table must get a new encoding version (docs/auditors.md)
    assert list(V2_COLUMNS) == DECISIONS_TABLE.column_names
    row: dict[str, Any] = dict.fromkeys(DECISIONS_TABLE.column_names)
    row.update(
        decision_id="dec_1",
        tenant="acme",
        ruleset_version=3,
        explain=True,
        facts='{"b": [[1]],  "a": [["é"]]}',
        completed_at="2026-11-20T10:00:00+00:00",
        datasets='[{"binding": "org", "name": "org", "version": 2, "hash": "ab"}]',
    )
    data = encode_row(row)
    head, body = data.split(b"\n", 1)
    assert head.decode() == ENCODING
    doc = json.loads(body)
    assert sorted(doc) == sorted(DECISIONS_TABLE.column_names)
    assert doc["facts"] == {"a": [["é"]], "b": [[1]]}
    assert doc["completed_at"] == "2026-11-20T10:00:00.000Z"
    assert "é".encode() in body  # UTF-8, not \\u escapes
    # the same value written differently encodes the same; any change does not
    assert encode_row({**row, "facts": '{"a":[["é"]],"b":[[1]]}'}) == data
    for column, value in [("facts", '{"a": [["e"]], "b": [[1]]}'), ("worker", "w2"), ("explain", False)]:
        assert encode_row({**row, column: value}) != data


def test_duckdb_encodes_rows_exactly_as_the_python_reference() -> None:
    """The roots are built from DuckDB's encoding (fast); the documented encoding is
    encode_row's. Tricky strings included; a control character whose escape has a
    hex letter falls back to Python (SQL gives NULL)."""
    from datetime import timedelta

    from trail_support import NOON, decision, filled_store

    from entail.audit.duckdb_store import _from_native
    from entail.audit.roots import row_encodings

    store = filled_store(5)
    tricky = decision(50, NOON + timedelta(hours=1))
    store.insert_decisions(
        [
            tricky.model_copy(update={"decision_id": 'dec_é"\\\n\u2028😀', "worker": "w\x01\x7f\t"}),
            tricky.model_copy(update={"decision_id": "dec_ctl\x1f"}),
        ]
    )
    cols = ", ".join(f'"{c}"' for c in DECISIONS_TABLE.column_names)
    found = store.fetch(f"SELECT {encoding_sql()}, {cols} FROM decisions ORDER BY decision_id")
    assert len(found) == 7
    fallbacks = 0
    for sql_encoding, *values in found:
        expected = encode_row(_from_native(DECISIONS_TABLE, values))
        if sql_encoding is None:
            fallbacks += 1
        else:
            assert sql_encoding.encode() == expected
    assert fallbacks == 1
    # and the store's row_encodings (SQL plus fallback) equal the reference for all
    every = dict(row_encodings(store, "tenant = ?", ["acme"]))
    for _, *values in found:
        row = _from_native(DECISIONS_TABLE, values)
        assert every[row["decision_id"]] == encode_row(row)
