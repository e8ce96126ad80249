"""The Pub/Sub adapter of the bus port, against Google's Pub/Sub emulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from entail import tracing
from entail.bootstrap import bootstrap
from entail.bus.port import DECISIONS, REASONING_JOBS
from entail.bus.pubsub import BusTimeout, BusUnavailable, PubSubBus, emulator_host
from entail.messages import publish_job
from entail.net import free_port
from entail.settings import Settings

from .pubsub_emulator import PubSubEmulator, require_emulator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSubEmulator]:
    require_emulator()
    with PubSubEmulator(tmp_path_factory.mktemp("pubsub") / "emulator.log") as running:
        for topic in (REASONING_JOBS, DECISIONS):
            running.create_topic(topic)
        running.create_subscription("jobs-pull", REASONING_JOBS)
        yield running


async def test_publish_stores_data_and_attributes(emulator: PubSubEmulator) -> None:
    bus = PubSubBus.from_settings(emulator.settings())
    try:
        attributes = {"decision_id": "d-1", "tenant": "acme", "schema": "entail.job.v1"}
        first = await bus.publish(REASONING_JOBS, b'{"job": 1}', attributes)
        second = await bus.publish(REASONING_JOBS, b'{"job": 2}', {"decision_id": "d-2"})
    finally:
        await bus.close()
    assert first and second and first != second
    received = await asyncio.to_thread(emulator.pull, f"projects/{emulator.project}/subscriptions/jobs-pull")
    by_id = {m.message_id: m for m in received}
    assert set(by_id) == {first, second}
    assert by_id[first].data == b'{"job": 1}'
    assert dict(by_id[first].attributes) == attributes
    assert dict(by_id[second].attributes) == {"decision_id": "d-2"}


async def test_the_traceparent_attribute_survives_pubsub(emulator: PubSubEmulator, tmp_path: Path) -> None:
    """A job published with tracing on carries its publish span's W3C context as
    a Pub/Sub attribute, which the subscriber reads back as its parent."""
    assert tracing.setup(Settings(trace_file=tmp_path / "spans.jsonl"), "test")
    bus = PubSubBus.from_settings(emulator.settings())
    try:
        sent = await publish_job(bus, b'{"job": 3}', {"decision_id": "d-3", "tenant": "acme"})
        received = await asyncio.to_thread(
            emulator.pull, f"projects/{emulator.project}/subscriptions/jobs-pull"
        )
        attributes = {k: v for m in received if m.message_id == sent for k, v in m.attributes.items()}
        with tracing.message_span("job.handle", attributes):
            pass
    finally:
        await bus.close()
        tracing.shutdown()
    spans = {s["name"]: s for s in tracing.read_spans(tmp_path / "spans.jsonl")}
    publish = spans["bus.publish"]
    assert attributes["decision_id"] == "d-3"
    assert attributes["traceparent"].startswith(f"00-{publish['trace_id']}-{publish['span_id']}-")
    assert spans["job.handle"]["parent_span_id"] == publish["span_id"]


async def test_a_missing_topic_is_bus_unavailable(emulator: PubSubEmulator) -> None:
    bus = PubSubBus.from_settings(emulator.settings(pubsub_publish_timeout_ms=5_000))
    try:
        with pytest.raises(BusUnavailable, match=r"projects/entail-test/topics/no-such-topic.*NotFound"):
            await bus.publish("no-such-topic", b"x", {})
    finally:
        await bus.close()


async def test_an_unreachable_bus_fails_within_the_publish_timeout() -> None:
    """The errors are the Redis adapter's (ConnectionError / TimeoutError): the
    services answer 503 as when the Redis bus is down."""
    settings = Settings(
        bus="pubsub",
        gcp_project="entail-test",
        pubsub_emulator_host=f"127.0.0.1:{free_port()}",
        pubsub_publish_timeout_ms=1_500,
    )
    bus = PubSubBus.from_settings(settings)
    started = time.monotonic()
    try:
        with pytest.raises((BusUnavailable, BusTimeout)) as caught:
            await bus.publish(REASONING_JOBS, b"x", {"decision_id": "d"})
    finally:
        await bus.close()
    assert time.monotonic() - started < 5
    assert isinstance(caught.value, RedisConnectionError | RedisTimeoutError)


async def test_publish_after_close_is_refused(emulator: PubSubEmulator) -> None:
    bus = PubSubBus.from_settings(emulator.settings())
    await bus.close()
    await bus.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed bus"):
        await bus.publish(REASONING_JOBS, b"x", {})


async def test_bootstrap_selects_the_bus_by_setting(emulator: PubSubEmulator) -> None:
    import redis.asyncio as aioredis

    from entail.bus.redis_streams import RedisStreamsBus

    # a client that is never connected: choosing the bus touches no server
    unused = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        cloud = await bootstrap(emulator.settings(), redis=unused)
        local = await bootstrap(Settings(), redis=unused)
        try:
            assert isinstance(cloud.bus, PubSubBus)
            assert isinstance(local.bus, RedisStreamsBus)
        finally:
            await cloud.aclose()
            await local.aclose()
    finally:
        await unused.aclose()


def test_settings_of_cloud_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="ENTAIL_GCP_PROJECT"):
        Settings(bus="pubsub")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085")
    assert emulator_host(Settings(bus="pubsub", gcp_project="p")) == "127.0.0.1:8085"
    ours = Settings(bus="pubsub", gcp_project="p", pubsub_emulator_host="127.0.0.1:9000")
    assert emulator_host(ours) == "127.0.0.1:9000"
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST")
    assert emulator_host(Settings(bus="pubsub", gcp_project="p")) == ""
