"""Replaying audited decisions, and choosing the decisions an impact job re-runs.

* :func:`replay` re-evaluates one audited decision's stored facts and queries
  with the ruleset version that decided it (read back from the audit store, not
  the registry: a replay proves what the audit trail says) and compares the
  answers;
* :func:`impact_candidate` and :func:`impact_window` resolve the version an
  impact job tries and the succeeded decisions it re-runs; the job itself is
  :mod:`entail.impact`.

Evaluations run in the caller's compute pool under the service's limits. Nothing
here knows HTTP: the backend's routes map :class:`NotAudited` and
:class:`UnknownCandidate` to 404, :class:`NotReplayable` to 409,
:class:`ReplayFailed` (the engine's error) and the pool's errors to their
problems, :class:`InvalidWindow` to 422.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import dataset_eval
from .compute import ComputePool, tasks
from .dataset_binding import DatasetBindingError
from .decisions import service_limits
from .models import DecisionRecord, RulesetRef, RulesetVersion
from .services import Services

NOT_AUDITED_YET_RETRY_S = 1
"""A decision is audited when it completes: a replay asked for before that may retry this soon."""

SEARCH_PAGE_MAX = 1000  # the audit store's largest page


class NotAudited(LookupError):
    """No audited decision of the tenant has this id."""


class NotReplayable(Exception):
    """The decision exists but cannot be replayed; ``retry_after_s`` when it will
    be (not audited yet), None when it never will."""

    def __init__(self, detail: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.retry_after_s = detail, retry_after_s


class ReplayFailed(Exception):
    """The engine refused or failed the replay: ``error`` as
    :func:`entail.compute.tasks.error_json` writes it (kind, code, message, ...)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(str(error.get("message", "")))
        self.error = error


class UnknownCandidate(LookupError):
    """The version an impact job should try does not exist (or has no source)."""


class InvalidWindow(ValueError):
    """The audit store refused the window (a time it cannot read)."""


@dataclass(frozen=True)
class AnswerDiff:
    query: str
    added: list[str]  # answers the replay gives and the original did not
    removed: list[str]  # answers the original gave and the replay does not


@dataclass(frozen=True)
class Replay:
    decision_id: str
    identical: bool
    original_result_hash: str | None
    replay_result_hash: str
    ruleset: RulesetRef
    diff: list[AnswerDiff]


@dataclass(frozen=True)
class Candidate:
    version: RulesetVersion
    source: str


def empty_window(start: datetime, end: datetime) -> bool:
    """[start, end) holds no instant: no decision, not an error (the document allows
    any two times). A time without a zone is left to the store, which refuses it."""
    aware = start.tzinfo is not None and end.tzinfo is not None
    return aware and start >= end


async def audited(services: Services, tenant: str, decision_id: str) -> DecisionRecord:
    """The audit store's record of the decision; :class:`NotAudited` when there is none."""
    record = await asyncio.to_thread(services.audit.get_decision, tenant, decision_id)
    if record is None:
        raise NotAudited(decision_id)
    return record


