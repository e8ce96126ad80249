"""The browser engine's entry point, run inside Pyodide by engine.worker.ts.

It answers a draft evaluation with the same JSON as the server's
POST /v1/rulesets/evaluate (entail.compute.tasks.evaluate) and turns engine
errors into the same problem+json as the backend (compute.engine_problem), so
the playground shows a browser run exactly like a server run. The result hash
is the engine's own ``Result.result_hash``: the same code as on the server.
"""

from __future__ import annotations

import json
import time
from typing import Any

# Pyodide's time module has no thread_time (the compile budget's clock): a worker
# runs one thread, so its process time is the same measure
if not hasattr(time, "thread_time"):
    time.thread_time = time.process_time

from entail import reasoning  # after the clock is in place


def _problem(exc: reasoning.EntailError) -> dict[str, Any]:
    if isinstance(exc, reasoning.ProgramError):
        diagnostics = [{**d.to_json(), "rendered": d.render()} for d in exc.diagnostics]
        errors = [d for d in diagnostics if d["severity"] == "error"]
        first = (errors or diagnostics)[0]
        return {
            "status": 422,
            "type": "invalid-program",
            "title": "Invalid program",
            "detail": f"the program has {len(errors)} error(s); first: "
            f"{first['line']}:{first['column']}: {first['message']}",
            "diagnostics": diagnostics,
        }
    if isinstance(exc, reasoning.LimitExceeded):
        status = 413 if exc.code == "limit-program-size" else 422
        return {"status": status, "type": exc.code, "title": "Limit exceeded", "detail": str(exc),
                "limit": exc.limit, "value": exc.value}  # fmt: skip
    if isinstance(exc, reasoning.FactsError):
        return {"status": 422, "type": "invalid-facts", "title": "Invalid facts",
                "detail": f"/facts{exc.path}: {exc}", "path": exc.path}  # fmt: skip
    if isinstance(exc, reasoning.QueryError):
        return {"status": 422, "type": "invalid-query", "title": "Invalid query", "detail": str(exc)}
    return {"status": 422, "type": exc.code, "title": "Evaluation failed", "detail": str(exc)}


def evaluate_draft(request: str) -> str:
    """``request``: {source, facts, query, explain} as JSON; the answer as JSON:
    {answers, result_hash, stats} or {problem}."""
    body = json.loads(request)
    try:
        ruleset = reasoning.compile(body["source"], "draft.lp")
        result = ruleset.evaluate(
            body.get("facts") or {}, body.get("query") or [], explain=bool(body.get("explain"))
        )
        out: dict[str, Any] = {
            "answers": [q.to_json() for q in result.answers],
            "result_hash": result.result_hash,
            "stats": dict(result.stats),
        }
    except reasoning.EntailError as exc:
        out = {"problem": _problem(exc)}
    return json.dumps(out, ensure_ascii=False)
