"""A dataset version's Parquet objects in Cloud Storage, through its JSON API.

Objects are created once and never replaced: an upload asks first whether the
object exists (the common retry is one metadata GET), then sends it with
``ifGenerationMatch=0``, which makes Cloud Storage refuse (412) an object that
appeared in between. An object already there with the same MD5 is success (a
retried upload); with other bytes it is an error an operator must look at — a
version's files never change. (The backend's IAM role, objectCreator, cannot
delete, hence cannot overwrite, either: terraform/modules/entail/datasets.tf.)

Bodies are streamed from and to files: a Parquet file of millions of facts is
never whole in memory. Blocking (httpx's sync client): the store calls it in a
thread. ``token`` gives an OAuth access token (google-auth's default credentials
on Google Cloud), None at an emulator's ``endpoint`` (anonymous).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import httpx

from .port import DatasetError

Outcome = Literal["created", "exists"]
GOOGLE_ENDPOINT = "https://storage.googleapis.com"
_CHUNK = 1 << 20


def _md5_b64(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def _unavailable(what: str, detail: object) -> DatasetError:
    # a 503: the caller may retry; the version was not committed
    return DatasetError("dataset-storage-unavailable", f"Cloud Storage: {what}: {detail}", status=503)


class GcsObjects:
    """Create-once and streamed reads of the objects of one bucket."""

    def __init__(
        self,
        bucket: str,
        *,
        token: Callable[[], str] | None,
        endpoint: str = GOOGLE_ENDPOINT,
        timeout_s: float = 60.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"{bucket!r} is not a bucket name")
        self.bucket = bucket
        self._token = token
        self._endpoint = endpoint.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout_s)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}"} if self._token is not None else {}

    def _object_url(self, name: str) -> str:
        return f"{self._endpoint}/storage/v1/b/{self.bucket}/o/{quote(name, safe='')}"

    def metadata(self, name: str) -> dict[str, object] | None:
        """The object's metadata, None when it does not exist."""
        try:
            response = self._client.get(self._object_url(name), headers=self._headers())
        except httpx.HTTPError as e:
            raise _unavailable(f"reading gs://{self.bucket}/{name}", e) from e
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise _unavailable(f"reading gs://{self.bucket}/{name}", f"HTTP {response.status_code}")
        found: dict[str, object] = response.json()
        return found

    def create(self, name: str, path: Path, content_type: str = "application/vnd.apache.parquet") -> Outcome:
        """Upload ``path`` as object ``name`` unless it exists with the same bytes;
        a DatasetError when it exists with other bytes."""
        md5 = _md5_b64(path)
        if self._same(name, md5):
            return "exists"
        try:
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
        except httpx.HTTPError as e:
            raise _unavailable(f"writing gs://{self.bucket}/{name}", e) from e
        if response.status_code == 412 and self._same(name, md5):
            return "exists"
        if response.status_code >= 400:
            raise _unavailable(f"writing gs://{self.bucket}/{name}", f"HTTP {response.status_code}")
        stored = response.json().get("md5Hash")
        if stored is not None and stored != md5:
            raise _unavailable(f"writing gs://{self.bucket}/{name}", "the stored object's MD5 differs")
        return "created"

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
        """Stream object ``name`` into the file ``target``."""
        try:
            with (
                self._client.stream(
                    "GET", self._object_url(name), params={"alt": "media"}, headers=self._headers()
                ) as response,
            ):
                if response.status_code == 404:
                    raise DatasetError("dataset-corrupt", f"gs://{self.bucket}/{name} is missing", status=500)
                if response.status_code >= 400:
                    raise _unavailable(f"reading gs://{self.bucket}/{name}", f"HTTP {response.status_code}")
                with target.open("wb") as out:
                    for chunk in response.iter_bytes(_CHUNK):
                        out.write(chunk)
        except httpx.HTTPError as e:
            raise _unavailable(f"reading gs://{self.bucket}/{name}", e) from e

    def close(self) -> None:
        self._client.close()
