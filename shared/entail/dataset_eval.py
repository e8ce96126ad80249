"""Evaluating a decision that reads datasets: the recorded versions loaded and
materialised once per compute process, then every case evaluated from that model.

The worker (every decision with ``Job.datasets``), replay, impact (the versions a
decision recorded, or impact's overrides) and draft runs all come here, so a
decision and its replay read the same versions the same way.

Where it runs: in a process of the caller's compute pool (:mod:`entail.compute`),
as every other engine task. Reading a version and materialising it is seconds of
CPU for a million facts; on a thread of the service it held the interpreter lock
against the event loop (every other request of the process waited), with no
supervisor kill and no memory cap, outside the pool's per-tenant fairness.

- The service process resolves the versions' metadata (:func:`versions_of`,
  Redis) and sends the case as plain data (:class:`DatasetCase`, a few KB): never
  the dataset's rows, never the materialised model (a large graph of Python
  objects: pickled per decision it would cost what materialising saves).
- Each pool process keeps its own byte-bounded :class:`ReferenceCache`
  (:func:`process_cache`, ``ENTAIL_REFERENCE_CACHE_BYTES`` each) and opens the
  dataset store itself, on its first cache miss, through the composition root
  (``Services.dataset_reader``: :class:`entail.bootstrap.DatasetReaderOpener`).
- The task carries an affinity key (the ruleset source, the masked predicates and
  the versions' hashes): the pool sends it to an idle process that already served
  that key, so a version is not materialised in every process.
- Failures are the pool's: past ``kill_factor`` x the budget the process is killed
  (:class:`~entail.compute.TaskKilled`), past ``ENTAIL_COMPUTE_MEMORY_MB`` the
  materialisation fails (:class:`~entail.compute.TaskOutOfMemory`, nothing cached);
  each caller maps them as it maps its other pool tasks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import reasoning
from .compute import tasks
from .compute.pool import ComputePool
from .dataset_binding import DatasetBindingError
from .datasets.port import DatasetError, DatasetStore, DatasetVersion, Row
from .masking import mask_value
from .models import DatasetRef
from .reference_cache import CacheStats, ReferenceCache, reference_key

Reference = dict[str, dict[str, list[Row]]]

_shared: ReferenceCache[Any] | None = None
_shared_lock = threading.Lock()
_compile_lock = threading.Lock()


def process_cache(max_bytes: int) -> ReferenceCache[Any]:
    """This process's cache (made on first use with ``max_bytes``,
    ``ENTAIL_REFERENCE_CACHE_BYTES``): one per pool process, shared by every task
    over datasets the pool sends there (:func:`evaluate_case`)."""
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


class DatasetReader(Protocol):
    """What a pool process needs of the dataset store: a version's rows."""

    def read(self, version: DatasetVersion) -> Iterator[tuple[str, int, Iterator[Row]]]: ...


