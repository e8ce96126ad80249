"""Merkle trees over audit rows, in the shape of RFC 6962 (Certificate Transparency).

Why this shape: it is the best-known published construction, so an auditor can
check it with any CT library or the dozen lines of ``tools/audit_verifier``:

- leaf hash  = SHA-256(0x00 || leaf bytes)
- node hash  = SHA-256(0x01 || left || right)
- the tree over n leaves splits at k, the largest power of two below n;
  the root of zero leaves is SHA-256 of the empty string.

The 0x00/0x01 prefixes keep a leaf from ever passing for an inner node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The root over leaf *hashes*, computed level by level (no recursion: 1M
    leaves would otherwise cost a call per node).

    Level by level gives RFC 6962's root too: pairing from the left and carrying
    an odd last node up unchanged builds exactly the left-full tree of the split
    rule."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 audit path of leaf ``index`` (sibling hashes, bottom up)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)} leaves")
    path: list[bytes] = []
    lo, hi = 0, len(leaves)
    # top down, then reversed: the audit path lists siblings from the leaf up
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(root_of(leaves[lo + k : hi]))
            hi = lo + k
        else:
            path.append(root_of(leaves[lo : lo + k]))
            lo = lo + k
    path.reverse()
    return path


def root_from_proof(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root a leaf hash and its audit path imply (RFC 9162 §2.1.3.2);
    ValueError when the path has the wrong length for ``index`` in ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of {size} leaves")
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            raise ValueError("the proof is longer than the tree is deep")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the proof is shorter than the tree is deep")
    return r
