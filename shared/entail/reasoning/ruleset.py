"""The engine's front door: ``compile`` a program once, ``evaluate`` it many times.

>>> from entail import reasoning
>>> rs = reasoning.compile('''
...     path(X, Y) :- edge(X, Y).
...     path(X, Z) :- path(X, Y), edge(Y, Z).
... ''')
>>> result = rs.evaluate({"edge": [[1, 2], [2, 3]]}, ["path(1, X)"])
>>> [a.atom for a in result.answers[0].answers]
['path(1,2)', 'path(1,3)']
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from .analyse import Analysis, analyse, body_atoms
from .bindings import Signature
from .clock import CompileClock
from .codegen import Layout, Module, binding_vars, generate
from .declarations import DatasetBinding, Declarations, collect_datasets
from .declarations import collect as collect_declarations
from .demand import DEMAND_BUDGET, MAGIC_SUFFIX, demanded, rewrite
from .errors import (
    DatasetPredicateInCase,
    DerivedFactsLimitExceeded,
    Diagnostic,
    InputFactsLimitExceeded,
    LimitExceeded,
    ProgramError,
    ProgramSizeLimitExceeded,
    RuleBodyLimitExceeded,
)
from .evaluate import CompiledStratum, RuleFn, Store, evaluate, gc_paused
from .facts import FactSet, facts_from_json
from .limits import Limits
from .linear import detect as linear_closure
from .parse import parse
from .plan import AggregateStep, Assign, RulePlan, plan_rule
from .prove import SCHEMA, ProofBuilder, RuleInfo, render_text
from .query import Query, parse_query
from .query_check import query_diagnostics, zero_answer_hints
from .reasons import Reason, ReasonBook, ReasonIndex, ReasonWalker, reason_index
from .reasons import collect as collect_reasons
from .reference import (
    Materialised,
    SeededStratum,
    build_seeded,
    dependents,
    evaluate_case,
    grown_index_specs,
    materialise,
    reachable_from,
    reference_result_hash,
    seeded_for,
    seeded_plans,
    shared_index_specs,
)
from .runtime import NAMESPACE, evaluate_term
from .syntax import Aggregate, Program
from .terms import Term, format_atom, format_atoms, format_atoms_text, sort_rows, to_json
from .type_infer import Clash, InputTypes, infer, type_clashes

RESULT_SCHEMA = "entail.result.v1"
#: above this size a materialised relation gets no zero-answer hints (a scan per decision)
SHARED_HINT_ROWS = 10_000


@dataclass
class Answer:
    """One fact matching a query, with the query's variable bindings."""

    atom: str
    predicate: str
    args: tuple[Term, ...]
    bindings: dict[str, Term]
    proof: dict[str, Any] | None = None
    # the program's reason templates used in this answer's derivation (reasons.py);
    # None when the program has no templates
    reasons: list[Reason] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "atom": self.atom,
            "args": [to_json(a) for a in self.args],
            "bindings": {k: to_json(v) for k, v in self.bindings.items()},
        }
        if self.proof is not None:
            out["proof"] = self.proof
        if self.reasons is not None:
            out["reasons"] = [r.to_json() for r in self.reasons]
        return out


@dataclass
class QueryResult:
    query: str
    answers: list[Answer]
    # warnings about this query: an unknown predicate, a constant-vs-string near miss,
    # case facts whose kinds make a rule it depends on never fire (query_check.py)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"query": self.query, "answers": [a.to_json() for a in self.answers]}
        if self.diagnostics:
            out["diagnostics"] = [d.to_json() for d in self.diagnostics]
        return out


