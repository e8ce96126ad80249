"""Reference data: a program's dataset facts materialised once, shared by every case.

A program declares what it reads from datasets (``%@dataset``, declarations.py;
docs/datasets.md). :func:`materialise` evaluates the program over the dataset
facts (and its own facts) alone and keeps the model, its hash indexes and, on
the first explained use, the provenance of its facts: a :class:`Materialised`,
read-only from then on and shared by all threads.

:func:`evaluate_case` then answers one case from it:

1. the predicates the case's facts can reach (the dependency graph from each
   predicate the case names) are recomputed, with their own rules, from
   their own base facts (program facts, dataset facts, case facts);
2. every other predicate's facts and indexes are the materialised ones: the
   same objects, never copied and never written (the generated code reads
   indexes with ``.get``, and only the strata of reachable predicates run,
   which write only their own relations);
3. a reachable stratum runs semi-naively *seeded* by the reachable facts: each
   rule has a variant per positive body atom that reads that atom from the
   delta (``seeded`` code, compiled for programs with datasets only), and the
   first round's delta is every reachable fact; so a rule such as
   ``ok(A, B) :- ask(A, B), path(A, B).`` looks up ``path`` once per ``ask``
   fact instead of scanning the closure. A rule whose body reads no reachable
   atom positively (only through negation or an aggregate) runs in full once.

Why this is the whole program's model: a predicate no case fact reaches
depends only on dataset and program facts, so its model is the materialised
one; a reachable predicate is recomputed from scratch in stratum order over
complete lower strata; and a derivation of a seeded rule has at least one
reachable positive body fact, which is in the delta of the round after it
appeared (the usual semi-naive argument, with all base facts as the first
delta).
"""

# F, N, D, I, P: the semi-naive vocabulary (full, new, delta, indexes, provenance), as evaluate.py
# ruff: noqa: E741, N803, N806

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .analyse import body_atoms
from .bindings import Signature
from .clock import CompileClock
from .codegen import TICK, Layout, generate
from .errors import DatasetTypeError, DerivedFactsLimitExceeded, LimitExceeded, WallTimeLimitExceeded
from .evaluate import RELEASE_S_PER_ELEMENT, RuleFn, Store, _key_fn, evaluate, gc_paused
from .limits import Limits
from .plan import RulePlan, plan_rule
from .syntax import Positive
from .terms import INT_MAX, INT_MIN, Const, format_atoms, sort_rows

if TYPE_CHECKING:
    from .ruleset import Ruleset

MATERIALISED_SCHEMA = "entail.materialised.v1"
RESULT_REFERENCE_SCHEMA = "entail.result.v1+reference"
_EMPTY: frozenset[tuple[Any, ...]] = frozenset()
_CONST_NAME_FIRST = set("abcdefghijklmnopqrstuvwxyz")

Rows = set[tuple[Any, ...]]


# --- seeded code ---------------------------------------------------------------------


@dataclass
class SeededRule:
    """One rule's variants for case evaluation: its full variant and one delta
    variant per positive body atom (with the predicate that atom reads)."""

    full: RuleFn
    deltas: list[tuple[RuleFn, int]]
    positive: frozenset[int]  # predicate ids of the positive body atoms


@dataclass
class SeededStratum:
    pids: list[int]
    recursive: bool
    rules: list[SeededRule]


def seeded_plans(ruleset: Ruleset, tick: Any) -> list[list[RulePlan]]:
    """Per stratum, each rule planned with every positive body atom as a delta source."""
    cache: dict[tuple[object, ...], Any] = {}
    out: list[list[RulePlan]] = []
    for stratum in ruleset.analysis.strata:
        plans: list[RulePlan] = []
        for rule in stratum.rules:
            if rule.is_fact:
                continue
            sources = {lit.atom.signature for lit in rule.body if isinstance(lit, Positive)}
            plans.append(plan_rule(rule, sources, tick, cache))
        out.append(plans)
    return out