async def replay(services: Services, pool: ComputePool, tenant: str, decision_id: str) -> Replay:
    """Re-evaluate an audited decision with its stored ruleset version and compare.
    The pool's errors (busy, killed, ...) are raised as they are."""
    try:
        record = await audited(services, tenant, decision_id)
    except NotAudited:
        # the decision exists but its audit row is not written yet: it will be
        # replayable, it is not missing
        if await services.decisions.get_text(tenant, decision_id) is None:
            raise
        raise NotReplayable(
            f"decision {decision_id!r} is not in the audit trail yet (it is written when the "
            "decision completes); retry",
            retry_after_s=NOT_AUDITED_YET_RETRY_S,
        ) from None
    if record.masked_predicates:
        masked = ", ".join(record.masked_predicates)
        raise NotReplayable(f"not replayable: masked inputs ({masked} are stored as HMACs, not in clear)")
    if record.status != "succeeded":
        raise NotReplayable(f"decision {decision_id!r} {record.status}: nothing to compare")
    ref = record.ruleset
    stored = await asyncio.to_thread(services.audit.get_ruleset, tenant, ref.name, ref.version)
    if stored is None:
        raise NotReplayable(f"ruleset {ref.name} version {ref.version} is not in the audit store")
    limits = service_limits(services.settings, {})
    if record.datasets:
        # the dataset versions the decision recorded, never the current ones
        case = dataset_eval.DatasetCase(
            reader=services.dataset_reader,
            refs=tuple(record.datasets),
            source=stored.source,
            filename=f"{ref.name}.lp",
            facts=record.facts or {},
            query=record.query,
            explain=record.explain,
            limits=limits,
            cache_bytes=services.settings.reference_cache_bytes,
        )
        try:
            out = await dataset_eval.evaluate_recorded(
                pool,
                services.datasets,
                tenant,
                case,
                # compile, read and materialise (the service's cap), then the case
                budget_ms=services.settings.limit_wall_time_ms + limits["wall_time_ms"],
            )
        except DatasetBindingError as exc:
            raise NotReplayable(f"not replayable: {exc}") from None
    else:
        out = await pool.run(
            tasks.evaluate,
            stored.source,
            f"{ref.name}.lp",
            record.facts or {},
            record.query,
            record.explain,
            limits,
            # a compile may take the wall-time cap too (the pool's supervisor enforces it)
            budget_ms=services.settings.limit_wall_time_ms + limits["wall_time_ms"],
            tenant=tenant,
        )
    if "error" in out:
        raise ReplayFailed(out["error"])
    diff = diff_answers(record.answers or [], out["answers"])
    return Replay(
        decision_id=decision_id,
        identical=out["result_hash"] == record.result_hash and not diff,
        original_result_hash=record.result_hash,
        replay_result_hash=out["result_hash"],
        ruleset=ref,
        diff=diff,
    )


def diff_answers(original: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> list[AnswerDiff]:
    """Per query of the replay, the atoms it added and removed (queries that agree: none)."""
    before = {q["query"]: {a["atom"] for a in q["answers"]} for q in original}
    diff = []
    for answered in replayed:
        now = {a["atom"] for a in answered["answers"]}
        old = before.get(answered["query"], set())
        if now != old:
            diff.append(AnswerDiff(answered["query"], added=sorted(now - old), removed=sorted(old - now)))
    return diff


async def impact_candidate(services: Services, tenant: str, name: str, version: int | str) -> Candidate:
    """The version of ``name`` an impact job tries (a number, a tag or ``latest``)
    and its source; :class:`UnknownCandidate` when either is missing."""
    found = await services.registry.resolve(tenant, f"{name}@{version}")
    if found is None or found.name != name:
        raise UnknownCandidate(f"version {version!r} of ruleset {name!r}")
    source = await services.registry.source(found.hash)
    if source is None:
        raise UnknownCandidate(f"the source of {name} version {found.version}")
    return Candidate(found, source)


async def impact_window(
    services: Services, tenant: str, name: str, start: datetime, end: datetime, limit: int
) -> tuple[list[DecisionRecord], bool]:
    """The succeeded decisions of ``name`` completed in [start, end), newest first,
    at most ``limit``, and whether there were more."""
    records: list[DecisionRecord] = []
    token: str | None = None
    if empty_window(start, end):
        return records, False
    while True:
        try:
            page = await asyncio.to_thread(
                services.audit.search_decisions,
                tenant,
                start,
                end,
                ruleset_name=name,
                status="succeeded",
                page_size=min(SEARCH_PAGE_MAX, limit + 1),
                page_token=token,
            )
        except ValueError as exc:
            raise InvalidWindow(str(exc)) from None
        records += page.items
        token = page.next_page_token
        if len(records) > limit:
            return records[:limit], True
        if token is None:
            return records, False
