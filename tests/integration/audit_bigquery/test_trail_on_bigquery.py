"""The audit trail served and exported from BigQuery (bqemulator), signed by a
Cloud KMS key version (a KMS stand-in on 127.0.0.1 speaking the two REST calls
the signer and the keyring make):

- the backend with ``ENTAIL_AUDIT_STORE=bigquery`` answers verify, inclusion and
  provenance from BigQuery rows (they answered 409 ``trail-unavailable`` before),
  checking signatures with the KMS public keys it reads itself, across a key
  rotation; a row edited in BigQuery is named; KMS out of reach is a 503 problem;
- ``entail audit export`` reads the BigQuery trail in pages, writes Parquet +
  JSONL, uploads it to the bucket (gcp-storage-emulator), and the standalone
  verifier accepts the export."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from emulators.bigquery_emulator import BigQueryEmulator
from emulators.gcs_emulator import GcsEmulator, available
from entail_backend.app import create_app
from fastapi.testclient import TestClient
from trail_support import decision, ruleset_record

from entail.audit import roots
from entail.audit.bigquery_store import BigQueryAuditStore
from entail.audit.export import export
from entail.audit.signing import Keyring, KmsSigner
from entail.auth import key_entry
from entail.cli import main
from entail.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
VERIFIER = ROOT / "tools" / "audit_verifier" / "verify.py"
AUDITOR, STRANGER = "ent_trail_bq_audit", "ent_trail_bq_globex"
YESTERDAY = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)
DAY = YESTERDAY.date().isoformat()
V1 = "projects/p/locations/global/keyRings/r/cryptoKeys/audit-roots/cryptoKeyVersions/1"
V2 = "projects/p/locations/global/keyRings/r/cryptoKeys/audit-roots/cryptoKeyVersions/2"


class _Kms(BaseHTTPRequestHandler):
    """Cloud KMS's publicKey and asymmetricSign for two P-256 key versions."""

    keys: ClassVar[dict[str, ec.EllipticCurvePrivateKey]] = {
        V1: ec.generate_private_key(ec.SECP256R1()),
        V2: ec.generate_private_key(ec.SECP256R1()),
    }

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
        version = self.path.removeprefix("/v1/").removesuffix("/publicKey")
        if version not in self.keys or not self.path.endswith("/publicKey"):
            self._send({"error": "not found"}, 404)
            return
        pem = (
            self.keys[version]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        self._send({"pem": pem.decode(), "algorithm": "EC_SIGN_P256_SHA256"})

    def do_POST(self) -> None:
        version = self.path.removeprefix("/v1/").removesuffix(":asymmetricSign")
        if version not in self.keys:
            self._send({"error": "not found"}, 404)
            return
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        digest = base64.b64decode(doc["digest"]["sha256"])
        signature = self.keys[version].sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        self._send({"signature": base64.b64encode(signature).decode(), "name": version})


@pytest.fixture(scope="module")
def kms() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Kms)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class Trail:
    store: BigQueryAuditStore
    emulator: BigQueryEmulator
    kms: str
    ids: list[str]

    def signer(self, version: str) -> KmsSigner:
        return KmsSigner(version, token=lambda: "t", endpoint=self.kms)


@pytest.fixture
def trail(bigquery_store: BigQueryAuditStore, emulator: BigQueryEmulator, kms: str) -> Trail:
    """Yesterday's six decisions of acme, one of globex, signed by key version 1."""
    store = bigquery_store
    store.put_ruleset(ruleset_record())
    store.put_ruleset(ruleset_record("globex"))
    records = [decision(i, YESTERDAY + timedelta(minutes=i)) for i in range(6)]
    records.append(decision(50, YESTERDAY, tenant="globex"))
    assert store.insert_decisions(records).inserted == 7
    time.sleep(0.005)
    t = Trail(store, emulator, kms, [r.decision_id for r in records[:6]])
    built = roots.build_roots(store, t.signer(V1), now=datetime.now(UTC), grace=timedelta(0))
    assert sorted((b.tenant, b.day, b.seq, b.leaf_count) for b in built) == [
        ("acme", DAY, 0, 6),
        ("globex", DAY, 0, 1),
    ]
    return t


def backend(trail: Trail, settings: Settings, **changes: Any) -> TestClient:
    keys = [
        key_entry(AUDITOR, "trail-audit", "acme", ["audit"]),
        key_entry(STRANGER, "trail-globex", "globex", ["audit"]),
    ]
    configured = settings.model_copy(
        update={
            "api_keys_json": json.dumps(keys),
            "audit_store": "bigquery",
            "bigquery_project": trail.emulator.project,
            "bigquery_endpoint": trail.emulator.endpoint,
            "bigquery_dataset": trail.store.dataset,
            "audit_kms_key_version": V1,
            "audit_kms_endpoint": trail.kms,
            **changes,
        }
    )
    return TestClient(create_app(configured), base_url="http://127.0.0.1")