def build_seeded(
    ruleset: Ruleset, plans: list[list[RulePlan]], explain: bool, tick: Any
) -> list[SeededStratum]:
    """Compile the seeded plans (explaining or not) into per-stratum rule variants."""
    flat = [p for stratum in plans for p in stratum]
    namespace, module = ruleset._compile_plans(flat, explain, tick)
    layout = ruleset._layout
    out: list[SeededStratum] = []
    i = 0
    for stratum, stratum_plans in zip(ruleset.analysis.strata, plans, strict=True):
        rules: list[SeededRule] = []
        for plan in stratum_plans:
            fulls, deltas = module.fulls[i], module.deltas[i]
            i += 1
            (full,) = fulls
            positive = frozenset(
                layout.pid(lit.atom.signature) for lit in plan.rule.body if isinstance(lit, Positive)
            )
            rules.append(
                SeededRule(
                    namespace[full.name],
                    [(namespace[v.name], v.reads_delta_of) for v in deltas if v.reads_delta_of is not None],
                    positive,
                )
            )
        out.append(SeededStratum([layout.pid(s) for s in stratum.predicates], stratum.recursive, rules))
    return out


def shared_index_specs(
    ruleset: Ruleset, plain_slots: set[int]
) -> tuple[list[list[tuple[int, tuple[int, ...]]]], list[list[tuple[int, tuple[int, ...]]]]]:
    """The index slots a materialisation builds, and those the materialised model
    keeps. It builds every slot of the plain code (which materialises) and the
    slots the seeded code reads on a predicate of a lower stratum than the rule's
    head; it keeps only the latter. Cases run only the seeded code, and a seeded
    rule runs only when its head's stratum is reached, when every predicate of
    that stratum is recomputed with fresh indexes: a slot on the head's own
    stratum is never read from the shared model (a closure's index costs about
    as much as the closure)."""
    layout = ruleset._layout
    stratum_of = {layout.pid(sig): i for i, st in enumerate(ruleset.analysis.strata) for sig in st.predicates}
    needed: set[int] = set()
    for plans in ruleset._seeded_plans:
        for plan in plans:
            probe = Layout(dict(layout.pred_ids), {}, dict(layout.constants), dict(layout._const_idents))
            generate([plan], probe, False)
            head = stratum_of.get(layout.pid(plan.rule.head.signature))
            for pid, cols in probe.index_slots:
                if stratum_of.get(pid) != head:
                    needed.add(layout.index_slots[(pid, cols)])
    built: list[list[tuple[int, tuple[int, ...]]]] = [[] for _ in ruleset._sigs]
    kept: list[list[tuple[int, tuple[int, ...]]]] = [[] for _ in ruleset._sigs]
    for (pid, cols), slot in layout.index_slots.items():
        if slot in needed or slot in plain_slots:
            built[pid].append((slot, cols))
        if slot in needed:
            kept[pid].append((slot, cols))
    return built, kept


def grown_index_specs(
    ruleset: Ruleset,
    built: list[list[tuple[int, tuple[int, ...]]]],
    kept: list[list[tuple[int, tuple[int, ...]]]],
) -> list[list[tuple[int, tuple[int, ...]]]]:
    """Of the slots a materialisation builds, those it must keep up to date as facts
    are derived: the slots the kept model holds, those a delta variant reads, and
    those a full variant reads on a predicate of a lower stratum. A full variant runs
    only in its stratum's first round, before any of the stratum's own facts are
    derived, so an index it reads on its own stratum needs only the base facts (same
    generation's ``sg(XP, YP)`` index grew with the whole closure, then was dropped)."""
    layout = ruleset._layout
    needed = {slot for specs in kept for slot, _ in specs}
    for stratum, plans in zip(ruleset.analysis.strata, ruleset._strata_plans, strict=True):
        own = {layout.pid(sig) for sig in stratum.predicates}
        for plan in plans:
            variants = [(plan.full, False)] + [(steps, True) for steps in plan.deltas]
            for steps, is_delta in variants:
                probe = Layout(dict(layout.pred_ids), {}, dict(layout.constants), dict(layout._const_idents))
                generate([RulePlan(plan.rule, steps)], probe, False)
                for pid, cols in probe.index_slots:
                    if is_delta or pid not in own:
                        needed.add(layout.index_slots[(pid, cols)])
    return [[(slot, cols) for slot, cols in specs if slot in needed] for specs in built]


