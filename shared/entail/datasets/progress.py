"""An upload's progress in Redis, for ``GET /v1/datasets/{name}/uploads/{id}``.

The API publishes the store's :class:`~entail.datasets.port.Progress` every
``interval`` seconds while an upload with an ``X-Entail-Upload-Id`` runs (any
backend can answer the GET: the key is shared), and once more at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from ..state import keys
from .port import Progress

TTL_S = 3600


async def publish(redis: aioredis.Redis, tenant: str, upload_id: str, progress: Progress) -> None:
    key = keys.dataset_upload(tenant, upload_id)
    fields: dict[str | bytes, int | str] = {
        "bytes": progress.bytes,
        "facts": progress.facts,
        "done": int(progress.done),
    }
    pipe = redis.pipeline(transaction=False)
    pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
    pipe.expire(key, TTL_S)
    await pipe.execute()


async def read(redis: aioredis.Redis, tenant: str, upload_id: str) -> dict[str, int | bool] | None:
    raw = await redis.hgetall(keys.dataset_upload(tenant, upload_id))
    if not raw:
        return None
    values = {_text(k): _text(v) for k, v in raw.items()}
    return {"bytes": int(values["bytes"]), "facts": int(values["facts"]), "done": values["done"] == "1"}


@contextlib.asynccontextmanager
async def published(
    redis: aioredis.Redis, tenant: str, upload_id: str | None, progress: Progress, interval: float = 0.5
) -> AsyncIterator[None]:
    """Publish ``progress`` while the block runs (nothing when ``upload_id`` is None).

    The loop is stopped by an event, never cancelled: the services' Redis client
    shields a command from cancellation (a queued command completes), so a
    cancelled publisher could outlive the block."""
    if upload_id is None:
        yield
        return
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # progress is advisory: never fail the upload over it
                await publish(redis, tenant, upload_id, progress)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5.0)
        progress.done = True
        with contextlib.suppress(Exception):
            await publish(redis, tenant, upload_id, progress)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
