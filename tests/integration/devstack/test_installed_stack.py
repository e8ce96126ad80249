"""``pip install entail-dev`` gives a working ``entail up``, without a checkout.

The workspace's packages are built as wheels (``uv build --all-packages``),
installed into a fresh virtual environment outside the repository (their
dependencies at the lock's versions, from uv's cache or the package registry),
and ``entail up`` runs there from a directory that is not a checkout: the
backend answers ``/readyz``, a decision succeeds, and the audit sink — the
functions-framework target shipped in the entail_dev package — stores it. Then
Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.waiting import wait_for

from entail.auth import new_key
from entail.net import free_port

ROOT = Path(__file__).resolve().parents[3]
UV = ROOT / ".tools" / "bin" / "uv"
# uv as the Makefile runs it (certificates and proxies of the machine kept), but
# nothing that points it at the repository's own environment
ENV = {
    **{
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH"}
    },
    "UV_PYTHON_DOWNLOADS": "never",
}


def uv(*args: str, cwd: Path = ROOT, timeout_s: float = 120) -> str:
    out = subprocess.run(
        [str(UV), *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert out.returncode == 0, f"uv {' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the workspace's wheels installed: its bin directory."""
    if not UV.exists():
        pytest.fail(f"{UV} is missing: `make install` bootstraps it")  # a broken setup, not a skip
    work = tmp_path_factory.mktemp("wheels")
    wheels = work / "dist"
    uv("build", "--all-packages", "--wheel", "-q", "-o", str(wheels))
    # the lock's versions (so the packages come from uv's cache), never the workspace's own
    constraints = work / "constraints.txt"
    uv(
        "export", "--frozen", "--no-hashes", "--all-packages", "--no-emit-workspace", "--no-dev",
        "--all-extras", "-q", "-o", str(constraints),
    )  # fmt: skip
    venv = work / "venv"
    uv("venv", "-q", "--python", sys.executable, str(venv))
    # the wheel files by path: a name alone could resolve to someone else's `entail` on PyPI
    uv(
        "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-c", str(constraints),
        *sorted(str(w) for w in wheels.glob("*.whl")),
        timeout_s=300,
    )  # fmt: skip
    return venv / "bin"


@pytest.fixture
def stack(installed: Path, tmp_path: Path) -> Iterator[tuple[str, str, Path, subprocess.Popen[bytes]]]:
    """``entail up`` from the venv, in a directory outside the repository."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    key = new_key()
    backend = free_port()
    env = {
        "PATH": f"{installed}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ENTAIL_DATA_DIR": str(tmp_path / "data"),
        "ENTAIL_BACKEND_PORT": str(backend),
        "ENTAIL_WORKER_PORT": str(free_port()),
        "ENTAIL_AUDIT_SINK_PORT": str(free_port()),
        "ENTAIL_DEV_API_KEY": key,
    }
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(installed / "entail"), "up"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{backend}", key, log, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_entail_up_from_installed_wheels_decides_and_audits(
    stack: tuple[str, str, Path, subprocess.Popen[bytes]], installed: Path
) -> None:
    url, key, log, process = stack
    # the checkout is nowhere on the path of what runs
    assert not str(installed).startswith(str(ROOT))

    def explain() -> str:
        return log.read_text(errors="replace")[-4000:]

    def banner() -> bool:
        assert process.poll() is None, f"entail up exited with {process.returncode}:\n{explain()}"
        return "Entail is up." in log.read_text(errors="replace")

    wait_for(banner, 90, "entail up's banner", interval_s=0.2, explain=explain)
    assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    headers = {"Authorization": f"Bearer {key}"}
    body = {
        "ruleset": "loan",
        "facts": {"applicant": [["ann"]]},
        "query": ["decision(A, D)"],
        "wait_ms": 20000,
    }
    response = httpx.post(f"{url}/v1/decisions", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["status"] == "succeeded", decision

    def audited() -> bool:
        got = httpx.get(f"{url}/v1/audit/decisions/{decision['decision_id']}", headers=headers, timeout=5)
        return got.status_code == 200

    wait_for(
        audited, 30, "the decision in the audit store (the installed sink)", interval_s=0.2, explain=explain
    )

    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
    assert process.wait(30) == 0, explain()
    assert "stopping" in log.read_text(errors="replace")