def dependents(ruleset: Ruleset) -> list[frozenset[int]]:
    """Per predicate id, the predicates whose rules read it (positively, negatively
    or in an aggregate): the edges along which a case fact reaches."""
    layout = ruleset._layout
    out: list[set[int]] = [set() for _ in ruleset._sigs]
    for stratum in ruleset.analysis.strata:
        for rule in stratum.rules:
            head = layout.pid(rule.head.signature)
            for lit in rule.body:
                for atom, _ in body_atoms(lit):
                    out[layout.pid(atom.signature)].add(head)
    return [frozenset(s) for s in out]


def reachable_from(graph: list[frozenset[int]], start: Iterable[int]) -> set[int]:
    seen = set(start)
    todo = list(seen)
    while todo:
        pid = todo.pop()
        if pid < len(graph):
            for nxt in graph[pid]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
    return seen


# --- converting dataset rows ---------------------------------------------------------


def _type_error(binding: str, predicate: str, row: int, column: int, detail: str) -> DatasetTypeError:
    return DatasetTypeError(
        f"dataset '{binding}', predicate '{predicate}', row {row}, column {column}: {detail}",
        f"/{binding}/{predicate}/{row}/{column - 1}",
    )


def _describe(v: object) -> str:
    if isinstance(v, bool) or v is None or not isinstance(v, int | str):
        return f"a {type(v).__name__}"
    return f"the integer {v}" if isinstance(v, int) else f'the string "{v[:40]}"'


def _value_problem(v: object, typ: str) -> str | None:
    if typ in ("int", "any") and type(v) is int:
        return None if INT_MIN <= v <= INT_MAX else f"{v} does not fit in 32 bits"
    if typ in ("string", "any") and type(v) is str:
        return None
    if typ == "const" and type(v) is str:
        if _is_const_name(v):
            return None
        return f'"{v[:40]}" is not a constant name (a lowercase letter first, then letters, digits, _ or \')'
    wanted = {
        "int": "an int",
        "string": "a string",
        "const": "a string (a constant)",
        "any": "an int or a string",
    }
    return f"is declared {typ}, expected {wanted[typ]}, got {_describe(v)}"


def _is_const_name(v: str) -> bool:
    from .declarations import _CONST_NAME

    return bool(_CONST_NAME.match(v))


def convert_rows(
    binding: str,
    predicate: str,
    types: tuple[str, ...],
    rows: Iterable[Sequence[int | str]],
    values: dict[Any, Any],
) -> Rows:
    """The rows of one dataset predicate as a set of engine tuples, converted by the
    declared column types; ``values`` interns equal values across the dataset (one
    object per distinct value: a graph's node ids repeat on every edge).

    Checked column by column at C speed (types, ranges, constant names once per
    distinct string); only a failure walks the rows to name the first bad one."""
    listed = rows if isinstance(rows, list) else list(rows)
    if not listed:
        return set()
    n = len(types)
    if set(map(len, listed)) != {n}:
        for i, row in enumerate(listed):
            if len(row) != n:
                raise _type_error(binding, predicate, i, 1, f"has {len(row)} value(s), the declaration {n}")
    if n == 0:
        return {()}
    columns: list[Sequence[Any]] = list(zip(*listed, strict=True))
    for j, typ in enumerate(types):
        col = columns[j]
        kinds = set(map(type, col))
        ok = False
        if typ == "int" and kinds == {int}:
            ok = min(col) >= INT_MIN and max(col) <= INT_MAX
        elif typ == "string" and kinds == {str}:
            ok = True
        elif typ == "any" and kinds <= {int, str}:
            ints = [v for v in col if type(v) is int] if int in kinds else []
            ok = not ints or (min(ints) >= INT_MIN and max(ints) <= INT_MAX)
        elif typ == "const" and kinds == {str}:
            distinct = set(col)
            ok = all(map(_is_const_name, distinct))
            if ok:
                consts = {s: values.setdefault(("c", s), Const(s)) for s in distinct}
                columns[j] = col = list(map(consts.__getitem__, col))
        if not ok:
            for i, v in enumerate(col):
                problem = _value_problem(v, typ)
                if problem is not None:
                    raise _type_error(binding, predicate, i, j + 1, problem)
        if typ != "const":
            columns[j] = list(map(values.setdefault, col, col))
    return set(zip(*columns, strict=True))


# --- the materialised model --------------------------------------------------------