@dataclass
class Result:
    """The outcome of one evaluation: shown atoms, query answers, proofs, hash, stats."""

    answers: list[QueryResult]
    stats: dict[str, Any]
    explain: bool
    _store: Store = field(repr=False)
    _ruleset: Ruleset = field(repr=False)
    _sigs: list[Signature] = field(repr=False)
    # the reasons of any fact of the model (templates and provenance): why-not cites them
    _reasons: ReasonWalker | None = field(default=None, repr=False)
    # with reference data: the materialised model and the predicates the case reached
    _reference: tuple[Materialised, set[int]] | None = field(default=None, repr=False)
    # a result evaluated on demand (demand.py) holds only the demanded part of some
    # relations: this evaluates the case over the full model, for what reads all of them
    _complete_by: Callable[[], Result] | None = field(default=None, repr=False)

    @functools.cached_property
    def complete(self) -> Result:
        """This result with every relation complete: itself, unless it was evaluated on
        demand (then the same case over the full model, computed on first use)."""
        return self if self._complete_by is None else self._complete_by()

    @functools.cached_property
    def shown(self) -> list[tuple[str, tuple[Term, ...]]]:
        """Shown atoms as (predicate, args), in canonical order (computed on first use)."""
        return [(name, row) for name, rows in self._shown_groups for row in rows]

    @functools.cached_property
    def _shown_groups(self) -> list[tuple[str, list[tuple[Term, ...]]]]:
        return self._ruleset._shown(self._store, self._sigs)

    @functools.cached_property
    def _shown_text(self) -> list[str]:
        atoms: list[str] = []
        for name, rows in self._shown_groups:
            atoms.extend(format_atoms(name, rows))
        return atoms

    def shown_relations(self) -> dict[Signature, Set[tuple[Term, ...]]]:
        """The shown part of the model as raw sets of tuples: no sorting, no formatting.

        The fastest way to the answers as Python values (what a benchmark or a
        bulk consumer wants); treat the sets as read-only. A closure kept grouped
        (closed.py) is a read-only ``Set`` whose tuples are made as it is iterated:
        a timer around the answers should include reading them.
        """
        selected = self._ruleset._shown_signatures(self._sigs)
        return {sig: self._store.F[pid] for pid, sig in enumerate(self._sigs) if sig in selected}

    def shown_atoms(self) -> list[str]:
        """Shown atoms in clingo's text form, in canonical order."""
        return list(self._shown_text)

    def shown_text(self) -> str:
        """:meth:`shown_atoms` as one text, each atom and a newline (``entail run --format atoms``)."""
        return "".join(format_atoms_text(name, rows) for name, rows in self._shown_groups)

    def model_atoms(self) -> list[str]:
        """Every atom of the model (shown or not), in canonical order."""
        if self._complete_by is not None:
            return self.complete.model_atoms()
        return [
            format_atom(sig[0], t)
            for pid, sig in sorted(enumerate(self._sigs), key=lambda p: p[1])
            for t in sort_rows(self._store.F[pid])
        ]

    def facts(self, predicate: str, arity: int) -> list[tuple[Term, ...]]:
        """All facts of one predicate in the model, in canonical order."""
        if (predicate, arity) not in self._sigs:
            return []
        if self._complete_by is not None and (predicate, arity) in self._ruleset._demanded:
            return self.complete.facts(predicate, arity)
        return sort_rows(self._store.F[self._sigs.index((predicate, arity))])

    @functools.cached_property
    def result_hash(self) -> str:
        """sha256 over the canonical text of the shown atoms and every query's answers
        (with reference data: over the materialised model's digest, what the case
        changed in it and the answers; reference.reference_result_hash)."""
        if self._reference is not None:
            mat, reached = self._reference
            shown = self._ruleset._shown_signatures(self._sigs)
            answered = [(q.query, [a.atom for a in q.answers]) for q in self.answers]
            return reference_result_hash(mat, self._store, self._sigs, shown, reached, answered)
        lines = [RESULT_SCHEMA, "#shown", *self.shown_atoms()]
        for q in self.answers:
            lines.append(f"#query {q.query}")
            lines.extend(a.atom for a in q.answers)
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": RESULT_SCHEMA,
            "result_hash": self.result_hash,
            "shown": self.shown_atoms(),
            "answers": [q.to_json() for q in self.answers],
            "stats": self.stats,
        }
        if self.explain:
            out["proof_schema"] = SCHEMA
        return out

    def render_text(self) -> str:
        """Human-readable: each query's answers with their proofs, or the shown atoms."""
        parts: list[str] = []
        if not self.answers:
            parts.extend(self.shown_atoms())
        for q in self.answers:
            parts.append(f"?- {q.query}   ({len(q.answers)} answer(s))")
            parts.extend(d.render() for d in q.diagnostics)
            for a in q.answers:
                parts.append(f"  {a.atom}")
                for r in a.reasons or ():
                    parts.append(f"    reason {r.code} ({r.severity}, weight {r.weight}): {r.message}")
                if a.proof is not None:
                    parts.append(render_text(a.proof, 2))
        return "\n".join(parts)


