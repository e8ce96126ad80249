#!/usr/bin/env python3
"""Standalone verifier of Entail's audit trail (docs/auditors.md).

Needs Python 3.11+ and the ``cryptography`` package, nothing from Entail: it
re-implements the published row encodings (``entail.row.v1``, and
``entail.row.v2`` for rows that read datasets), the Merkle
hashing (RFC 6962) and the signed statement (``entail.root.v1``) from their
descriptions, so a match means the trail agrees with the documents, not with
Entail's code.

    verify.py inclusion PROOF.json --key KEY.pem
        one decision: the row gives the leaf, the path gives the root, the key
        signed the root.
    verify.py export DIR --keys KEYDIR
        a whole export (``entail audit export``): every root recomputed from the
        exported rows, every signature checked.

Exit status 0 when everything verifies, 1 when anything does not (the first
failure is printed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

ROW_PREFIX = b"entail.row.v1\n"
# v2: v1's columns plus ``datasets`` (the dataset versions a decision read), for a
# row whose ``datasets`` is not null; a row without datasets is encoded as v1
ROW_PREFIX_V2 = b"entail.row.v2\n"


def row_prefix(doc: dict[str, Any]) -> bytes:
    """The prefix a row's document is encoded under (docs/auditors.md)."""
    return ROW_PREFIX_V2 if doc.get("datasets") is not None else ROW_PREFIX


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash, by the split rule of the RFC."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = leaves
    while len(level) > 1:
        pairs = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: verifying an inclusion proof."""
    if index >= size:
        raise ValueError("leaf index outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("audit path too long")
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
        raise ValueError("audit path too short")
    return r


def key_id(pem: str) -> str:
    key = serialization.load_pem_public_key(pem.encode())
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def signature_ok(statement: dict[str, Any], signature_b64: str, pem: str) -> bool:
    message = canonical(statement)
    signature = base64.b64decode(signature_b64)
    key = serialization.load_pem_public_key(pem.encode())
    try:
        if statement["algorithm"] == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
            return True
        if statement["algorithm"] == "ecdsa-p256-sha256" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False


class Failure(Exception):
    pass


def check_statement(statement: dict[str, Any], signature: str, keys: dict[str, str]) -> None:
    if statement.get("v") != "entail.root.v1":
        raise Failure(f"unknown statement version {statement.get('v')!r}")
    pem = keys.get(statement["key_id"])
    if pem is None:
        raise Failure(f"no public key with id {statement['key_id']}")
    if key_id(pem) != statement["key_id"]:
        raise Failure(f"the key file for {statement['key_id']} holds another key")
    if not signature_ok(statement, signature, pem):
        raise Failure(f"root {statement['day']}#{statement['seq']}: bad signature")


def verify_inclusion(proof: dict[str, Any], keys: dict[str, str]) -> str:
    row = proof["row_encoding"].encode("utf-8")
    head, _, body = row.partition(b"\n")
    if head + b"\n" not in (ROW_PREFIX, ROW_PREFIX_V2):
        raise Failure("the row is not an entail.row.v1 or entail.row.v2 encoding")
    doc = json.loads(body)
    if canonical(doc) != body or row_prefix(doc) != head + b"\n":
        raise Failure("the row encoding is not canonical")
    if head + b"\n" == ROW_PREFIX_V2 and "datasets" not in doc:
        raise Failure("an entail.row.v2 row without its datasets")
    if head + b"\n" == ROW_PREFIX and "datasets" in doc:
        raise Failure("an entail.row.v1 row with a datasets column")
    if doc["decision_id"] != proof["decision_id"]:
        raise Failure("the row is another decision's")
    leaf = leaf_hash(row)
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    root = root_from_path(leaf, proof["leaf_index"], proof["tree_size"], path)
    statement = json.loads(proof["root"]["statement"])
    check_statement(statement, proof["root"]["signature"], keys)
    if root.hex() != statement["root_hash"]:
        raise Failure(f"the audit path gives root {root.hex()}, the signed root is {statement['root_hash']}")
    if statement["leaf_count"] != proof["tree_size"]:
        raise Failure("the tree size differs from the signed leaf count")
    if statement["tenant"] != doc["tenant"] or statement["day"] != doc["completed_at"][:10]:
        raise Failure("the signed root is for another tenant or day")
    where = f"leaf {proof['leaf_index']} of signed root {statement['root_hash']}"
    return f"decision {proof['decision_id']} is {where}"


def in_window(row: dict[str, Any], statement: dict[str, Any]) -> bool:
    """The row belongs to the root: its tenant, its UTC day, inserted in the window.
    Timestamps share one fixed format (…T10:00:00.000Z), so text order is time order."""
    lo, hi = statement["inserted_from"], statement["inserted_to"]
    at = row["inserted_at"]
    return (
        row["tenant"] == statement["tenant"]
        and row["completed_at"][:10] == statement["day"]
        and (lo is None or at >= lo)
        and at < hi
    )


def verify_export(directory: Path, keys: dict[str, str]) -> str:
    roots = [json.loads(line) for line in (directory / "roots.jsonl").read_text().splitlines() if line]
    rows = []
    for line in (directory / "rows.jsonl").read_text(encoding="utf-8").splitlines():
        if not line:
            continue
        data = line.encode("utf-8")
        doc = json.loads(data)
        if canonical(doc) != data:
            raise Failure(f"row {doc.get('decision_id')} is not in canonical form")
        if (row_prefix(doc) == ROW_PREFIX) == ("datasets" in doc):
            raise Failure(f"row {doc.get('decision_id')}: its columns are not its encoding's")
        rows.append((doc, leaf_hash(row_prefix(doc) + data)))
    covered = 0
    for root in roots:
        statement = json.loads(root["statement"])
        check_statement(statement, root["signature"], keys)
        mine = sorted((r["decision_id"], h) for r, h in rows if in_window(r, statement))
        computed = merkle_root([h for _, h in mine])
        if computed.hex() != statement["root_hash"] or len(mine) != statement["leaf_count"]:
            raise Failure(
                f"root {statement['tenant']} {statement['day']}#{statement['seq']}: the exported rows give "
                f"{computed.hex()} over {len(mine)} rows; signed {statement['root_hash']} over "
                f"{statement['leaf_count']}"
            )
        covered += len(mine)
    return f"{len(roots)} signed root(s) verified over {covered} of {len(rows)} exported row(s)"


def load_keys(paths: list[Path]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for p in paths:
        for f in sorted(p.glob("*.pem")) if p.is_dir() else [p]:
            pem = f.read_text()
            keys[key_id(pem)] = pem
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("inclusion", help="verify one decision's inclusion proof")
    one.add_argument("proof", type=Path)
    one.add_argument("--key", type=Path, action="append", required=True, help="public key PEM or a folder")
    many = sub.add_parser("export", help="verify an export directory")
    many.add_argument("directory", type=Path)
    many.add_argument("--keys", type=Path, action="append", required=True, help="public key PEM or a folder")
    args = parser.parse_args(argv)
    try:
        if args.what == "inclusion":
            keys = load_keys(args.key)
            message = verify_inclusion(json.loads(args.proof.read_text()), keys)
        else:
            keys = load_keys(args.keys)
            message = verify_export(args.directory, keys)
    except Failure as exc:
        print(f"FAILED: {exc}")
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"OK: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