@dataclass
class Materialised:
    """The case-independent model of (a ruleset, its datasets' facts): facts per
    predicate id, hash indexes per slot, the dataset facts themselves (proof
    leaves), and lazily the provenance of every derived fact. Shared read-only.

    ``digest`` identifies the model (the result hash covers it): from the datasets'
    content hashes when :func:`materialise` was given them, else from the facts."""

    ruleset_hash: str
    F: list[Rows]
    I: list[defaultdict[Any, list[tuple[Any, ...]]]]
    inputs: list[Rows | frozenset[tuple[Any, ...]]]
    base_nbytes: int
    stats: dict[str, Any]
    bindings: tuple[str, ...]
    _digest: str | None = None
    _ruleset: Ruleset | None = field(default=None, repr=False)
    _limits: Limits | None = field(default=None, repr=False)
    _P: list[dict[tuple[Any, ...], Any]] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # a model of the demand rewrite (demand.py): the ruleset it rewrote, and the full
    # materialisation over the same facts once a case needed it (full_model)
    _origin: Ruleset | None = field(default=None, repr=False)
    _full: Materialised | None = field(default=None, repr=False)
    _full_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def facts(self) -> int:
        return int(self.stats["facts"])

    @property
    def demand(self) -> bool:
        """True for a model of the demand rewrite: the demanded predicates are not in
        it; cases derive the part they ask about (demand.py)."""
        return self._origin is not None

    @property
    def nbytes(self) -> int:
        """The memory the model holds, the full materialisation included once built."""
        full = self._full
        return self.base_nbytes + (full.nbytes if full is not None else 0)

    def full_model(self) -> Materialised:
        """The model with every predicate materialised (itself unless a demand model):
        built from the same converted dataset facts on the first call, once, and kept
        (``nbytes`` grows by its size)."""
        if self._origin is None:
            return self
        if self._full is None:
            digest = self.digest
            with self._full_lock:
                if self._full is None:
                    origin = self._origin
                    own = self._ruleset
                    assert own is not None
                    pids = own._layout.pred_ids
                    inputs: list[Rows | frozenset[tuple[Any, ...]]] = [
                        self.inputs[pids[sig]] for sig in origin._sigs
                    ]
                    with gc_paused():
                        full = _model(origin, inputs, {}, self.stats["dataset_facts"], self._limits, digest)
                    full.stats["load_ms"] = self.stats["load_ms"]
                    self._full = full
        return self._full

    @property
    def digest(self) -> str:
        if self._digest is None:
            with self._lock:
                if self._digest is None:
                    self._digest = self._content_digest()
        return self._digest

    def _content_digest(self) -> str:
        """sha256 over the ruleset's hash and the dataset facts in canonical order."""
        assert self._ruleset is not None
        h = hashlib.sha256(f"{MATERIALISED_SCHEMA}\n{self.ruleset_hash}\n".encode())
        sigs = self._ruleset._sigs
        for pid, sig in sorted(enumerate(sigs), key=lambda p: p[1]):
            rows = self.inputs[pid] if pid < len(self.inputs) else _EMPTY
            if rows:
                h.update(f"#predicate {sig[0]}/{sig[1]}\n".encode())
                for atom in format_atoms(sig[0], sort_rows(rows)):
                    h.update(atom.encode() + b"\n")
        return h.hexdigest()

    @property
    def provenance_nbytes(self) -> int:
        """The memory the provenance holds once an explained decision computed it
        (0 before): a dict entry and a small record per derived fact. Not part of
        ``nbytes``; a cache may add it. With the full model built (``full_model``):
        both models' provenance."""
        total = self._full.provenance_nbytes if self._full is not None else 0
        if self._P is None:
            return total
        for records in self._P:
            total += sys.getsizeof(records)
            if records:
                rule, values, aggregates = next(iter(records.values()))
                total += len(records) * (sys.getsizeof((rule, values, aggregates)) + sys.getsizeof(values))
        return total

    def provenance(self) -> list[dict[tuple[Any, ...], Any]]:
        """The provenance of every derived fact (the explaining code run once over the
        same base facts, on the first explained use, and kept)."""
        if self._P is None:
            with self._lock:
                if self._P is None:
                    rs = self._ruleset
                    assert rs is not None and self._limits is not None
                    base = [set(own) | data for own, data in zip(rs._ruleset_facts, self.inputs, strict=True)]
                    with gc_paused():
                        store = evaluate(
                            rs._explain_code(),
                            len(rs._sigs),
                            rs._shared_specs,
                            len(rs._layout.index_slots),
                            base,
                            self._limits,
                            True,
                        )
                    assert store.P is not None
                    self._P = store.P
        return self._P


