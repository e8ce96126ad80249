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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import reasoning
from .compute import tasks
from .dataset_binding import DatasetBindingError
from .datasets.port import DatasetStore, DatasetVersion, Row
from .masking import mask_value
from .models import DatasetRef
from .reference_cache import ReferenceCache, reference_key

Reference = dict[str, dict[str, list[Row]]]

_shared: ReferenceCache[Any] | None = None
_shared_lock = threading.Lock()
_compile_lock = threading.Lock()


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


@dataclass(frozen=True)
class MaskedReference:
    """A materialised model over masked dataset rows, and the HMAC of each clear value
    it masked (to mask the same values in a case, so joins with it still hold)."""

    materialised: Any
    macs: dict[int | str, str]

    @property
    def nbytes(self) -> int:
        # the model's own estimate, the proofs once an explained decision made them
        # (the cache re-measures on each hit), plus the value -> HMAC map (~200 bytes an entry)
        m = self.materialised
        return int(m.nbytes) + int(getattr(m, "provenance_nbytes", 0)) + 200 * len(self.macs)


#: a masked dataset value: the HMAC of entail/masking.py written as a valid constant
#: name (a dataset column declared ``const`` must hold one), the same for every value
DATASET_MASK_PREFIX = "hmac_sha256_"


def dataset_mask(value: int | str, secret: str) -> str:
    return DATASET_MASK_PREFIX + mask_value(value, secret).removeprefix("hmac-sha256:")


def mask_reference(
    reference: Reference, predicates: Iterable[str], secret: str
) -> tuple[Reference, dict[int | str, str]]:
    """The dataset rows with every value of the masked predicates' rows (``name/arity``),
    and every other occurrence of such a value in any dataset row, replaced by its HMAC
    (keyed by ``ENTAIL_MASK_SECRET``: the same value always gets the same HMAC, so joins
    hold); and those HMACs. Mask identifiers, not quantities: a masked value is a
    string, which an ``int`` column refuses (``dataset-type-mismatch``)."""
    wanted = set(predicates)
    macs: dict[int | str, str] = {}
    for tables in reference.values():
        for predicate, rows in tables.items():
            if rows and f"{predicate}/{len(rows[0])}" in wanted:
                for row in rows:
                    for value in row:
                        if value not in macs:
                            macs[value] = dataset_mask(value, secret)
    if not macs:
        return reference, macs
    masked: Reference = {
        binding: {p: [tuple(macs.get(v, v) for v in row) for row in rows] for p, rows in tables.items()}
        for binding, tables in reference.items()
    }
    return masked, macs


def mask_case_values(facts: dict[str, Any], macs: dict[int | str, str]) -> dict[str, Any]:
    """The case facts with the values the masked dataset rows hold masked the same way,
    so a case that names ``carol`` still joins the masked org chart. (A query's
    constant is not rewritten: ask with variables.)"""

    def walk(value: Any) -> Any:
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, int | str) and not isinstance(value, bool):
            return macs.get(value, value)
        return value

    return {name: walk(rows) for name, rows in facts.items()}


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
    masked: Sequence[str] = (),
    mask_secret: str = "",
) -> dict[str, Any]:
    """:func:`entail.compute.tasks.evaluate`'s answer for a case over the datasets
    ``refs``: the materialised model from ``cache`` (read and materialised once,
    whoever asks at the same time), then the case. Blocking: call in a thread.

    ``masked``: the ruleset version's masked predicates; those that are dataset
    predicates have their values masked before materialising (and the same values
    in the case), so answers and proofs hold HMACs, as for masked case inputs."""
    mask = sorted(masked)
    try:
        with _compile_lock:  # the compiled-ruleset LRU is the pool's, made for one thread
            ruleset = tasks.compiled(source, filename, limits)
        # a masked model is another model: its own key (and digest, for the result hash)
        key = reference_key(
            ruleset.hash + ("|masked:" + ",".join(mask) if mask else ""),
            [(r.binding, r.hash) for r in refs],
        )
        suffix = "+masked:" + ",".join(mask) if mask else ""

        def materialise() -> MaskedReference:
            reference, macs = mask_reference(load_reference(store, refs, versions), mask, mask_secret)
            model = ruleset.materialise(
                reference,
                limits=reasoning.Limits.from_mapping(limits),
                hashes={r.binding: r.hash + suffix for r in refs},
            )
            return MaskedReference(model, macs)

        found = cache.get_or_load(key, materialise)
    except reasoning.EntailError as exc:
        return {"error": tasks.error_json(exc)}
    materialised = found.materialised
    if found.macs:
        facts = mask_case_values(facts, found.macs)
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
    masked: Sequence[str] = (),
    mask_secret: str = "",
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
        masked=masked,
        mask_secret=mask_secret,
    )