class Ruleset:
    """A compiled program: parse, analysis, plans and generated code, reusable across cases."""

    def __init__(
        self,
        program: Program,
        analysis: Analysis,
        limits: Limits,
        clock: CompileClock | None = None,
        reasons: ReasonBook | None = None,
        declarations: Declarations | None = None,
        datasets: Mapping[str, DatasetBinding] | None = None,
        *,
        prefix: Sequence[Signature] = (),
        demand: bool = True,
    ) -> None:
        """``prefix``: signatures numbered first (a demand rewrite numbers its
        predicates as the original does); ``demand``: build the demand rewrite
        (demand.py) when the program has datasets."""
        clock = clock or CompileClock(limits.compile_time_ms)
        self.program = program
        self.reasons = reasons
        # ``%@input`` declarations (declarations.py): case facts checked and mapped
        self.declarations = declarations
        self.analysis = analysis
        encoded = program.source.encode()
        self.hash = hashlib.sha256(encoded).hexdigest()
        self._program_bytes = len(encoded)
        self._limits = limits
        layout = Layout()
        for sig in prefix:
            layout.pid(sig)
        for sig in analysis.signatures:
            layout.pid(sig)
        # ``%@dataset`` declarations (docs/datasets.md): binding name -> its predicates
        self._datasets: dict[str, DatasetBinding] = dict(datasets or {})
        self._dataset_of: dict[str, str] = {}  # predicate name -> binding
        for binding in self._datasets.values():
            for decl in binding.predicates:
                layout.pid(decl.signature)  # a declared predicate no rule reads is still one
                self._dataset_of[decl.predicate] = binding.name
        self._layout = layout
        self._sigs: list[Signature] = list(layout.pred_ids)
        self._arities = dict(self._sigs)
        strata_plans: list[list[RulePlan]] = []
        self._ruleset_facts: list[set[tuple[Any, ...]]] = [set() for _ in self._sigs]
        self._rule_infos: dict[int, RuleInfo] = {}
        # rules of one shape (see .shapes) are planned once for the whole program
        plan_cache: dict[tuple[object, ...], Any] = {}
        for stratum in analysis.strata:
            recursive = set(stratum.predicates) if stratum.recursive else set()
            plans: list[RulePlan] = []
            for rule in stratum.rules:
                if rule.is_fact:
                    values = tuple(evaluate_term(a, {}) for a in rule.head.args)
                    if all(v is not None for v in values):
                        self._ruleset_facts[layout.pid(rule.head.signature)].add(values)
                    continue
                plan = plan_rule(rule, recursive, clock.tick, plan_cache)
                plans.append(plan)

                self._rule_infos[rule.index] = RuleInfo(
                    rule,
                    binding_vars(plan.full),
                    {s.literal_index: s.var for s in plan.full if isinstance(s, Assign)},
                    frozenset(
                        s.literal_index for s in plan.full if isinstance(s, AggregateStep) and s.assigns
                    ),
                )
            strata_plans.append(plans)
        self._strata_plans = strata_plans
        self._plain = self._build(explain=False, tick=clock.tick)
        # predicates some rule derives (a materialised model shares the others' dataset sets)
        self._heads = {
            layout.pid(r.head.signature) for st in analysis.strata for r in st.rules if not r.is_fact
        }
        # with datasets: the code that evaluates a case seeded from its reachable facts
        # (reference.py); built now, since it may need indexes the plain code does not
        self._seeded_plans: list[list[RulePlan]] = []
        self._seeded: list[SeededStratum] | None = None
        self._seeded_explaining: list[SeededStratum] | None = None
        plain_slots = set(layout.index_slots.values())
        if self._datasets:
            self._seeded_plans = seeded_plans(self, clock.tick)
            self._seeded = build_seeded(self, self._seeded_plans, False, clock.tick)
        clock.check()
        # the explaining code is built on first use (half the compile time of a ruleset
        # never explained); it reads the same index slots as the plain code, so the
        # layout is complete now and never changes (Rulesets are shared across threads)
        self._explaining: tuple[list[CompiledStratum], Module] | None = None
        self._explain_lock = threading.Lock()
        self._index_specs: list[list[tuple[int, tuple[int, ...]]]] = [[] for _ in self._sigs]
        for (pid, cols), slot in layout.index_slots.items():
            self._index_specs[pid].append((slot, cols))
        # the slots a materialised model keeps (reference.py)
        self._shared_specs, self._kept_specs = (
            shared_index_specs(self, plain_slots)
            if self._datasets
            else (self._index_specs, self._index_specs)
        )
        self._grown_specs = (
            grown_index_specs(self, self._shared_specs, self._kept_specs)
            if self._datasets
            else self._shared_specs
        )
        # with datasets: the program rewritten for demand-driven evaluation (demand.py),
        # which materialise() uses by default: compiled on first use (a ruleset never
        # materialised, or compiled again by a service, pays nothing for it)
        self._demand_enabled = bool(self._datasets) and demand
        self._demand_built: tuple[Ruleset | None, frozenset[Signature]] | None = None
        self._demand_lock = threading.Lock()
        #: derived facts above which a case evaluated on demand is answered from the
        #: full materialisation instead (built then, once): a case whose demand is
        #: most of the closure costs less as lookups in it
        self.demand_budget = DEMAND_BUDGET
        self._origin: Ruleset | None = None  # of a demand rewrite: the program it rewrote
        # of a demand rewrite: the demanded and magic predicates (empty without a case)
        self._on_demand: frozenset[int] = frozenset()

    @property
    def _demand(self) -> Ruleset | None:
        """The demand rewrite, compiled (on first use); None when no predicate qualifies."""
        return self._demand_state()[0]

    @property
    def _demanded(self) -> frozenset[Signature]:
        return self._demand_state()[1]

    @property
    def demanded(self) -> frozenset[Signature]:
        """The predicates a materialised model leaves out and cases derive on demand
        (docs/engine.md, "Demand-driven evaluation"); the first read compiles the
        rewrite (once per ruleset, as the first ``materialise`` would)."""
        return self._demanded

    def _demand_state(self) -> tuple[Ruleset | None, frozenset[Signature]]:
        if self._demand_built is None:
            with self._demand_lock:
                if self._demand_built is None:
                    built: tuple[Ruleset | None, frozenset[Signature]] = (None, frozenset())
                    if self._demand_enabled:
                        try:
                            with gc_paused():
                                built = self._build_demand(CompileClock(self._limits.compile_time_ms))
                        except (ProgramError, LimitExceeded):
                            pass  # the rewrite too large to compile: every model materialised whole
                    self._demand_built = built
        return self._demand_built

    def _build_demand(self, clock: CompileClock) -> tuple[Ruleset | None, frozenset[Signature]]:
        """The demand rewrite of this program, compiled, and the predicates it demands;
        (None, empty) when none qualifies or the rewrite is not stratified."""
        datasets = {sig for b in self._datasets.values() for sig in (d.signature for d in b.predicates)}
        found = demanded(self.program, self.analysis, datasets)
        if not found.adornments:
            return None, frozenset()
        program = rewrite(self.program, found)
        try:
            analysis = analyse(program, clock.tick)
        except ProgramError:
            return None, frozenset()  # a magic rule closed a cycle through negation
        inner = Ruleset(
            program,
            analysis,
            self._limits,
            clock,
            None,
            None,
            self._datasets,
            prefix=self._sigs,
            demand=False,
        )
        # the same program to its callers: a model materialised from it is this ruleset's
        inner.hash = self.hash
        inner._program_bytes = self._program_bytes
        inner._origin = self  # query notes as the original's (its input types)
        inner._on_demand = frozenset(inner._layout.pid(sig) for sig in found.predicates | found.magic())
        # proofs cite the original rules: a rewritten rule's step is the original's,
        # without its guard (the guard's variables are the head's, bound by the body);
        # magic facts are never a premise of an original rule, so never in a proof
        # (its values in the rewrite's order; what each assignment assigns as in the
        # original's plan: a variant led by the guard may solve ``Y = W + 0`` for W)
        for index, info in list(inner._rule_infos.items()):
            if index in self._rule_infos:
                own = self._rule_infos[index]
                inner._rule_infos[index] = RuleInfo(
                    own.rule, info.binding_names, own.assignments, own.assigning_aggregates
                )
        return inner, found.predicates

    def _explain_code(self) -> list[CompiledStratum]:
        with self._explain_lock:
            if self._explaining is None:
                slots = dict(self._layout.index_slots)
                clock = CompileClock(self._limits.compile_time_ms)
                with gc_paused():
                    self._explaining = self._build(explain=True, tick=clock.tick)
                    clock.check()
                assert self._layout.index_slots == slots, "explain code needs the plain code's indexes"
            return self._explaining[0]

    @property
    def name(self) -> str:
        return self.program.filename

    @property
    def source_code(self) -> str:
        """The generated Python module, as text (for reading: written on demand)."""
        return self._plain[1].listing

    def _build(self, explain: bool, tick: Callable[[], None]) -> tuple[list[CompiledStratum], Module]:
        all_plans = [p for plans in self._strata_plans for p in plans]
        namespace, module = self._compile_plans(all_plans, explain, tick)
        fulls, deltas = module.fulls, module.deltas
        by_rule = {p.rule.index: (f, d) for p, f, d in zip(all_plans, fulls, deltas, strict=True)}
        compiled: list[CompiledStratum] = []
        # per predicate, the strata with a rule that reads it (a closure no other
        # stratum reads may be kept without its indexes: evaluate.py, closed.py)
        readers: dict[Signature, set[int]] = {}
        for k, st in enumerate(self.analysis.strata):
            for r in st.rules:
                for lit in r.body:
                    for atom, _ in body_atoms(lit):
                        readers.setdefault(atom.signature, set()).add(k)
        for k, (stratum, plans) in enumerate(zip(self.analysis.strata, self._strata_plans, strict=True)):
            full_fns: list[RuleFn] = []
            delta_fns: list[tuple[RuleFn, int]] = []
            for plan in plans:
                f, d = by_rule[plan.rule.index]
                full_fns.extend(namespace[v.name] for v in f)
                for v in d:
                    assert v.reads_delta_of is not None
                    delta_fns.append((namespace[v.name], v.reads_delta_of))
            pids = [self._layout.pid(s) for s in stratum.predicates]
            # proofs need each fact's premises: explaining keeps the rounds
            closure = (
                None
                if explain
                else linear_closure(
                    [p.rule for p in plans], stratum.predicates, stratum.recursive, self._layout.pid
                )
            )
            read_later = closure is not None and any(
                readers.get(sig, set()) - {k} for sig in stratum.predicates
            )
            compiled.append(
                CompiledStratum(pids, stratum.recursive, full_fns, delta_fns, closure, read_later)
            )
        return compiled, module

    def _compile_plans(
        self, all_plans: list[RulePlan], explain: bool, tick: Callable[[], None]
    ) -> tuple[dict[str, Any], Module]:
        """Generate, compile and run the module of ``all_plans``: its namespace holds
        every variant's function by name."""
        module = generate(all_plans, self._layout, explain, tick)
        source = module.source
        namespace: dict[str, Any] = dict(NAMESPACE)
        namespace.update(self._layout.constants)
        try:
            codes = _compile_in_pieces(source, f"<entail rules {self.hash[:12]}>")
        except (SyntaxError, RecursionError, MemoryError) as exc:
            # generated code beyond what CPython accepts (e.g. thousands of literals in one rule)
            raise ProgramError(
                [
                    Diagnostic(
                        "program-too-complex",
                        f"a rule is too large to compile ({type(exc).__name__}); split it into smaller rules",
                        1,
                        1,
                        filename=self.program.filename,
                    )
                ]
            ) from None
        for code in codes:
            exec(code, namespace)
        for name, factory, args, _ in module.instances:
            namespace[name] = namespace[factory](*args)
        tick()
        return namespace, module

    # reference data ---------------------------------------------------------
    @property
    def datasets(self) -> dict[str, tuple[tuple[Signature, tuple[str, ...]], ...]]:
        """The ``%@dataset`` bindings: name -> each declared (signature, column types),
        in declaration order; empty without declarations."""
        return {
            name: tuple((d.signature, d.types) for d in b.predicates) for name, b in self._datasets.items()
        }

    def materialise(
        self,
        reference: Mapping[str, Mapping[str, Iterable[Sequence[int | str]]]],
        *,
        limits: Limits | None = None,
        hashes: Mapping[str, str] | None = None,
        demand: bool = True,
    ) -> Materialised:
        """The case-independent model over the dataset facts ``reference[binding][predicate]``
        (rows of JSON values, converted by the declared types; predicates the program
        does not declare are ignored). Raises DatasetTypeError or a LimitExceeded.
        ``hashes``: the datasets' content hashes per binding (the model's ``digest``
        then costs nothing; without them it is computed from the facts on first use).

        When some predicates can be evaluated on demand (demand.py), the model leaves
        them out and each case derives the part it asks about; ``demand=False``
        materialises everything (what a case over the demand budget falls back to)."""
        if demand and self._demand is not None:
            return materialise(self._demand, reference, limits, hashes)
        return materialise(self, reference, limits, hashes)

    @functools.cached_property
    def _dependents(self) -> list[frozenset[int]]:
        return dependents(self)

    # evaluation -------------------------------------------------------------
    def evaluate(
        self,
        facts: Mapping[str, Any] | FactSet | None = None,
        queries: Sequence[str | Query] = (),
        *,
        explain: bool = False,
        limits: Limits | None = None,
        locale: str | None = None,
        reference: Materialised | None = None,
    ) -> Result:
        """Evaluate against one case. Raises FactsError, QueryError or a LimitExceeded.

        ``locale``: the language of the answers' reason messages (a BCP 47 tag;
        the program's ``%@reason-text`` for it, else the template's own text).
        ``reference``: this ruleset's materialised dataset facts (:meth:`materialise`);
        without it the dataset predicates are empty."""
        limits = limits or self._limits
        if self._program_bytes > limits.program_bytes:
            raise ProgramSizeLimitExceeded(limits.program_bytes, self._program_bytes)
        parsed = [q if isinstance(q, Query) else parse_query(q) for q in queries]
        if reference is not None and reference.ruleset_hash != self.hash:
            raise ValueError("the materialised reference data belongs to another ruleset")
        if not self._datasets:
            reference = None  # nothing to share: a program without %@dataset evaluates whole
        if facts is None:
            factset = FactSet()
        elif isinstance(facts, FactSet):
            factset = facts
        else:
            if self._dataset_of and isinstance(facts, Mapping):
                self._refuse_dataset_predicates(facts)
            if self.declarations is not None:
                self.declarations.check(facts)
            factset = facts_from_json(facts, self._arities)
        if self.declarations is not None:
            self.declarations.convert(factset.facts)
        n_input = len(factset)
        if n_input > limits.input_facts:
            raise InputFactsLimitExceeded(limits.input_facts, n_input)

        if reference is not None and reference.demand and self._origin is None:
            # a model of the demand rewrite (made by this ruleset or by another compile of
            # the same source: the same rewrite, numbered alike). Once a case needed the
            # full model it is kept, and an unexplained case is cheaper there (a lookup
            # instead of a derivation; the same answers); an explained one stays on
            # demand (the full model's proofs cost a run of their own)
            if self._demand is not None and (reference._full is None or explain):
                on_demand = self._evaluate_on_demand(factset, parsed, explain, limits, locale, reference)
                if on_demand is not None:
                    return on_demand
            reference = reference.full_model()
        layout = self._layout
        extra: dict[Signature, int] = {}
        base = [set(s) for s in self._ruleset_facts]
        inputs: list[set[tuple[Any, ...]]] = [set() for _ in self._sigs]
        for sig, rows in factset.facts.items():
            if sig[0] in self._dataset_of and rows:
                self._refuse_dataset_predicates({sig[0]: rows})
            pid = layout.pred_ids.get(sig)
            if pid is None:
                if sig[0] in self._arities:
                    from .errors import FactsError

                    raise FactsError(
                        f"'{sig[0]}' has {sig[1]} argument(s) but the program uses "
                        f"'{sig[0]}/{self._arities[sig[0]]}'",
                        "/" + sig[0],
                    )
                extra[sig] = len(base)  # facts the program never reads: still part of the model
                base.append(set(rows))
                inputs.append(rows)
                continue
            base[pid] |= rows
            inputs[pid] = rows
        # reasons come from the derivation: a program with templates records it
        traced = explain or (self.reasons is not None and bool(parsed))
        reached: set[int] = set()
        strata_run = len(self.analysis.strata)
        dataset_leaves: list[Any] | None = None
        if reference is not None:
            n = len(self._sigs)
            # the case reaches the predicates it names and every one that reads them
            reached = reachable_from(self._dependents, [pid for pid, rows in enumerate(inputs) if rows])
            own = {pid: base[pid] | reference.inputs[pid] if pid < n else base[pid] for pid in reached}
            with gc_paused():
                store, strata_run = evaluate_case(
                    self,
                    reference,
                    seeded_for(self, traced),
                    reached,
                    own,
                    len(base),
                    limits,
                    traced,
                    reference.provenance() if traced else None,
                )
            dataset_leaves = list(reference.inputs) + [set() for _ in extra]
        else:
            strata = self._explain_code() if traced else self._plain[0]
            with gc_paused():
                store = evaluate(
                    strata,
                    len(self._sigs),
                    self._index_specs,
                    len(layout.index_slots),
                    base,
                    limits,
                    traced,
                )
            if store.P is not None:
                store.P.extend({} for _ in extra)
        sigs = self._sigs + list(extra)
        pred_ids = dict(layout.pred_ids) | extra
        builder = None
        if explain:
            assert store.P is not None
            rf = self._ruleset_facts + [set() for _ in extra]
            builder = ProofBuilder(
                self._rule_infos, sigs, pred_ids, store.P, inputs, rf, limits, dataset_leaves
            )
        leaves = (
            inputs
            if dataset_leaves is None
            else [a or b for a, b in zip(inputs, dataset_leaves, strict=True)]
        )
        walker = self._reason_walker(store, leaves, pred_ids, locale) if traced and self.reasons else None
        answers: list[QueryResult] = []
        clashes = self._input_types.clashes(factset.facts) if parsed and factset.facts else []
        # what a query's "did you mean" may name: not a demand rewrite's magic predicates
        known = sigs if self._origin is None else [s for s in sigs if MAGIC_SUFFIX not in s[0]]
        for q in parsed:
            pid = pred_ids.get(q.signature)
            shared = (
                reference is not None and pid is not None and pid < len(self._sigs) and pid not in reached
            )
            candidates = self._query_candidates(q, pid, store) if shared and pid is not None else None
            rows_of = store.F[pid] if pid is not None else set()
            matched = (
                sort_rows(q.matches(rows_of if candidates is None else candidates)) if pid is not None else []
            )
            items = [
                Answer(
                    format_atom(q.predicate, r),
                    q.predicate,
                    r,
                    q.bindings(r),
                    builder.prove(pid, r) if builder is not None and pid is not None else None,
                    (walker.reasons(pid, r) if pid is not None else []) if walker is not None else None,
                )
                for r in matched
            ]
            # near-miss hints scan the relation: not a materialised one of reference size
            hinted = rows_of if not shared or len(rows_of) <= SHARED_HINT_ROWS else set()
            notes = query_notes(q, hinted if pid is not None else None, items, known, self, clashes)
            answers.append(QueryResult(q.text, items, notes))
        stats: dict[str, Any] = {
            "input_facts": n_input,
            "derived_facts": store.derived,
            "model_facts": sum(len(s) for s in store.F),
            "rounds": store.rounds,
            "evaluation_ms": round(store.elapsed_ms, 3),
        }
        result = Result(answers, stats, explain, store, self, sigs, walker)
        if reference is not None:
            # per decision: only what the case changed (the materialised model's own
            # figures are in reference.stats)
            stats["strata_run"] = strata_run
            stats["reference_facts"] = reference.facts
            stats["reference_mode"] = "full"  # the demand rewrite's cases say "demand"
            result._reference = (reference, reached)
        return result

    def _evaluate_on_demand(
        self,
        factset: FactSet,
        parsed: list[Query],
        explain: bool,
        limits: Limits,
        locale: str | None,
        reference: Materialised,
    ) -> Result | None:
        """The case evaluated by the demand rewrite over its model (demand.py), as a
        result of this ruleset (proofs cite the original rules); None when it must be
        answered from the full model: a decision with reason templates (they read the
        original program's rules), a query over a demanded predicate (it needs the whole
        relation), or a case whose demand derives more than ``demand_budget`` facts."""
        inner_rs = self._demand
        assert inner_rs is not None
        if self.reasons is not None and parsed:
            return None
        if any(q.signature in self._demanded for q in parsed):
            return None
        own = inner_rs._layout.pred_ids
        if any(sig in own and sig not in self._layout.pred_ids for sig in factset.facts):
            return None  # names a magic predicate (only through a FactSet)
        budget = dataclasses.replace(limits, derived_facts=min(limits.derived_facts, self.demand_budget))
        try:
            inner = inner_rs.evaluate(
                factset, parsed, explain=explain, limits=budget, locale=locale, reference=reference
            )
        except DerivedFactsLimitExceeded:
            return None
        assert inner._reference is not None
        # the original's predicates are the rewrite's first ids; then its magic ones, then
        # the case's predicates the program does not know
        n, n_inner = len(self._sigs), len(inner_rs._sigs)
        rows = inner._store.F
        done = inner._store
        records = None if done.P is None else done.P[:n] + done.P[n_inner:]
        store = Store(rows[:n] + rows[n_inner:], records, done.derived, done.rounds, done.elapsed_ms)
        sigs = self._sigs + inner._sigs[n_inner:]
        reached = {p if p < n else p - n_inner + n for p in inner._reference[1] if p < n or p >= n_inner}
        stats = dict(inner.stats)
        stats["reference_mode"] = "demand"
        result = Result(inner.answers, stats, explain, store, self, sigs)
        result._reference = (reference, reached)
        full = reference.full_model

        def complete() -> Result:
            return self.evaluate(
                factset, parsed, explain=explain, limits=limits, locale=locale, reference=full()
            )

        result._complete_by = complete
        return result

    def _query_candidates(self, q: Query, pid: int, store: Store) -> Any:
        """The rows of a materialised relation a query can match, through an index on
        its constant columns (a lookup, not a scan of the reference data); None when
        no index fits."""
        consts = dict(q.constants)
        if not consts or store.I is None:
            return None
        rows = store.F[pid]
        if len(consts) == q.signature[1]:
            fact = tuple(consts[i] for i in range(len(consts)))
            return (fact,) if fact in rows else ()
        for slot, cols in self._kept_specs[pid]:
            if all(c in consts for c in cols):
                key = consts[cols[0]] if len(cols) == 1 else tuple(consts[c] for c in cols)
                return store.I[slot].get(key, ())
        return None

    def _refuse_dataset_predicates(self, facts: Mapping[str, Any]) -> None:
        for name in facts:
            binding = self._dataset_of.get(name) if isinstance(name, str) else None
            if binding is not None:
                raise DatasetPredicateInCase(
                    f"'{name}' comes from the dataset '{binding}' (%@dataset): case facts may not name it",
                    "/" + name.replace("~", "~0").replace("/", "~1"),
                )

    def _reason_walker(
        self,
        store: Store,
        inputs: list[set[tuple[Any, ...]]],
        pred_ids: dict[Signature, int],
        locale: str | None,
    ) -> ReasonWalker:
        assert self.reasons is not None and store.P is not None
        return ReasonWalker(
            self.reasons,
            self._rule_infos,
            pred_ids,
            store.F,
            store.P,
            (inputs, self._ruleset_facts),
            self._reason_index,
            locale,
        )

    @functools.cached_property
    def _reason_index(self) -> ReasonIndex:
        assert self.reasons is not None
        return reason_index(self.program, self.reasons, self._layout.pred_ids)

    @functools.cached_property
    def _input_types(self) -> InputTypes:
        if self._origin is not None:
            return self._origin._input_types
        return InputTypes(self.program, self.analysis)

    @property
    def declared(self) -> list[Signature]:
        """``#defined`` predicates: known even when no rule uses them."""
        return [(d.predicate, d.arity) for d in self.program.defined]

    def check_query(self, text: str) -> list[Diagnostic]:
        """Warnings for a query against the program alone (an unknown predicate, another
        arity), columns in ``text`` as given; raises QueryError when it does not parse."""
        parse_query(text)
        return query_diagnostics(text, [*self._sigs, *self.declared])

    @functools.cached_property
    def warnings(self) -> list[Diagnostic]:
        """The analyser's warnings and the type clashes the program alone decides
        (type_infer.py: inferred on first use, not at compile)."""
        clashes = [c.diagnostic for c in self._input_types.static_clashes]
        # a predicate an ``%@input`` or ``%@dataset`` declares is defined: by the case or
        # by the data, as the declaration says (the analyser, which runs before the
        # declarations are read, would otherwise tell the author to add '#defined')
        declared = {sig for b in self.datasets.values() for sig, _ in b}
        if self.declarations is not None:
            declared.update(self.declarations.signatures())
        quoted = {f"predicate '{name}/{arity}' " for name, arity in declared}
        kept = [
            w
            for w in self.analysis.warnings
            if not (w.code == "undefined-predicate" and any(w.message.startswith(q) for q in quoted))
        ]
        return sorted([*kept, *clashes], key=lambda d: (d.line, d.column))

    def _shown_signatures(self, sigs: list[Signature]) -> set[Signature]:
        prog = self.program
        if prog.shows:
            return {(s.predicate, s.arity) for s in prog.shows}
        if prog.show_nothing:
            return set()
        return set(sigs)

    def _shown(self, store: Store, sigs: list[Signature]) -> list[tuple[str, list[tuple[Term, ...]]]]:
        """Per shown predicate, in canonical order: its name and its rows, sorted."""
        selected = self._shown_signatures(sigs)
        return [
            (sig[0], sort_rows(store.F[pid]))
            for pid, sig in sorted(enumerate(sigs), key=lambda p: p[1])
            if sig in selected
        ]


