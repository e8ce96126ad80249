"""Submitting a decision: the application service behind ``POST /v1/decisions``.

A request becomes one of two things here:

* a **cache hit** — the same request (same masked facts, queries, explain and
  limits) against the same ruleset version already succeeded: it is served as a
  decision of its own (a new id, ``cached_from`` the original), stored and
  published on ``decisions`` so it gets its own audit row, then answered;
* a **new decision** — admitted against the tenant's open quota, stored
  ``pending``, and its job put on ``reasoning-jobs`` with one of the tenant's
  running slots reserved, or parked until one frees (:mod:`entail.state.quotas`).

Masked predicates are masked first, before anything is hashed, stored or
queued. Nothing here knows HTTP: the backend's route parses, calls
:func:`submit` and maps :class:`InvalidLimits` and
:class:`~entail.state.quotas.TenantQueueFull` to problem+json.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio.client import Pipeline

from . import reasoning, tracing
from .bus.port import DECISIONS, REASONING_JOBS, InStoreBus
from .dataset_binding import resolve_bindings
from .masking import mask_case
from .messages import decision_message, job_message, publish_decision, publish_job
from .models import DecisionRecord, Job, RulesetRef, RulesetVersion, new_decision_id, request_hash, utcnow
from .record_json import dump_record
from .services import Services
from .settings import Settings
from .state import keys
from .state.decisions import parse_record
from .state.quotas import DISPATCH_LEASE_MS, TenantQueueFull, TenantQuotas
from .state.ratelimit import RateDecision
from .state.registry import NameRef
from .state.stream_add import RecordedAdd
from .state.submit import admit_create_dispatch


class InvalidLimits(ValueError):
    """A request's ``limits`` names an unknown limit or a value that is not a
    positive integer."""


def service_limits(settings: Settings, requested: dict[str, int]) -> dict[str, int]:
    """The engine limits of a request: what it asked for, each capped by the
    service's setting (a request may lower a cap, never raise it)."""
    caps = (
        settings.limit_derived_facts,
        settings.limit_wall_time_ms,
        settings.limit_input_facts,
        settings.limit_program_bytes,
        settings.limit_compile_time_ms,
        settings.limit_rule_body_literals,
    )
    if not requested:  # most requests: the caps themselves, worked out once
        found = _DEFAULTS.get(caps)
        if found is None:
            if len(_DEFAULTS) >= 64:
                _DEFAULTS.clear()
            found = _DEFAULTS[caps] = _capped(caps, {})
        return dict(found)
    return _capped(caps, requested)


# the limits of a request that asks for none, by the caps they come from (few: one per settings)
_DEFAULTS: dict[tuple[int, ...], dict[str, int]] = {}


def _capped(caps: tuple[int, ...], requested: dict[str, int]) -> dict[str, int]:
    derived, wall, inputs, program, compile_ms, body = caps
    cap = reasoning.Limits(
        derived_facts=derived,
        wall_time_ms=wall,
        input_facts=inputs,
        program_bytes=program,
        compile_time_ms=compile_ms,
        rule_body_literals=body,
    )
    try:
        return reasoning.Limits.from_mapping(requested).capped_by(cap).to_json()
    except ValueError as exc:
        raise InvalidLimits(str(exc)) from None


def quotas(services: Services) -> TenantQuotas:
    return TenantQuotas.from_settings(services.redis, services.settings, services.durability)


async def admit(services: Services, tenant: str, decision_ids: list[str]) -> None:
    """Count new decisions towards the tenant's open quota, all or none
    (:class:`~entail.state.quotas.TenantQueueFull` when they do not fit)."""
    await quotas(services).admit(tenant, decision_ids)


async def withdraw(services: Services, tenant: str, decision_ids: list[str]) -> None:
    """Give back admitted ids that will not become decisions."""
    await quotas(services).withdraw(tenant, decision_ids)


@dataclass(frozen=True)
class Submission:
    record: DecisionRecord
    outcome: Literal["cached", "submitted"]
    # the record as stored (entail.record_json.dump_record): the answer is this text,
    # not a third encoding of the record
    text: str


