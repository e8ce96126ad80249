"""Signing Merkle roots: a port with two adapters.

- :class:`LocalEd25519Signer` — ``make run``/``entail up``: an Ed25519 key in a
  directory (``<data_dir>/audit-keys``). ``rotate()`` makes a new current key;
  every public key ever used stays in ``public/<key_id>.pem``, so roots signed
  before a rotation still verify.
- :class:`KmsSigner` — the cloud: an asymmetric Cloud KMS key version
  (``EC_SIGN_P256_SHA256``, terraform/modules/entail/trail.tf) called over its
  REST API, so no new client library is needed; the endpoint is a setting,
  which is how the tests run it against a local stand-in.

A key is named by ``key_id``: the first 16 hex digits of the SHA-256 of its
public key in DER SubjectPublicKeyInfo form — the same id whichever system
holds the private half, and computable by an auditor from the PEM.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

if TYPE_CHECKING:
    from ..settings import Settings

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256-sha256"
ALGORITHMS = (ED25519, ECDSA_P256)


class Signer(Protocol):
    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    def public_key_pem(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


def key_id_of(public_pem: str | bytes) -> str:
    key = serialization.load_pem_public_key(
        public_pem if isinstance(public_pem, bytes) else public_pem.encode()
    )
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def verify_signature(algorithm: str, public_pem: str, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``algorithm``'s signature of ``message`` by the key."""
    key = serialization.load_pem_public_key(public_pem.encode())
    try:
        if algorithm == ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
            return True
        if algorithm == ECDSA_P256 and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False


class Keyring:
    """Public keys by key id: a directory of ``<key_id>.pem`` files."""

    def __init__(self, directory: Path, extra: dict[str, str] | None = None) -> None:
        self.directory = directory
        # keys held in memory only (Cloud KMS public keys, read at start): a
        # Cloud Run instance's disk is not where the keyring of record lives
        self.extra = {key_id_of(pem): pem for pem in (extra or {}).values()}

    def get(self, key_id: str) -> str | None:
        if key_id in self.extra:
            return self.extra[key_id]
        if not key_id.isalnum():
            return None
        path = self.directory / f"{key_id}.pem"
        return path.read_text() if path.exists() else None

    def add(self, public_pem: str) -> str:
        key_id = key_id_of(public_pem)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{key_id}.pem"
        if not path.exists():
            path.write_text(public_pem)
        return key_id

    def all(self) -> dict[str, str]:
        found = dict(self.extra)
        if self.directory.exists():
            found.update({p.stem: p.read_text() for p in sorted(self.directory.glob("*.pem"))})
        return found


class LocalEd25519Signer:
    """``directory/current.pem`` is the private key (0600); public keys in
    ``directory/public``. Created on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.keyring = Keyring(directory / "public")
        current = directory / "current.pem"
        if not current.exists():
            self._write_new()
        self._load()

    def _write_new(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = self.directory / "current.pem.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        tmp.replace(self.directory / "current.pem")

    def _load(self) -> None:
        loaded = serialization.load_pem_private_key((self.directory / "current.pem").read_bytes(), None)
        if not isinstance(loaded, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{self.directory / 'current.pem'} is not an Ed25519 private key")
        self._key = loaded
        self._public = (
            loaded.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        self._key_id = self.keyring.add(self._public)

    def rotate(self) -> str:
        """A new current key; the old public key stays in the keyring. The new key id."""
        self._write_new()
        self._load()
        return self._key_id

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def algorithm(self) -> str:
        return ED25519

    def public_key_pem(self) -> str:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


class KmsSigner:
    """A Cloud KMS asymmetric key version, ``projects/…/cryptoKeyVersions/N``.

    ``token`` returns an OAuth access token (google-auth's default credentials
    in the cloud); ``endpoint`` is ``https://cloudkms.googleapis.com`` there."""

    def __init__(
        self,
        key_version: str,
        *,
        token: Callable[[], str],
        endpoint: str = "https://cloudkms.googleapis.com",
        client: httpx.Client | None = None,
    ) -> None:
        if "/cryptoKeyVersions/" not in key_version:
            raise ValueError(f"{key_version!r} is not a KMS key version (…/cryptoKeyVersions/N)")
        self.key_version = key_version
        self._token = token
        self._endpoint = endpoint.rstrip("/")
        self._client = client or httpx.Client(timeout=30.0)
        doc = self._call("GET", "publicKey")
        if doc.get("algorithm") != "EC_SIGN_P256_SHA256":
            raise ValueError(f"KMS key {key_version} is {doc.get('algorithm')}, expected EC_SIGN_P256_SHA256")
        self._public = str(doc["pem"])
        self._key_id = key_id_of(self._public)

    def _call(self, method: str, verb: str, body: dict[str, object] | None = None) -> dict[str, object]:
        url = f"{self._endpoint}/v1/{self.key_version}" + (f"/{verb}" if method == "GET" else f":{verb}")
        response = self._client.request(
            method, url, json=body, headers={"Authorization": f"Bearer {self._token()}"}
        )
        response.raise_for_status()
        doc = response.json()
        if not isinstance(doc, dict):
            raise ValueError(f"KMS {verb}: unexpected response")
        return doc

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def algorithm(self) -> str:
        return ECDSA_P256

    def public_key_pem(self) -> str:
        return self._public

    def sign(self, message: bytes) -> bytes:
        digest = base64.b64encode(hashlib.sha256(message).digest()).decode()
        doc = self._call("POST", "asymmetricSign", {"digest": {"sha256": digest}})
        signature = base64.b64decode(str(doc["signature"]))
        if not verify_signature(ECDSA_P256, self._public, message, signature):
            raise ValueError("KMS returned a signature that does not verify with the key's public key")
        return signature


