"""``entail cloud status``: the deployed Cloud Run services as Cloud Run reports them.

For each service (``backend`` and ``reasoning-worker`` by default): its URL,
scaling (the revision template's min/max instances and the service-level
minimum), the traffic split as served (``traffic_statuses``: percent, revision,
tag and tag URL; "latest" resolved to the latest ready revision) and the newest
revisions with their readiness, scaling and creation time.

Read-only: ``ServicesClient.get_service`` and ``RevisionsClient.list_revisions``
(the ``run.services.get`` and ``run.revisions.list`` permissions, e.g. role
``roles/run.viewer``), with Application Default Credentials. Without any
credentials the command says so in one line and exits 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from google.cloud import run_v2

SERVICES = ("backend", "reasoning-worker")
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
NO_CREDENTIALS = (
    "no Google Cloud credentials found: run `gcloud auth application-default login` "
    "or set GOOGLE_APPLICATION_CREDENTIALS"
)
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


@dataclass
class ServiceStatus:
    """One service and its newest revisions (or why it could not be read)."""

    name: str
    service: run_v2.Service | None = None
    revisions: list[run_v2.Revision] = field(default_factory=list)
    error: str = ""


def service_path(project: str, region: str, name: str) -> str:
    return f"projects/{project}/locations/{region}/services/{name}"


def read_status(
    project: str,
    region: str,
    names: Iterable[str],
    services_client: Any,
    revisions_client: Any,
    *,
    max_revisions: int = 5,
) -> list[ServiceStatus]:
    """Each service with its newest ``max_revisions`` revisions. An API error
    on one service (not found, permission denied) is reported on it, not raised."""
    from google.api_core.exceptions import GoogleAPICallError

    out: list[ServiceStatus] = []
    for name in names:
        path = service_path(project, region, name)
        try:
            service = services_client.get_service(name=path)
            revisions = list(revisions_client.list_revisions(parent=path))
        except GoogleAPICallError as exc:
            out.append(ServiceStatus(name, error=f"{type(exc).__name__}: {exc.message or exc}"))
            continue
        revisions.sort(key=lambda r: _time(r.create_time), reverse=True)
        out.append(ServiceStatus(name, service, revisions[:max_revisions]))
    return out


def format_status(statuses: Sequence[ServiceStatus], project: str, region: str) -> str:
    """The report, plain text, one block per service."""
    lines = [f"Cloud Run services in {project} / {region}"]
    for status in statuses:
        lines.append("")
        if status.service is None:
            lines.append(f"{status.name}: cannot read: {status.error}")
            continue
        lines.extend(_service_lines(status.name, status.service, status.revisions))
    return "\n".join(lines) + "\n"


def _service_lines(name: str, service: run_v2.Service, revisions: Sequence[run_v2.Revision]) -> list[str]:
    from google.cloud import run_v2

    latest = _short(service.latest_ready_revision)
    lines = [f"{name}  {service.uri or '(no URL)'}"]
    lines.append(f"  ready: {_ready(service.terminal_condition)}   latest ready revision: {latest or '-'}")
    lines.append(f"  scaling: {_scaling(service.template.scaling, service.scaling.min_instance_count)}")
    lines.append("  traffic:")
    served: dict[str, list[str]] = {}
    if not service.traffic_statuses:
        lines.append("    (none reported)")
    for target in service.traffic_statuses:
        is_latest = target.type_ == run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
        revision = latest if is_latest else _short(target.revision)
        text = f"    {target.percent:>3}%  {revision or '-'}"
        if is_latest:
            text += "  (latest)"
        if target.tag:
            text += f"  tag {target.tag}" + (f"  {target.uri}" if target.uri else "")
        lines.append(text)
        note = f"{target.percent}%" + (f" tag {target.tag}" if target.tag else "")
        served.setdefault(revision, []).append(note)
    lines.append(f"  revisions (newest {len(revisions)}):")
    if not revisions:
        lines.append("    (none)")
    for revision in revisions:
        short = _short(revision.name)
        created = _time(revision.create_time).strftime("%Y-%m-%d %H:%M UTC")
        ready = _ready(next((c for c in revision.conditions if c.type_ == "Ready"), None))
        text = f"    {short}  {created}  {ready}  {_scaling(revision.scaling, 0)}"
        if short in served:
            text += f"  serving {', '.join(served[short])}"
        lines.append(text)
    return lines


def _short(resource: str) -> str:
    """``projects/p/locations/r/services/s/revisions/s-00001-abc`` → ``s-00001-abc``."""
    return resource.rsplit("/", 1)[-1] if resource else ""


def _time(value: Any) -> datetime:
    """A proto timestamp (a datetime from proto-plus) as an aware datetime; epoch if unset."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(0, UTC)


def _scaling(scaling: run_v2.RevisionScaling, service_min: int) -> str:
    maximum = scaling.max_instance_count or "default (100)"
    text = f"min {scaling.min_instance_count} max {maximum} instances"
    if service_min:
        text += f" (service minimum {service_min})"
    return text


def _ready(condition: run_v2.Condition | None) -> str:
    from google.cloud import run_v2

    if condition is None:
        return "unknown"
    state = run_v2.Condition.State(condition.state)
    word = {
        run_v2.Condition.State.CONDITION_SUCCEEDED: "ready",
        run_v2.Condition.State.CONDITION_FAILED: "failed",
        run_v2.Condition.State.CONDITION_RECONCILING: "deploying",
        run_v2.Condition.State.CONDITION_PENDING: "pending",
    }.get(state, "unknown")
    return f"{word} ({condition.message})" if condition.message and word != "ready" else word


def run(
    project: str | None,
    region: str,
    names: Sequence[str],
    out: TextIO,
    err: TextIO,
    *,
    max_revisions: int = 5,
) -> int:
    """The command: credentials, clients, report. Exit 2 without credentials or
    project, 1 when a service could not be read, else 0."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, default_project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except DefaultCredentialsError:
        print(f"entail: {NO_CREDENTIALS}", file=err)
        return EXIT_USAGE
    project = project or default_project
    if not project:
        print("entail: no project: pass --project or set ENTAIL_GCP_PROJECT", file=err)
        return EXIT_USAGE
    from google.cloud import run_v2

    services_client = run_v2.ServicesClient(credentials=credentials)
    revisions_client = run_v2.RevisionsClient(credentials=credentials)
    statuses = read_status(
        project, region, names, services_client, revisions_client, max_revisions=max_revisions
    )
    out.write(format_status(statuses, project, region))
    return EXIT_ERROR if any(s.service is None for s in statuses) else EXIT_OK
