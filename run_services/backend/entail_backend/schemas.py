"""Request and response bodies of the HTTP API, with the examples shown in OpenAPI."""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from entail.models import DatasetRef
from entail.reasoning.facts import RESERVED_NAMES
from entail.reasoning.limits import Limits
from entail.reasoning.terms import INT_MAX, INT_MIN
from entail.state.registry import name_problem

LOAN_SOURCE = (
    "eligible(A) :- applicant(A), income(A, I), I >= 30000, not bankrupt(A).\n"
    "decision(A, approved) :- eligible(A).\n"
    "decision(A, declined) :- applicant(A), not eligible(A).\n"
    "#defined applicant/1. #defined income/2. #defined bankrupt/1.\n"
)
LOAN_FACTS: dict[str, JsonValue] = {"applicant": [["ann"]], "income": [["ann", 52000]]}


def _whole(value: Any) -> Any:
    # JSON Schema's integer is a number without a fractional part: 3.0 is one
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: an integer as JSON Schema means it: 3 and 3.0, never true or "3"
JsonInt = Annotated[StrictInt, BeforeValidator(_whole)]

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _rfc3339(value: Any) -> Any:
    # pydantic alone would take 0 or "0" as a Unix time and "2026-11-28" as midnight
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError("expected an RFC 3339 date-time with a time zone, e.g. 2026-11-28T10:00:00Z")


def _day(value: Any) -> Any:
    if isinstance(value, date) or (isinstance(value, str) and _DAY.fullmatch(value)):
        return value
    raise ValueError("expected a day as YYYY-MM-DD")


#: a date-time as the document's ``format: date-time`` says (RFC 3339, with a zone)
DateTimeTz = Annotated[datetime, BeforeValidator(_rfc3339)]
#: a day as ``format: date`` says (YYYY-MM-DD)
Day = Annotated[date, BeforeValidator(_day)]


#: what JSON Schema can say of case facts (the decoder, entail.reasoning.facts,
#: checks the rest and answers 422 invalid-facts): predicate names, rows of arguments
FACTS_SCHEMA: dict[str, Any] = {
    "propertyNames": {"pattern": "^_*[a-z][A-Za-z0-9_']*$", "not": {"enum": sorted(RESERVED_NAMES)}},
    "additionalProperties": {
        "type": "array",
        "items": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},  # clingo's 32 bits
                ]
            },
        },
    },
}
#: the engine limits a request may lower, each a positive integer
LIMITS_SCHEMA: dict[str, Any] = {
    "propertyNames": {"enum": [f.name for f in fields(Limits)]},
    "additionalProperties": {"type": "integer", "minimum": 1},
}


def _ruleset_name(name: str) -> str:
    # the registry's own check (a 64-digit hex name would read as a version hash)
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


def _examples(*examples: dict[str, JsonValue]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class ValidateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"source": "p(X) :- q(X).\nq(1)."}]}
    )
    source: str = Field(description="The program text")


class DiagnosticOut(BaseModel):
    code: str
    severity: str
    message: str
    line: int
    column: int
    end_column: int | None = None
    rendered: str = Field(description="file:line:col, the source line and a caret")


class ValidateResponse(BaseModel):
    model_config = _examples(
        {
            "ok": False,
            "hash": None,
            "diagnostics": [
                {
                    "code": "unsafe-variable",
                    "severity": "error",
                    "message": "unsafe variable 'X'",
                    "line": 1,
                    "column": 3,
                    "end_column": 4,
                    "rendered": "program.lp:1:3: error[unsafe-variable]: ...",
                }
            ],
        }
    )
    ok: bool
    hash: str | None = Field(default=None, description="the source hash; null when it has errors")
    diagnostics: list[DiagnosticOut]


class TestCaseIn(BaseModel):
    """An example case run at publish time (the format of `entail test`)."""

    model_config = ConfigDict(extra="forbid")
    __test__ = False
    name: str = ""
    facts: dict[str, Any] = Field(default_factory=dict, json_schema_extra=FACTS_SCHEMA)
    query: list[str] = Field(default_factory=list)
    expect: dict[str, list[str]] = Field(default_factory=dict)
    absent: list[str] = Field(default_factory=list)
    reasons: dict[str, list[str]] = Field(
        default_factory=dict, description="an answer's reason codes, in their order (reason templates)"
    )


class PublishRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "loan",
                    "source": LOAN_SOURCE,
                    "description": "consumer loan eligibility",
                    "tests": [
                        {
                            "name": "ann is approved",
                            "facts": LOAN_FACTS,
                            "query": ["decision(A, D)"],
                            "expect": {"decision(A, D)": ['decision("ann",approved)']},
                        }
                    ],
                }
            ]
        },
    )
    name: Annotated[str, AfterValidator(_ruleset_name)] = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
    source: str
    description: str = ""
    tests: list[TestCaseIn] = Field(default_factory=list, max_length=200)
    masked_predicates: list[Annotated[str, Field(pattern=r"^[a-z_][A-Za-z0-9_']*/[0-9]+$")]] = Field(
        default_factory=list,
        description="input predicates (name/arity) whose values are stored as HMACs in decisions and "
        "the audit trail; such decisions cannot be replayed",
    )
    datasets: dict[str, Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=dict,
        max_length=64,
        description="each %@dataset name of the program -> a dataset selector: floating (name, name@latest, "
        "name@tag: resolved at each decision) or pinned (name@N or a version hash: resolved now); "
        "an unbound name is NAME@latest",
    )


class RulesetVersionOut(BaseModel):
    model_config = _examples(
        {
            "name": "loan",
            "version": 3,
            "hash": "9f2c…",
            "description": "consumer loan eligibility",
            "published_at": "2026-11-28T10:00:00.000Z",
            "published_by": "dev",
            "tests": 1,
            "tags": ["prod"],
        }
    )
    name: str
    version: int
    hash: str
    description: str
    published_at: str
    published_by: str
    tests: int = Field(description="number of example cases carried by this version")
    tags: list[str] = Field(default_factory=list)
    masked_predicates: list[str] = Field(default_factory=list)
    datasets: dict[str, str] = Field(
        default_factory=dict, description="the version's dataset bindings: %@dataset name -> selector"
    )
    source: str | None = None
    created: bool | None = None


class TestCaseResultOut(BaseModel):
    """One example case of a version, run again: whether it passes and what differs."""

    __test__ = False
    name: str
    query: list[str]
    expect: dict[str, list[str]] = Field(default_factory=dict, description="the answers the case expects")
    absent: list[str] = Field(default_factory=list, description="atoms the case expects not to hold")
    passed: bool
    problems: list[str] = Field(
        description="how the answers differ from the expectation; empty when it passed"
    )


class TestRunOut(BaseModel):
    """A version's example cases (those checked at publish) run with the current engine."""

    __test__ = False
    name: str
    version: int
    passed: int
    failed: int
    cases: list[TestCaseResultOut]


class RulesetOut(BaseModel):
    model_config = _examples(
        {"name": "loan", "latest": 3, "tags": {"prod": 2, "staging": 3}, "updated_at": "2026-11-28T10:00:00Z"}
    )
    name: str
    latest: int
    tags: dict[str, int]
    updated_at: str
    versions: list[RulesetVersionOut] | None = None
    next_before: int | None = Field(
        default=None, description="pass as `before` for the older versions; null when there are none"
    )


class RulesetList(BaseModel):
    model_config = _examples({"rulesets": [{"name": "loan", "latest": 3, "tags": {}, "updated_at": "..."}]})
    rulesets: list[RulesetOut]


class TagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 3}]})
    version: JsonInt = Field(ge=1)


class TagMoveOut(BaseModel):
    model_config = _examples(
        {"tag": "prod", "version": 3, "previous": 2, "moved_by": "dev", "moved_at": "2026-11-28T10:00:00Z"}
    )
    tag: str
    version: int
    previous: int | None
    moved_by: str
    moved_at: str


class TagsOut(BaseModel):
    model_config = _examples({"tags": {"prod": 3}, "history": []})
    tags: dict[str, int]
    history: list[TagMoveOut]
    next_offset: int | None = Field(
        default=None, description="pass as `offset` for the older moves; null when there are none"
    )


class DecisionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ruleset": "loan@prod",
                    "facts": LOAN_FACTS,
                    "query": ["decision(A, D)"],
                    "explain": True,
                    "wait_ms": 2000,
                }
            ]
        },
    )
    ruleset: str = Field(description='"name", "name@3", "name@tag", "name@latest" or a version hash')
    facts: dict[str, Any] = Field(
        default_factory=dict, description="case facts: predicate -> rows", json_schema_extra=FACTS_SCHEMA
    )
    query: list[str] = Field(default_factory=list, max_length=100)
    explain: StrictBool = False
    locale: str | None = Field(
        default=None,
        max_length=35,
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$",
        description="the language of the answers' reason messages (BCP 47, e.g. de or pt-BR); "
        "the ruleset's %@reason-text for it, else the templates' own text",
    )
    explain_absent: list[Annotated[str, StringConstraints(max_length=1000)]] = Field(
        default_factory=list,
        max_length=20,
        description='ground atoms to explain why they do not hold, e.g. decision("bob",approved): '
        "the decision's why_not has one explanation (entail.why_not.v1) per atom",
    )
    wait_ms: JsonInt = Field(default=0, ge=0, description="wait up to this long for the answer (capped)")
    limits: dict[str, JsonInt] = Field(
        default_factory=dict, description="lower the engine limits", json_schema_extra=LIMITS_SCHEMA
    )


class BatchCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    facts: dict[str, Any] = Field(default_factory=dict, json_schema_extra=FACTS_SCHEMA)
    query: list[str] | None = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ruleset": "loan",
                    "query": ["decision(A, D)"],
                    "cases": [{"facts": LOAN_FACTS}, {"facts": {"applicant": [["bob"]]}}],
                    "wait_ms": 5000,
                }
            ]
        },
    )
    ruleset: str
    cases: list[BatchCase] = Field(min_length=1)
    query: list[str] = Field(default_factory=list, max_length=100)
    explain: StrictBool = False
    locale: str | None = Field(
        default=None,
        max_length=35,
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$",
        description="the language of the answers' reason messages (BCP 47, e.g. de or pt-BR); "
        "the ruleset's %@reason-text for it, else the templates' own text",
    )
    wait_ms: JsonInt = Field(default=0, ge=0)
    limits: dict[str, JsonInt] = Field(default_factory=dict, json_schema_extra=LIMITS_SCHEMA)


DECISION_EXAMPLE: dict[str, JsonValue] = {
    "decision_id": "dec_0193f0c1a2b3c4d5e6f708090a0b0c0d0e",
    "status": "succeeded",
    "tenant": "dev",
    "cached": False,
    "ruleset": {"tenant": "dev", "name": "loan", "version": 3, "hash": "9f2c…"},
    "request_hash": "51c0…",
    "query": ["decision(A, D)"],
    "answers": [
        {
            "query": "decision(A, D)",
            "answers": [
                {
                    "atom": 'decision("ann",approved)',
                    "args": ["ann", {"const": "approved"}],
                    "bindings": {"A": "ann", "D": {"const": "approved"}},
                }
            ],
        }
    ],
    "result_hash": "4be1…",
    "submitted_at": "2026-11-28T10:00:00.000Z",
    "completed_at": "2026-11-28T10:00:00.004Z",
}


class RulesetRefOut(BaseModel):
    """The ruleset version a decision used."""

    tenant: str
    name: str
    version: int
    hash: str = Field(description="the version's source hash")


class DecisionErrorOut(BaseModel):
    code: str = Field(description="a named error, e.g. limit-time, invalid-facts, delivery-failed")
    message: str
    diagnostics: list[dict[str, Any]] = Field(default_factory=list)


class DecisionOut(BaseModel):
    """A decision: pending, running, or done with answers (and proofs) or an error.
    The audit trail keeps the same record."""

    model_config = ConfigDict(json_schema_extra={"examples": [DECISION_EXAMPLE]}, extra="allow")
    decision_id: str
    status: Literal["pending", "running", "succeeded", "failed"]
    tenant: str
    ruleset: RulesetRefOut
    request_hash: str = Field(description="the hash of facts, query, explain and limits (the cache key)")
    facts: dict[str, Any] | None = Field(
        default=None, description="the case facts; masked predicates' values are HMACs"
    )
    query: list[str] = Field(default_factory=list)
    explain: bool = False
    answers: list[dict[str, Any]] | None = Field(
        default=None,
        description="succeeded: per query its answers, with proofs when explained and, when the "
        "ruleset has reason templates, each answer's reasons (code, weight, severity, message)",
    )
    result_hash: str | None = None
    why_not: list[dict[str, Any]] | None = Field(
        default=None,
        description="succeeded, with explain_absent: per atom, why it does not hold "
        '(entail.why_not.v1, docs/proofs.md), or "holds": true',
    )
    error: DecisionErrorOut | None = Field(default=None, description="failed: why")
    stats: dict[str, Any] = Field(default_factory=dict)
    engine_version: str | None = None
    worker: str | None = None
    cached: bool = Field(default=False, description="repeats the result of an earlier decision")
    cached_from: str | None = Field(default=None, description="cached: the decision it repeats")
    masked_predicates: list[str] = Field(default_factory=list)
    datasets: list[DatasetRef] = Field(
        default_factory=list,
        description="the exact dataset versions the decision read (docs/datasets.md), by binding",
    )
    submitted_at: str
    started_at: str | None = None
    completed_at: str | None = None


class BatchOut(BaseModel):
    model_config = _examples({"done": 2, "total": 2, "decisions": [DECISION_EXAMPLE]})
    done: int
    total: int
    decisions: list[DecisionOut]


