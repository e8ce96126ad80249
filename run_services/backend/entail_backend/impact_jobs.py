"""The documents of an impact job: ``POST /v1/rulesets/{name}/impact`` answers 202
with a status URL at once; ``GET`` on it shows the progress (decisions done of
the total) and, when finished, the result. The job itself is :mod:`entail.impact`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .schemas import ImpactOut


class ImpactProgress(BaseModel):
    done: int = Field(description="decisions re-run so far")
    total: int = Field(description="decisions in the window (at most the request's limit)")


class ImpactFailure(BaseModel):
    decision_id: str
    code: str = Field(description="e.g. limit-wall-time, limit-derived-facts")
    detail: str


class ImpactResultOut(ImpactOut):
    failed: int = Field(0, description="decisions whose re-run failed (a limit, an error): see failures")
    failures: list[ImpactFailure] = Field(default_factory=list)


class ImpactJobOut(BaseModel):
    job_id: str
    ruleset: str
    candidate: dict[str, Any] = Field(description="the version re-run: its number and hash")
    status: Literal["running", "succeeded", "failed"]
    progress: ImpactProgress
    status_url: str = Field(description="GET it for the progress and, when finished, the result")
    created_at: str
    updated_at: str
    result: ImpactResultOut | None = Field(None, description="when succeeded")
    error: dict[str, Any] | None = Field(None, description="when failed: type and detail")
