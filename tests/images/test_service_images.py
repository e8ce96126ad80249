"""Both Cloud Run services: built from their real Dockerfiles (the same files
Cloud Build builds, unchanged), then booted with their own entrypoint on the
port given by PORT, as Cloud Run would, and probed from the host."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from entail.net import free_port
from entail.state.embedded import EmbeddedRedis

from .buildah import ROOT, build, inspect, listening_pids, run_image, wait_http, wait_listening
from .conftest import Timings

SERVICES = ["backend", "reasoning_worker"]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("folder", SERVICES)
def test_service_image_builds_and_boots_as_non_root(
    folder: str, stand_in_bases: list[str], redis_server: EmbeddedRedis, timings: Timings, tmp_path: Path
) -> None:
    service = ROOT / "run_services" / folder
    script = next(iter(tomllib.loads((service / "pyproject.toml").read_text())["project"]["scripts"]))
    tag = f"localhost/entail-{folder.replace('_', '-')}:images-test"

    with timings.step(f"build {folder}"):
        image = build(service / "Dockerfile", tag, ROOT)
    config = inspect(image)
    timings.note(f"image {tag}: {config.size}")
    assert config.cmd == [script] and not config.entrypoint
    assert config.user and config.user.split(":")[0] not in {"root", "0"}

    port = free_port()
    env = {
        # on the host's network: bind loopback only (the image says 0.0.0.0 for Cloud Run)
        "ENTAIL_HOST": "127.0.0.1",
        "ENTAIL_REDIS_URL": redis_server.url,
    }
    with run_image(image, f"entail-images-test-{folder}", port, env, tmp_path / "container.log") as running:
        with timings.step(f"boot {folder} to /healthz"):
            status, body = wait_http(running, "/healthz")
        assert status == 200, running.log()
        assert json.loads(body) == {"status": "ok"}
        # Redis reached from inside the image (its client, its settings from the env)
        status, body = wait_http(running, "/readyz")
        assert status == 200, (body, running.log())

        owners = wait_listening(port)
        assert owners, f"no process listens on {port}"
        assert all(uid != 0 for uid in owners.values()), f"the server runs as root: {owners}"

        # the image's own HEALTHCHECK command, run inside the container
        assert config.healthcheck[0] == "CMD"
        check = running.exec(config.healthcheck[1:])
        assert check.returncode == 0, check.stdout + check.stderr
    assert not listening_pids(port), "the server outlived its container"