# the generated module is compiled this many characters at a time (see _compile_in_pieces)
COMPILE_PIECE_CHARS = 8192


def _compile_in_pieces(source: str, filename: str) -> list[CodeType]:
    """``source`` (a generated module) compiled as pieces of whole top-level statements.

    CPython's compiler holds the whole module's tokens, AST and symbol tables at
    once: about 120 bytes per character of source, so the 57 KB module of the
    loan program peaked at 7 MiB, more than everything its ruleset keeps (under 1
    MiB) and most of a decision worker's own peak RSS. Pieces of a few KB bound
    that to a fraction of a MiB. Each piece starts on the line it has in the
    whole module (blank lines before it), so tracebacks and the listing agree;
    the pieces are run in order in one namespace, which is what running the
    module does. A top-level line that starts with white space or a closing
    bracket continues the statement above, so a piece only ends before a line
    that starts a statement."""
    lines = source.splitlines(keepends=True)
    try:
        return _pieces(lines, filename)
    except SyntaxError:
        # a statement split where this reading of the layout did not foresee: the
        # whole module at once (a real error in it raises again here)
        return [builtins.compile(source, filename, "exec")]


def _pieces(lines: list[str], filename: str) -> list[CodeType]:
    pieces: list[CodeType] = []
    first = 0
    size = 0
    for i, line in enumerate(lines):
        if size >= COMPILE_PIECE_CHARS and line[:1] not in _CONTINUES:
            pieces.append(builtins.compile("\n" * first + "".join(lines[first:i]), filename, "exec"))
            first, size = i, 0
        size += len(line)
    pieces.append(builtins.compile("\n" * first + "".join(lines[first:]), filename, "exec"))
    return pieces


