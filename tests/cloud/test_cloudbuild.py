"""The Cloud Build pipelines: valid against check-jsonschema's built-in
``vendor.cloudbuild`` schema, every step named and identified, and the deploy
order the design asks for (no traffic, smoke test, then traffic)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import iac_tools as iac

PIPELINES = [iac.ROOT / "cloudbuild.yaml", iac.ROOT / "cloudbuild-terraform.yaml"]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def steps(path: Path) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in load(path)["steps"]}


def command(step: dict[str, Any]) -> str:
    return " ".join([step.get("entrypoint", ""), *map(str, step.get("args", []))])


def test_pipelines_match_the_cloudbuild_schema() -> None:
    iac.ensure()
    out = subprocess.run(
        [str(iac.CHECK_JSONSCHEMA), "--builtin-schema", "vendor.cloudbuild", *map(str, PIPELINES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_schema_check_catches_a_broken_pipeline(tmp_path: Path) -> None:
    iac.ensure()
    broken = load(PIPELINES[0])
    broken["steps"][0]["args"] = "not a list"
    broken["timeout"] = 3600
    path = tmp_path / "cloudbuild.yaml"
    path.write_text(yaml.safe_dump(broken))
    out = subprocess.run(
        [str(iac.CHECK_JSONSCHEMA), "--builtin-schema", "vendor.cloudbuild", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_every_step_has_an_image_and_a_unique_human_id(path: Path) -> None:
    raw = load(path)["steps"]
    ids = [step.get("id") for step in raw]
    assert all(isinstance(i, str) and re.fullmatch(r"[a-z][a-z0-9-]+", i) for i in ids), ids
    assert len(set(ids)) == len(ids), ids
    for step in raw:
        assert step.get("name"), f"step {step['id']} has no image"
        for dep in step.get("waitFor", []):
            assert dep == "-" or dep in ids[: ids.index(step["id"])], f"{step['id']} waits for {dep}"


def test_deploy_order_no_traffic_then_smoke_test_then_traffic() -> None:
    s = steps(PIPELINES[0])
    assert "bash .ci/run" in command(s["lint-and-test"])
    for service, short in (("backend", "backend"), ("reasoning-worker", "worker")):
        deploy = command(s[f"deploy-{short}-no-traffic"])
        assert f"run deploy {service}" in deploy
        assert "--no-traffic" in deploy and "--tag=${_TAG}" in deploy
        assert f"push-{short}" in s[f"deploy-{short}-no-traffic"]["waitFor"]
        assert "lint-and-test" in s[f"push-{short}"]["waitFor"]
        smoke = command(s[f"smoke-test-{short}"])
        assert "scripts/smoke_test.sh" in smoke and service in smoke and "${_TAG}" in smoke
        shift = command(s[f"shift-traffic-{short}"])
        assert f"update-traffic {service}" in shift and "--to-tags=${_TAG}=100" in shift
    assert {"smoke-test-worker", "smoke-test-backend"} <= set(s["shift-traffic-worker"]["waitFor"])
    assert s["shift-traffic-backend"]["waitFor"] == ["shift-traffic-worker"]
    assert (iac.ROOT / "scripts" / "smoke_test.sh").is_file()


def test_images_are_built_from_the_root_with_each_services_dockerfile() -> None:
    s = steps(PIPELINES[0])
    for short, folder in (("backend", "backend"), ("worker", "reasoning_worker")):
        args = s[f"build-{short}"]["args"]
        assert args[:3] == ["build", "-f", f"run_services/{folder}/Dockerfile"]
        assert args[-1] == "."
        assert (iac.ROOT / "run_services" / folder / "Dockerfile").is_file()


def test_every_function_is_staged_and_deployed_with_its_entry_point() -> None:
    s = steps(PIPELINES[0])
    functions = sorted(p.parent.name for p in (iac.ROOT / "functions").glob("*/main.py"))
    assert "audit_sink" in functions
    staged = command(s["stage-functions"])
    for name in functions:
        assert f"scripts/stage_function.sh {name} build/functions/{name}" in staged
        deploy = command(s[f"deploy-{name.replace('_', '-')}"])
        assert f"--entry-point={name}" in deploy
        assert f"--source=build/functions/{name}" in deploy
        assert "--no-allow-unauthenticated" in deploy
        assert f"def {name}(" in (iac.ROOT / "functions" / name / "main.py").read_text()


def test_web_app_is_built_and_synced_assets_before_html() -> None:
    s = steps(PIPELINES[0])
    build = command(s["build-web"])
    assert "npm ci" in build and "npm run build" in build and "config.json" in build
    sync = command(s["sync-web"])
    assert sync.index("gcloud storage rsync static/dist") < sync.index("static/dist/index.html")


def test_terraform_pipeline_plans_and_applies_only_when_asked() -> None:
    s = steps(PIPELINES[1])
    assert list(s)[:1] == ["fmt-check"]
    assert "terraform plan" in command(s["plan"]) and "-out=tfplan" in command(s["plan"])
    apply = command(s["apply"])
    assert 'if [ "${_APPLY}" != "true" ]' in apply and "terraform apply -input=false tfplan" in apply
    assert load(PIPELINES[1])["substitutions"]["_APPLY"] == "false"


STAGE = iac.ROOT / "scripts" / "stage_function.sh"


def test_stage_function_copies_the_library_beside_main_and_zips(tmp_path: Path) -> None:
    dest = tmp_path / "audit_sink"
    subprocess.run(["bash", str(STAGE), "audit_sink", str(dest), "zip"], check=True, timeout=60)
    assert (dest / "main.py").read_text() == (iac.ROOT / "functions/audit_sink/main.py").read_text()
    assert (dest / "requirements.txt").is_file()
    assert (dest / "entail" / "settings.py").is_file()
    assert not list(dest.rglob("__pycache__"))
    with zipfile.ZipFile(tmp_path / "audit_sink.zip") as archive:
        names = set(archive.namelist())
    assert {"main.py", "requirements.txt", "entail/settings.py"} <= names


def test_stage_function_refuses_unpinned_requirements(tmp_path: Path) -> None:
    fn = tmp_path / "functions" / "demo"
    fn.mkdir(parents=True)
    (fn / "main.py").write_text("def demo(request):\n    return 'ok'\n")
    (fn / "requirements.txt").write_text("# pinned\nflask==3.1.0\nrequests>=2\n")
    out = subprocess.run(
        ["bash", str(STAGE), "demo", str(tmp_path / "out")],
        env={**os.environ, "FUNCTIONS_DIR": str(tmp_path / "functions")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "requirements.txt:3: requests>=2" in out.stderr
    assert not (tmp_path / "out").exists()


def test_committed_function_requirements_are_pinned() -> None:
    for requirements in (iac.ROOT / "functions").glob("*/requirements.txt"):
        for line in requirements.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            assert not line or re.fullmatch(r"[A-Za-z0-9_.\-]+(\[[A-Za-z0-9_,.\-]+\])?==\S+", line), (
                f"{requirements}: {line}"
            )


def test_function_requirements_are_generated_from_the_lock() -> None:
    # scripts/gen_function_requirements.py pins requirements.in from uv.lock: the
    # committed requirements.txt must be what it writes today
    out = subprocess.run(
        [sys.executable, str(iac.ROOT / "scripts" / "gen_function_requirements.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_functions_import_without_redis() -> None:
    # Neither function talks to Redis, so neither may load it (nor pin it): the
    # audit schema used to import the registry for RulesetVersion.
    for function in ("audit_sink", "batch_reason", "trail_roots"):
        code = (
            "import runpy, sys\n"
            f"runpy.run_path({str(iac.ROOT / 'functions' / function / 'main.py')!r})\n"
            "assert 'redis' not in sys.modules, sorted(m for m in sys.modules if m.startswith('entail'))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "ENTAIL_AUDIT_PATH": "/nonexistent/audit.duckdb"},
        )
        assert out.returncode == 0, f"{function}: {out.stderr[-2000:]}"
        assert "redis" not in (iac.ROOT / "functions" / function / "requirements.txt").read_text()