async def submit(
    services: Services,
    tenant: str,
    version: RulesetVersion,
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
    *,
    admitted_id: str | None = None,
    locale: str | None = None,
    explain_absent: list[str] | None = None,
    decision_id: str | None = None,
) -> Submission:
    """:func:`_submit` in a span ``decision.submit`` (when tracing is on)."""
    if not tracing.enabled():
        return await _submit(
            services,
            tenant,
            version,
            facts,
            query,
            explain,
            limits,
            admitted_id=admitted_id,
            locale=locale,
            explain_absent=explain_absent,
            decision_id=decision_id,
        )
    with tracing.span(
        "decision.submit", {"tenant": tenant, "ruleset": version.name, "version": version.version}
    ) as span:
        submission = await _submit(
            services,
            tenant,
            version,
            facts,
            query,
            explain,
            limits,
            admitted_id=admitted_id,
            locale=locale,
            explain_absent=explain_absent,
            decision_id=decision_id,
        )
        tracing.record(span, decision_id=submission.record.decision_id, outcome=submission.outcome)
        return submission


async def _submit(
    services: Services,
    tenant: str,
    version: RulesetVersion,
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
    *,
    admitted_id: str | None = None,
    locale: str | None = None,
    explain_absent: list[str] | None = None,
    decision_id: str | None = None,
) -> Submission:
    """A cached decision, or a new pending one whose job is on the bus (or parked).

    A new decision counts towards the tenant's open quota: admitted here
    (:class:`~entail.state.quotas.TenantQueueFull` when full), or already by the
    caller under ``admitted_id`` (a batch, all at once; given back when the case
    turns out to be a cache hit). ``decision_id``: the id a new decision gets (one the
    caller chose, to wait for it: entail.state.waiters.DoneWaiters.watch), else a fresh one."""
    ruleset = RulesetRef(tenant=tenant, name=version.name, version=version.version, hash=version.hash)
    # the exact dataset versions this decision reads (floating selectors resolved
    # now; DatasetBindingError when one names nothing any more): recorded, queued
    # and hashed, so a new dataset version is never answered from the old one's cache
    datasets = await resolve_bindings(services.datasets, tenant, version.datasets) if version.datasets else []
    masked = version.masked_predicates
    facts, query, digest = _keyed(
        services, version, facts, query, explain, limits, locale, explain_absent, datasets
    )
    original = await cached_original(services, tenant, ruleset.hash, digest)
    if original is not None:
        if admitted_id is not None:
            await withdraw(services, tenant, [admitted_id])
        served, text = await serve_cached(services, original, digest, ruleset)
        return Submission(served, "cached", text)
    decision_id = admitted_id or decision_id or new_decision_id()
    record = DecisionRecord(
        decision_id=decision_id,
        tenant=tenant,
        ruleset=ruleset,
        request_hash=digest,
        status="pending",
        facts=facts,
        query=query,
        explain=explain,
        masked_predicates=masked,
        datasets=datasets,
        submitted_at=utcnow(),
    )
    job = Job(
        decision_id=record.decision_id,
        tenant=tenant,
        ruleset=ruleset,
        facts=facts,
        query=query,
        explain=explain,
        limits=limits,
        locale=locale,
        explain_absent=explain_absent or [],
        request_hash=digest,
        submitted_at=record.submitted_at,
        masked_predicates=masked,
        datasets=datasets,
    )
    data, attributes = job_message(job)
    # the submitting request's trace goes with the job, parked or not (tracing on)
    attributes = tracing.inject(attributes)
    # admitted against the open quota (TenantQueueFull, nothing written), stored
    # pending, and one of the tenant's running slots reserved, or the job parked:
    # one durable script. The bus never holds a flood of one tenant's jobs for
    # another's to queue behind: a parked job is published when a slot frees
    q = quotas(services)
    record_json = dump_record(record)
    # a bus kept in the same store: the job's XADD goes inside the submit script
    # (with the slot it reserves), one round trip fewer; tracing on keeps the
    # publish's own span, so the two stay apart as they do on Pub/Sub
    recorded = RecordedAdd()
    bus = services.bus
    if isinstance(bus, InStoreBus) and bus.joins(services.durability) and not tracing.enabled():
        bus.queue_publish(recorded, REASONING_JOBS, data, attributes)
    try:
        dispatch = await admit_create_dispatch(
            q,
            tenant=tenant,
            decision_id=decision_id,
            record_json=record_json,
            ttl_s=services.decisions.ttl_s,
            job_data=data,
            job_attributes=attributes,
            dispatch_lease_ms=DISPATCH_LEASE_MS,
            admit=admitted_id is None,
            publish=recorded.add,
        )
    except TenantQueueFull:
        raise
    except BaseException:
        # unknown whether it was written (a lost reply, an unconfirmed WAIT): the
        # client gets a 503 and may retry; the id must not count against the
        # tenant's quotas meanwhile. A record that was stored stays pending and
        # the sweeper ends it (a parked job, if any, is evaluated when its turn comes)
        await q.release(tenant, decision_id)
        await q.withdraw(tenant, [decision_id])
        raise
    if dispatch.action == "publish" and not dispatch.published:
        try:
            await publish_job(services.bus, data, attributes)
        except BaseException:
            # the bus refused (the client gets a 503 and may retry): the reserved
            # running slot must not hold the tenant's other decisions for the
            # dispatch lease. The record stays pending; the sweeper ends it.
            await q.release(tenant, record.decision_id)
            await q.withdraw(tenant, [record.decision_id])
            raise
    return Submission(record, "submitted", record_json)


