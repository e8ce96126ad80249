"""Stage 2 — analyse: check a parsed program and split it into strata.

Contract: ``analyse(program)`` returns an :class:`Analysis` (strata in
evaluation order, the signature of every predicate, warnings) or raises
:class:`~.errors.ProgramError` listing every arity clash, unsafe variable and
cycle through ``not`` or an aggregate it finds — never just the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from .bindings import (
    Signature,
    aggregate_globals,
    binding_closure,
    element_vars,
    is_arith,
    sig_text,
)
from .errors import Diagnostic, ProgramError, Span
from .syntax import (
    Aggregate,
    Atom,
    Comparison,
    Literal,
    Negative,
    Positive,
    Program,
    Rule,
    Sym,
    Var,
    term_vars,
)


@dataclass
class Stratum:
    """Predicates evaluated together; ``recursive`` when a rule reads its own stratum."""

    predicates: list[Signature]
    rules: list[Rule]
    recursive: bool


@dataclass
class Analysis:
    strata: list[Stratum]
    signatures: list[Signature]  # every predicate, in order of first appearance
    defined: set[Signature]  # predicates with a rule or a ruleset fact
    warnings: list[Diagnostic] = field(default_factory=list)


class _Reporter:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.lines = program.source.split("\n")
        self.items: list[Diagnostic] = []

    def add(
        self,
        code: str,
        message: str,
        span: Span,
        severity: str = "error",
        width: int | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        line_text = self.lines[span.line - 1] if 0 < span.line <= len(self.lines) else ""
        end = span.end_column if width is None else span.column + width
        self.items.append(
            Diagnostic(
                code,
                message,
                span.line,
                span.column,
                severity,
                end,
                self.program.filename,
                line_text,
                notes,
            )
        )

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]


def body_atoms(lit: Literal) -> Iterator[tuple[Atom, bool]]:
    """Atoms a literal reads, with True where the dependency is non-monotone."""
    if isinstance(lit, Positive):
        yield lit.atom, False
    elif isinstance(lit, Negative):
        yield lit.atom, True
    elif isinstance(lit, Aggregate):
        for el in lit.elements:
            for c in el.condition:
                if isinstance(c, Positive | Negative):
                    yield c.atom, True


def rule_atoms(rule: Rule) -> Iterator[Atom]:
    yield rule.head
    for lit in rule.body:
        for atom, _ in body_atoms(lit):
            yield atom


def analyse(program: Program, tick: Callable[[], None] | None = None) -> Analysis:
    """``tick`` is called once per rule (the compile-time limit)."""
    rep = _Reporter(program)
    signatures = _check_arities(program, rep)
    for rule in program.rules:
        if tick is not None:
            tick()
        _check_safety(rule, rep)
    defined = {r.head.signature for r in program.rules}
    strata = _stratify(program, rep)
    if rep.errors:
        raise ProgramError(sorted(rep.items, key=lambda d: (d.severity != "error", d.line, d.column)))
    _warn_undefined(program, defined, rep)
    return Analysis(strata, signatures, defined, rep.items)


# arity -----------------------------------------------------------------------


def _check_arities(program: Program, rep: _Reporter) -> list[Signature]:
    first: dict[str, Atom] = {}
    order: list[Signature] = []
    seen: set[Signature] = set()
    for rule in program.rules:
        for atom in rule_atoms(rule):
            prev = first.setdefault(atom.predicate, atom)
            if prev.arity != atom.arity:
                rep.add(
                    "arity-mismatch",
                    f"predicate '{atom.predicate}' is used with {atom.arity} argument(s) here "
                    f"but with {prev.arity} at line {prev.span.line}, column {prev.span.column}",
                    atom.span,
                    width=len(atom.predicate),
                )
            elif atom.signature not in seen:
                seen.add(atom.signature)
                order.append(atom.signature)
    return order


# safety (the binding rules themselves are in bindings.py) -------------------


def _check_safety(rule: Rule, rep: _Reporter) -> None:
    globals_of = aggregate_globals(rule)
    bound = binding_closure(rule.body, set(), globals_of)
    unsafe: dict[str, Var] = {}

    def need(vars_: Iterable[Var]) -> None:
        for v in vars_:
            if v.name not in bound and v.name not in unsafe:
                unsafe[v.name] = v

    need(rule.head.vars())
    for lit in rule.body:
        if isinstance(lit, Positive):
            for arg in lit.atom.args:
                if is_arith(arg):
                    need(term_vars(arg))
        elif isinstance(lit, Negative):
            need(v for v in lit.atom.vars() if not v.anonymous)
        elif isinstance(lit, Comparison):
            need(term_vars(lit.left) + term_vars(lit.right))
        elif isinstance(lit, Aggregate):
            need(v for g in (lit.left, lit.right) if g is not None for v in term_vars(g.term))
            globals_ = globals_of.get(id(lit), set())
            for el in lit.elements:
                # only the element's own variables matter: keeps this linear in the rule
                mine = {v.name for v in element_vars(el)}
                local_bound = binding_closure(el.condition, (bound & mine) | globals_, globals_of)
                inner: list[Var] = [v for t in el.terms for v in term_vars(t)]
                for c in el.condition:
                    if isinstance(c, Positive):
                        inner.extend(v for a in c.atom.args if is_arith(a) for v in term_vars(a))
                    elif isinstance(c, Negative):
                        inner.extend(v for v in c.atom.vars() if not v.anonymous)
                    else:
                        inner.extend(term_vars(c.left) + term_vars(c.right))
                for v in inner:
                    if v.name not in local_bound and v.name not in unsafe:
                        unsafe[v.name] = v
    for name, var in unsafe.items():
        shown = "_" if var.anonymous else name
        where = "anonymous variable '_'" if var.anonymous else f"variable '{shown}'"
        rep.add(
            "unsafe-variable",
            f"unsafe {where}: it must occur in a positive body atom or be assigned "
            "(X = expression) from bound variables",
            var.span,
            width=len(shown),
            notes=(f"in rule: {rule.text}",),
        )


# stratification --------------------------------------------------------------


class _Edge(NamedTuple):
    """A dependency of a rule's head on a body atom (one per body atom: cheap to make;
    the literal's text is only written for a diagnostic)."""

    target: Signature
    strict: bool
    literal: Literal

    @property
    def text(self) -> str:
        lit = self.literal
        return str(lit) if not isinstance(lit, Aggregate) else f"#{lit.function}{{...}}"