def load_reference(
    store: DatasetReader, refs: Sequence[DatasetRef], versions: Sequence[DatasetVersion]
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


#: the cache budget of a pool process when a caller names none (the setting's default)
DEFAULT_CACHE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class DatasetCase:
    """A case over datasets as plain data: what crosses the pool's pipe (the case,
    the program's source, the versions' metadata and how to open the store; a few
    KB), never the datasets' rows.

    ``reader`` opens the dataset store in the pool process (the composition root's
    ``Services.dataset_reader``); ``versions`` are resolved by :func:`evaluate_recorded`
    in the calling process. ``masked``: the ruleset version's masked predicates;
    those that are dataset predicates have their values masked before materialising
    (and the same values in the case), so answers and proofs hold HMACs, as for
    masked case inputs. ``cache_bytes``: the pool process's cache budget
    (``ENTAIL_REFERENCE_CACHE_BYTES``, made on the process's first such task)."""

    reader: Callable[[], DatasetReader]
    refs: tuple[DatasetRef, ...]
    source: str
    filename: str
    facts: dict[str, Any]
    query: list[str]
    explain: bool
    limits: dict[str, int]
    timed: bool = False
    locale: str | None = None
    explain_absent: list[str] | None = None
    masked: tuple[str, ...] = ()
    mask_secret: str = ""
    cache_bytes: int = DEFAULT_CACHE_BYTES
    versions: tuple[DatasetVersion, ...] = ()

    @property
    def affinity(self) -> str:
        """The pool's affinity key: what the materialised model depends on (the
        program's source, the masked predicates, each binding's version hash),
        known before compiling, so the calling process can name it."""
        digest = hashlib.sha256(self.source.encode()).hexdigest()
        bound = ",".join(f"{r.binding}={r.hash}" for r in sorted(self.refs, key=lambda r: r.binding))
        return f"{digest}|{','.join(sorted(self.masked))}|{bound}"


def evaluate_with_reference(
    cache: ReferenceCache[Any], case: DatasetCase, open_reader: Callable[[], DatasetReader]
) -> dict[str, Any]:
    """:func:`entail.compute.tasks.evaluate`'s answer for ``case``: the materialised
    model from ``cache`` (read with ``open_reader()`` and materialised on a miss,
    once however many threads ask), then the case. Blocking: a pool process runs it
    (:func:`evaluate_case`)."""
    mask = sorted(case.masked)
    refs, limits, facts = case.refs, case.limits, case.facts
    try:
        with _compile_lock:  # the compiled-ruleset LRU is made for one thread
            ruleset = tasks.compiled(case.source, case.filename, limits)
        # a masked model is another model: its own key (and digest, for the result hash)
        key = reference_key(
            ruleset.hash + ("|masked:" + ",".join(mask) if mask else ""),
            [(r.binding, r.hash) for r in refs],
        )
        suffix = "+masked:" + ",".join(mask) if mask else ""

        def materialise() -> MaskedReference:
            rows = load_reference(open_reader(), refs, case.versions)
            reference, macs = mask_reference(rows, mask, case.mask_secret)
            del rows  # the clear rows go before the model is built (masked: a copy)
            model = ruleset.materialise(
                reference,
                limits=reasoning.Limits.from_mapping(limits),
                hashes={r.binding: r.hash + suffix for r in refs},
            )
            return MaskedReference(model, macs)

        found = cache.get_or_load(key, materialise)
    except reasoning.EntailError as exc:
        return {"error": tasks.error_json(exc)}
    except DatasetError as exc:  # e.g. dataset-corrupt: the files do not hash to the version
        return {"error": {"code": exc.code, "message": str(exc), "kind": "evaluation"}}
    if found.macs:
        facts = mask_case_values(facts, found.macs)
    return tasks.evaluate(
        case.source,
        case.filename,
        facts,
        case.query,
        case.explain,
        limits,
        case.timed,
        case.locale,
        case.explain_absent,
        reference=found.materialised,
    )


# this process's opened dataset stores, by the opener (equal settings: one store)
_readers: list[tuple[Callable[[], DatasetReader], DatasetReader]] = []
_READERS_KEPT = 4


def _reader(opener: Callable[[], DatasetReader]) -> DatasetReader:
    for known, reader in _readers:
        if known == opener:
            return reader
    reader = opener()
    _readers.append((opener, reader))
    if len(_readers) > _READERS_KEPT:
        del _readers[0]
    return reader


def evaluate_case(case: DatasetCase) -> dict[str, Any]:
    """The pool task: :func:`evaluate_with_reference` over this process's cache (the
    store opened on the first miss), and under ``"reference"`` what the service
    process reports (:class:`ReferenceStats`): this process's pid, whether this task
    materialised, and its cache's counters."""
    cache = process_cache(case.cache_bytes)
    loads = cache.stats().loads
    out = evaluate_with_reference(cache, case, lambda: _reader(case.reader))
    stats = cache.stats()
    out["reference"] = {
        "pid": os.getpid(),
        "materialised": stats.loads > loads,
        "cache": dataclasses.asdict(stats),
    }
    return out


class ReferenceStats:
    """The pool processes' caches as the service process sees them: each task's
    report (:func:`evaluate_case`), summed over the processes still alive (``pids``:
    the pool's), for ``/metrics``; and the last report (tests, benches)."""

    def __init__(self, pids: Callable[[], list[int]], max_bytes: int) -> None:
        self._pids = pids
        self._max_bytes = max_bytes
        self._by_pid: dict[int, CacheStats] = {}
        self.last: dict[str, Any] | None = None

    def observe(self, report: dict[str, Any]) -> None:
        self.last = report
        self._by_pid[int(report["pid"])] = CacheStats(**report["cache"])

    def stats(self) -> CacheStats:
        alive = set(self._pids())
        for pid in [p for p in self._by_pid if p not in alive]:
            del self._by_pid[pid]  # replaced (killed, crashed): its cache is gone
        kept = list(self._by_pid.values())
        return CacheStats(
            entries=sum(s.entries for s in kept),
            bytes=sum(s.bytes for s in kept),
            max_bytes=self._max_bytes * max(1, len(alive)),
            hits=sum(s.hits for s in kept),
            misses=sum(s.misses for s in kept),
            loads=sum(s.loads for s in kept),
            evictions=sum(s.evictions for s in kept),
        )


async def evaluate_recorded(
    pool: ComputePool,
    store: DatasetStore | None,
    tenant: str,
    case: DatasetCase,
    *,
    budget_ms: int,
    task: Callable[..., dict[str, Any]] = evaluate_case,
    args: tuple[Any, ...] = (),
    stats: ReferenceStats | None = None,
) -> dict[str, Any]:
    """``case`` over the recorded versions ``case.refs`` of ``tenant``: their metadata
    read here (:func:`versions_of`: ``DatasetBindingError`` when one is gone), the
    rest in a process of ``pool`` (``task(case, *args)``: :func:`evaluate_case` or a
    wrapper of it), with ``tenant``'s fairness, ``budget_ms`` (the supervisor kills
    at ``kill_factor`` times it: reading, materialising and the case) and the case's
    affinity. The pool's errors (busy, killed, out of memory) are raised as they are.
    ``stats`` gets the process's report."""
    versions = await versions_of(store, tenant, case.refs)
    case = dataclasses.replace(case, versions=tuple(versions))
    out: dict[str, Any] = await pool.run(
        task, case, *args, budget_ms=budget_ms, tenant=tenant, affinity=case.affinity
    )
    report = out.pop("reference", None)
    if report is not None and stats is not None:
        stats.observe(report)
    return out