def open_signer(settings: Settings) -> Signer:
    """The signer the settings ask for: Cloud KMS when ``audit_kms_key_version`` is
    set (google-auth's default credentials, the ``gcp`` extra), else the local key."""
    if settings.audit_kms_key_version:
        import google.auth  # the gcp extra: loaded only in cloud mode
        import google.auth.transport.requests

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloudkms"])

        def token() -> str:
            if not credentials.valid:
                credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
            return str(credentials.token)

        return KmsSigner(settings.audit_kms_key_version, token=token, endpoint=settings.audit_kms_endpoint)
    return LocalEd25519Signer(settings.audit_keys_path)


def kms_public_key(
    key_version: str, *, token: Callable[[], str] | None, endpoint: str, client: httpx.Client | None = None
) -> str:
    """The PEM public key of a Cloud KMS key version (``cryptoKeyVersions.viewPublicKey``:
    ``roles/cloudkms.publicKeyViewer`` is enough; no signing right)."""
    if "/cryptoKeyVersions/" not in key_version:
        raise ValueError(f"{key_version!r} is not a KMS key version (…/cryptoKeyVersions/N)")
    headers = {"Authorization": f"Bearer {token()}"} if token is not None else {}
    own = client is None
    http = client or httpx.Client(timeout=30.0)
    try:
        response = http.get(f"{endpoint.rstrip('/')}/v1/{key_version}/publicKey", headers=headers)
        response.raise_for_status()
        doc = response.json()
    finally:
        if own:
            http.close()
    if not isinstance(doc, dict) or not isinstance(doc.get("pem"), str):
        raise ValueError(f"KMS publicKey of {key_version}: unexpected response")
    return str(doc["pem"])


def kms_verify_key_versions(settings: Settings) -> list[str]:
    """The KMS key versions whose roots verify here: the signing version and the
    older ones named in ``audit_kms_verify_key_versions`` (after a rotation)."""
    versions = [settings.audit_kms_key_version] if settings.audit_kms_key_version else []
    versions += [v.strip() for v in settings.audit_kms_verify_key_versions.split(",") if v.strip()]
    return list(dict.fromkeys(versions))


def open_keyring(settings: Settings, signer: Signer | None = None) -> Keyring:
    """The public keys roots are verified with: ``<audit_keys_dir>/public``, the
    current signer's key, and in the cloud the public keys of the KMS key versions
    (:func:`kms_verify_key_versions`), read once from Cloud KMS; an endpoint other
    than Google's (a local stand-in) is called without a token."""
    extra: dict[str, str] = {}
    versions = kms_verify_key_versions(settings)
    if versions:
        token: Callable[[], str] | None = None
        if settings.audit_kms_endpoint.rstrip("/") == "https://cloudkms.googleapis.com":
            token = _google_token("https://www.googleapis.com/auth/cloudkms")
        for version in versions:
            pem = kms_public_key(version, token=token, endpoint=settings.audit_kms_endpoint)
            extra[key_id_of(pem)] = pem
    if signer is not None:
        extra[signer.key_id] = signer.public_key_pem()
    return Keyring(settings.audit_keys_path / "public", extra)


def _google_token(scope: str) -> Callable[[], str]:
    import google.auth  # the gcp extra: loaded only in cloud mode
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=[scope])

    def token() -> str:
        if not credentials.valid:
            credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
        return str(credentials.token)

    return token