# what a line of the generated module can start with when it is not a new statement
_CONTINUES = frozenset(" \t\n)]}#")


def compile(source: str, filename: str = "<program>", *, limits: Limits | None = None) -> Ruleset:
    """Parse, analyse, plan and generate code for a program.

    Raises ProgramError (with every diagnostic) or ProgramSizeLimitExceeded.
    """
    limits = limits or Limits()
    # surrogatepass: a lone surrogate (possible in a str from a JSON body) is measured
    # here and then refused by the lexer with a position, not a UnicodeEncodeError
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > limits.program_bytes:
        raise ProgramSizeLimitExceeded(limits.program_bytes, size)
    clock = CompileClock(limits.compile_time_ms)
    # compiling allocates a node per token and creates no reference cycles: with the
    # collector on, each full collection re-scans the growing syntax tree (a quarter
    # of the time for a program of 20,000 rules)
    with gc_paused():
        program = parse(source, filename)
        clock.check()
        _check_rule_bodies(program, limits)
        reasons, reason_errors = collect_reasons(program)
        declarations, input_errors = collect_declarations(source, None, filename)
        try:
            analysis = analyse(program, clock.tick)
        except ProgramError as exc:
            dataset_errors = collect_datasets(source, None, filename)[1]
            raise ProgramError(
                sorted([*exc.diagnostics, *reason_errors, *input_errors, *dataset_errors], key=_position)
            ) from None
        if declarations is not None:
            declarations, input_errors = declared_inputs(program, analysis, source, filename)
        datasets, dataset_errors = collect_datasets(source, dict(analysis.signatures), filename, declarations)
        if reason_errors or input_errors or dataset_errors:
            raise ProgramError(sorted([*reason_errors, *input_errors, *dataset_errors], key=_position))
        return Ruleset(program, analysis, limits, clock, reasons, declarations, datasets)


