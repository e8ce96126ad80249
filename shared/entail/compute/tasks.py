"""The work the backend sends to its compute pool: compile, validate, example
cases, evaluation, impact. Each runs in a pool process (:mod:`entail.compute.pool`).

Arguments and results are plain data (str, dict, list), so they cross the pipe
cheaply and never depend on pickling engine objects (a compiled ruleset holds
generated code, which does not pickle). Engine errors come back as data too:
``{"error": {...}}`` with the error's code, message and its fields (limit and
value, the facts path, diagnostics), which the routes turn into problem+json.

Limits are always given explicitly (the service's caps, lowered by the
request); nothing here falls back to the engine's library defaults.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

from entail import reasoning
from entail.reasoning.testing import TestFileError, cases_from_data, run_test_case
from entail.reasoning.why_not import why_not_json

# compiled rulesets of this process, by (source hash, limits): impact re-runs one
# candidate over many decisions, and replays often hit the same version
_COMPILED: OrderedDict[tuple[str, tuple[tuple[str, int], ...]], reasoning.Ruleset] = OrderedDict()
_COMPILED_MAX = 8


def diagnostics_json(items: list[reasoning.Diagnostic]) -> list[dict[str, Any]]:
    return [{**d.to_json(), "rendered": d.render()} for d in items]


def error_json(exc: reasoning.EntailError) -> dict[str, Any]:
    """An engine error as data: its code, message and whatever names its cause."""
    out: dict[str, Any] = {"code": exc.code, "message": str(exc), "kind": "evaluation"}
    if isinstance(exc, reasoning.ProgramError):
        out.update(kind="program", diagnostics=diagnostics_json(exc.diagnostics))
    elif isinstance(exc, reasoning.LimitExceeded):
        out.update(kind="limit", limit=exc.limit, value=exc.value)
    elif isinstance(exc, reasoning.FactsError):
        out.update(kind="facts", path=exc.path)
    elif isinstance(exc, reasoning.QueryError):
        out.update(kind="query")
    return out


def compiled(source: str, filename: str, limits: dict[str, int]) -> reasoning.Ruleset:
    """This process's compiled ruleset of ``source`` under ``limits`` (kept by hash)."""
    return _compiled(source, filename, limits)


def _compiled(source: str, filename: str, limits: dict[str, int]) -> reasoning.Ruleset:
    key = (hashlib.sha256(source.encode()).hexdigest(), tuple(sorted(limits.items())))
    ruleset = _COMPILED.get(key)
    if ruleset is None:
        ruleset = reasoning.compile(source, filename, limits=reasoning.Limits.from_mapping(limits))
        _COMPILED[key] = ruleset
        if len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    else:
        _COMPILED.move_to_end(key)
    return ruleset


def validate(source: str, filename: str) -> list[dict[str, Any]]:
    """Every diagnostic (errors and warnings) of a program."""
    return diagnostics_json(reasoning.check(source, filename))


def compile_and_test(
    source: str, filename: str, tests: list[dict[str, Any]], limits: dict[str, int]
) -> dict[str, Any]:
    """Compile and run the example cases under ``limits``:
    ``{"failures": [...]}`` (empty: all passed), or ``{"error": ...}`` for a program
    that does not compile, or ``{"invalid_tests": message}``."""
    try:
        ruleset = _compiled(source, filename, limits)
    except reasoning.EntailError as exc:
        return {"error": error_json(exc)}
    try:
        cases = cases_from_data({"cases": tests}, "tests")
    except (TestFileError, reasoning.EntailError) as exc:
        return {"invalid_tests": str(exc)}
    failures = []
    for case in cases:
        outcome = run_test_case(ruleset, case)
        if not outcome.passed:
            failures.append({"name": case.name, "problems": outcome.problems})
    # the %@dataset names the publish must bind (entail.dataset_binding)
    return {"failures": failures, "datasets": sorted(ruleset.datasets)}


