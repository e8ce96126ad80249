"""The ``moved {}`` blocks of terraform/modules/entail: an existing deployment
whose state still holds the resources as they were written before they became
``for_each`` instances plans no destroy/create.

Two checks. Statically: every old address has a moved block, whose ``to`` is a
declared resource and, for a keyed address, a key of its ``for_each``.
Dynamically, where a terraform binary exists: the same addresses, with every
resource type replaced by the built-in ``terraform_data`` (no provider to
download), are applied in the old shape and planned in the new one with the
module's own moved blocks; Terraform itself must report only moves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from . import iac_tools as iac
from .terraform_instances import for_each_items

MODULE = "modules/entail"

# Every address that was a single resource before the for_each refactor
# (issue 14 §6): the two Cloud Run services, the five secrets, the three
# versions Terraform writes. A state made before it holds exactly these.
_MOVES = [
    # (type, old name = new key, new name)
    ("google_cloud_run_v2_service", "backend", "service"),
    ("google_cloud_run_v2_service", "worker", "service"),
    ("google_secret_manager_secret", "redis_url", "secret"),
    ("google_secret_manager_secret", "redis_read_url", "secret"),
    ("google_secret_manager_secret", "redis_ca", "secret"),
    ("google_secret_manager_secret", "api_keys", "secret"),
    ("google_secret_manager_secret", "mask_secret", "secret"),
    ("google_secret_manager_secret_version", "redis_url", "derived"),
    ("google_secret_manager_secret_version", "redis_read_url", "derived"),
    ("google_secret_manager_secret_version", "redis_ca", "derived"),
]
OLD_ADDRESSES = {f"{t}.{old}": f'{t}.{new}["{old}"]' for t, old, new in _MOVES}

ADDRESS = re.compile(r'^(?P<type>[a-z0-9_]+)\.(?P<name>[a-z0-9_]+)(?:\["(?P<key>[^"]+)"\])?$')


def unwrap(reference: str) -> str:
    """``${google_x.y["k"]}`` (python-hcl2's spelling of a bare reference) -> ``google_x.y["k"]``."""
    return reference.removeprefix("${").removesuffix("}")


def moved_blocks() -> list[tuple[str, str]]:
    return [(unwrap(b["from"]), unwrap(b["to"])) for _, b in iac.blocks("moved", MODULE)]


def test_every_old_address_moves_to_a_declared_instance() -> None:
    moves = moved_blocks()
    sources = [source for source, _ in moves]
    assert len(sources) == len(set(sources)), "an address moved twice"
    assert dict(moves) == OLD_ADDRESSES
    resources = iac.resources(MODULE)
    for source, target in moves:
        old = ADDRESS.match(source)
        new = ADDRESS.match(target)
        assert old and new, (source, target)
        assert old["type"] == new["type"], f"{source}: a moved block cannot change the resource type"
        assert (old["type"], old["name"]) not in resources, f"{source} is still declared: the move is a no-op"
        assert (new["type"], new["name"]) in resources, f"{target} is not declared"
        body = resources[(new["type"], new["name"])]
        assert new["key"] is not None, f"{target}: the new resource is keyed"
        assert new["key"] in for_each_items(body["for_each"], MODULE), f"{target}: no such for_each key"


def test_no_reference_to_an_old_address_remains() -> None:
    """A reference to ``google_cloud_run_v2_service.backend.uri`` would fail the plan."""
    module = iac.TERRAFORM_DIR / MODULE
    for path in sorted(module.glob("*.tf")):
        text = re.sub(r"(?m)^\s*from\s*=.*$", "", path.read_text())  # the moved blocks themselves
        for old in OLD_ADDRESSES:
            assert not re.search(rf"{re.escape(old)}\b(?!\[)", text), f"{path.name} still refers to {old}"
    for path in (
        iac.ROOT / "cloudbuild.yaml",
        iac.ROOT / "cloudbuild-terraform.yaml",
        iac.ROOT / "docs" / "deploy.md",
    ):
        for old in OLD_ADDRESSES:
            assert not re.search(rf"{re.escape(old)}\b(?!\[)", path.read_text()), f"{path.name}: {old}"


TERRAFORM = shutil.which("terraform")


def stand_in(address: str) -> str:
    """``google_x.name["k"]`` -> ``terraform_data.google_x__name["k"]``: one built-in type for all."""
    m = ADDRESS.match(address)
    assert m, address
    key = f'["{m["key"]}"]' if m["key"] else ""
    return f"terraform_data.{m['type']}__{m['name']}{key}"


def terraform(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = folder / "cli.tfrc"
    config.write_text("")  # no provider mirrors, no credentials: terraform_data is built in
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TF_")},
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }
    assert TERRAFORM is not None
    out = subprocess.run(
        [TERRAFORM, f"-chdir={folder}", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode in (0, 2), f"terraform {args[0]}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
    return out


@pytest.mark.skipif(TERRAFORM is None, reason="no terraform binary on PATH")
def test_terraform_plans_only_moves_from_an_old_state(tmp_path: Path) -> None:
    moves = moved_blocks()
    old = "\n".join(f'resource "terraform_data" "{stand_in(s).split(".", 1)[1]}" {{}}' for s, _ in moves)
    (tmp_path / "main.tf").write_text(old + "\n")
    terraform(tmp_path, "init", "-input=false", "-no-color")
    terraform(tmp_path, "apply", "-auto-approve", "-input=false", "-no-color")

    # the new shape: each keyed resource with the keys its for_each has today
    resources = iac.resources(MODULE)
    new = []
    for rtype, name in sorted({(ADDRESS.match(t)["type"], ADDRESS.match(t)["name"]) for _, t in moves}):  # type: ignore[index]
        keys = sorted(for_each_items(resources[(rtype, name)]["for_each"], MODULE))
        new.append(
            f'resource "terraform_data" "{rtype}__{name}" {{\n  for_each = toset({json.dumps(keys)})\n}}'
        )
    new += [f"moved {{\n  from = {stand_in(s)}\n  to   = {stand_in(t)}\n}}" for s, t in moves]
    (tmp_path / "main.tf").write_text("\n".join(new) + "\n")
    terraform(tmp_path, "plan", "-input=false", "-no-color", "-out=plan.bin")
    shown = json.loads(terraform(tmp_path, "show", "-json", "plan.bin").stdout)

    changes = shown["resource_changes"]
    assert {c["previous_address"] for c in changes} == {stand_in(s) for s, _ in moves}
    assert {c["address"] for c in changes} == {stand_in(t) for _, t in moves}
    assert all(c["change"]["actions"] == ["no-op"] for c in changes), [
        (c["address"], c["change"]["actions"]) for c in changes if c["change"]["actions"] != ["no-op"]
    ]
