"""Both Cloud Functions, staged as the deploy stages them
(scripts/stage_function.sh: main.py, pinned requirements.txt, entail/ beside
them) and built the way Google's Python buildpack builds a gen2 function
(scripts/images/function.Containerfile), then booted as non-root on PORT and
sent a real request: the function imports, its pinned requirements install
and run, and the request reaches its code."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pytest

from entail.net import free_port

from .buildah import ROOT, SCRIPTS, build, inspect, listening_pids, run_image, wait_http, wait_listening
from .conftest import Timings

FUNCTIONS = {"audit_sink": "cloudevent", "batch_reason": "http", "trail_roots": "http"}
PUSH_SECRET = "images-test-push-secret"


def stage(name: str, dest: Path) -> Path:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "stage_function.sh"), name, str(dest)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return dest


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("content-type", "")


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(("name", "signature"), FUNCTIONS.items())
def test_function_image_builds_and_serves_as_non_root(
    name: str, signature: str, stand_in_bases: list[str], timings: Timings, tmp_path: Path
) -> None:
    staged = stage(name, tmp_path / "staged" / name)
    tag = f"localhost/entail-function-{name.replace('_', '-')}:images-test"
    with timings.step(f"build function {name}"):
        image = build(
            SCRIPTS / "function.Containerfile",
            tag,
            staged,
            {"TARGET": name, "SIGNATURE_TYPE": signature},
        )
    config = inspect(image)
    timings.note(f"image {tag}: {config.size}")
    assert config.user.split(":")[0] not in {"", "root", "0"}

    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # written by the image's unprivileged user
    env = {
        "HOST": "127.0.0.1",
        "ENTAIL_DATA_DIR": "/data",
        "ENTAIL_AUDIT_STORE": "duckdb",
        "ENTAIL_PUSH_SECRET": PUSH_SECRET,
    }
    port = free_port()
    with run_image(
        image, f"entail-images-test-fn-{name}", port, env, tmp_path / "container.log", {data: "/data"}
    ) as running:
        with timings.step(f"boot function {name}"):
            wait_http(running, "/")  # any answer: the framework listens
        owners = wait_listening(port)
        assert owners and all(uid != 0 for uid in owners.values()), f"the function runs as root: {owners}"

        if name == "audit_sink":
            # an incomplete record in a binary-mode messagePublished event:
            # decoded, judged and written to the `rejected` table, then acked
            record = base64.b64encode(json.dumps({"decision_id": "dec_image_test"}).encode()).decode()
            body = {
                "message": {"data": record, "messageId": "1"},
                "subscription": "projects/local/subscriptions/audit-sink",
            }
            headers = {
                "ce-id": "1",
                "ce-specversion": "1.0",
                "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                "ce-source": "//pubsub.googleapis.com/projects/local/topics/decisions",
                "content-type": "application/json",
                "X-Entail-Push-Secret": PUSH_SECRET,  # as the local relay sends it
            }
            status, answer, _ = post(port, json.dumps(body).encode(), headers)
            assert status == 200, (answer, running.log())
        else:
            # a request refused by the function's own validation, before BigQuery
            status, answer, content_type = post(port, b"not json", {"content-type": "application/json"})
            assert status == 400, (answer, running.log())
            assert content_type.startswith("application/problem+json")
            assert json.loads(answer)["status"] == 400
    assert not listening_pids(port), "the function outlived its container"

    if name == "audit_sink":
        with duckdb.connect(str(data / "audit.duckdb"), read_only=True) as db:
            rows = db.execute("select reason from rejected").fetchall()
        assert len(rows) == 1, rows
