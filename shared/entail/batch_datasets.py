"""``entail batch --dataset BINDING=SELECTOR``: the program's ``%@dataset`` bindings
resolved to local dataset versions the SQL path reads in place (docs/batch.md).

A selector is either a selector of the dataset store (``orgchart``,
``orgchart@latest``, ``orgchart@3``, ``orgchart@prod``, a version hash: resolved
through the store's metadata in Redis, the files under
``<data_dir>/datasets/<tenant>/<name>/<version>/``), or a version directory
(a path holding ``<predicate>.parquet`` files, read without Redis; its hash is
computed from the files). A binding the command does not name is
``NAME@latest``, as at publish. A name that is not a binding of the program is
refused (``dataset-not-declared``), as is a selector that resolves to nothing
(``dataset-not-found``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .reasoning.bindings import Signature
from .reasoning.errors import EntailError
from .reasoning.sql.datasets import DatasetSource, parquet_dataset, parse_dataset_option
from .reasoning.sql.errors import BatchInputError

if TYPE_CHECKING:
    from .settings import Settings


class DatasetNotDeclared(EntailError):
    code = "dataset-not-declared"


class DatasetNotFound(EntailError):
    code = "dataset-not-found"


Declared = Mapping[str, Sequence[tuple[Signature, Sequence[str]]]]


def is_directory_selector(selector: str) -> bool:
    return "/" in selector or selector.startswith(".") or Path(selector).is_dir()


def resolve_datasets(
    declared: Declared, flags: Sequence[str], *, tenant: str | None, settings: Settings | None = None
) -> list[DatasetSource]:
    """One :class:`DatasetSource` per binding of the program, sorted by binding."""
    chosen: dict[str, str] = {}
    for flag in flags:
        binding, selector = parse_dataset_option(flag)
        if binding not in declared:
            names = ", ".join(sorted(declared)) or "none"
            raise DatasetNotDeclared(
                f"--dataset {flag!r}: the program declares no dataset {binding!r} "
                f"(its %@dataset names: {names})"
            )
        chosen[binding] = selector
    sources: list[DatasetSource] = []
    from_store: dict[str, str] = {}
    for binding in sorted(declared):
        selector = chosen.get(binding, f"{binding}@latest")
        if is_directory_selector(selector):
            sources.append(directory_version(binding, Path(selector), declared[binding]))
        else:
            from_store[binding] = selector
    if from_store:
        if tenant is None:
            binding, selector = next(iter(from_store.items()))
            raise BatchInputError(
                f"dataset {binding!r}: {selector!r} is a selector of the dataset store; "
                "name the tenant (--tenant) or give a version directory"
            )
        if settings is None:
            from .settings import Settings

            settings = Settings()
        for binding, (name, version, digest) in asyncio.run(_resolve(settings, tenant, from_store)).items():
            directory = settings.data_dir / "datasets" / tenant / name / str(version)
            sources.append(
                parquet_dataset(
                    binding, directory, declared[binding], name=name, version=version, hash=digest
                )
            )
    return sorted(sources, key=lambda s: s.binding)


async def _resolve(
    settings: Settings, tenant: str, selectors: Mapping[str, str]
) -> dict[str, tuple[str, int, str]]:
    from .bootstrap import open_dataset_store
    from .state.client import connect

    redis = connect(settings)
    try:
        store = open_dataset_store(settings, redis)
        out: dict[str, tuple[str, int, str]] = {}
        for binding, selector in selectors.items():
            version = await store.resolve(tenant, selector)
            if version is None:
                raise DatasetNotFound(
                    f"dataset {binding!r}: {selector!r} resolves to no version of tenant {tenant!r}"
                )
            out[binding] = (version.name, version.version, version.hash)
        return out
    finally:
        await redis.aclose()


def directory_version(
    binding: str, directory: Path, declared: Sequence[tuple[Signature, Sequence[str]]]
) -> DatasetSource:
    """A version directory read as it is: the name and version from its path
    (``…/<name>/<version>``) where it has that shape, the hash from its files."""
    from .datasets.ingest import content_hash
    from .datasets.port import PredicateStats

    if not directory.is_dir():
        raise DatasetNotFound(f"dataset {binding!r}: no version directory {str(directory)!r}")
    version = int(directory.name) if re.fullmatch(r"[0-9]+", directory.name) else 0
    name = directory.parent.name if version else directory.name
    stats = [PredicateStats(p.stem, _arity(p), 0) for p in sorted(directory.glob("*.parquet"))]
    digest = content_hash(directory, stats)
    return parquet_dataset(binding, directory, declared, name=name, version=version, hash=digest)


def _arity(path: Path) -> int:
    """A predicate file's arity from its column layout (``i{k}``/``s{k}`` per argument, or ``u``)."""
    from .bootstrap import open_batch_database

    con = open_batch_database(":memory:")
    try:
        literal = "'" + str(path).replace("'", "''") + "'"
        names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM read_parquet({literal})").fetchall()]
    finally:
        con.close()
    return sum(1 for n in names if re.fullmatch(r"i[0-9]+", n))
