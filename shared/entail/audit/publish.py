"""Publishing signed roots where the operator cannot rewrite them (docs/audit.md).

Each signed root is also written, as one JSON object, to
``roots/<tenant>/<day>.json`` (seq 0) or ``roots/<tenant>/<day>-supplementary-<seq>.json``
— in the cloud in the bucket with a locked seven-year retention policy
(terraform trail.tf), locally in a directory (``entail audit roots --publish DIR``).
An auditor who holds a copy of the object compares it with the store's root;
nobody, the project included, can delete or replace it before it expires.

The port is one call, :meth:`RootPublisher.put`, which never overwrites: an
object already there with the same bytes is success (the job re-publishes the
recent roots every run, so a run that failed after building roots publishes them
the next time); with other bytes it is :class:`PublishConflict`.

The document is the ``audit_roots`` row in wire form, keys sorted — derived only
from the stored row, so the same root always gives the same bytes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote

from .schema import AUDIT_ROOTS_TABLE

if TYPE_CHECKING:
    import httpx

    from .bigquery_store import BigQueryAuditStore
    from .duckdb_store import DuckDBAuditStore

Outcome = Literal["created", "exists"]
_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class PublishConflict(ValueError):  # a ValueError: the CLI reports it as a message, not a traceback
    """The object exists with other bytes: a root was rebuilt differently, or the
    published copy is not ours. Never overwritten; an operator must look."""


class RootPublisher(Protocol):
    def put(self, name: str, body: bytes) -> Outcome:
        """Write object ``name`` unless it exists; PublishConflict when it exists
        with other bytes."""
        ...


def object_name(root: dict[str, Any]) -> str:
    """``roots/<tenant>/<day>.json``, ``…/<day>-supplementary-<seq>.json`` for seq > 0."""
    tenant, day, seq = str(root["tenant"]), str(root["day"]), int(root["seq"])
    if not _SAFE.match(tenant):
        raise ValueError(f"tenant {tenant!r} cannot name an object path")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise ValueError(f"day {day!r} is not YYYY-MM-DD")
    return f"roots/{tenant}/{day}.json" if seq == 0 else f"roots/{tenant}/{day}-supplementary-{seq}.json"


def document(root: dict[str, Any]) -> bytes:
    """The published bytes of a root: its row in wire form, keys sorted, one line."""
    doc = {name: root[name] for name in AUDIT_ROOTS_TABLE.column_names}
    doc["seq"], doc["leaf_count"] = int(doc["seq"]), int(doc["leaf_count"])
    if not isinstance(doc["statement"], str):
        doc["statement"] = json.dumps(doc["statement"], sort_keys=True, separators=(",", ":"))
    return (json.dumps(doc, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


class DirectoryPublisher:
    """Local: objects are files under ``directory`` (created exclusively)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, name: str, body: bytes) -> Outcome:
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError:
            if path.read_bytes() != body:
                raise PublishConflict(f"{path} exists with other content") from None
            return "exists"
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        return "created"


class GcsPublisher:
    """Cloud Storage through its JSON API (``ifGenerationMatch=0``: create only).

    ``token`` gives an OAuth access token (google-auth's default credentials on
    Google Cloud; None for an emulator); ``endpoint`` is
    ``https://storage.googleapis.com`` there."""

    def __init__(
        self,
        bucket: str,
        *,
        token: Callable[[], str] | None,
        endpoint: str = "https://storage.googleapis.com",
        client: httpx.Client | None = None,
    ) -> None:
        import httpx

        if not bucket or "/" in bucket:
            raise ValueError(f"{bucket!r} is not a bucket name")
        self.bucket = bucket
        self._token = token
        self._endpoint = endpoint.rstrip("/")
        self._client = client or httpx.Client(timeout=30.0)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}"} if self._token is not None else {}

    def put(self, name: str, body: bytes) -> Outcome:
        # asked first (the common re-publish is one GET), then created only if
        # absent: ifGenerationMatch=0 makes Cloud Storage refuse (412) an object
        # that appeared in between, which is then compared like an existing one
        if self._existing(name, body):
            return "exists"
        # a multipart upload: the metadata part names the object and its content type
        boundary = "entail-" + secrets.token_hex(12)
        metadata = json.dumps({"name": name, "contentType": "application/json"}).encode()
        payload = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                metadata,
                f"\r\n--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
                body,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        response = self._client.post(
            f"{self._endpoint}/upload/storage/v1/b/{self.bucket}/o",
            params={"uploadType": "multipart", "ifGenerationMatch": "0"},
            content=payload,
            headers={**self._headers(), "Content-Type": f"multipart/related; boundary={boundary}"},
        )
        if response.status_code == 412 and self._existing(name, body):
            return "exists"
        response.raise_for_status()
        return "created"

    def _existing(self, name: str, body: bytes) -> bool:
        """True when the object exists with ``body``; PublishConflict when with other bytes."""
        response = self._client.get(
            f"{self._endpoint}/storage/v1/b/{self.bucket}/o/{quote(name, safe='')}",
            params={"alt": "media"},
            headers=self._headers(),
        )
        if response.status_code == 404:
            return False
        response.raise_for_status()
        if response.content != body:
            raise PublishConflict(f"gs://{self.bucket}/{name} exists with other content")
        return True

    def close(self) -> None:
        self._client.close()


@dataclass
class Published:
    created: list[str]
    existing: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "existing": self.existing}


def publish_roots(publisher: RootPublisher, roots: list[dict[str, Any]]) -> Published:
    """Publish each root (wire-form ``audit_roots`` rows)."""
    done = Published([], [])
    for root in roots:
        name = object_name(root)
        outcome = publisher.put(name, document(root))
        (done.created if outcome == "created" else done.existing).append(name)
    return done


def recent_roots(store: DuckDBAuditStore | BigQueryAuditStore, since: Any) -> list[dict[str, Any]]:
    """Roots built at or after ``since`` (a UTC datetime), in wire form."""
    from .duckdb_store import DuckDBAuditStore

    if isinstance(store, DuckDBAuditStore):
        from .roots import root_dicts

        return root_dicts(store, "built_at >= ?", [since])
    from .bigquery_trail import roots_of

    return roots_of(store, "built_at >= @since", {"since": since})
