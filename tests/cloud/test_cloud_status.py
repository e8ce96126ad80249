"""`entail cloud status`: the message without credentials, the report from real
Cloud Run v2 protobuf objects, and the read path through google-cloud-run's own
REST transport against a local HTTP server that answers as the Cloud Run Admin
API does (Google's API, not ours: there is no emulator for it)."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from entail.cloud_status import NO_CREDENTIALS, ServiceStatus, format_status, read_status, service_path
from entail.net import free_port

PROJECT, REGION = "entail-prod", "europe-west1"
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
BY_REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
SUCCEEDED = run_v2.Condition.State.CONDITION_SUCCEEDED
FAILED = run_v2.Condition.State.CONDITION_FAILED


def _revision(service: str, name: str, hour: int, minimum: int, state: Any = SUCCEEDED) -> run_v2.Revision:
    return run_v2.Revision(
        name=f"{service_path(PROJECT, REGION, service)}/revisions/{name}",
        create_time=datetime.datetime(2026, 11, 28, hour, 5, tzinfo=datetime.UTC),
        scaling=run_v2.RevisionScaling(min_instance_count=minimum, max_instance_count=20),
        conditions=[
            run_v2.Condition(
                type_="Ready", state=state, message="" if state == SUCCEEDED else "image not found"
            )
        ],
    )


def _backend() -> run_v2.Service:
    path = service_path(PROJECT, REGION, "backend")
    return run_v2.Service(
        name=path,
        uri="https://backend-abc123-ew.a.run.app",
        latest_ready_revision=f"{path}/revisions/backend-00012-new",
        template=run_v2.RevisionTemplate(
            scaling=run_v2.RevisionScaling(min_instance_count=3, max_instance_count=20)
        ),
        scaling=run_v2.ServiceScaling(min_instance_count=3),
        terminal_condition=run_v2.Condition(type_="Ready", state=SUCCEEDED),
        traffic_statuses=[
            run_v2.TrafficTargetStatus(type_=LATEST, percent=90),
            run_v2.TrafficTargetStatus(
                type_=BY_REVISION,
                revision="backend-00011-old",
                percent=10,
                tag="previous",
                uri="https://previous---backend-abc123-ew.a.run.app",
            ),
        ],
    )


def _backend_revisions() -> list[run_v2.Revision]:
    return [
        _revision("backend", "backend-00011-old", 9, 3),
        _revision("backend", "backend-00012-new", 11, 3),
        _revision("backend", "backend-00013-bad", 12, 3, state=FAILED),
    ]


def test_the_report_shows_revisions_traffic_and_instances() -> None:
    statuses = [
        ServiceStatus("backend", _backend(), sorted(_backend_revisions(), key=lambda r: str(r.name))[::-1]),
        ServiceStatus("reasoning-worker", error="NotFound: Resource 'reasoning-worker' was not found"),
    ]
    report = format_status(statuses, PROJECT, REGION)
    lines = report.splitlines()
    assert lines[0] == "Cloud Run services in entail-prod / europe-west1"
    assert "backend  https://backend-abc123-ew.a.run.app" in lines
    assert "  ready: ready   latest ready revision: backend-00012-new" in lines
    assert "  scaling: min 3 max 20 instances (service minimum 3)" in lines
    assert "     90%  backend-00012-new  (latest)" in lines
    assert (
        "     10%  backend-00011-old  tag previous  https://previous---backend-abc123-ew.a.run.app" in lines
    )
    assert (
        "    backend-00013-bad  2026-11-28 12:05 UTC  failed (image not found)  min 3 max 20 instances"
        in lines
    )
    assert "    backend-00012-new  2026-11-28 11:05 UTC  ready  min 3 max 20 instances  serving 90%" in lines
    assert (
        "    backend-00011-old  2026-11-28 09:05 UTC  ready  min 3 max 20 instances  serving 10% tag previous"
        in lines
    )
    assert "reasoning-worker: cannot read: NotFound: Resource 'reasoning-worker' was not found" in lines


class CloudRunApi:
    """GET services and revisions of the Cloud Run Admin API v2 (REST, JSON), from
    the protobuf objects given; anything else is Google's 404 error body."""

    def __init__(self, services: dict[str, run_v2.Service], revisions: dict[str, list[run_v2.Revision]]):
        self.paths: list[str] = []
        owner = self
        routes: dict[str, str] = {}
        for name, service in services.items():
            routes[f"/v2/{service.name}"] = run_v2.Service.to_json(service)
            listed = [json.loads(run_v2.Revision.to_json(r)) for r in revisions.get(name, [])]
            routes[f"/v2/{service.name}/revisions"] = json.dumps({"revisions": listed})

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                owner.paths.append(path)
                body = routes.get(path)
                status = 200
                if body is None:
                    status = 404
                    body = json.dumps(
                        {"error": {"code": 404, "message": f"{path} not found", "status": "NOT_FOUND"}}
                    )
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[CloudRunApi]:
    server = CloudRunApi({"backend": _backend()}, {"backend": _backend_revisions()})
    try:
        yield server
    finally:
        server.close()


def test_read_status_through_the_cloud_run_client(api: CloudRunApi) -> None:
    options = {"api_endpoint": api.endpoint}
    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    services = run_v2.ServicesClient(transport="rest", client_options=options, credentials=credentials)
    revisions = run_v2.RevisionsClient(transport="rest", client_options=options, credentials=credentials)
    statuses = read_status(
        PROJECT, REGION, ["backend", "reasoning-worker"], services, revisions, max_revisions=2
    )
    backend, worker = statuses
    assert backend.service is not None and backend.service.uri == "https://backend-abc123-ew.a.run.app"
    newest = [r.name.rsplit("/", 1)[-1] for r in backend.revisions]
    assert newest == ["backend-00013-bad", "backend-00012-new"]
    assert worker.service is None and worker.error.startswith("NotFound")
    assert f"/v2/{service_path(PROJECT, REGION, 'backend')}/revisions" in api.paths
    report = format_status(statuses, PROJECT, REGION)
    assert "  revisions (newest 2):" in report


def test_without_credentials_the_command_says_so_and_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_"))}
    env.update(
        {
            "HOME": str(tmp_path),  # no ~/.config/gcloud application default credentials
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
            "NO_GCE_CHECK": "True",  # do not probe the metadata server...
            "GCE_METADATA_HOST": "127.0.0.1:1",  # ...and if probed, find nothing there
            "GCE_METADATA_IP": "127.0.0.1:1",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "entail.cli", "cloud", "status", "--project", PROJECT, "--region", REGION],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"entail: {NO_CREDENTIALS}\n"