def materialise(
    ruleset: Ruleset,
    reference: Mapping[str, Mapping[str, Iterable[Sequence[int | str]]]],
    limits: Limits | None = None,
    hashes: Mapping[str, str] | None = None,
) -> Materialised:
    """Evaluate ``ruleset`` over its dataset facts (``reference[binding][predicate]``)."""
    # one pause for converting and evaluating: the collector, back on in between,
    # would traverse the converted rows once for nothing (they hold no cycles)
    with gc_paused():
        return _materialise(ruleset, reference, limits, hashes)


def _materialise(
    ruleset: Ruleset,
    reference: Mapping[str, Mapping[str, Iterable[Sequence[int | str]]]],
    limits: Limits | None,
    hashes: Mapping[str, str] | None,
) -> Materialised:
    limits = limits or ruleset._limits
    layout = ruleset._layout
    n = len(ruleset._sigs)
    start = time.monotonic()
    inputs: list[Rows | frozenset[tuple[Any, ...]]] = [_EMPTY] * n
    values: dict[Any, Any] = {}
    n_facts = 0
    for binding, decls in ruleset._datasets.items():
        given = reference.get(binding, {})
        for decl in decls.predicates:
            rows = given.get(decl.predicate)
            if rows is None:
                continue
            converted = convert_rows(binding, decl.predicate, decl.types, rows, values)
            inputs[layout.pid(decl.signature)] = converted
            n_facts += len(converted)
    digest = None
    if hashes is not None:
        h = hashlib.sha256(f"{MATERIALISED_SCHEMA}\n{ruleset.hash}\n".encode())
        for binding in sorted(ruleset._datasets):
            h.update(f"{binding} {hashes.get(binding, '')}\n".encode())
        digest = h.hexdigest()
    return _model(ruleset, inputs, values, n_facts, limits, digest, start)


def _model(
    ruleset: Ruleset,
    inputs: list[Rows | frozenset[tuple[Any, ...]]],
    values: dict[Any, Any],
    n_facts: int,
    limits: Limits | None,
    digest: str | None,
    start: float | None = None,
) -> Materialised:
    """Evaluate ``ruleset`` over converted dataset facts (per predicate id): the model.
    ``values``: the interned dataset values the model holds (counted in its size)."""
    limits = limits or ruleset._limits
    layout = ruleset._layout
    n = len(ruleset._sigs)
    if start is None:
        start = time.monotonic()
    heads = ruleset._heads
    base: list[Rows] = []
    for pid in range(n):
        own = ruleset._ruleset_facts[pid]
        data = inputs[pid]
        if data and not own and pid not in heads:
            base.append(data)  # type: ignore[arg-type]  # never written: no rule derives it
        else:
            base.append(set(own) | data)
    load_ms = (time.monotonic() - start) * 1000.0
    strata = ruleset._plain[0]
    if ruleset._on_demand:
        # the demand rewrite's demanded and magic predicates: no fact without a case
        # (demand.py), so their strata would only scan the dataset for their guards
        strata = [st for st in strata if not set(st.pids) <= ruleset._on_demand]
    store = evaluate(
        strata,
        n,
        ruleset._shared_specs,
        len(layout.index_slots),
        base,
        limits,
        False,
        keep_indexes=True,
        grown_specs=ruleset._grown_specs,
    )
    assert store.I is not None
    kept = {slot for specs in ruleset._kept_specs for slot, _ in specs}
    for slot, index in enumerate(store.I):
        if index and slot not in kept:
            store.I[slot] = defaultdict(list)  # the plain code's, needed only to materialise
    facts = sum(len(s) for s in store.F)
    stats = {
        "facts": facts,
        "dataset_facts": n_facts,
        "derived": store.derived,
        "rounds": store.rounds,
        "load_ms": round(load_ms, 3),
        "elapsed_ms": round((time.monotonic() - start) * 1000.0, 3),
        "mode": "demand" if ruleset._origin is not None else "full",
    }
    return Materialised(
        ruleset.hash,
        store.F,
        store.I,
        inputs,
        estimate_nbytes(store.F, store.I, inputs, values, ruleset._kept_specs),
        stats,
        tuple(ruleset._datasets),
        digest,
        ruleset,
        limits,
        _origin=ruleset._origin,
    )