def _stratify(program: Program, rep: _Reporter) -> list[Stratum]:
    graph: dict[Signature, list[_Edge]] = {}
    rules_of: dict[Signature, list[Rule]] = {}
    nodes: list[Signature] = []

    def node(sig: Signature) -> None:
        if sig not in graph:
            graph[sig] = []
            nodes.append(sig)

    for rule in program.rules:
        h = rule.head.signature
        node(h)
        rules_of.setdefault(h, []).append(rule)
        for lit in rule.body:
            for atom, strict in body_atoms(lit):
                node(atom.signature)
                graph[h].append(_Edge(atom.signature, strict, lit))
    components = _tarjan(nodes, graph)
    comp_of = {sig: i for i, comp in enumerate(components) for sig in comp}
    strata: list[Stratum] = []
    for i, comp in enumerate(components):
        members = set(comp)
        recursive = False
        for sig in comp:
            for edge in graph[sig]:
                if comp_of[edge.target] != i:
                    continue
                recursive = True
                if edge.strict:
                    cycle = _cycle(graph, edge.target, sig, members)
                    kind = "an aggregate" if edge.text.startswith("#") else "negation"
                    path = " -> ".join(sig_text(s) for s in [sig, *cycle])
                    rep.add(
                        "unstratifiable",
                        f"program is not stratified: '{sig_text(sig)}' depends on itself through "
                        f"{kind} ({edge.text}); cycle: {path}",
                        edge.literal.span,
                        width=3 if kind == "negation" else None,
                    )
        rules = [r for sig in comp for r in rules_of.get(sig, [])]
        rules.sort(key=lambda r: r.index)
        strata.append(Stratum(list(comp), rules, recursive))
    return strata


def _cycle(
    graph: dict[Signature, list[_Edge]], start: Signature, goal: Signature, members: set[Signature]
) -> list[Signature]:
    """Shortest dependency path start → … → goal inside one component."""
    prev: dict[Signature, Signature | None] = {start: None}
    queue = [start]
    while queue:
        cur = queue.pop(0)
        if cur == goal:
            break
        for e in graph[cur]:
            if e.target in members and e.target not in prev:
                prev[e.target] = cur
                queue.append(e.target)
    path: list[Signature] = []
    at: Signature | None = goal
    while at is not None:
        path.append(at)
        at = prev.get(at)
    return list(reversed(path))


def _tarjan(nodes: list[Signature], graph: dict[Signature, list[_Edge]]) -> list[list[Signature]]:
    """Strongly connected components, dependencies before dependents (iterative)."""
    index: dict[Signature, int] = {}
    low: dict[Signature, int] = {}
    on_stack: set[Signature] = set()
    stack: list[Signature] = []
    out: list[list[Signature]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[Signature, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            edges = graph[v]
            recurse = False
            while i < len(edges):
                w = edges[i].target
                i += 1
                if w not in index:
                    work.append((v, i))
                    work.append((w, 0))
                    recurse = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                comp: list[Signature] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out


def _warn_undefined(program: Program, defined: set[Signature], rep: _Reporter) -> None:
    declared = {(d.predicate, d.arity) for d in program.defined}
    warned: set[Signature] = set(declared)
    for rule in program.rules:
        for lit in rule.body:
            for atom, _ in body_atoms(lit):
                sig = atom.signature
                if sig in defined:
                    continue
                if sig not in warned:
                    warned.add(sig)
                    rep.add(
                        "undefined-predicate",
                        f"predicate '{sig_text(sig)}' is not defined by the program; it must come "
                        f"from the case facts (declare it with '#defined {sig_text(sig)}.')",
                        atom.span,
                        severity="warning",
                        width=len(atom.predicate),
                    )
                for arg in atom.args:
                    if isinstance(arg, Sym):
                        rep.add(
                            "constant-matches-no-json",
                            f"'{arg.name}' is a constant, but case facts given as JSON hold strings: "
                            f'write "{arg.name}" to match the string',
                            arg.span,
                            severity="warning",
                            width=len(arg.name),
                        )
    used = {a.signature for r in program.rules for a in rule_atoms(r)}
    for show in program.shows:
        if (show.predicate, show.arity) not in used:
            rep.add(
                "undefined-predicate",
                f"'#show {show.predicate}/{show.arity}.' names a predicate the program never uses",
                show.span,
                severity="warning",
                width=5,
            )