AUDIT = {"Authorization": f"Bearer {AUDITOR}"}


def run_verifier(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VERIFIER), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_backend_serves_the_trail_from_bigquery(trail: Trail, settings: Settings, tmp_path: Path) -> None:
    with backend(trail, settings) as client:
        verified = client.get("/v1/audit/verify", params={"day": DAY}, headers=AUDIT)
        assert verified.status_code == 200, verified.text
        doc = verified.json()
        assert (doc["ok"], doc["roots"], doc["rows"], doc["pending"]) == (True, 1, 6, 0), doc

        proof = client.get(f"/v1/audit/decisions/{trail.ids[3]}/inclusion", headers=AUDIT)
        assert proof.status_code == 200, proof.text
        assert (proof.json()["tree_size"], proof.json()["day"]) == (6, DAY)
        (tmp_path / "proof.json").write_text(proof.text)
        (tmp_path / "kms.pem").write_text(trail.signer(V1).public_key_pem())
        checked = run_verifier("inclusion", str(tmp_path / "proof.json"), "--key", str(tmp_path / "kms.pem"))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        # another tenant's decision is not found, in BigQuery as locally
        globex_id = "dec_globex_0000050"
        assert client.get(f"/v1/audit/decisions/{globex_id}/inclusion", headers=AUDIT).status_code == 404

        found = client.get(
            "/v1/audit/provenance",
            params={
                "start": (YESTERDAY - timedelta(hours=1)).isoformat(),
                "end": (YESTERDAY + timedelta(hours=1)).isoformat(),
                "reason_code": "high_dti",
                "page_size": 1,
            },
            headers=AUDIT,
        )
        assert found.status_code == 200, found.text
        page = found.json()
        assert [i["decision_id"] for i in page["items"]] == [trail.ids[3]]  # newest first
        assert "high_dti" in page["items"][0]["reason_codes"]
        rest = client.get(
            "/v1/audit/provenance",
            params={
                "start": (YESTERDAY - timedelta(hours=1)).isoformat(),
                "end": (YESTERDAY + timedelta(hours=1)).isoformat(),
                "reason_code": "high_dti",
                "page_token": page["next_page_token"],
            },
            headers=AUDIT,
        ).json()
        assert [i["decision_id"] for i in rest["items"]] == [trail.ids[0]]
        assert rest["next_page_token"] is None
        bad = client.get(
            "/v1/audit/provenance",
            params={"start": YESTERDAY.isoformat(), "end": YESTERDAY.isoformat(), "reason_code": "x"},
            headers=AUDIT,
        )
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"

        # a row edited in BigQuery after its root was signed is named
        trail.store.dml(
            f"UPDATE `{trail.store.table_id('decisions')}` SET worker = 'w9' WHERE decision_id = @id"
            " AND completed_at >= @lo",
            {"id": trail.ids[2], "lo": YESTERDAY - timedelta(days=1)},
        )
        tampered = client.get("/v1/audit/verify", params={"day": DAY}, headers=AUDIT).json()
        assert tampered["ok"] is False
        assert tampered["first_mismatch"]["kind"] == "edited"
        assert tampered["first_mismatch"]["decision_id"] == trail.ids[2]


def test_roots_of_a_rotated_key_version_still_verify(trail: Trail, settings: Settings) -> None:
    trail.store.insert_decisions([decision(9, YESTERDAY + timedelta(hours=2))])
    time.sleep(0.005)
    built = roots.build_roots(trail.store, trail.signer(V2), now=datetime.now(UTC), grace=timedelta(0))
    assert [(b.seq, b.leaf_count) for b in built] == [(1, 1)]
    # signing with version 2 now; version 1's public key comes from the verify list
    with backend(trail, settings, audit_kms_key_version=V2, audit_kms_verify_key_versions=V1) as client:
        doc = client.get("/v1/audit/verify", params={"day": DAY}, headers=AUDIT).json()
        assert (doc["ok"], doc["roots"], doc["rows"]) == (True, 2, 7), doc
    # without it, the first root's key is unknown: verification names the root
    with backend(
        trail, settings, audit_kms_key_version=V2, audit_keys_dir=settings.data_dir / "k2"
    ) as client:
        doc = client.get("/v1/audit/verify", params={"day": DAY}, headers=AUDIT).json()
        assert doc["ok"] is False and doc["first_mismatch"]["kind"] == "signature", doc