def estimate_nbytes(
    F: list[Rows],
    I: list[defaultdict[Any, list[tuple[Any, ...]]]],
    inputs: Sequence[Rows | frozenset[tuple[Any, ...]]],
    values: Mapping[Any, Any],
    index_specs: list[list[tuple[int, tuple[int, ...]]]],
) -> int:
    """An estimate of the memory a materialised model holds, without walking it: the
    set tables, one tuple per fact (a sampled one's size), the index dicts, their
    bucket lists and keys, and the distinct dataset values (interned)."""
    size = sys.getsizeof
    total = size(F) + size(I) + size(inputs)
    seen: set[int] = set()
    for pid, rows in enumerate(F):
        seen.add(id(rows))
        total += size(rows)
        if rows:
            total += len(rows) * size(next(iter(rows)))
        for slot, cols in index_specs[pid] if pid < len(index_specs) else ():
            index = I[slot]
            total += size(index)
            if index:
                # a list per key (empty list + 8 bytes a pointer, over-allocated ~1/8)
                total += len(index) * size([]) + int(len(rows) * 8 * 1.125)
                if len(cols) > 1:
                    total += len(index) * size(next(iter(index)))
    for data in inputs:
        if data and id(data) not in seen:
            total += size(data)  # the same tuples as F's: only the table
    total += size(values) + _sampled_size(list(values.values()))
    return total


