"""The composition root (``entail.bootstrap``) is the one place adapters are chosen.

Read with :mod:`ast` like the layering test: outside ``bootstrap.py`` and the
adapter packages themselves, no module of the library, the services, the
functions or the local stack imports a concrete adapter or opens a DuckDB
connection, except the few listed in ``ALLOWED`` with their reason. A
deployable gets its adapters from ``bootstrap()``, ``open_audit_sink()``,
``open_batch()`` or ``open_batch_database()``."""

from __future__ import annotations

import ast

from test_layering import ROOT, imports, sources  # tests/unit is on the path (rootdir import)

# the concrete adapters: choosing one of them is the composition root's job
ADAPTERS = (
    "entail.audit.duckdb_store",
    "entail.audit.bigquery_store",
    "entail.audit.factory",
    "entail.bus.redis_streams",
    "entail.bus.pubsub",
    "entail.datasets.cloud_store",
)
# packages that are adapters (they may use each other) and the root itself; the
# dataset stores build and read Parquet files with DuckDB
EXEMPT = ("entail.bootstrap", "entail.audit", "entail.bus", "entail.state", "entail.datasets")

ALLOWED: dict[tuple[str, str], str] = {
    ("entail.cli", "entail.audit.duckdb_store"): "entail audit expire works on the local audit file only",
    ("entail.audit_cli", "entail.audit.duckdb_store"): "the trail commands work on the local audit file only",
    ("entail.relay", "entail.bus.redis_streams"): "the relay is the Redis Streams bus's own deliverer",
    ("entail_backend.edge", "entail.bus.pubsub"): "maps the Pub/Sub adapter's errors to 503s",
}


def _adapter(name: str) -> str | None:
    if name == "entail.audit":  # the package re-exports the DuckDB store
        return None
    return next((a for a in ADAPTERS if name == a or name.startswith(a + ".")), None)


def _type_only_lines(tree: ast.Module) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks: naming an adapter in an
    annotation (a route that serves either store) chooses nothing."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def choices() -> list[str]:
    found: list[str] = []
    for module, path in sources():
        if module.startswith(EXEMPT):
            continue
        tree = ast.parse(path.read_text(), str(path))
        type_only = _type_only_lines(tree)
        for imported, line in imports(module, path):
            if line in type_only:
                continue
            adapter = _adapter(imported)
            if adapter is None and imported.startswith("entail.audit"):
                # `from entail.audit import DuckDBAuditStore`
                names = [
                    a.name
                    for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.lineno == line
                    for a in node.names
                ]
                if "DuckDBAuditStore" in names:
                    adapter = "entail.audit.duckdb_store"
            allowed = any((m, adapter) in ALLOWED for m in _prefixes(module))
            if adapter is not None and not allowed:
                found.append(f"{path.relative_to(ROOT)}:{line}: {module} chooses {adapter}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "connect"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "duckdb"
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {module} opens a DuckDB database")
    return found


def _prefixes(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def test_only_the_composition_root_chooses_adapters() -> None:
    found = choices()
    assert not found, "\n".join(found)


def test_the_entry_points_of_the_functions_and_the_stack_are_scanned() -> None:
    modules = {module for module, _ in sources()}
    assert {"functions.audit_sink.main", "functions.batch_reason.main", "entail_dev.sink"} <= modules
    assert "entail.batch_cli" in modules


def test_the_old_choices_would_be_caught() -> None:
    # before the composition root: the functions imported entail.audit.factory, and
    # `entail batch` called duckdb.connect itself
    assert _adapter("entail.audit.factory") == "entail.audit.factory"
    assert _adapter("entail.audit.duckdb_store.x") == "entail.audit.duckdb_store"
    assert _adapter("entail.audit.port") is None and _adapter("entail.audit") is None