async def cached_original(
    services: Services, tenant: str, ruleset_hash: str, digest: str
) -> DecisionRecord | None:
    """The succeeded decision of this tenant whose result the request may repeat, or
    None: from the process's :class:`~entail.state.cache.LocalHits` when it served
    the same request a moment ago, else the cache entry and the record, read from Redis."""
    settings = services.settings
    local = services.cache.local
    if settings.result_cache_local_s > 0:
        remembered = local.get(tenant, ruleset_hash, digest)
        if remembered is not None:
            return remembered
    cached_id = await services.cache.get(tenant, ruleset_hash, digest)
    if cached_id is None:
        return None
    raw = await services.decisions.get_text(tenant, cached_id)
    if raw is None:
        return None
    original = await parse_record(raw)
    if original.tenant != tenant or original.status != "succeeded":
        return None
    local.put(
        tenant,
        ruleset_hash,
        digest,
        original,
        len(raw),
        keep_s=settings.result_cache_local_s,
        cache_ttl_s=settings.cache_ttl_s,
        record_ttl_s=services.decisions.ttl_s,
    )
    return original


async def serve_cached(
    services: Services, original: DecisionRecord, digest: str, ruleset: RulesetRef
) -> tuple[DecisionRecord, str]:
    """A cache hit is a decision of its own: a new id, ``cached_from`` the decision
    whose result it repeats, stored and published on ``decisions`` (so it gets its
    own audit row) before it is answered. Its facts are the original's as stored
    (the request hash is the same, so the facts are too; masked values stay masked).
    Its ruleset is the one asked for: the cache is keyed by source hash, which two
    rulesets (or two versions of one) with the same source share. Returns the
    record and its JSON text, encoded once for the store, the bus and the answer."""
    served, text = _served(original, digest, ruleset)
    await _store_and_publish(services, served, text)
    return served, text


def _keyed(
    services: Services,
    version: RulesetVersion,
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
    locale: str | None,
    explain_absent: list[str] | None,
    datasets: list[Any],
) -> tuple[dict[str, Any], list[str], str]:
    """The case as it is stored and queued (masked predicates masked, before anything
    is hashed, stored or queued: the clear values end here) and its request hash."""
    if version.masked_predicates:
        case = mask_case(facts, query, version.masked_predicates, services.settings.mask_secret)
        facts, query = case.facts, case.query
    return facts, query, request_hash(facts, query, explain, limits, locale, explain_absent, datasets)


def _served(original: DecisionRecord, digest: str, ruleset: RulesetRef) -> tuple[DecisionRecord, str]:
    """The cache hit's own record (see :func:`serve_cached`) and its JSON text."""
    now = utcnow()
    served = original.model_copy(
        update={
            "decision_id": new_decision_id(),
            "request_hash": digest,
            "cached": True,
            "cached_from": original.decision_id,
            "ruleset": ruleset,
            "worker": None,
            "submitted_at": now,
            "started_at": now,
            "completed_at": now,
        }
    )
    return served, dump_record(served)


