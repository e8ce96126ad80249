"""Pydantic models shared by the API, the messages between services and the audit rows.

Messages travel as JSON in ``message.data`` with attributes ``decision_id``,
``tenant`` and ``schema`` (docs/design.md, "Contracts"). Timestamps are UTC ISO-8601 strings.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from .engine_version import ENGINE_VERSION as ENGINE_VERSION

JOB_SCHEMA = "entail.job.v1"
DECISION_SCHEMA = "entail.decision.v1"

DecisionStatus = Literal["pending", "running", "succeeded", "failed"]


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_decision_id() -> str:
    """Time-ordered, unguessable: 12 hex digits of milliseconds, then 20 random."""
    return f"dec_{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
    locale: str | None = None,
    explain_absent: list[str] | None = None,
    datasets: list[DatasetRef] | None = None,
) -> str:
    """The cache key part of a decision request: same facts (any key order), same
    queries (after whitespace normalisation), same explain flag and limits, same
    locale (the language of the reason messages; absent from the key when not given,
    so earlier requests keep their hashes), same dataset versions (their bindings and
    content hashes: a new version of a dataset is never answered from a cache entry
    of the old one; absent without datasets, so earlier hashes stay)."""
    doc: dict[str, Any] = {
        "facts": facts,
        "query": [" ".join(q.split()) for q in query],
        "explain": explain,
        "limits": limits,
    }
    if locale is not None:
        doc["locale"] = locale.lower()
    if explain_absent:  # the why-not atoms, as asked (absent: earlier hashes stay)
        doc["explain_absent"] = [" ".join(a.split()) for a in explain_absent]
    if datasets:
        doc["datasets"] = {d.binding: d.hash for d in datasets}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


class RulesetRef(BaseModel):
    """A resolved ruleset version."""

    tenant: str
    name: str
    version: int
    hash: str


class DatasetRef(BaseModel):
    """A resolved dataset version a decision reads (docs/datasets.md): the program's
    ``%@dataset`` binding name and the exact version behind it."""

    binding: str
    name: str
    version: int
    hash: str


class Job(BaseModel):
    """Topic ``reasoning-jobs``: one decision to evaluate."""

    schema_: str = Field(default=JOB_SCHEMA, alias="schema")
    decision_id: str
    tenant: str
    ruleset: RulesetRef
    facts: dict[str, Any]
    query: list[str]
    explain: bool = False
    limits: dict[str, int] = Field(default_factory=dict)
    locale: str | None = None  # the language of the reason messages (reasoning/reasons.py)
    explain_absent: list[str] = Field(default_factory=list)  # atoms to explain why they do not hold
    request_hash: str
    submitted_at: str
    masked_predicates: list[str] = Field(default_factory=list)
    # the dataset versions the decision reads, resolved at submission (sorted by binding)
    datasets: list[DatasetRef] = Field(default_factory=list)

    model_config = {"populate_by_name": True}


class DecisionError(BaseModel):
    """Why a decision failed: the engine's error code, message and diagnostics."""

    code: str
    message: str
    diagnostics: list[dict[str, Any]] = Field(default_factory=list)


class DecisionRecord(BaseModel):
    """A decision as stored in Redis, returned by the API and published on
    ``decisions`` (the audit row)."""

    schema_: str = Field(default=DECISION_SCHEMA, alias="schema")
    decision_id: str
    tenant: str
    ruleset: RulesetRef
    request_hash: str
    status: DecisionStatus
    facts: dict[str, Any] | None = None
    query: list[str] = Field(default_factory=list)
    explain: bool = False
    answers: list[dict[str, Any]] | None = None  # QueryResult.to_json() per query, proofs inside
    result_hash: str | None = None
    # per explain_absent atom: its why-not (entail.why_not.v1), or "holds": true
    why_not: list[dict[str, Any]] | None = None
    error: DecisionError | None = None
    stats: dict[str, Any] = Field(default_factory=dict)
    engine_version: str = ENGINE_VERSION
    worker: str | None = None
    cached: bool = False
    # a cache hit is a decision of its own (its own id and audit row) that repeats
    # the result of this earlier decision
    cached_from: str | None = None
    masked_predicates: list[str] = Field(
        default_factory=list, description="input predicates (name/arity) whose values are stored as HMACs"
    )
    datasets: list[DatasetRef] = Field(
        default_factory=list, description="the exact dataset versions the decision read, sorted by binding"
    )
    submitted_at: str
    started_at: str | None = None
    completed_at: str | None = None

    model_config = {"populate_by_name": True}

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed")


# --- ruleset versions ------------------------------------------------------------
# Here rather than in the registry (Redis) or the audit schema, so that both can
# use them and importing the audit schema loads no Redis client.


class RulesetVersion(BaseModel):
    tenant: str
    name: str
    version: int
    hash: str
    description: str = ""
    tests: list[dict[str, Any]] = Field(default_factory=list)
    published_at: str
    published_by: str
    masked_predicates: list[str] = Field(default_factory=list)
    # each %@dataset binding of the program -> its selector: floating (name, name@latest,
    # name@tag: resolved per decision) or pinned (name@N, resolved at publish)
    datasets: dict[str, str] = Field(default_factory=dict)


class RulesetRecord(RulesetVersion):
    """A RulesetVersion with its source: what the audit keeps so a decision stays
    replayable after Redis forgets (the registry stores sources by hash apart)."""

    source: str

    @classmethod
    def from_version(cls, version: RulesetVersion, source: str) -> RulesetRecord:
        return cls(**version.model_dump(), source=source)
