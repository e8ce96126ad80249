"""Redis round trips of a decision's phases (issue 15), counted on the wire, and
the merged scripts' rules: submit (admit + create + slot or park), a job's start
(slot or park + claim + running), complete (+ cache), the slot given back with
the drain.

Round trips are counted by a real connection class that counts what it sends
(one ``send_packed_command`` is one request: a command, or a whole pipeline)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import redis.asyncio as aioredis
from entail_worker.evaluation import Evaluations

from entail import decisions, jobs
from entail.bootstrap import bootstrap
from entail.bus.port import DECISIONS, REASONING_JOBS, Message
from entail.bus.redis_streams import decode_entry, stream_key
from entail.models import RulesetVersion
from entail.record_json import dump_record
from entail.services import Services
from entail.settings import Settings
from entail.state import keys
from entail.state.job_start import Stored, start_job
from entail.state.quotas import (
    PARKED_ATTRIBUTE,
    PARKED_TENANTS,
    TenantQueueFull,
    TenantQuotas,
    encode_parked,
    open_key,
    parked_key,
    running_key,
)
from entail.state.submit import DecisionIdTaken, admit_create_dispatch

SOURCE = "decision(A, approve) :- applicant(A), income(A, I), I >= 3000000.\n"
FACTS: dict[str, Any] = {"applicant": [["ann"]], "income": [["ann", 5200000]]}
QUERY = ["decision(A, D)"]


class CountingConnection(aioredis.Connection):
    """A real connection that counts the requests it sends (shared by the pool)."""

    sent = 0
    names: ClassVar[list[str]] = []  # the first command of each request, to say what went over

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        packed = command if isinstance(command, bytes | bytearray) else b"".join(command)
        type(self).names.append(bytes(packed).split(b"\r\n")[2].decode(errors="replace"))
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counted(settings: Settings) -> AsyncIterator[Services]:
    pool = aioredis.ConnectionPool.from_url(settings.redis_url, connection_class=CountingConnection)
    client = aioredis.Redis(connection_pool=pool)
    svc = await bootstrap(settings, redis=client)
    try:
        yield svc
    finally:
        await svc.aclose()
        await client.aclose()


async def published(services: Services) -> RulesetVersion:
    version, _ = await services.registry.publish("acme", "loan", SOURCE, "", [], "k1")
    return version


async def job_of(services: Services, decision_id: str) -> Message:
    entries = await services.redis.xrange(stream_key(REASONING_JOBS))
    (job,) = [
        m for m in (decode_entry(i, f) for i, f in entries) if m.attributes["decision_id"] == decision_id
    ]
    return job


def quotas(services: Services, **update: int) -> TenantQuotas:
    return TenantQuotas.from_settings(
        services.redis, services.settings.model_copy(update=update), services.durability
    )


async def test_an_uncached_decision_costs_two_round_trips_to_submit_and_three_to_run(
    counted: Services, settings: Settings, evaluator: Evaluations
) -> None:
    version = await published(counted)
    limits = decisions.service_limits(settings, {})
    # warm: the scripts loaded on the server, the ruleset in the worker's cache
    warm = await decisions.submit(counted, "acme", version, {"applicant": [["bob"]]}, QUERY, False, limits)
    await jobs.handle_job(counted, settings, evaluator, await job_of(counted, warm.record.decision_id))

    before = CountingConnection.sent
    sub = await decisions.submit(counted, "acme", version, FACTS, QUERY, False, limits)
    # the cache lookup, then admit + create + slot + the job's XADD in one script
    # (was six, then three with the XADD on its own)
    sent = CountingConnection.names[before:]
    assert sent == ["GET", "EVAL"], sent
    message = await job_of(counted, sub.record.decision_id)

    before = CountingConnection.sent
    outcome = await jobs.handle_job(counted, settings, evaluator, message)
    assert outcome.outcome == "succeeded", outcome
    # slot + claim + running if the record is the pending one the job implies (not
    # read first); complete + cache + slot back (and whether the tenant has parked
    # jobs: none, so no drain); publish (was eleven: slot, claim, WATCH, GET,
    # MULTI..EXEC, cache SET, release each on its own; then five, then four with
    # the record read first). The scripts go by their SHA1 (EVALSHA), loaded by
    # the warm-up: their text is not sent again on every job
    sent = CountingConnection.names[before:]
    assert sent == ["EVALSHA", "EVALSHA", "XADD"], sent
    assert await counted.cache.get("acme", version.hash, sub.record.request_hash) == sub.record.decision_id
    assert await counted.redis.zscore(running_key("acme"), sub.record.decision_id) is None
    stored = await counted.decisions.get("acme", sub.record.decision_id)
    assert stored is not None and stored.status == "succeeded" and stored.worker == settings.worker_id


async def test_a_job_runs_on_a_server_that_lost_its_scripts(
    counted: Services, settings: Settings, evaluator: Evaluations
) -> None:
    """The worker's scripts go by SHA1; a server without them (restarted, or a
    replica promoted since) answers NOSCRIPT, and the script follows once as text
    (which loads it): the job runs, and the next one goes by SHA1 again."""
    version = await published(counted)
    limits = decisions.service_limits(settings, {})
    for name in ("bob", "cy", "di"):
        sub = await decisions.submit(counted, "acme", version, {"applicant": [[name]]}, QUERY, False, limits)
        message = await job_of(counted, sub.record.decision_id)
        if name == "cy":
            await counted.redis.script_flush()
            expected = ["EVALSHA", "EVAL", "EVALSHA", "EVAL", "XADD"]
        else:  # warm: the scripts loaded; then loaded again by the NOSCRIPT fallback
            expected = ["EVALSHA", "EVALSHA", "XADD"]
        before = CountingConnection.sent
        outcome = await jobs.handle_job(counted, settings, evaluator, message)
        assert outcome.outcome == "succeeded", outcome
        if name != "bob":
            assert CountingConnection.names[before:] == expected, name
        stored = await counted.decisions.get("acme", sub.record.decision_id)
        assert stored is not None and stored.status == "succeeded"


async def test_a_job_ending_while_its_tenant_has_parked_jobs_republishes_them(
    counted: Services, settings: Settings, evaluator: Evaluations
) -> None:
    """The complete script gives the slot back and hands it to the tenant's parked
    job that fits, in the same round trip (there was a slot back + drain round trip
    of its own), and the job is republished at once, not a drain interval later."""
    version = await published(counted)
    limits = decisions.service_limits(settings, {})
    warm = await decisions.submit(counted, "acme", version, {"applicant": [["bob"]]}, QUERY, False, limits)
    await jobs.handle_job(counted, settings, evaluator, await job_of(counted, warm.record.decision_id))
    sub = await decisions.submit(counted, "acme", version, FACTS, QUERY, False, limits)
    message = await job_of(counted, sub.record.decision_id)
    # a job republished from the parked list: it may start while others stay parked
    message.attributes[PARKED_ATTRIBUTE] = "1"
    parked = encode_parked("dec_parked", b'{"parked": true}', {"decision_id": "dec_parked", "tenant": "acme"})
    await counted.redis.rpush(parked_key("acme"), parked)
    await counted.redis.sadd(PARKED_TENANTS, "acme")

    before = CountingConnection.sent
    outcome = await jobs.handle_job(counted, settings, evaluator, message)
    assert outcome.outcome == "succeeded", outcome
    sent = CountingConnection.names[before:]
    # start; complete + slot back + the parked job handed the slot; the parked
    # job's XADD and the decision's in one write; then its unpark (there were a
    # slot back + ready round trip and an XADD more). The unpark goes by SHA1
    # too: its first use here, so NOSCRIPT, then its text
    assert sent == ["EVALSHA", "EVALSHA", "XADD", "EVALSHA", "EVAL"], sent
    decisions_stream = await counted.redis.xrange(stream_key(DECISIONS))
    audited = [decode_entry(i, f).attributes["decision_id"] for i, f in decisions_stream]
    assert audited[-1] == sub.record.decision_id
    # its slot is reserved while it comes back through the bus
    assert await counted.redis.zscore(running_key("acme"), "dec_parked") is not None
    assert await counted.redis.llen(parked_key("acme")) == 0
    republished = [decode_entry(i, f) for i, f in await counted.redis.xrange(stream_key(REASONING_JOBS))]
    assert [m.data for m in republished if m.attributes["decision_id"] == "dec_parked"] == [
        b'{"parked": true}'
    ]


async def test_submit_script_is_all_or_nothing_and_idempotent(counted: Services) -> None:
    q = quotas(counted, tenant_max_open=1, tenant_max_running=1)
    record = (await decisions_record(counted, "dec_a")).model_copy()
    call = {
        "tenant": "acme",
        "decision_id": "dec_a",
        "record_json": dump_record(record),
        "ttl_s": 60,
        "job_data": b"{}",
        "job_attributes": {"decision_id": "dec_a", "tenant": "acme"},
        "dispatch_lease_ms": 60_000,
        "admit": True,
    }
    assert (await admit_create_dispatch(q, **call)).action == "publish"  # type: ignore[arg-type]
    # a retry after a lost reply: admitted, created and slotted once, not refused
    assert (await admit_create_dispatch(q, **call)).action == "publish"  # type: ignore[arg-type]
    assert await counted.redis.zcard(open_key("acme")) == 1
    assert await counted.redis.zcard(running_key("acme")) == 1
    # the open quota (1) is full: nothing of the second decision is written
    other = {
        **call,
        "decision_id": "dec_b",
        "record_json": dump_record(record.model_copy(update={"decision_id": "dec_b"})),
    }
    with pytest.raises(TenantQueueFull):
        await admit_create_dispatch(q, **other)  # type: ignore[arg-type]
    assert await counted.redis.exists(keys.decision("dec_b")) == 0
    # admitted by the caller (a batch): over the running quota (1) it is parked, durably
    assert (await admit_create_dispatch(q, **{**other, "admit": False})).action == "parked"  # type: ignore[arg-type]
    assert await counted.redis.llen(parked_key("acme")) == 1
    assert await counted.redis.exists(keys.decision("dec_b")) == 1
    # another record under the id: refused, nothing overwritten
    clash = {**call, "record_json": dump_record(record.model_copy(update={"query": ["other(X)"]}))}
    with pytest.raises(DecisionIdTaken):
        await admit_create_dispatch(q, **clash)  # type: ignore[arg-type]
    assert await counted.redis.get(keys.decision("dec_a")) == dump_record(record).encode()


async def decisions_record(services: Services, decision_id: str) -> Any:
    from entail.models import DecisionRecord, RulesetRef, utcnow

    return DecisionRecord(
        decision_id=decision_id,
        tenant="acme",
        ruleset=RulesetRef(tenant="acme", name="loan", version=1, hash="h"),
        request_hash="r",
        status="pending",
        facts={},
        query=QUERY,
        submitted_at=utcnow(),
    )


async def test_job_start_marks_running_only_the_record_it_read(counted: Services) -> None:
    q = quotas(counted, tenant_max_running=1)
    record = await decisions_record(counted, "dec_s")
    assert await counted.decisions.create(record)
    as_read = dump_record(record).encode()
    running = record.model_copy(update={"status": "running", "worker": "w1"})
    start: dict[str, Any] = {
        "tenant": "acme",
        "decision_id": "dec_s",
        "job_data": b"{}",
        "job_attributes": {"decision_id": "dec_s", "tenant": "acme"},
        "worker": "w1",
        "claim_lease_ms": 10_000,
        "running_record": dump_record(running),
    }
    # the record changed since it was read: slot and claim held, the record untouched
    assert await start_job(q, record_as_read=b"stale", **start) == "changed"
    assert await counted.redis.get(keys.claim("dec_s")) == b"w1"
    assert await counted.redis.get(keys.decision("dec_s")) == as_read
    # as read: marked running (its TTL kept); a retry of the same worker holds the claim
    assert await start_job(q, record_as_read=as_read, **start) == "running"
    assert await counted.redis.get(keys.decision("dec_s")) == dump_record(running).encode()
    assert await counted.redis.ttl(keys.decision("dec_s")) > 0
    # another worker: the slot (its own id) is full, so it parks; a held slot, another's claim
    assert await start_job(q, record_as_read=as_read, **{**start, "decision_id": "dec_t"}) == "parked"
    assert await start_job(q, record_as_read=as_read, **{**start, "worker": "w2"}) == "claimed"


async def test_job_start_expecting_a_record_takes_nothing_when_another_is_stored(counted: Services) -> None:
    """``expected=True`` compares before taking anything: the record stored when it
    is not the one expected (or None), with no slot, claim or parking taken."""
    q = quotas(counted, tenant_max_running=1)
    record = await decisions_record(counted, "dec_e")
    assert await counted.decisions.create(record)
    as_stored = dump_record(record).encode()
    running = record.model_copy(update={"status": "running", "worker": "w1"})
    start: dict[str, Any] = {
        "tenant": "acme",
        "decision_id": "dec_e",
        "job_data": b"{}",
        "job_attributes": {"decision_id": "dec_e", "tenant": "acme"},
        "worker": "w1",
        "claim_lease_ms": 10_000,
        "running_record": dump_record(running),
        "expected": True,
    }
    # the tenant's one slot is full: a job that compared first is not parked either
    await counted.redis.zadd(running_key("acme"), {"dec_other": 10**13})
    assert await start_job(q, record_as_read="another record", **start) == Stored(as_stored)
    assert await start_job(q, record_as_read="", **{**start, "decision_id": "dec_none"}) == Stored(None)
    assert await counted.redis.exists(keys.claim("dec_e"), keys.claim("dec_none")) == 0
    assert await counted.redis.llen(parked_key("acme")) == 0
    assert await counted.redis.zrange(running_key("acme"), 0, -1) == [b"dec_other"]
    assert await counted.redis.get(keys.decision("dec_e")) == as_stored
    # the one expected: slot (or parking), claim and running in the same step
    assert await start_job(q, record_as_read=as_stored, **start) == "parked"
    await counted.redis.delete(running_key("acme"), parked_key("acme"))
    assert await start_job(q, record_as_read=as_stored, **start) == "running"
    assert await counted.redis.get(keys.claim("dec_e")) == b"w1"
    assert await counted.redis.get(keys.decision("dec_e")) == dump_record(running).encode()


async def test_a_job_whose_record_is_not_the_pending_one_it_implies_reads_it_and_runs(
    counted: Services, settings: Settings, evaluator: Evaluations
) -> None:
    """The worker expects the pending record the job implies; a record that is not
    it (here: running, left by a worker that died, its claim expired) is read back
    from the same script, checked, and the job started the way it was before: one
    round trip more, and the decision ends as it must."""
    version = await published(counted)
    limits = decisions.service_limits(settings, {})
    # warm: the scripts loaded on the server, the ruleset in the worker's cache
    warm = await decisions.submit(counted, "acme", version, {"applicant": [["bob"]]}, QUERY, False, limits)
    await jobs.handle_job(counted, settings, evaluator, await job_of(counted, warm.record.decision_id))
    sub = await decisions.submit(counted, "acme", version, FACTS, QUERY, False, limits)
    message = await job_of(counted, sub.record.decision_id)
    crashed = sub.record.model_copy(update={"status": "running", "worker": "dead", "started_at": "x"})
    await counted.redis.set(keys.decision(sub.record.decision_id), dump_record(crashed), keepttl=True)

    before = CountingConnection.sent
    outcome = await jobs.handle_job(counted, settings, evaluator, message)
    assert outcome.outcome == "succeeded", outcome
    # expected (the stored record comes back), slot + claim + running as read,
    # complete, publish
    sent = CountingConnection.names[before:]
    assert sent == ["EVALSHA", "EVALSHA", "EVALSHA", "XADD"], sent
    stored = await counted.decisions.get("acme", sub.record.decision_id)
    assert stored is not None and stored.status == "succeeded" and stored.worker == settings.worker_id

    # another tenant's decision: not evaluated, and nothing of it taken
    sub = await decisions.submit(counted, "acme", version, {"applicant": [["cy"]]}, QUERY, False, limits)
    message = await job_of(counted, sub.record.decision_id)
    forged = Message(
        message.id, message.data.replace(b'"tenant":"acme"', b'"tenant":"evil"'), message.attributes
    )
    outcome = await jobs.handle_job(counted, settings, evaluator, forged)
    assert outcome.outcome == "unknown-decision", outcome
    assert await counted.redis.exists(keys.claim(sub.record.decision_id)) == 0
    assert await counted.redis.zcard(running_key("evil")) == 0
    assert await counted.decisions.get("acme", sub.record.decision_id) == sub.record


async def test_complete_caches_only_a_success_and_ready_gives_the_slot_back(counted: Services) -> None:
    record = await decisions_record(counted, "dec_c")
    assert await counted.decisions.create(record)
    failed = record.model_copy(update={"status": "failed", "completed_at": record.submitted_at})
    assert await counted.decisions.complete(failed, cache_ttl_s=60)
    assert await counted.cache.get("acme", "h", "r") is None
    record2 = record.model_copy(update={"decision_id": "dec_d"})
    assert await counted.decisions.create(record2)
    done = record2.model_copy(
        update={"status": "succeeded", "answers": [], "completed_at": record.submitted_at}
    )
    assert await counted.decisions.complete(done, cache_ttl_s=60)
    assert await counted.cache.get("acme", "h", "r") == "dec_d"
    assert 0 < await counted.redis.ttl(keys.cache("acme", "h", "r")) <= 60

    q = quotas(counted, tenant_max_running=1)
    await counted.redis.zadd(running_key("acme"), {"dec_x": 10**13})
    assert await q.ready("acme") == []
    assert await q.ready("acme", release="dec_x") == []
    assert await counted.redis.zcard(running_key("acme")) == 0


async def test_the_workers_complete_hands_out_only_the_parked_jobs_that_fit(counted: Services) -> None:
    """``complete_job(hand_out=...)`` gives the job's slot back and hands the free
    slots to the oldest parked jobs, each slot reserved and the job left parked
    (the caller republishes, then unparks); a retry after a lost reply hands the
    same job out again, as a drain that did not finish does."""
    record = await decisions_record(counted, "dec_h")
    assert await counted.decisions.create(record)
    await counted.redis.zadd(running_key("acme"), {"dec_h": 10**13, "dec_other": 10**13})
    entries = [encode_parked(f"dec_p{i}", b"{}", {"decision_id": f"dec_p{i}"}) for i in range(3)]
    await counted.redis.rpush(parked_key("acme"), *entries)
    await counted.redis.sadd(PARKED_TENANTS, "acme")
    ended = {"status": "succeeded", "answers": [], "completed_at": record.submitted_at}
    done = record.model_copy(update=ended)

    stored, parked, handed = await counted.decisions.complete_job(done, hand_out=2)
    # two slots, one still held by another job: one parked job fits
    assert (stored, parked) == (True, True)
    assert [(h.raw, h.attributes) for h in handed] == [(entries[0], {"decision_id": "dec_p0"})]
    running = {m.decode() for m in await counted.redis.zrange(running_key("acme"), 0, -1)}
    assert running == {"dec_other", "dec_p0"}
    assert await counted.redis.llen(parked_key("acme")) == 3  # parked until republished

    stored, parked, handed = await counted.decisions.complete_job(done, hand_out=2)
    assert (stored, parked) == (True, True)  # the same record: stored already counts
    assert [h.raw for h in handed] == [entries[0]]
    assert await counted.redis.zcard(running_key("acme")) == 2

    # without parked jobs: nothing handed out, and no flag
    await counted.redis.delete(parked_key("acme"))
    assert (await counted.decisions.complete_job(done, hand_out=2))[1:] == (False, [])


async def test_a_repeated_cache_hit_is_served_from_the_process_without_reading_redis(
    counted: Services, settings: Settings, evaluator: Evaluations
) -> None:
    version = await published(counted)
    limits = decisions.service_limits(settings, {})
    sub = await decisions.submit(counted, "acme", version, FACTS, QUERY, False, limits)
    await jobs.handle_job(counted, settings, evaluator, await job_of(counted, sub.record.decision_id))

    before = CountingConnection.sent
    first = await decisions.submit(counted, "acme", version, FACTS, QUERY, False, limits)
    # the cache entry, the record; then the hit's own record and its audit message,
    # one pipeline (SET + XADD: the bus is in the same store, entail.bus.port.InStoreBus)
    assert CountingConnection.names[before:] == ["GET", "EVALSHA", "SET"]
    before = CountingConnection.sent
    again = await decisions.submit(counted, "acme", version, FACTS, QUERY, False, limits)
    # remembered by the process (LocalHits): only the write every decision needs
    assert CountingConnection.names[before:] == ["SET"]
    for hit in (first, again):
        assert hit.outcome == "cached" and hit.record.cached_from == sub.record.decision_id
        # stored, published for its audit row, and answered as the same text
        assert await counted.redis.get(keys.decision(hit.record.decision_id)) == hit.text.encode()
    entries = await counted.redis.xrange(stream_key("decisions"))
    audited = [
        m
        for m in (decode_entry(i, f) for i, f in entries)
        if m.attributes["decision_id"] == again.record.decision_id
    ]
    # one audit message, the record as stored and answered (encoded once)
    assert [m.data for m in audited] == [again.text.encode()]
    assert first.record.decision_id != again.record.decision_id

    # another tenant's identical request never finds it (the tenant is in the key)
    other, _ = await counted.registry.publish("beta", "loan", SOURCE, "", [], "k2")
    elsewhere = await decisions.submit(counted, "beta", other, FACTS, QUERY, False, limits)
    assert elsewhere.outcome == "submitted"


async def test_without_local_hits_every_hit_reads_the_cache_and_the_record(
    counted: Services, settings: Settings, evaluator: Evaluations
) -> None:
    svc = counted
    svc.settings = settings.model_copy(update={"result_cache_local_s": 0})
    version = await published(svc)
    limits = decisions.service_limits(settings, {})
    sub = await decisions.submit(svc, "acme", version, FACTS, QUERY, False, limits)
    await jobs.handle_job(svc, settings, evaluator, await job_of(svc, sub.record.decision_id))
    for _ in range(2):
        before = CountingConnection.sent
        hit = await decisions.submit(svc, "acme", version, FACTS, QUERY, False, limits)
        assert hit.outcome == "cached"
        assert CountingConnection.names[before:] == ["GET", "EVALSHA", "SET"]  # SET + XADD: one pipeline


async def test_resolving_a_name_to_its_latest_version_is_one_round_trip(counted: Services) -> None:
    first = await published(counted)
    second, _ = await counted.registry.publish("acme", "loan", SOURCE + "% v2\n", "", [], "k1")
    assert await counted.registry.resolve("acme", "loan") == second  # loads the script
    before = CountingConnection.sent
    for ref in ("loan", "loan@latest"):
        assert await counted.registry.resolve("acme", ref) == second
    assert CountingConnection.names[before:] == ["EVALSHA", "EVALSHA"]  # was HGET, HGET each
    assert await counted.registry.resolve("acme", "loan@1") == first
    # parsed once per stored text, each caller its own copy
    a, b = await counted.registry.resolve("acme", "loan"), await counted.registry.resolve("acme", "loan")
    assert a == b == second and a is not b
    assert await counted.registry.resolve("acme", "nope") is None
    assert await counted.registry.resolve("beta", "loan") is None  # another tenant's name