def evaluate(
    source: str,
    filename: str,
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
    timed: bool = False,
    locale: str | None = None,
    explain_absent: list[str] | None = None,
    reference: Any = None,
) -> dict[str, Any]:
    """``{"answers": [...], "result_hash": ..., "stats": {...}}`` or ``{"error": ...}``.

    ``reference``: the ruleset's materialised dataset facts (``Ruleset.materialise``),
    kept by the pool process that runs this (entail/dataset_eval.py): it never
    crosses the pool's pipe.

    ``explain_absent``: ground atoms to explain why they do not hold; then also
    ``"why_not"``, one document per atom (reasoning/why_not.py).

    ``locale``: the language of the answers' reason messages (reasoning/reasons.py).

    ``timed``: also ``"stages"``, the wall and CPU nanoseconds of compiling,
    evaluating and turning answers (and proofs) into JSON, for the caller's trace
    spans (:mod:`entail.tracing`; this process has no tracer of its own)."""
    clock = _StageClock() if timed else None
    try:
        ruleset = _compiled(source, filename, limits)
        if clock is not None:
            clock.lap("compile")
        result = ruleset.evaluate(
            facts,
            query,
            explain=explain,
            limits=reasoning.Limits.from_mapping(limits),
            locale=locale,
            reference=reference,
        )
        if clock is not None:
            clock.lap("evaluate")
        why_not = [why_not_json(result, atom) for atom in explain_absent or ()]
    except reasoning.EntailError as exc:
        return {"error": error_json(exc)}
    out = {
        "answers": [q.to_json() for q in result.answers],
        "result_hash": result.result_hash,
        "stats": dict(result.stats),
    }
    if explain_absent:
        out["why_not"] = why_not
    if clock is not None:
        clock.lap("prove")
        out["stages"] = clock.stages
    return out


class _StageClock:
    """Consecutive stages: name -> [start wall ns, end wall ns, CPU ns] (wall
    clock: comparable with the timestamps of the caller's process)."""

    def __init__(self) -> None:
        self.stages: dict[str, list[int]] = {}
        self._wall, self._cpu = time.time_ns(), time.process_time_ns()

    def lap(self, name: str) -> None:
        wall, cpu = time.time_ns(), time.process_time_ns()
        self.stages[name] = [self._wall, wall, cpu - self._cpu]
        self._wall, self._cpu = wall, cpu


def _rules(node: Any, out: set[str]) -> set[str]:
    """The text of every rule used in a proof tree."""
    if isinstance(node, dict):
        if node.get("kind") == "rule":
            out.add(node["rule"]["text"])
        for child in node.get("body", []):
            _rules(child, out)
    return out


def answer_sets(answers: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {q["query"]: {a["atom"] for a in q["answers"]} for q in answers}


def proof_rules(answers: list[dict[str, Any]]) -> set[str]:
    rules: set[str] = set()
    for q in answers:
        for a in q["answers"]:
            _rules(a.get("proof"), rules)
    return rules


def impact_one(
    name: str,
    candidate_source: str,
    original_source: str | None,
    facts: dict[str, Any],
    query: list[str],
    old_answers: list[dict[str, Any]],
    limits: dict[str, int],
) -> dict[str, Any]:
    """One decision re-run with the candidate: ``{"changed": False}``, or the new
    answers and the rules whose use differs between the two proofs, or ``{"error": ...}``.
    ``original_source`` (the version that decided) explains the old answers when
    the decision stored no proofs."""
    new = evaluate(candidate_source, f"{name}.lp", facts, query, True, limits)
    if "error" in new:
        return new
    if answer_sets(old_answers) == answer_sets(new["answers"]):
        return {"changed": False}
    old_rules = proof_rules(old_answers)
    if original_source is not None:
        replayed = evaluate(original_source, f"{name}.lp", facts, query, True, limits)
        if "error" not in replayed:
            old_rules = proof_rules(replayed["answers"])
    return {
        "changed": True,
        "new_answers": new["answers"],
        "rules_differ": sorted(old_rules ^ proof_rules(new["answers"])),
    }