def _sampled_size(objects: list[Any], sample: int = 512) -> int:
    """The summed ``sys.getsizeof`` of ``objects``, from an evenly spaced sample when
    there are many (the interned values: ints and constants of a few sizes each)."""
    if len(objects) <= sample:
        return sum(map(sys.getsizeof, objects))
    picked = objects[:: len(objects) // sample]
    return sum(map(sys.getsizeof, picked)) * len(objects) // len(picked)


# --- evaluating a case ---------------------------------------------------------------


def evaluate_case(
    ruleset: Ruleset,
    mat: Materialised,
    strata: list[SeededStratum],
    reachable: set[int],
    base: dict[int, Rows],
    n_all: int,
    limits: Limits,
    explain: bool,
    provenance: list[dict[tuple[Any, ...], Any]] | None,
) -> tuple[Store, int]:
    """Run the strata of the ``reachable`` predicates over the materialised model.

    ``base``: each reachable predicate's own base facts (fresh sets: they become the
    model's); ``n_all``: predicates including the case's extra ones (beyond the
    layout). Returns the store (the whole model: shared sets for the rest) and the
    number of strata run."""
    start = time.monotonic()
    deadline = start + limits.wall_time_ms / 1000.0
    n_preds = len(ruleset._sigs)
    F: list[Any] = list(mat.F)
    F.extend(set() for _ in range(n_all - n_preds))
    for pid, rows in base.items():
        F[pid] = rows
    I: list[Any] = list(mat.I)
    getters = [[(slot, _key_fn(cols)) for slot, cols in specs] for specs in ruleset._index_specs]
    for pid in reachable:
        if pid < n_preds:
            for slot, key in getters[pid]:
                index = I[slot] = defaultdict(list)
                for t in F[pid]:
                    index[key(t)].append(t)
    P: list[dict[tuple[Any, ...], Any]] | None = None
    if explain:
        assert provenance is not None
        P = list(provenance)
        P.extend({} for _ in range(n_all - n_preds))
        for pid in reachable:
            P[pid] = {}
    N: list[Rows] = [set() for _ in range(n_preds)]
    D: list[Any] = [_EMPTY] * n_preds
    derived = 0
    rounds = 0
    current: list[int] = []

    def check(collecting: int = 0) -> int:
        now = time.monotonic()
        if now + collecting * RELEASE_S_PER_ELEMENT > deadline:
            raise WallTimeLimitExceeded(limits.wall_time_ms, int((now - start) * 1000))
        pending = derived + sum(len(N[p]) for p in current) + collecting
        if pending > limits.derived_facts:
            raise DerivedFactsLimitExceeded(limits.derived_facts, pending)
        return TICK

    def commit() -> bool:
        nonlocal derived
        grew = False
        for pid in current:
            new = N[pid]
            if new:
                grew = True
                F[pid] |= new
                for slot, key in getters[pid]:
                    index = I[slot]
                    for t in new:
                        index[key(t)].append(t)
                derived += len(new)
                N[pid] = set()
                D[pid] = new
            else:
                D[pid] = _EMPTY
        if derived > limits.derived_facts:
            raise DerivedFactsLimitExceeded(limits.derived_facts, derived)
        return grew

    seeds = [pid for pid in reachable if pid < n_preds]
    run = 0
    try:
        for stratum in strata:
            if stratum.pids[0] not in reachable:  # a stratum is one component: all or none
                continue
            run += 1
            current = stratum.pids
            for pid in seeds:  # the first round's delta: every reachable fact so far
                D[pid] = F[pid] or _EMPTY
            for rule in stratum.rules:
                if rule.positive & reachable:
                    for fn, pid in rule.deltas:
                        if D[pid]:
                            fn(F, N, D, I, P, check)
                else:
                    rule.full(F, N, D, I, P, check)
            rounds += 1
            for pid in seeds:
                D[pid] = _EMPTY
            grew = commit()
            if stratum.recursive:
                own = set(current)
                loop = [(fn, pid) for rule in stratum.rules for fn, pid in rule.deltas if pid in own]
                while grew:
                    check()
                    for fn, pid in loop:
                        if D[pid]:
                            fn(F, N, D, I, P, check)
                    rounds += 1
                    grew = commit()
            for pid in current:
                D[pid] = _EMPTY
    except LimitExceeded as exc:
        raise exc.with_traceback(None) from None
    store = Store(F, P, derived, rounds, (time.monotonic() - start) * 1000.0)
    store.I = I  # queries over materialised relations look up through them
    return store, run


def reference_result_hash(
    mat: Materialised,
    store: Store,
    sigs: list[Signature],
    shown: set[Signature],
    reachable: set[int],
    queries: list[tuple[str, list[str]]],
) -> str:
    """The result hash of a decision over reference data: the materialised model's
    digest, then, per shown predicate in (name, arity) order, the facts the case
    added to and removed from the materialised model, then each query's answers.
    Only reachable predicates can differ, so only they are compared: the cost is the
    case's, and the hash is the same whichever predicates the case happened to reach."""
    lines = [RESULT_REFERENCE_SCHEMA, f"#reference {mat.digest}"]
    n_mat = len(mat.F)
    for pid, sig in sorted(enumerate(sigs), key=lambda p: p[1]):
        if pid not in reachable or sig not in shown:
            continue
        now = store.F[pid]
        before = mat.F[pid] if pid < n_mat else _EMPTY
        added = [t for t in now if t not in before]
        removed = [t for t in before if t not in now] if before else []
        if added:
            lines.append(f"#added {sig[0]}/{sig[1]}")
            lines.extend(format_atoms(sig[0], sort_rows(added)))
        if removed:
            lines.append(f"#removed {sig[0]}/{sig[1]}")
            lines.extend(format_atoms(sig[0], sort_rows(removed)))
    for text, atoms in queries:
        lines.append(f"#query {text}")
        lines.extend(atoms)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def seeded_for(ruleset: Ruleset, explain: bool) -> list[SeededStratum]:
    """The ruleset's seeded code (the explaining one built on first use)."""
    if not explain:
        assert ruleset._seeded is not None
        return ruleset._seeded
    with ruleset._explain_lock:
        if ruleset._seeded_explaining is None:
            slots = dict(ruleset._layout.index_slots)
            clock = CompileClock(ruleset._limits.compile_time_ms)
            with gc_paused():
                ruleset._seeded_explaining = build_seeded(ruleset, ruleset._seeded_plans, True, clock.tick)
                clock.check()
            assert ruleset._layout.index_slots == slots, "explain code needs the plain code's indexes"
        return ruleset._seeded_explaining
