"""Dependencies point one way (docs/design.md, Layers):

    reasoning <- models <- state / bus / audit <- application <- bootstrap <- services, functions, CLI

Every ``import`` of the library, the two services and the two functions is read
with :mod:`ast` (no module is imported) and mapped to its component; an import
may only reach a lower layer, its own component, or one of the few sideways
imports listed with their reason in ``SIDEWAYS``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# component -> layer; a module belongs to the longest prefix listed
LAYERS: dict[str, int] = {
    # the engine: pure Python, nothing of Entail's outside it
    "entail.reasoning": 0,
    "entail.engine_version": 0,  # the engine's version string, importable without the engine
    # data and configuration every tier shares
    "entail": 1,  # the package itself (__version__)
    "entail.models": 1,
    "entail.settings": 1,
    "entail.record_json": 1,
    "entail.record_text": 1,
    "entail.net": 1,
    "entail.problems": 1,
    "entail.logs": 1,
    "entail.tracing": 1,  # spans and the trace context of bus messages: every tier traces
    "entail.examples": 1,
    "entail.record_limits": 1,  # stdlib only: the worker's evaluation processes import it
    "entail.process_heap": 1,  # every service process freezes its startup heap (gc.freeze)
    # adapters and infrastructure
    "entail.state": 2,
    "entail.bus": 2,
    "entail.audit": 2,
    "entail.auth": 2,
    "entail.masking": 2,
    "entail.compute": 2,
    "entail.datasets": 2,  # the dataset store: local files + Redis, or GCS + BigQuery
    # the application layer: what the deployables call
    "entail.batch": 3,
    "entail.ending": 3,
    "entail.sweeper": 3,
    "entail.arities": 3,
    "entail.decisions": 3,
    "entail.services": 3,
    "entail.replay": 3,
    "entail.impact": 3,
    "entail.messages": 3,
    "entail.audit_sink": 3,
    "entail.request_context": 3,
    "entail.idempotency": 3,
    "entail.jobs": 3,
    "entail.reference_cache": 3,  # the worker's LRU of materialised reference models
    "entail.dataset_binding": 3,  # ruleset bindings to datasets: bound at publish, resolved per decision
    "entail.dataset_eval": 3,  # decisions over datasets: load, materialise once per process, evaluate
    "entail.fairness": 3,
    "entail.record_caps": 3,
    "entail.report": 3,  # the decision report's content and hash (issue 17 §4)
    "entail.report_html": 3,  # its HTML rendering
    # the composition root
    "entail.bootstrap": 4,
    # deployables: processes and commands
    "entail.relay": 5,
    "entail.cli": 5,
    "entail_dev": 5,  # the local stack (devstack/, package entail-dev): `entail up`
    "entail.audit_cli": 5,
    "entail.batch_cli": 5,
    "entail.batch_datasets": 5,  # `entail batch --dataset`: bindings resolved to local versions
    "entail.cli_remote": 5,  # `entail decide`, `entail audit search`: through the SDK (entail_client)
    "entail.dataset_cli": 5,  # `entail dataset push|list|get|diff|tag`: through the SDK
    "entail.cloud_status": 5,
    "entail_backend": 5,
    "entail_worker": 5,
    "functions": 5,
}

# Layers whose components may use each other freely: the shared data (1) and
# the application services (3). Adapters (2) and deployables (5) are separate
# components: a sideways import there needs a reason, listed in SIDEWAYS.
OPEN_LAYERS = {1, 3}

SIDEWAYS: dict[tuple[str, str], str] = {
    ("entail.reasoning", "entail.engine_version"): "the engine's version lives beside it, importable alone",
    ("entail.bus", "entail.state"): "the Redis Streams bus writes with the state layer's durable acks (WAIT)",
    ("entail.datasets", "entail.state"): "dataset metadata lives in Redis under the state layer's keys",
    ("entail.cli", "entail.dataset_cli"): "the CLI's dataset commands live in a module of their own",
    ("entail.dataset_cli", "entail.cli_remote"): "entail dataset asks a running service",
    ("entail.cli", "entail.relay"): "the CLI starts the relay (entail relay)",
    ("entail.cli", "entail_dev"): "the CLI starts the local stack (entail up) when entail-dev is installed",
    ("entail_dev", "entail_backend"): "the stack's banner says where the backend serves the web app from",
    ("entail.cli", "entail.audit_cli"): "the CLI's audit subcommands live in a module of their own",
    ("entail.cli", "entail.batch_cli"): "the CLI's batch command lives in a module of its own",
    ("entail.batch_cli", "entail.batch_datasets"): "the batch command's --dataset resolution",
    ("entail.cli", "entail.cli_remote"): "the commands that ask a running service have a module",
    ("entail.audit_cli", "entail.cli_remote"): "entail audit search asks a running service",
    ("entail.cli", "entail.cloud_status"): "the CLI reads Cloud Run's state (entail cloud status)",
}


def component(module: str) -> str | None:
    """The longest prefix of ``module`` in LAYERS (None: not ours)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return prefix
    return None


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported`` (None: it may)."""
    a, b = component(importer), component(imported)
    if a is None or b is None or a == b:
        return None
    if LAYERS[b] < LAYERS[a] or (a, b) in SIDEWAYS:
        return None
    if LAYERS[b] == LAYERS[a] and LAYERS[a] in OPEN_LAYERS:
        return None
    direction = "up" if LAYERS[b] > LAYERS[a] else "sideways"
    return f"{importer} imports {imported}: layer {LAYERS[a]} reaches {direction} to {b} (layer {LAYERS[b]})"


def sources() -> Iterator[tuple[str, Path]]:
    """(module name, path) of every file whose imports are checked."""
    trees = [
        (ROOT / "shared", ROOT / "shared" / "entail"),
        (ROOT / "run_services" / "backend", ROOT / "run_services" / "backend" / "entail_backend"),
        (
            ROOT / "run_services" / "reasoning_worker",
            ROOT / "run_services" / "reasoning_worker" / "entail_worker",
        ),
        (ROOT / "devstack", ROOT / "devstack" / "entail_dev"),
    ]
    for base, tree in trees:
        for path in sorted(tree.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path
    for path in sorted((ROOT / "functions").glob("*/main.py")):
        yield f"functions.{path.parent.name}.main", path


def imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Absolute names of what ``module`` imports, with line numbers (lazy
    imports inside functions included: they are dependencies all the same)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module:
                yield target, node.lineno
            else:  # from . import x: each name is a module of the package
                for alias in node.names:
                    yield f"{target}.{alias.name}", node.lineno


def test_every_import_points_down_the_layers() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {why}"
        for module, path in sources()
        for imported, line in imports(module, path)
        if (why := violation(module, imported)) is not None
    ]
    assert not found, "\n".join(found)


def test_every_module_has_a_layer() -> None:
    # a new top-level module must be placed in LAYERS, not slip through unchecked
    unplaced = sorted(
        {module for module, _ in sources() if component(module) in (None, "entail")} - {"entail"}
    )
    assert not unplaced, f"add these to LAYERS in {Path(__file__).name}: {unplaced}"


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        # the two wrong-way imports this test was written against
        ("entail.audit.schema", "entail.state.registry"),  # loaded Redis into the audit functions
        ("entail_backend.routes.health", "entail.relay"),  # a service importing another deployable
        # and the shapes around them
        ("entail.reasoning.sql.batch_request", "entail.models"),
        ("entail.models", "entail.state.registry"),
        ("entail.state.decisions", "entail.bootstrap"),
        ("entail.ending", "entail.bootstrap"),
        ("entail.bootstrap", "entail.cli"),
        ("entail_worker.app", "entail_backend.app"),
    ],
)
def test_the_wrong_way_imports_are_caught(importer: str, imported: str) -> None:
    assert violation(importer, imported) is not None


def test_the_usual_way_is_allowed() -> None:
    assert violation("entail_backend.routes.decisions", "entail.state.registry") is None
    assert violation("entail.audit.schema", "entail.models") is None
    assert violation("entail.bus.redis_streams", "entail.state.durability") is None
    assert violation("entail.reasoning.plan", "entail.reasoning.analyse") is None
