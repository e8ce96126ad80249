"""Evaluating a decision that reads datasets: the recorded versions loaded and
materialised once per process, then every case evaluated from that model.

The worker (every decision with ``Job.datasets``), replay and impact (the
versions a decision recorded, or impact's overrides) all come here, so a decision
and its replay read the same versions the same way.

Why in a thread of the calling process rather than in the compute pool: the
materialised model (``Ruleset.materialise``) is a large graph of Python objects
that does not cross a process boundary cheaply (pickled per decision it would
cost what materialising saves). One model per process, in the process's
:class:`~entail.reference_cache.ReferenceCache`, is shared by all its requests;
the per-decision part (the case-dependent strata) is milliseconds. Everything
here that blocks (the store's ``read()``, the engine) runs in
``asyncio.to_thread``, never on the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from . import reasoning
from .compute import tasks
from .dataset_binding import DatasetBindingError
from .datasets.port import DatasetStore, DatasetVersion, Row
from .models import DatasetRef
from .reference_cache import ReferenceCache, reference_key

Reference = dict[str, dict[str, list[Row]]]

_shared: ReferenceCache[Any] | None = None
_shared_lock = threading.Lock()


def process_cache(max_bytes: int) -> ReferenceCache[Any]:
    """This process's cache (made on first use with ``max_bytes``,
    ``ENTAIL_REFERENCE_CACHE_BYTES``): one per process, shared by all its requests."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ReferenceCache(max_bytes)
        return _shared


async def versions_of(
    store: DatasetStore | None, tenant: str, refs: Sequence[DatasetRef]
) -> list[DatasetVersion]:
    """The store's versions behind recorded refs; ``dataset-not-found`` (409) when one is
    gone or its content is not the recorded hash (never evaluate other data silently)."""
    found: list[DatasetVersion] = []
    for ref in refs:
        version = await store.get(tenant, ref.name, ref.version) if store is not None else None
        if version is None or version.hash != ref.hash:
            raise DatasetBindingError(
                "dataset-not-found",
                f"dataset {ref.name}@{ref.version} ({ref.hash[:12]}…, binding {ref.binding!r}) "
                "is not in the store",
                status=409,
                binding=ref.binding,
            )
        found.append(version)
    return found


def load_reference(
    store: DatasetStore, refs: Sequence[DatasetRef], versions: Sequence[DatasetVersion]
) -> Reference:
    """Every predicate's rows of each version, by binding (blocking: the store reads
    files and verifies each version's content hash)."""
    reference: Reference = {}
    for ref, version in zip(refs, versions, strict=True):
        tables = reference.setdefault(ref.binding, {})
        for predicate, _arity, rows in store.read(version):
            tables[predicate] = list(rows)
    return reference


def evaluate_with_reference(
    cache: ReferenceCache[Any],
    store: DatasetStore,
    refs: Sequence[DatasetRef],
    versions: Sequence[DatasetVersion],
    source: str,
    filename: str,
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
    *,
    timed: bool = False,
    locale: str | None = None,
    explain_absent: list[str] | None = None,
) -> dict[str, Any]:
    """:func:`entail.compute.tasks.evaluate`'s answer for a case over the datasets
    ``refs``: the materialised model from ``cache`` (read and materialised once,
    whoever asks at the same time), then the case. Blocking: call in a thread."""
    try:
        ruleset = tasks.compiled(source, filename, limits)
        key = reference_key(ruleset.hash, [(r.binding, r.hash) for r in refs])

        def materialise() -> Any:
            return ruleset.materialise(
                load_reference(store, refs, versions),
                limits=reasoning.Limits.from_mapping(limits),
                hashes={r.binding: r.hash for r in refs},
            )

        materialised = cache.get_or_load(key, materialise)
    except reasoning.EntailError as exc:
        return {"error": tasks.error_json(exc)}
    return tasks.evaluate(
        source,
        filename,
        facts,
        query,
        explain,
        limits,
        timed,
        locale,
        explain_absent,
        reference=materialised,
    )


async def evaluate_recorded(
    cache: ReferenceCache[Any],
    store: DatasetStore | None,
    tenant: str,
    refs: Sequence[DatasetRef],
    source: str,
    filename: str,
    facts: dict[str, Any],
    query: list[str],
    explain: bool,
    limits: dict[str, int],
    *,
    timed: bool = False,
    locale: str | None = None,
    explain_absent: list[str] | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_with_reference` for the recorded versions ``refs`` of ``tenant``
    (their metadata read here, the rest in a thread)."""
    versions = await versions_of(store, tenant, refs)
    assert store is not None  # versions_of found them
    return await asyncio.to_thread(
        evaluate_with_reference,
        cache,
        store,
        refs,
        versions,
        source,
        filename,
        facts,
        query,
        explain,
        limits,
        timed=timed,
        locale=locale,
        explain_absent=explain_absent,
    )
