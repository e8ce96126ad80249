"""Invariants of the service images, read from the Dockerfiles (no Docker
engine here): built from the workspace lock, non-root, binding $PORT, running
the service's own entry point; and a .dockerignore that keeps the context small
without dropping what the build copies."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from . import iac_tools as iac

SERVICES = {
    # folder: (container port in terraform/modules/entail/run.tf, terraform resource)
    "backend": 3005,
    "reasoning_worker": 4002,
}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (word, _) in enumerate(items) if word == "FROM")
    return items[last_from:]


@pytest.mark.parametrize(("folder", "port"), SERVICES.items())
def test_image_is_built_from_the_workspace_lock(folder: str, port: int) -> None:
    service = iac.ROOT / "run_services" / folder
    project = tomllib.loads((service / "pyproject.toml").read_text())["project"]
    items = instructions(service / "Dockerfile")
    copies = " ".join(args for word, args in items if word == "COPY")
    assert "uv.lock" in copies and "shared/" in copies and f"run_services/{folder}/" in copies
    syncs = [args for word, args in items if word == "RUN" and "uv sync" in args]
    assert syncs, "no uv sync"
    for args in syncs:
        assert "--frozen" in args and "--no-dev" in args and f"--package {project['name']}" in args
    lock = tomllib.loads((iac.ROOT / "uv.lock").read_text())
    assert project["name"] in {p["name"] for p in lock["package"]}
    for word, args in items:
        if word == "FROM":
            image = args.split()[0]
            assert ":" in image and not image.endswith(":latest"), f"unpinned base image {image}"


@pytest.mark.parametrize(("folder", "port"), SERVICES.items())
def test_image_runs_the_service_as_a_non_root_user_on_port(folder: str, port: int) -> None:
    service = iac.ROOT / "run_services" / folder
    project = tomllib.loads((service / "pyproject.toml").read_text())["project"]
    final = final_stage(instructions(service / "Dockerfile"))
    users = [args for word, args in final if word == "USER"]
    assert users, "the final stage runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    envs = " ".join(args for word, args in final if word == "ENV")
    assert f"PORT={port}" in envs, "no default PORT (Cloud Run sets it; docker run needs one)"
    assert "ENTAIL_HOST=0.0.0.0" in envs
    assert [args for word, args in final if word == "EXPOSE"] == [str(port)]
    cmd = [args for word, args in final if word == "CMD"][-1]
    # the console script of this service, which binds settings.port_for() = $PORT
    assert cmd == f'["{next(iter(project["scripts"]))}"]'
    assert any(word == "HEALTHCHECK" and "/healthz" in args for word, args in final)
    run_tf = (iac.TERRAFORM_DIR / "modules" / "entail" / "run.tf").read_text()
    assert re.search(rf"\bcontainer_port\s+=\s+{port}\b", run_tf)


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    patterns = [
        line.strip()
        for line in (iac.ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!")
            if (
                fnmatch.fnmatch(path, pat)
                or fnmatch.fnmatch(path, pat.rstrip("/") + "/*")
                or (pat.startswith("**/") and fnmatch.fnmatch(path.rsplit("/", 1)[-1], pat[3:]))
            ):
                result = not negate
        return result

    for needed in (
        "uv.lock",
        "pyproject.toml",
        "shared/pyproject.toml",
        "shared/README.md",
        "shared/entail/settings.py",
        "run_services/backend/entail_backend/app.py",
        "run_services/reasoning_worker/pyproject.toml",
    ):
        assert not ignored(needed), needed
    for dropped in (
        ".git/config",
        ".venv/bin/python",
        "tests/unit/x.py",
        "static/node_modules/a.js",
        ".tools/bin/uv",
    ):
        assert ignored(dropped), dropped