def declared_inputs(
    program: Program, analysis: Analysis, source: str, filename: str
) -> tuple[Declarations | None, list[Diagnostic]]:
    """The declarations checked against the program's arities, and the type clashes
    the declared kinds decide: errors, since the program says what its inputs hold."""
    declarations, errors = collect_declarations(source, dict(analysis.signatures), filename)
    if declarations is None:
        return None, errors
    kinds = infer(program, analysis.strata, analysis.defined, declared=declarations.kinds())
    clashes = [dataclasses.replace(c.diagnostic, severity="error") for c in type_clashes(program, kinds)]
    return (None, clashes) if clashes else (declarations, [])


def _position(d: Diagnostic) -> tuple[int, int]:
    return (d.line, d.column)


def _check_rule_bodies(program: Program, limits: Limits) -> None:
    """limit-rule-body: the literals of each body, aggregate conditions included."""
    for rule in program.rules:
        size = len(rule.body)
        for lit in rule.body:
            if isinstance(lit, Aggregate):
                size += sum(len(el.condition) for el in lit.elements)
        if size > limits.rule_body_literals:
            raise RuleBodyLimitExceeded(limits.rule_body_literals, size, rule.span.line)


def check(source: str, filename: str = "<program>") -> list[Any]:
    """All diagnostics (errors and warnings) of a program, without raising.

    >>> [(d.code, d.severity, d.line, d.column) for d in check("p(X) :- q(Y).")]
    [('unsafe-variable', 'error', 1, 3)]
    >>> [(d.code, d.severity, d.line, d.column) for d in check("p(X) :- q(X).")]
    [('undefined-predicate', 'warning', 1, 9)]
    """
    try:
        rs = compile(source, filename)
    except ProgramError as exc:
        return list(exc.diagnostics)
    return list(rs.warnings)


def query_notes(
    q: Query,
    rows: Set[tuple[Term, ...]] | None,
    items: list[Answer],
    sigs: list[Signature],
    ruleset: Ruleset,
    clashes: list[Clash],
) -> list[Diagnostic]:
    """The diagnostics of one query's answer (see QueryResult.diagnostics)."""
    if rows is None:
        return query_diagnostics(q.text, [*sigs, *ruleset.declared])
    notes: list[Diagnostic] = []
    if clashes:
        reads = ruleset._input_types.depends_on(q.signature)
        notes.extend(c.diagnostic for c in clashes if c.head in reads)
    if not items:
        notes.extend(zero_answer_hints(q, rows))
    return notes


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
