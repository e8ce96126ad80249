"""Tamper evidence on a real DuckDB store: signed daily roots catch an edited, a
deleted and an inserted row and name it; roots signed before a key rotation
still verify; late rows get a supplementary root; the standalone verifier
(tools/audit_verifier) checks inclusion proofs and a real export; the Cloud
KMS signer works against a local HTTP stand-in of the KMS REST API."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from trail_support import DAY, GRACE, NOON, decision, filled_store, later

from entail.audit import DuckDBAuditStore, roots
from entail.audit.export import export
from entail.audit.signing import ECDSA_P256, Keyring, KmsSigner, LocalEd25519Signer, verify_signature

VERIFIER = Path(__file__).resolve().parents[3] / "tools" / "audit_verifier" / "verify.py"


@pytest.fixture
def signed(tmp_path: Path) -> Iterator[tuple[DuckDBAuditStore, LocalEd25519Signer]]:
    store = filled_store(12)
    signer = LocalEd25519Signer(tmp_path / "keys")
    built = roots.build_roots(store, signer, now=later(), grace=GRACE)
    assert [(b.day, b.seq, b.leaf_count) for b in built] == [(DAY, 0, 12)]
    assert roots.build_roots(store, signer, now=later(), grace=GRACE) == []  # idempotent
    yield store, signer
    store.close()


def verify(store: DuckDBAuditStore, signer: LocalEd25519Signer) -> dict[str, Any]:
    return roots.verify_day(store, signer.keyring, "acme", DAY).to_json()


def test_an_untouched_day_verifies(signed: tuple[DuckDBAuditStore, LocalEd25519Signer]) -> None:
    report = verify(*signed)
    assert report["ok"] and report["rows"] == 12 and report["first_mismatch"] is None


def test_an_edited_row_is_named(signed: tuple[DuckDBAuditStore, LocalEd25519Signer]) -> None:
    store, signer = signed
    store.execute("UPDATE decisions SET result_hash = 'forged' WHERE decision_id = 'dec_acme_0000007'")
    report = verify(store, signer)
    assert not report["ok"]
    assert report["first_mismatch"]["kind"] == "edited"
    assert report["first_mismatch"]["decision_id"] == "dec_acme_0000007"


def test_a_deleted_row_is_named(signed: tuple[DuckDBAuditStore, LocalEd25519Signer]) -> None:
    store, signer = signed
    store.execute("DELETE FROM decisions WHERE decision_id = 'dec_acme_0000003'")
    report = verify(store, signer)
    assert (report["first_mismatch"]["kind"], report["first_mismatch"]["decision_id"]) == (
        "deleted",
        "dec_acme_0000003",
    )


def test_an_inserted_row_is_named(signed: tuple[DuckDBAuditStore, LocalEd25519Signer]) -> None:
    store, signer = signed
    # a row backdated into the signed window (a genuine late row would carry a later inserted_at)
    store.execute(
        "INSERT INTO decisions SELECT * REPLACE ('dec_acme_0000004x' AS decision_id) FROM decisions"
        " WHERE decision_id = 'dec_acme_0000004'"
    )
    report = verify(store, signer)
    assert (report["first_mismatch"]["kind"], report["first_mismatch"]["decision_id"]) == (
        "inserted",
        "dec_acme_0000004x",
    )


def test_forged_roots_and_leaves_are_caught(signed: tuple[DuckDBAuditStore, LocalEd25519Signer]) -> None:
    store, signer = signed
    store.execute("UPDATE audit_leaves SET leaf_hash = repeat('0', 64) WHERE position = 2")
    assert verify(store, signer)["first_mismatch"]["kind"] == "leaves"
    store.execute("UPDATE audit_roots SET root_hash = repeat('0', 64)")
    assert verify(store, signer)["first_mismatch"]["kind"] == "statement"


def test_roots_still_verify_after_a_key_rotation(
    signed: tuple[DuckDBAuditStore, LocalEd25519Signer], tmp_path: Path
) -> None:
    store, signer = signed
    old = signer.key_id
    assert signer.rotate() != old
    store.insert_decisions([decision(100, NOON + timedelta(hours=3))])
    built = roots.build_roots(store, signer, now=later(), grace=GRACE)
    assert [(b.seq, b.leaf_count) for b in built] == [(1, 1)]  # the late row: a supplementary root
    report = verify(store, signer)
    assert report["ok"] and report["roots"] == 2 and report["rows"] == 13
    keys = {r[0] for r in store.fetch("SELECT key_id FROM audit_roots")}
    assert keys == {old, signer.key_id}
    # a fresh process with only the public keys verifies both
    assert roots.verify_day(store, Keyring(tmp_path / "keys" / "public"), "acme", DAY).ok


def test_rows_after_the_last_root_are_pending_not_failures(
    signed: tuple[DuckDBAuditStore, LocalEd25519Signer],
) -> None:
    store, signer = signed
    store.insert_decisions([decision(200, NOON + timedelta(hours=5))])
    report = verify(store, signer)
    assert report["ok"] and report["pending"] == 1


def test_a_day_without_roots_does_not_verify(signed: tuple[DuckDBAuditStore, LocalEd25519Signer]) -> None:
    store, signer = signed
    report = roots.verify_day(store, signer.keyring, "acme", "2026-11-21").to_json()
    assert not report["ok"] and report["first_mismatch"]["kind"] == "missing"
    # and another tenant's day is not this tenant's
    assert not roots.verify_day(store, signer.keyring, "other", DAY).ok


def run_verifier(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(VERIFIER), *args], capture_output=True, text=True, timeout=60)


def test_standalone_verifier_checks_an_inclusion_proof(
    signed: tuple[DuckDBAuditStore, LocalEd25519Signer], tmp_path: Path
) -> None:
    store, signer = signed
    proof = roots.inclusion(store, "acme", "dec_acme_0000005")
    assert proof is not None and proof["tree_size"] == 12
    assert roots.inclusion(store, "other", "dec_acme_0000005") is None
    key = tmp_path / "key.pem"
    key.write_text(signer.public_key_pem())
    good = tmp_path / "proof.json"
    good.write_text(json.dumps(proof))
    ok = run_verifier("inclusion", str(good), "--key", str(key))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "leaf 5 of signed root" in ok.stdout
    # a row changed after signing: the leaf no longer leads to the signed root
    forged = dict(
        proof, row_encoding=proof["row_encoding"].replace('"status":"succeeded"', '"status":"failed"')
    )
    bad = tmp_path / "forged.json"
    bad.write_text(json.dumps(forged))
    failed = run_verifier("inclusion", str(bad), "--key", str(key))
    assert failed.returncode == 1 and "FAILED" in failed.stdout
    # another key: the signature fails
    other = tmp_path / "other.pem"
    other.write_text(LocalEd25519Signer(tmp_path / "other").public_key_pem())
    assert run_verifier("inclusion", str(good), "--key", str(other)).returncode == 1


def test_standalone_verifier_checks_a_real_export(
    signed: tuple[DuckDBAuditStore, LocalEd25519Signer], tmp_path: Path
) -> None:
    store, signer = signed
    signer.rotate()
    store.insert_decisions([decision(300, NOON + timedelta(hours=1))])
    roots.build_roots(store, signer, now=later(), grace=GRACE)
    out = tmp_path / "export"
    result = export(store, signer.keyring, "acme", DAY, DAY, out)
    assert (result.rows, result.roots) == (13, 2)
    assert {p.name for p in out.iterdir()} >= {
        "decisions.parquet",
        "rows.jsonl",
        "roots.jsonl",
        "manifest.json",
    }
    ok = run_verifier("export", str(out), "--keys", str(out / "keys"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2 signed root(s) verified over 13 of 13" in ok.stdout
    # the Parquet copy holds the same rows
    parquet = store.fetch(f"SELECT count(*) FROM read_parquet('{out / 'decisions.parquet'}')")
    assert parquet[0][0] == 13
    # one edited exported row fails the export
    lines = (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4].replace('"worker":"w1"', '"worker":"w9"')
    (out / "rows.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    failed = run_verifier("export", str(out), "--keys", str(out / "keys"))
    assert failed.returncode == 1 and "FAILED" in failed.stdout


class _KmsStandIn(BaseHTTPRequestHandler):
    """The two KMS REST calls the signer makes, with a P-256 key of its own."""

    key = ec.generate_private_key(ec.SECP256R1())
    name = "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, doc: dict[str, Any], status: int = 200) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != f"/v1/{self.name}/publicKey" or self.headers.get("Authorization") != "Bearer t":
            self._send({"error": "not found"}, 404)
            return
        pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._send({"pem": pem.decode(), "algorithm": "EC_SIGN_P256_SHA256"})

    def do_POST(self) -> None:
        if self.path != f"/v1/{self.name}:asymmetricSign":
            self._send({"error": "not found"}, 404)
            return
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        digest = base64.b64decode(doc["digest"]["sha256"])
        signature = self.key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        self._send({"signature": base64.b64encode(signature).decode(), "name": self.name})


def test_kms_signer_signs_roots_that_verify(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KmsStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        signer = KmsSigner(
            _KmsStandIn.name, token=lambda: "t", endpoint=f"http://127.0.0.1:{server.server_address[1]}"
        )
        assert signer.algorithm == ECDSA_P256
        assert verify_signature(ECDSA_P256, signer.public_key_pem(), b"m", signer.sign(b"m"))
        store = filled_store(5)
        roots.build_roots(store, signer, now=later(), grace=GRACE)
        keyring = Keyring(tmp_path / "pub")
        keyring.add(signer.public_key_pem())
        assert roots.verify_day(store, keyring, "acme", DAY).ok
        with pytest.raises(ValueError, match="not a KMS key version"):
            KmsSigner("projects/p/keys/k", token=lambda: "t", endpoint="http://127.0.0.1:1")
    finally:
        server.shutdown()
