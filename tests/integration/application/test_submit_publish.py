"""The submit script adds the new decision's job message itself when the bus is
kept in the same store (issue 15): one round trip fewer per uncached decision,
the message added with the running slot it reserves, so a retried submit adds it
once, a parked job not at all, and a refused one nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from entail import decisions
from entail.bootstrap import bootstrap
from entail.bus.port import REASONING_JOBS
from entail.bus.redis_streams import RedisStreamsBus, decode_entry, stream_key
from entail.models import DecisionRecord, RulesetRef, utcnow
from entail.record_json import dump_record
from entail.services import Services
from entail.settings import Settings
from entail.state import keys
from entail.state.quotas import TenantQueueFull, TenantQuotas, parked_key, running_key
from entail.state.stream_add import RecordedAdd
from entail.state.submit import admit_create_dispatch


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    made = await bootstrap(settings)
    try:
        yield made
    finally:
        await made.aclose()


def record(decision_id: str) -> DecisionRecord:
    ruleset = RulesetRef(tenant="acme", name="loan", version=1, hash="h")
    return DecisionRecord(
        decision_id=decision_id, tenant="acme", ruleset=ruleset, request_hash="r", status="pending",
        facts={}, query=["p(X)"], submitted_at=utcnow(),
    )  # fmt: skip


async def jobs_of(services: Services, decision_id: str) -> list[bytes]:
    entries = await services.redis.xrange(stream_key(REASONING_JOBS))
    messages = (decode_entry(i, f) for i, f in entries)
    return [m.data for m in messages if m.attributes["decision_id"] == decision_id]


async def test_the_job_is_added_with_its_slot_once_and_never_when_parked_or_refused(
    services: Services,
) -> None:
    bus = services.bus
    assert isinstance(bus, RedisStreamsBus) and bus.joins(services.durability)
    q = TenantQuotas.from_settings(
        services.redis,
        services.settings.model_copy(update={"tenant_max_open": 2, "tenant_max_running": 1}),
        services.durability,
    )

    stored: dict[str, str] = {}  # a retry sends the very same record

    async def submit(decision_id: str, admit: bool = True) -> object:
        attributes = {"decision_id": decision_id, "tenant": "acme", "schema": "job"}
        recorded = RecordedAdd()
        bus.queue_publish(recorded, REASONING_JOBS, b'{"job": "%s"}' % decision_id.encode(), attributes)
        assert recorded.add is not None
        text = stored.setdefault(decision_id, dump_record(record(decision_id)))
        return await admit_create_dispatch(
            q, tenant="acme", decision_id=decision_id, record_json=text,
            ttl_s=60, job_data=b"{}", job_attributes=attributes, dispatch_lease_ms=60_000, admit=admit,
            publish=recorded.add,
        )  # fmt: skip

    first = await submit("dec_a")
    assert first == decisions_dispatch("publish", True)
    # a retry after a lost reply: the slot is held already, nothing added again
    assert await submit("dec_a") == decisions_dispatch("publish", True)
    assert await jobs_of(services, "dec_a") == [b'{"job": "dec_a"}']
    # over the running quota (1): parked, no message
    assert await submit("dec_b") == decisions_dispatch("parked", False)
    assert await jobs_of(services, "dec_b") == []
    assert await services.redis.llen(parked_key("acme")) == 1
    # over the open quota (2): refused, nothing written or added
    with pytest.raises(TenantQueueFull):
        await submit("dec_c")
    assert await jobs_of(services, "dec_c") == [] and await services.redis.exists(keys.decision("dec_c")) == 0
    assert await services.redis.zcard(running_key("acme")) == 1


def decisions_dispatch(action: str, published: bool) -> object:
    from entail.state.submit import Dispatch

    return Dispatch(action, published)  # type: ignore[arg-type]


async def test_a_submitted_decisions_job_is_the_message_the_bus_would_publish(services: Services) -> None:
    """Through entail.decisions.submit: the one message on the jobs' stream is the
    job the bus would have published (data, attributes), and the record is stored."""
    version = await services.registry.publish("acme", "loan", "p(X) :- q(X).\n", "", [], "k1")
    limits = decisions.service_limits(services.settings, {})
    sub = await decisions.submit(services, "acme", version[0], {"q": [[1]]}, ["p(X)"], False, limits)
    entries = await services.redis.xrange(stream_key(REASONING_JOBS))
    (message,) = [decode_entry(i, f) for i, f in entries]
    assert message.attributes["decision_id"] == sub.record.decision_id
    assert message.attributes["tenant"] == "acme" and message.publish_time
    job = decisions.Job.model_validate_json(message.data)
    assert job.decision_id == sub.record.decision_id and job.facts == {"q": [[1]]}
    assert await services.decisions.get("acme", sub.record.decision_id) is not None