async def _store_and_publish(services: Services, served: DecisionRecord, text: str) -> None:
    """Store a cache hit's record, then publish it for its audit row. When the bus
    keeps its messages in the same store (Redis Streams, entail.bus.port.InStoreBus)
    both go in one durable write, one round trip (with replicas, one ``WAIT``);
    stored as :meth:`~entail.state.decisions.DecisionStore.create` stores a final
    record (never overwriting an id). With tracing on, the publish keeps its own
    span, so the two go apart as they do on Pub/Sub."""
    bus = services.bus
    if isinstance(bus, InStoreBus) and bus.joins(services.durability) and not tracing.enabled():
        data, attributes = decision_message(served, text)
        key = keys.decision(served.decision_id)

        def build(pipe: Pipeline) -> None:
            pipe.set(key, text, ex=services.decisions.ttl_s, nx=True)
            bus.queue_publish(pipe, DECISIONS, data, attributes)

        await services.durability.write(build, one_trip=True)
        return
    await services.decisions.create(served, text)
    await publish_decision(services.bus, served, text)


@dataclass(frozen=True)
class RepeatedHit:
    """What :func:`repeat_hit` got back from its one round trip."""

    rate: RateDecision  # the request's token
    version_entry: bytes | None  # what the name resolves to now (None: nothing, or no token)
    submission: Submission | None  # the hit, stored and published; None: not served


@dataclass(frozen=True)
class RepeatCandidate:
    """A request :func:`remembered_hit` found a remembered original for."""

    ruleset: RulesetRef
    digest: str
    original: DecisionRecord


def remembered_hit(
    services: Services,
    tenant: str,
    version: RulesetVersion,
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
    *,
    locale: str | None = None,
    explain_absent: list[str] | None = None,
) -> RepeatCandidate | None:
    """The succeeded decision this process served the same request from a moment ago
    (:class:`~entail.state.cache.LocalHits`), against ``version``, when
    :func:`repeat_hit` can serve it again; no read. None when it cannot: nothing
    remembered, tracing on (the publish has its own span), a bus outside the store
    (Pub/Sub), a ruleset reading datasets (resolved first, in Redis)."""
    bus = services.bus
    if (
        services.settings.result_cache_local_s <= 0
        or version.datasets
        or tracing.enabled()
        or not isinstance(bus, InStoreBus)
        or not bus.joins(services.durability)
    ):
        return None
    ruleset = RulesetRef(tenant=tenant, name=version.name, version=version.version, hash=version.hash)
    _, _, digest = _keyed(services, version, facts, query, explain, limits, locale, explain_absent, [])
    original = services.cache.local.get(tenant, ruleset.hash, digest)
    return None if original is None else RepeatCandidate(ruleset, digest, original)


async def repeat_hit(
    services: Services,
    bucket: str,
    named: NameRef,
    version_entry: bytes,
    candidate: RepeatCandidate,
) -> RepeatedHit | None:
    """A cache hit this process served a moment ago (:func:`remembered_hit`), served
    again in one round trip: the request's rate-limit token, the version its
    ruleset name resolves to now, and, when the token is granted and that is still
    the version ``candidate`` was found against (the stored entry
    ``version_entry``, as an earlier request of this process read it), the hit's
    record and its audit message
    (:meth:`~entail.state.ratelimit.RateLimiter.take_resolving_serving`). The record
    and the message are those :func:`serve_cached` stores and publishes.

    None when the bus queues its message in a form the script does not send
    (nothing taken or written). Otherwise the token is taken: a refused token or
    another version comes back with ``submission`` None, and the caller goes on as
    from a take + resolve."""
    settings = services.settings
    bus = services.bus
    assert isinstance(bus, InStoreBus)  # remembered_hit checked
    served, text = _served(candidate.original, candidate.digest, candidate.ruleset)
    data, attributes = decision_message(served, text)
    recorded = RecordedAdd()
    bus.queue_publish(recorded, DECISIONS, data, attributes)
    if recorded.add is None:
        return None
    rate, entry, done = await services.rate_limiter.take_resolving_serving(
        bucket,
        settings.rate_limit_per_s,
        settings.rate_limit_burst,
        named,
        hashlib.sha1(version_entry).hexdigest(),
        keys.decision(served.decision_id),
        text,
        services.decisions.ttl_s,
        recorded.add,
        services.durability,
    )
    return RepeatedHit(rate, entry, Submission(served, "cached", text) if done else None)