class AuditPage(BaseModel):
    model_config = _examples({"items": [DECISION_EXAMPLE], "next_page_token": "eyJ0IjoxNz…"})
    items: list[DecisionOut]
    next_page_token: str | None = Field(description="pass as page_token for the next page; null at the end")


class QueryDiff(BaseModel):
    query: str
    added: list[str] = Field(description="answers the replay gives and the original did not")
    removed: list[str] = Field(description="answers the original gave and the replay does not")


class ReplayOut(BaseModel):
    model_config = _examples(
        {
            "decision_id": "dec_0193f0c1a2b3c4d5e6f708090a0b0c0d0e",
            "identical": True,
            "original_result_hash": "4be1…",
            "replay_result_hash": "4be1…",
            "ruleset": {"tenant": "dev", "name": "loan", "version": 3, "hash": "9f2c…"},
            "diff": [],
        }
    )
    decision_id: str
    identical: bool
    original_result_hash: str | None
    replay_result_hash: str
    ruleset: dict[str, Any]
    diff: list[QueryDiff]


class ImpactRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"version": 4, "start": "2026-11-01T00:00:00Z", "end": "2026-11-28T00:00:00Z", "limit": 500}
            ]
        },
    )
    version: JsonInt | str = Field(description="the candidate: a version number, a tag or 'latest'")
    start: DateTimeTz
    end: DateTimeTz
    limit: JsonInt = Field(
        default=1000, ge=1, le=10_000, description="at most this many decisions are re-run"
    )
    datasets: dict[str, Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=dict,
        max_length=64,
        description="same rules, new data: %@dataset binding -> a dataset selector whose version replaces "
        "the one each decision recorded (the other bindings as recorded)",
    )


class ChangedDecision(BaseModel):
    decision_id: str
    version: int = Field(description="the version that made the decision")
    old_answers: list[dict[str, Any]]
    new_answers: list[dict[str, Any]]
    rules_differ: list[str] = Field(description="rules in the proofs of only one of the two answers")


class ImpactOut(BaseModel):
    model_config = _examples(
        {
            "ruleset": "loan",
            "candidate": {"version": 4, "hash": "77aa…"},
            "decisions": 120,
            "not_replayable": 0,
            "unchanged": 117,
            "changed": 3,
            "truncated": False,
            "changes": [],
        }
    )
    ruleset: str
    candidate: dict[str, Any]
    decisions: int
    not_replayable: int = Field(description="decisions with masked inputs, which cannot be re-run")
    unchanged: int
    changed: int
    truncated: bool = Field(description="more decisions were in the window than the limit")
    changes: list[ChangedDecision]


class ValidationErrorOut(BaseModel):
    location: str = Field(description="a JSON pointer into the request body, or the parameter's name")
    message: str
    type: str = Field(description="the validator's error type, e.g. missing or string_type")


class ProblemOut(BaseModel):
    """RFC 9457 problem details: the body of every error answer (``application/problem+json``).
    ``type`` is stable for a kind of error; members beyond the five standard ones
    depend on it and are listed here when the API sends them."""

    model_config = ConfigDict(
        title="Problem",
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "https://entail.dev/problems/not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "ruleset 'loan@prod' does not exist",
                    "instance": "/v1/decisions",
                }
            ]
        },
    )
    type: str = Field(description="a URI naming the kind of error")
    title: str
    status: int
    detail: str = Field(description="what went wrong with this request, precisely")
    instance: str = Field(description="the request path")
    request_id: str | None = Field(
        default=None, description="the X-Request-Id of the answer: quote it to an operator"
    )
    errors: list[ValidationErrorOut] | None = Field(
        default=None, description="invalid-request: every field that failed validation"
    )
    diagnostics: list[DiagnosticOut] | None = Field(
        default=None, description="invalid-program: the compiler's diagnostics with line and column"
    )
    failures: list[dict[str, Any]] | None = Field(
        default=None, description="ruleset-tests-failed: the example cases that failed and why"
    )
    path: str | None = Field(default=None, description="invalid-facts: a JSON pointer into the facts")
    pointer: str | None = Field(default=None, description="invalid-text: a JSON pointer to the string")
    limit: float | None = Field(default=None, description="limit errors: the limit")
    value: float | None = Field(default=None, description="limit errors: the value that exceeded it")


class DatasetBindingOut(BaseModel):
    """A ruleset version that binds a dataset, and how."""

    name: str = Field(description="the ruleset")
    version: int = Field(description="the ruleset's version")
    binding: str = Field(description="the program's %@dataset name bound to the dataset")
    selector: str = Field(description="the selector it is bound to: name@N (pinned) or name@tag/latest")
    published_at: str


class DatasetBindingsOut(BaseModel):
    rulesets: list[DatasetBindingOut] = Field(description="newest first")
