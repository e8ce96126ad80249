"""Demand-driven evaluation of reference data (magic sets): which predicates, and the rewrite.

A program with ``%@dataset`` materialises its case-independent model once
(reference.py). For a rule such as ``ok(A, B) :- ask(A, B), path(A, B).`` that
model holds the whole closure ``path``, although a case asks about a few pairs.
Here the program is rewritten so that such predicates are derived per case, and
only for the bindings the case's rules ask about:

- :func:`demanded` picks the predicates ``Q`` evaluated on demand (below);
- :func:`rewrite` adds to each rule of a ``Q`` predicate ``p`` a *guard*
  ``p#magic(bound args)`` as its last literal, and for each positive use of a
  ``Q`` predicate ``q`` in a rule, a *magic rule*
  ``q#magic(q's bound args) :- <its positive literals of other predicates>,
  <its comparisons over their variables>, <the rule's guard>.``

The rewritten program keeps every predicate's name: each ``p`` fact it derives is
one the original derives (its rules are the original rules with one more
literal), and every ``p`` fact a rule of the original reads at a demanded binding
is derived (the magic-sets argument: the magic rule for a use fires whenever the
rule's other positive literals hold, and those are exact or themselves demanded).
Dropping the negative literals and aggregates of a rule from its magic rules only
widens the demand. So every predicate outside ``Q`` has its original model, and
the answers are the original program's.

``Q`` (a fixpoint, shrinking): predicates with rules, whole strongly connected
components (strata), that are

- not dataset predicates and not shown (a shown relation must be complete);
- never read under ``not`` or inside an aggregate (those need the whole relation);
- bound at some argument position at every use (the *adornment*: the positions
  bound at every positive use, by the guard and the rule's literals of predicates
  outside ``Q``; a predicate with no such position is not demanded, it would be
  the whole relation per case). For a directly recursive predicate the adornment
  starts from the positions its recursion passes on unchanged (``X`` in
  ``path(X, Z) :- path(X, Y), edge(Y, Z).``) when some use binds them: the demand
  is then the seeds alone, without magic recursion;
- read, outside ``Q``'s own rules, only by rules with a positive literal of a
  predicate that is empty without case facts (no facts, no dataset, no rule that
  can fire without the case): then no demand exists without a case, the
  materialised model derives no ``Q`` fact (it holds their program facts only),
  and materialising costs the dataset's conversion and indexes.

A program whose rewrite is not stratified (a magic rule can close a cycle
through ``not``) gets no demand: :func:`rewrite` is then not used (ruleset.py).
Magic predicates are named ``<name>#magic``: no program, query or case can
name them (``#`` starts a directive).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .analyse import Analysis, body_atoms
from .bindings import Signature
from .syntax import Atom, Comparison, Num, Positive, Program, Rule, Str, Sym, Var, term_vars

MAGIC_SUFFIX = "#magic"
#: derived facts above which a case evaluated on demand is answered from the full
#: materialisation instead (``Ruleset.demand_budget``; docs/engine.md)
DEMAND_BUDGET = 20_000


def magic_signature(sig: Signature, adornment: tuple[int, ...]) -> Signature:
    return (f"{sig[0]}{MAGIC_SUFFIX}", len(adornment))


@dataclass(frozen=True)
class Demand:
    """The predicates evaluated on demand, each with its bound argument positions."""

    adornments: Mapping[Signature, tuple[int, ...]]

    @property
    def predicates(self) -> frozenset[Signature]:
        return frozenset(self.adornments)

    def magic(self) -> set[Signature]:
        return {magic_signature(sig, a) for sig, a in self.adornments.items()}


def _shown(program: Program, signatures: Iterable[Signature]) -> set[Signature]:
    if program.shows:
        return {(s.predicate, s.arity) for s in program.shows}
    if program.show_nothing:
        return set()
    return set(signatures)


def _is_ground(term: object) -> bool:
    return isinstance(term, Num | Str | Sym)


def _bound_vars(rule: Rule, guard_vars: set[str], outside: frozenset[Signature] | set[Signature]) -> set[str]:
    """The variables bound by the guard, the rule's positive literals of predicates
    outside ``outside`` (the demanded ones), and assignments ``V = expr`` over them."""
    bound = set(guard_vars)
    for lit in rule.body:
        if isinstance(lit, Positive) and lit.atom.signature not in outside:
            bound.update(v.name for v in lit.atom.vars() if not v.anonymous)
    changed = True
    while changed:
        changed = False
        for lit in rule.body:
            if isinstance(lit, Comparison) and lit.op == "=":
                for one, other in ((lit.left, lit.right), (lit.right, lit.left)):
                    if (
                        isinstance(one, Var)
                        and one.name not in bound
                        and all(v.name in bound for v in term_vars(other))
                    ):
                        bound.add(one.name)
                        changed = True
    return bound


def _guard_vars(rule: Rule, adornment: tuple[int, ...]) -> set[str]:
    return {v.name for j in adornment for v in term_vars(rule.head.args[j])}


def _bound_positions(atom: Atom, bound: set[str]) -> set[int]:
    return {j for j, arg in enumerate(atom.args) if all(v.name in bound for v in term_vars(arg))}


def _stable_positions(sig: Signature, rules: list[Rule]) -> set[int]:
    """The argument positions of ``sig`` that each of its rules passes unchanged (the
    same variable as the head's) to each use of ``sig`` in its body; empty when no rule
    of ``sig`` reads ``sig`` (no direct recursion)."""
    positions = set(range(sig[1]))
    recursive = False
    for r in rules:
        if r.head.signature != sig:
            continue
        for lit in r.body:
            if isinstance(lit, Positive) and lit.atom.signature == sig:
                recursive = True
                positions &= {
                    j
                    for j, (head, used) in enumerate(zip(r.head.args, lit.atom.args, strict=True))
                    if isinstance(head, Var) and isinstance(used, Var) and head.name == used.name
                }
    return positions if recursive else set()


def demanded(program: Program, analysis: Analysis, datasets: Iterable[Signature]) -> Demand:
    """The predicates of ``program`` to evaluate on demand (see the module docstring)."""
    rules = [r for r in program.rules if not r.is_fact]
    dataset = set(datasets)
    heads = {r.head.signature for r in rules}
    # predicates that may hold without any case fact: a least fixpoint from the
    # program's facts and the datasets over rules whose positive literals may all hold
    # (a worklist: a rule fires once its last positive literal's predicate may hold)
    nonempty: set[Signature] = set()
    waiting: list[int] = []  # per rule, its positive literals' predicates not yet known to hold
    readers: dict[Signature, list[int]] = {}
    for i, r in enumerate(rules):
        needs = {lit.atom.signature for lit in r.body if isinstance(lit, Positive)}
        waiting.append(len(needs))
        for sig in needs:
            readers.setdefault(sig, []).append(i)
    todo = [r.head.signature for r in program.rules if r.is_fact] + sorted(dataset)
    todo += [r.head.signature for i, r in enumerate(rules) if not waiting[i]]
    while todo:
        sig = todo.pop()
        if sig in nonempty:
            continue
        nonempty.add(sig)
        for i in readers.get(sig, ()):
            waiting[i] -= 1
            if not waiting[i]:
                todo.append(rules[i].head.signature)
    complete: set[Signature] = set(dataset) | _shown(program, analysis.signatures)
    for r in rules:
        for lit in r.body:
            for atom, nonmonotone in body_atoms(lit):
                if nonmonotone:
                    complete.add(atom.signature)
    component = {sig: i for i, st in enumerate(analysis.strata) for sig in st.predicates}
    members: dict[int, list[Signature]] = {}
    for sig, i in component.items():
        members.setdefault(i, []).append(sig)
    candidates = {sig for sig in heads if sig not in complete}
    # whole components only
    for sig in list(candidates):
        if any(other not in candidates for other in members.get(component.get(sig, -1), [sig])):
            candidates.discard(sig)

    # a recursive predicate's arguments that every recursive use passes on unchanged
    # (``X`` in ``path(X, Z) :- path(X, Y), edge(Y, Z).``): bound only there, the
    # recursion needs no magic rule (the demand is the seeds) and reads its base
    # relation in one direction only (one index on ``edge``, not two)
    by_head: dict[Signature, list[int]] = {}
    for i, r in enumerate(rules):
        by_head.setdefault(r.head.signature, []).append(i)
    stable = {sig: _stable_positions(sig, [rules[i] for i in by_head.get(sig, [])]) for sig in candidates}
    positives = [[lit.atom for lit in r.body if isinstance(lit, Positive)] for r in rules]
    matchable = {
        sig: set.intersection(
            *(
                {j for j, arg in enumerate(rules[i].head.args) if isinstance(arg, Var) or _is_ground(arg)}
                for i in by_head.get(sig, [])
            )
        )
        for sig in candidates
    }
    unrestricted: set[Signature] = set()
    while True:  # again only when a predicate's stable restriction is lifted
        found = _settle(
            rules,
            positives,
            by_head,
            candidates,
            nonempty,
            stable,
            matchable,
            unrestricted,
            component,
            members,
        )
        if isinstance(found, Demand):
            return found
        unrestricted |= found


def _settle(
    rules: list[Rule],
    positives: list[list[Atom]],
    by_head: dict[Signature, list[int]],
    candidates: set[Signature],
    nonempty: set[Signature],
    stable: dict[Signature, set[int]],
    matchable: dict[Signature, set[int]],
    unrestricted: set[Signature],
    component: dict[Signature, int],
    members: dict[int, list[Signature]],
) -> Demand | set[Signature]:
    """The adornments of ``candidates`` (a worklist over the rules: a rule is read again
    when its head's adornment shrinks or its head leaves the candidates; each adornment
    only shrinks, so near-linear in the program), dropping the components that fail;
    or the predicates whose stable restriction must be lifted (no use binds them)."""
    cands = set(candidates)
    adornment: dict[Signature, set[int]] = {}
    for sig in cands:
        keep = stable[sig] if stable[sig] and sig not in unrestricted else set(range(sig[1]))
        adornment[sig] = keep & matchable[sig]
    work = deque(range(len(rules)))
    queued = [True] * len(rules)
    lift: set[Signature] = set()

    def push(sig: Signature) -> None:
        for i in by_head.get(sig, ()):
            if not queued[i]:
                queued[i] = True
                work.append(i)

    def drop(sig: Signature) -> None:
        for other in members.get(component.get(sig, -1), [sig]):
            if other in cands:
                cands.discard(other)
                push(other)  # its rules now read demanded predicates from outside

    for sig in list(cands):
        if not adornment[sig]:
            drop(sig)
    while work:
        i = work.popleft()
        queued[i] = False
        r = rules[i]
        uses = [atom for atom in positives[i] if atom.signature in cands]
        if not uses:
            continue
        head = r.head.signature
        if head in cands:
            guard = _guard_vars(r, tuple(sorted(adornment[head])))
        else:
            guard = set()
            # a seed from outside Q must need a case fact, or Q is demanded without a case
            if not any(a.signature not in cands and a.signature not in nonempty for a in positives[i]):
                for atom in uses:
                    drop(atom.signature)
                continue
        bound = _bound_vars(r, guard, cands)
        for atom in uses:
            sig = atom.signature
            if sig not in cands:
                continue
            kept = adornment[sig] & _bound_positions(atom, bound)
            if kept == adornment[sig]:
                continue
            adornment[sig] = kept
            if kept:
                push(sig)
            elif stable[sig] and sig not in unrestricted:
                lift.add(sig)
            else:
                drop(sig)
        if lift:
            return lift
    return Demand({sig: tuple(sorted(adornment[sig])) for sig in sorted(cands)})


def rewrite(program: Program, demand: Demand) -> Program:
    """The program with guards on the rules of demanded predicates and the magic rules."""
    adorn = demand.adornments
    out: list[Rule] = []
    magic: list[Rule] = []
    seen: set[str] = set()
    next_index = len(program.rules)
    for r in program.rules:
        if r.is_fact:
            out.append(r)
            continue
        sig = r.head.signature
        guard: Positive | None = None
        if sig in adorn:
            name, _ = magic_signature(sig, adorn[sig])
            guard = Positive(Atom(name, tuple(r.head.args[j] for j in adorn[sig]), r.head.span))
            # last: the planner breaks ties by body position, and a guard read before a
            # literal that binds as much would be scanned per delta fact (a closure's
            # guard holds a row per demanded pair); last, it is a membership test
            out.append(Rule(r.head, (*r.body, guard), r.span, r.text, r.index))
        else:
            out.append(r)
        uses = [lit.atom for lit in r.body if isinstance(lit, Positive) and lit.atom.signature in adorn]
        if not uses:
            continue
        guard_vars = {v.name for v in guard.atom.vars()} if guard is not None else set()
        bound = _bound_vars(r, guard_vars, demand.predicates)
        context: list[Positive | Comparison] = [
            lit for lit in r.body if isinstance(lit, Positive) and lit.atom.signature not in adorn
        ]
        context += [
            lit
            for lit in r.body
            if isinstance(lit, Comparison)
            and all(v.name in bound for v in (*term_vars(lit.left), *term_vars(lit.right)))
        ]
        if guard is not None:
            context.append(guard)
        for atom in uses:
            name, _ = magic_signature(atom.signature, adorn[atom.signature])
            head = Atom(name, tuple(atom.args[j] for j in adorn[atom.signature]), atom.span)
            if guard is not None and str(head) == str(guard.atom):
                continue  # p#magic(X) :- ..., p#magic(X).: derives only what it reads
            body = tuple(context)
            text = f"{head} :- {', '.join(str(lit) for lit in body)}." if body else f"{head}."
            if text in seen:
                continue
            seen.add(text)
            magic.append(Rule(head, body, atom.span, text, next_index))
            next_index += 1
    return Program(
        out + magic,
        list(program.shows),
        program.show_nothing,
        list(program.defined),
        program.source,
        program.filename,
    )
