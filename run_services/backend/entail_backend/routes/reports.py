"""The decision report (docs/reports.md): one decision as a printable HTML
document, or its structured content. :mod:`entail.report` builds it and records
its SHA-256 in the audit store; this route maps the result to HTTP."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response

from entail import report as reports
from entail.auth import ApiKey
from entail.record_json import dumps

from ..deps import ServicesDep, require
from ..problems import not_found

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])

#: Who reads a decision (decide) and who audits it (audit): the report is for both.
DecideOrAudit = Annotated[ApiKey, Depends(require("decide", "audit"))]

#: The report is data, never code: no script, no external resource may load,
#: even if a hostile string slipped past escaping.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
)


@router.get(
    "/{decision_id}/report",
    response_class=Response,
    responses={
        200: {
            "description": "the report; headers ETag and X-Entail-Report-Sha256 carry the HTML's SHA-256",
            "content": {"text/html": {}, "application/json": {}},
        },
        304: {"description": "If-None-Match matched: the report has not changed"},
        404: {"description": "no decision of the caller's tenant has this id"},
    },
)
async def get_report(
    decision_id: str,
    services: ServicesDep,
    key: DecideOrAudit,
    format: Annotated[
        Literal["html", "json"],
        Query(description="html: the printable report; json: its structured content and hash"),
    ] = "html",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    """A decision of the caller's tenant as a self-contained HTML report (inputs, ruleset
    and engine versions, answers, reasons, why-nots, proofs, audit-trail inclusion),
    from the audited record, else the live one (marked so). The same record gives the
    same bytes; the SHA-256 of an audited report is recorded in ``decision_reports``."""
    try:
        report, generated_at = await reports.generate(services, key.tenant, decision_id)
    except reports.NoSuchDecision:
        raise not_found(f"decision {decision_id!r}") from None
    etag = f'"{report.sha256}"' if format == "html" else f'"{report.sha256}.json"'
    headers = {
        "ETag": etag,
        "X-Entail-Report-Sha256": report.sha256,
        "X-Entail-Report-Source": report.source,
        # the generation time lives here, never in the hashed body
        "X-Entail-Report-Generated-At": generated_at,
        "Cache-Control": "private, no-cache",
    }
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    if format == "json":
        body = {"report_sha256": report.sha256, "generated_at": generated_at, **report.content}
        return Response(dumps(body), media_type="application/json", headers=headers)
    headers["Content-Security-Policy"] = REPORT_CSP
    headers["X-Content-Type-Options"] = "nosniff"
    return Response(report.html, media_type="text/html; charset=utf-8", headers=headers)
