"""The worker's verification of Pub/Sub push OIDC tokens, with real signed tokens.

An RSA key and a self-signed certificate made here stand in for Google's: the
certificates are served as Google serves them ({key id: PEM}) by a real HTTP
server on 127.0.0.1, and the worker (a real process) is pointed at it with
ENTAIL_PUSH_CERTS_URL. Tokens are signed with google.auth's own signer.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from entail_worker.push_auth import GoogleCerts, PushAuthenticator
from google.auth import crypt, jwt
from pydantic import ValidationError

from entail.models import DecisionRecord, Job, RulesetRef, new_decision_id, utcnow
from entail.net import free_port
from entail.settings import Settings
from entail.state.client import connect
from entail.state.decisions import DecisionStore
from entail.state.embedded import EmbeddedRedis
from entail.state.registry import RulesetRegistry

PUSH_ACCOUNT = "pubsub-push@entail-test.iam.gserviceaccount.com"
ISSUER = "https://accounts.google.com"


class SigningKey:
    """An RSA key, its self-signed certificate and a google.auth signer."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, key_id)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(private, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.signer = crypt.RSASigner.from_string(pem, key_id=key_id)

    def token(self, audience: str, **claims: Any) -> str:
        """A Pub/Sub push ID token: Google's claims, overridable (None drops one)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": audience,
            "azp": "1234567890",
            "sub": "1234567890",
            "email": PUSH_ACCOUNT,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(self.signer, payload).decode()


class CertsServer:
    """Serves {key id: PEM certificate} like https://www.googleapis.com/oauth2/v1/certs."""

    def __init__(self, keys: list[SigningKey]) -> None:
        self.keys = keys
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                body = json.dumps({k.key_id: k.cert_pem for k in owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=3600")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oauth2/v1/certs"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CertsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("key-1")


@pytest.fixture(scope="module")
def certs(key: SigningKey) -> Iterator[CertsServer]:
    with CertsServer([key]) as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


class Worker:
    def __init__(self, url: str, audience: str, settings: Settings) -> None:
        self.url = url
        self.audience = audience
        self.settings = settings


@contextmanager
def worker_process(redis_url: str, certs_url: str, tmp: Path) -> Iterator[Worker]:
    """The reasoning worker as a process, verifying OIDC push tokens."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    audience = f"{url}/push/reasoning-jobs"
    env = {
        **{k: v for k, v in os.environ.items() if k != "PORT"},
        "ENTAIL_REDIS_URL": redis_url,
        "ENTAIL_WORKER_PORT": str(port),
        "ENTAIL_DATA_DIR": str(tmp),
        "ENTAIL_PUSH_AUTH": "oidc",
        "ENTAIL_PUSH_SERVICE_ACCOUNT": PUSH_ACCOUNT,
        "ENTAIL_PUSH_AUDIENCE": audience,
        "ENTAIL_PUSH_CERTS_URL": certs_url,
    }
    log = tmp / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "entail_worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            _wait_ready(f"{url}/readyz", process, log)
            yield Worker(url, audience, Settings(redis_url=redis_url))
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def worker(redis_url: str, certs: CertsServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    with worker_process(redis_url, certs.url, tmp_path_factory.mktemp("worker")) as process:
        yield process


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the worker exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the worker was not ready: {log.read_text()[-3000:]}")


def _envelope(data: bytes, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes or {},
            "messageId": "1",
            "publishTime": utcnow(),
        },
        "subscription": "projects/entail-test/subscriptions/reasoning-worker",
    }


def _push(worker: Worker, token: str | None, body: dict[str, Any] | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(
        f"{worker.url}/push/reasoning-jobs",
        json=body or _envelope(b"{}", {}),
        headers=headers,
        timeout=30,
    )


def _assert_problem(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert words in problem["detail"], problem["detail"]


async def _pending_job(settings: Settings) -> Job:
    """A published ruleset and a pending decision, as the backend leaves them."""
    client = connect(settings)
    try:
        version, _ = await RulesetRegistry(client).publish(
            "acme", "adults", "adult(P) :- person(P, A), A >= 18.", "", [], "test"
        )
        ruleset = RulesetRef(tenant="acme", name=version.name, version=version.version, hash=version.hash)
        record = DecisionRecord(
            decision_id=new_decision_id(),
            tenant="acme",
            ruleset=ruleset,
            request_hash="d" * 64,
            status="pending",
            facts={"person": [["ann", 31], ["bob", 12]]},
            query=["adult(P)"],
            submitted_at=utcnow(),
        )
        await DecisionStore(client, settings.decision_ttl_s).create(record)
    finally:
        await client.aclose()
    return Job(
        decision_id=record.decision_id,
        tenant="acme",
        ruleset=ruleset,
        facts=record.facts,
        query=record.query,
        request_hash=record.request_hash,
        submitted_at=record.submitted_at,
    )


async def _stored(settings: Settings, decision_id: str) -> DecisionRecord | None:
    client = connect(settings)
    try:
        return await DecisionStore(client, settings.decision_ttl_s).get("acme", decision_id)
    finally:
        await client.aclose()


async def test_a_valid_token_gets_the_job_evaluated(worker: Worker, key: SigningKey) -> None:
    job = await _pending_job(worker.settings)
    body = _envelope(
        job.model_dump_json(by_alias=True).encode(), {"decision_id": job.decision_id, "tenant": "acme"}
    )
    response = _push(worker, key.token(worker.audience), body)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "succeeded"
    stored = await _stored(worker.settings, job.decision_id)
    assert stored is not None and stored.status == "succeeded"
    assert stored.answers[0]["answers"][0]["atom"] == 'adult("ann")'


def test_missing_or_non_bearer_authorization_is_401(worker: Worker) -> None:
    response = _push(worker, None)
    _assert_problem(response, 401, "missing Authorization")
    assert response.headers["www-authenticate"] == "Bearer"
    basic = httpx.post(
        f"{worker.url}/push/reasoning-jobs", json=_envelope(b"{}"), headers={"Authorization": "Basic eDp5"}
    )
    _assert_problem(basic, 401, "missing Authorization")
    _assert_problem(_push(worker, "not-a-jwt"), 401, "not a JWT")


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"aud": "https://elsewhere.example/push"}, "wrong audience"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "expired"),
        ({"exp": None}, "does not contain required claim exp"),
        ({"iss": "https://evil.example"}, "not Google"),
    ],
    ids=["wrong-audience", "expired", "no-expiry", "wrong-issuer"],
)
def test_tokens_that_do_not_verify_are_401(
    worker: Worker, key: SigningKey, claims: dict[str, Any], words: str
) -> None:
    _assert_problem(_push(worker, key.token(worker.audience, **claims)), 401, words)


def test_a_token_signed_by_another_key_is_401(worker: Worker, key: SigningKey) -> None:
    forger = SigningKey("key-1")  # same key id, another key: the signature does not verify
    _assert_problem(_push(worker, forger.token(worker.audience)), 401, "signature")
    unknown = SigningKey("key-unknown")
    _assert_problem(_push(worker, unknown.token(worker.audience)), 401, "not found")
    # a valid token with its signature altered
    header, payload, signature = key.token(worker.audience).split(".")
    tampered = f"{header}.{payload}.{signature[:-6]}AAAAAA"
    _assert_problem(_push(worker, tampered), 401, "signature")


def test_an_unsigned_token_is_401(worker: Worker) -> None:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": worker.audience, "email": PUSH_ACCOUNT, "email_verified": True}
    token = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({**claims, 'iat': now, 'exp': now + 60})}."
    _assert_problem(_push(worker, token), 401, "Unsupported signature algorithm")


def test_another_account_or_an_unverified_email_is_403(worker: Worker, key: SigningKey) -> None:
    other = key.token(worker.audience, email="someone@entail-test.iam.gserviceaccount.com")
    _assert_problem(_push(worker, other), 403, "not the push service account")
    unverified = key.token(worker.audience, email_verified=False)
    _assert_problem(_push(worker, unverified), 403, "not verified")


def test_certificates_are_fetched_once_and_again_for_a_new_key(certs: CertsServer, key: SigningKey) -> None:
    import asyncio

    settings = Settings(
        push_auth="oidc", push_service_account=PUSH_ACCOUNT, push_audience="aud", push_certs_url=certs.url
    )
    fetcher = GoogleCerts(certs.url, refetch_min_s=0)
    auth = PushAuthenticator(settings, fetcher)

    async def check(token: str) -> object:
        return await auth.check({"authorization": f"Bearer {token}"})

    assert asyncio.run(check(key.token("aud"))) is None
    assert asyncio.run(check(key.token("aud"))) is None
    assert fetcher.fetches == 1  # cached for max-age
    rotated = SigningKey("key-2")
    certs.keys.append(rotated)
    try:
        assert asyncio.run(check(rotated.token("aud"))) is None  # a new key id: fetched again
        assert fetcher.fetches == 2
    finally:
        certs.keys.remove(rotated)


def test_unreachable_certificates_make_the_push_retried(redis_url: str, tmp_path: Path) -> None:
    """503 while the certificates cannot be fetched: Pub/Sub delivers the push again."""
    dead = f"http://127.0.0.1:{free_port()}/oauth2/v1/certs"
    with worker_process(redis_url, dead, tmp_path) as worker:
        response = _push(worker, SigningKey("key-9").token(worker.audience))
    _assert_problem(response, 503, "cannot fetch the push token certificates")


def test_settings_refuse_no_push_auth_in_production_and_need_the_account() -> None:
    production = {"env": "production", "mask_secret": "a-real-mask-secret"}
    with pytest.raises(ValidationError, match="ENTAIL_PUSH_AUTH=none is for emulators"):
        Settings(**production, push_auth="none")
    with pytest.raises(ValidationError, match="ENTAIL_PUSH_SERVICE_ACCOUNT"):
        Settings(push_auth="oidc")
    # with OIDC the push secret is unused: its placeholder is not an error
    cloud = Settings(**production, push_auth="oidc", push_service_account=PUSH_ACCOUNT)
    assert cloud.push_oidc_audience == cloud.worker_push_url
    with pytest.raises(ValidationError, match="ENTAIL_PUSH_SECRET"):
        Settings(**production, push_auth="secret")


async def test_dead_letter_and_sweep_endpoints_take_the_same_tokens(worker: Worker, key: SigningKey) -> None:
    """/push/dead-letters (the jobs' dead-letter push) and /sweep (Cloud Scheduler)
    verify the push account's OIDC token exactly like a job push."""
    for path in ("/push/dead-letters", "/sweep"):
        url = f"{worker.url}{path}"
        _assert_problem(httpx.post(url, json=_envelope(b"{}")), 401, "missing Authorization")
        other = key.token(worker.audience, email="someone@entail-test.iam.gserviceaccount.com")
        forged = httpx.post(url, json=_envelope(b"{}"), headers={"Authorization": f"Bearer {other}"})
        _assert_problem(forged, 403, "not the push service account")
    job = await _pending_job(worker.settings)
    attributes = {
        "decision_id": job.decision_id,
        "tenant": "acme",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "CloudPubSubDeadLetterSourceSubscription": "reasoning-worker-push",
    }
    headers = {"Authorization": f"Bearer {key.token(worker.audience)}"}
    body = _envelope(job.model_dump_json(by_alias=True).encode(), attributes)
    response = httpx.post(f"{worker.url}/push/dead-letters", json=body, headers=headers, timeout=30)
    assert response.status_code == 200 and response.json()["outcome"] == "delivery-failed", response.text
    stored = await _stored(worker.settings, job.decision_id)
    assert stored is not None and stored.status == "failed" and stored.error is not None
    assert stored.error.code == "delivery-failed"
    swept = httpx.post(f"{worker.url}/sweep", headers=headers, timeout=30)
    assert swept.status_code == 200 and swept.json()["outcome"] == "swept", swept.text