def test_kms_out_of_reach_is_a_problem_not_a_500(trail: Trail, settings: Settings) -> None:
    with backend(trail, settings, audit_kms_endpoint="http://127.0.0.1:9") as client:
        response = client.get("/v1/audit/verify", params={"day": DAY}, headers=AUDIT)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "Cloud KMS" in response.json()["detail"]
    # an older version the stand-in does not know (404) and a malformed one: the same problem
    for listed in (V1.replace("/1", "/7"), "projects/p/keys/k"):
        with backend(trail, settings, audit_kms_verify_key_versions=listed) as client:
            response = client.get("/v1/audit/verify", params={"day": DAY}, headers=AUDIT)
            assert response.status_code == 503, response.text
            assert response.json()["type"].endswith("verification-keys-unavailable")


@pytest.fixture(scope="module")
def gcs() -> Iterator[GcsEmulator]:
    reason = available()
    if reason:
        pytest.fail(reason)  # make emulators installs it: a missing emulator is a broken setup
    with GcsEmulator(bucket="entail-exports") as emulator:
        yield emulator


def test_an_export_from_bigquery_verifies(trail: Trail, tmp_path: Path) -> None:
    keyring = Keyring(tmp_path / "none", {V1: trail.signer(V1).public_key_pem()})
    out = tmp_path / "export"
    # pages of 2 rows: the keyset paging is exercised, not just one query
    result = export(trail.store, keyring, "acme", DAY, DAY, out, page_rows=2)
    assert (result.rows, result.roots) == (6, 1)
    ok = run_verifier("export", str(out), "--keys", str(out / "keys"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 signed root(s) verified over 6 of 6" in ok.stdout
    lines = (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["decision_id"] for line in lines] == trail.ids  # decision_id order
    import duckdb

    with duckdb.connect() as conn:
        parquet = conn.execute(
            f"SELECT decision_id, worker FROM read_parquet('{out / 'decisions.parquet'}') ORDER BY 1"
        ).fetchall()
        assert parquet == [(d, "w1") for d in trail.ids]
        (n_roots,) = conn.execute(f"SELECT count(*) FROM read_parquet('{out / 'roots.parquet'}')").fetchone()
        assert n_roots == 1
    # one edited exported row fails the export
    lines[1] = lines[1].replace('"worker":"w1"', '"worker":"w9"')
    (out / "rows.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    failed = run_verifier("export", str(out), "--keys", str(out / "keys"))
    assert failed.returncode == 1 and "FAILED" in failed.stdout


def test_the_cli_exports_bigquery_to_the_bucket(
    trail: Trail,
    emulator: BigQueryEmulator,
    gcs: GcsEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        **os.environ,
        **emulator.env(),
        "ENTAIL_DATA_DIR": str(tmp_path / "data"),
        "ENTAIL_BIGQUERY_DATASET": trail.store.dataset,
        "ENTAIL_AUDIT_KMS_KEY_VERSION": V1,
        "ENTAIL_AUDIT_KMS_ENDPOINT": trail.kms,
        "ENTAIL_AUDIT_ROOTS_BUCKET": gcs.bucket,
        "ENTAIL_AUDIT_STORAGE_ENDPOINT": gcs.endpoint,
    }
    out = tmp_path / "export"
    argv = ["audit", "export", "--tenant", "acme", "--from", DAY, "--to", DAY, "--out", str(out), "--bucket"]
    done = subprocess.run(
        [sys.executable, "-m", "entail.cli", *argv], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exported 6 row(s) and 1 root(s)" in done.stdout
    objects = {k: v for k, v in gcs.objects().items() if k.startswith(f"exports/acme/{DAY}--{DAY}/")}
    manifest = next(k for k in objects if k.endswith("/manifest.json"))
    prefix = manifest.removesuffix("manifest.json")
    assert objects[manifest] == (out / "manifest.json").read_bytes()
    listed = json.loads(objects[manifest])["files"]
    assert set(objects) == {prefix + "manifest.json", *(prefix + name for name in listed)}
    # the bucket's copy verifies on its own
    copy = tmp_path / "from-bucket"
    for name, body in objects.items():
        path = copy / name.removeprefix(prefix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    ok = run_verifier("export", str(copy), "--keys", str(copy / "keys"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # without a bucket configured, --bucket is a usage error, not a traceback (in process: faster)
    for name, value in env.items():
        if name.startswith("ENTAIL_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("ENTAIL_AUDIT_ROOTS_BUCKET")
    out_text, err_text = io.StringIO(), io.StringIO()
    assert main(argv, out_text, err_text) == 2
    assert "ENTAIL_AUDIT_ROOTS_BUCKET" in err_text.getvalue()
