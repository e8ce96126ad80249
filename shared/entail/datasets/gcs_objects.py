"""A dataset version's Parquet objects in Cloud Storage, through its JSON API.

Objects are created once and never replaced: an upload asks first whether the
object exists (the common retry is one metadata GET), then sends it with
``ifGenerationMatch=0``, which makes Cloud Storage refuse (412) an object that
appeared in between. An object already there with the same MD5 is success (a
retried upload); with other bytes it is an error an operator must look at — a
version's files never change. (The backend's IAM role, objectCreator, cannot
delete, hence cannot overwrite, either: terraform/modules/entail/datasets.tf.)

A request that fails transiently (a connection error, 408, 429, 5xx) is tried
again, ``attempts`` times in all with exponential backoff, as Google's client
libraries do: every request here is safe to repeat (reads, and a create that the
precondition makes happen at most once). Past that, a 503
``dataset-storage-unavailable``: the caller may retry later.

Bodies are streamed from and to files: a Parquet file of millions of facts is
never whole in memory. Blocking (httpx's sync client): the store calls it in a
thread. ``token`` gives an OAuth access token (google-auth's default credentials
on Google Cloud), None at an emulator's ``endpoint`` (anonymous).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import quote

import httpx

from .port import DatasetError

Outcome = Literal["created", "exists"]
GOOGLE_ENDPOINT = "https://storage.googleapis.com"
TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
_CHUNK = 1 << 20
T = TypeVar("T")


class _Transient(Exception):
    """A failure worth another attempt."""


def _md5_b64(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def _unavailable(what: str, detail: object) -> DatasetError:
    # a 503: the caller may retry; the version was not committed
    return DatasetError("dataset-storage-unavailable", f"Cloud Storage: {what}: {detail}", status=503)


def _checked(response: httpx.Response, what: str) -> httpx.Response:
    """``response`` unless it failed: transient statuses raise _Transient, others a 503."""
    if response.status_code in TRANSIENT:
        raise _Transient(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise _unavailable(what, f"HTTP {response.status_code}")
    return response


class GcsObjects:
    """Create-once and streamed reads of the objects of one bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        token: Callable[[], str] | None,
        endpoint: str = GOOGLE_ENDPOINT,
        timeout_s: float = 60.0,
        attempts: int = 4,
        backoff_s: float = 0.5,
        client: httpx.Client | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"{bucket!r} is not a bucket name")
        self.bucket = bucket
        self._token = token
        self._endpoint = endpoint.rstrip("/")
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._client = client or httpx.Client(timeout=timeout_s)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}"} if self._token is not None else {}

    def _object_url(self, name: str) -> str:
        return f"{self._endpoint}/storage/v1/b/{self.bucket}/o/{quote(name, safe='')}"

    def _retried(self, what: str, call: Callable[[], T]) -> T:
        for attempt in range(self._attempts):
            try:
                return call()
            except (_Transient, httpx.TransportError) as e:
                if attempt + 1 == self._attempts:
                    raise _unavailable(what, e) from e
                time.sleep(self._backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def metadata(self, name: str) -> dict[str, object] | None:
        """The object's metadata, None when it does not exist."""
        what = f"reading gs://{self.bucket}/{name}"

        def call() -> dict[str, object] | None:
            response = self._client.get(self._object_url(name), headers=self._headers())
            if response.status_code == 404:
                return None
            found: dict[str, object] = _checked(response, what).json()
            return found

        return self._retried(what, call)

    def create(self, name: str, path: Path, content_type: str = "application/vnd.apache.parquet") -> Outcome:
        """Upload ``path`` as object ``name`` unless it exists with the same bytes;
        a DatasetError when it exists with other bytes."""
        md5 = _md5_b64(path)
        what = f"writing gs://{self.bucket}/{name}"

        if self._same(name, md5):
            return "exists"

        def call() -> Outcome:
            with path.open("rb") as body:
                response = self._client.post(
                    f"{self._endpoint}/upload/storage/v1/b/{self.bucket}/o",
                    params={"uploadType": "media", "name": name, "ifGenerationMatch": "0"},
                    content=body,
                    headers={
                        **self._headers(),
                        "Content-Type": content_type,
                        "Content-Length": str(path.stat().st_size),
                    },
                )
            if response.status_code == 412 and self._same(name, md5):
                return "exists"
            stored = _checked(response, what).json().get("md5Hash")
            if stored is not None and stored != md5:
                raise _unavailable(what, "the stored object's MD5 differs")
            return "created"

        return self._retried(what, call)

    def _same(self, name: str, md5: str) -> bool:
        """True when the object exists with MD5 ``md5``; an error when with another."""
        found = self.metadata(name)
        if found is None:
            return False
        if found.get("md5Hash") != md5:
            raise DatasetError(
                "dataset-storage-conflict",
                f"gs://{self.bucket}/{name} exists with other content: a dataset version's "
                "objects never change, an operator must look",
                status=500,
            )
        return True

    def download(self, name: str, target: Path) -> None:
        """Stream object ``name`` into the file ``target`` (rewritten by a retry)."""
        what = f"reading gs://{self.bucket}/{name}"

        def call() -> None:
            url = self._object_url(name)
            with self._client.stream(
                "GET", url, params={"alt": "media"}, headers=self._headers()
            ) as response:
                if response.status_code == 404:
                    raise DatasetError("dataset-corrupt", f"gs://{self.bucket}/{name} is missing", status=500)
                _checked(response, what)
                with target.open("wb") as out:
                    for chunk in response.iter_bytes(_CHUNK):
                        out.write(chunk)

        self._retried(what, call)

    def close(self) -> None:
        self._client.close()
