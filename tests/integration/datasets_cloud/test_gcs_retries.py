"""Cloud Storage's transient failures (429, 5xx, a dropped connection) are tried
again: through a proxy on 127.0.0.1 that answers every other request with 503
before passing it on to the emulator, an upload and a read still succeed, and a
bucket that keeps failing is a 503 ``dataset-storage-unavailable``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from emulators.gcs_emulator import GcsEmulator

from entail.datasets.cloud_store import CloudDatasetStore, object_name
from entail.datasets.gcs_objects import GcsObjects
from entail.datasets.port import DatasetError

from .test_cloud_store import ORG, ndjson


class FlakyProxy:
    """Forwards to ``upstream``; answers 503 to requests the ``fail`` rule picks."""

    def __init__(self, upstream: str, fail: str) -> None:
        self.upstream, self.fail = upstream, fail
        self.seen = self.failed = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.seen += 1
                if proxy.fail == "always" or (proxy.fail == "every-other" and proxy.seen % 2 == 1):
                    proxy.failed += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}
                }
                got = httpx.request(self.command, proxy.upstream + self.path, content=body, headers=headers)
                self.send_response(got.status_code)
                for key in ("Content-Type",):
                    if key in got.headers:
                        self.send_header(key, got.headers[key])
                self.send_header("Content-Length", str(len(got.content)))
                self.end_headers()
                self.wfile.write(got.content)

            do_GET = do_POST = _relay  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky(gcs: GcsEmulator) -> Iterator[FlakyProxy]:
    with FlakyProxy(gcs.endpoint, "every-other") as proxy:
        yield proxy


async def test_transient_failures_are_retried(
    redis: aioredis.Redis, tmp_path: Path, gcs: GcsEmulator, flaky: FlakyProxy
) -> None:
    objects = GcsObjects(gcs.bucket, token=None, endpoint=flaky.endpoint, backoff_s=0.01)
    store = CloudDatasetStore(redis, tmp_path / "backend", objects, None)
    try:
        version, created = await store.ingest("flaky", "org", [ndjson(ORG)], created_by="k1")
        assert created
        assert object_name(version, "manages") in gcs.objects()
        rows = {p: list(r) for p, _, r in store.read(version)}
        assert rows["manages"] == [("alice", "bob"), ("bob", "carol")]
        assert flaky.failed >= 6  # a metadata GET, an upload and a download per object at least
    finally:
        store.close()


async def test_a_bucket_that_keeps_failing_is_a_503(
    redis: aioredis.Redis, tmp_path: Path, gcs: GcsEmulator
) -> None:
    with FlakyProxy(gcs.endpoint, "always") as proxy:
        objects = GcsObjects(gcs.bucket, token=None, endpoint=proxy.endpoint, attempts=3, backoff_s=0.01)
        store = CloudDatasetStore(redis, tmp_path / "backend", objects, None)
        try:
            with pytest.raises(DatasetError) as raised:
                await store.ingest("down", "org", [ndjson(ORG)], created_by="k1")
            assert (raised.value.code, raised.value.status) == ("dataset-storage-unavailable", 503)
            assert proxy.seen == 3  # the first request, tried three times, and no more
            assert await store.versions("down", "org") == []
        finally:
            store.close()
