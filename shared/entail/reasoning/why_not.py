"""Why-not explanations: why a ground atom is *absent* from the model.

Contract: :func:`explain_absent` takes a :class:`~.ruleset.Result` (the model of
one evaluation) and a ground atom that does not hold, and returns a
:class:`WhyNot` (JSON schema ``entail.why_not.v1``, docs/proofs.md). For every
rule whose head unifies with the atom it lists where the rule's body fails:
the head binds what it can, then the body's literals are matched against the
model in written order (a literal whose variables a later literal binds waits
for it, as in a safe rule), and every partial match is followed until a literal
fails. Each failure says which literal, under which bindings, and why: a
positive atom with no matching fact, a negated atom that holds (its witness),
a comparison that is false (its values), an aggregate whose guard is false (its
value). Missing atoms of derived predicates are explained in turn, to a
bounded depth and breadth, cutting cycles.

Nothing is re-derived: the explanation only reads the model, so it costs a
join over the few facts the rule's body touches. Every claim is a statement
about the model that an independent checker can verify
(tests/differential/test_why_not.py does, against clingo).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import EntailError
from .parse import parse_atom
from .runtime import NAMESPACE, evaluate_term
from .syntax import (
    Aggregate,
    Atom,
    BinOp,
    Comparison,
    ConditionLiteral,
    Literal,
    Minus,
    Negative,
    Num,
    Positive,
    Rule,
    Str,
    Sym,
    TermNode,
    Var,
    is_anonymous_name,
    term_vars,
)
from .terms import Term, format_atom, format_term, sort_rows, to_json

if TYPE_CHECKING:
    from .ruleset import Result

SCHEMA = "entail.why_not.v1"


def why_not_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every why-not document conforms to."""
    import json
    from importlib import resources

    schema: dict[str, Any] = json.loads(
        resources.files("entail.reasoning").joinpath("schemas/why_not.v1.json").read_text()
    )
    return schema


# a target argument: a value, or None where any value is asked about (an unbound position)
Pattern = tuple[Term | None, ...]
Env = dict[str, Term]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": NAMESPACE["_lt"],
    "<=": NAMESPACE["_le"],
    ">": NAMESPACE["_gt"],
    ">=": NAMESPACE["_ge"],
}


class WhyNotError(EntailError):
    """A why-not question the engine cannot answer: not a ground atom, or the atom holds."""

    code = "invalid-why-not"

    def __init__(self, atom: str, message: str) -> None:
        self.atom = atom
        super().__init__(f"why-not {atom!r}: {message}")


@dataclass(frozen=True)
class WhyNotBounds:
    """How far an explanation goes; every cap is reported where it cuts."""

    depth: int = 3  # nested explanations of missing derived atoms below the asked atom
    breadth: int = 3  # nested explanations per explained atom
    failures: int = 5  # failures listed per rule (all are counted)
    steps: int = 20_000  # literal evaluations per explained atom


@dataclass
class Failure:
    """One partial match of a rule's body, and the literal at which it fails."""

    position: int  # index of the literal in the rule body (-1: the head, for a computed head)
    literal: str
    kind: str  # missing | negation_holds | comparison_false | aggregate_false | undefined | head_mismatch
    bindings: dict[str, Term]
    atom: str | None = None  # missing: the atom as ground as the bindings make it; negation: the atom
    args: Pattern | None = None  # missing: its arguments, None where unbound
    source: str | None = None  # missing: "input" (no rule derives it) or "derived"
    witness: str | None = None  # negation_holds: a fact of the model the negated atom matches
    evaluated: str | None = None  # comparison/aggregate: the relation with its values
    value: Term | None = None  # aggregate: its value
    cycle: bool = False  # missing: the atom is being explained further up (not expanded again)
    why_not: WhyNot | None = None  # missing + derived: the nested explanation
    # negation_holds, with reason templates: the witness's reasons (reasoning/reasons.py)
    reasons: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "position": self.position,
            "literal": self.literal,
            "kind": self.kind,
            "bindings": {k: to_json(v) for k, v in self.bindings.items()},
        }
        if self.atom is not None:
            out["atom"] = self.atom
        if self.args is not None:
            out["args"] = [None if a is None else to_json(a) for a in self.args]
        if self.source is not None:
            out["source"] = self.source
        if self.witness is not None:
            out["witness"] = self.witness
        if self.evaluated is not None:
            out["evaluated"] = self.evaluated
        if self.value is not None:
            out["value"] = to_json(self.value)
        if self.cycle:
            out["cycle"] = True
        if self.why_not is not None:
            out["why_not"] = self.why_not.to_json(top=False)
        if self.reasons is not None:
            out["reasons"] = self.reasons
        return out


@dataclass
class RuleAttempt:
    """One rule whose head unifies with the atom, and how each partial match of its body failed."""

    index: int
    line: int
    text: str
    head_bindings: dict[str, Term]
    failures: list[Failure] = field(default_factory=list)  # the first WhyNotBounds.failures
    total_failures: int = 0
    complete: bool = True  # False when the step budget cut the enumeration

    @property
    def failed_positions(self) -> list[int]:
        return sorted({f.position for f in self.failures})

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": {"index": self.index, "line": self.line, "text": self.text},
            "head_bindings": {k: to_json(v) for k, v in self.head_bindings.items()},
            "failures": [f.to_json() for f in self.failures],
            "total_failures": self.total_failures,
            "complete": self.complete,
        }


@dataclass
class WhyNot:
    """Why an atom (or, nested, any atom matching a pattern) is not in the model."""

    atom: str
    predicate: str
    args: Pattern
    source: str  # "input": no rule derives the predicate; "derived"
    rules: list[RuleAttempt]
    message: str | None = None  # set when no rule can derive the atom at all
    truncated: bool = False  # the depth or breadth cap stopped nested explanations here

    def to_json(self, top: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if top:
            out["schema"] = SCHEMA
        out.update(
            {
                "atom": self.atom,
                "predicate": self.predicate,
                "args": [None if a is None else to_json(a) for a in self.args],
                "holds": False,
                "source": self.source,
                "rules": [r.to_json() for r in self.rules],
            }
        )
        if self.message is not None:
            out["message"] = self.message
        if self.truncated:
            out["truncated"] = True
        return out

    def render_text(self, indent: int = 0) -> str:
        return "\n".join(_render(self, indent))


# -- the explainer ----------------------------------------------------------------------


def explain_absent(result: Result, atom: str, bounds: WhyNotBounds | None = None) -> WhyNot:
    """Why the ground ``atom`` (clingo text, e.g. ``decision("bob",approved)``) is not in
    the model of ``result``. Raises :class:`WhyNotError` if it is not a ground atom or holds."""
    predicate, values = parse_ground_atom(atom)
    # a result evaluated on demand holds part of some relations: why-not reads them all
    explainer = _Explainer(result.complete, bounds or WhyNotBounds())
    if explainer.holds(predicate, values):
        raise WhyNotError(atom, "the atom holds in the model; ask for its proof instead")
    return explainer.explain(predicate, values, 0, frozenset())


def parse_ground_atom(text: str) -> tuple[str, tuple[Term, ...]]:
    """``p(a,"b",-1)`` → ``("p", (Const("a"), "b", -1))``; WhyNotError if not a ground atom."""
    from .errors import ProgramError

    try:
        parsed = parse_atom(text.strip())
    except ProgramError as exc:
        d = exc.diagnostics[0]
        raise WhyNotError(text, f"{d.message} (column {d.column})") from None
    values: list[Term] = []
    for arg in parsed.args:
        if term_vars(arg):
            raise WhyNotError(text, f"argument {arg} has a variable; ask about a ground atom")
        value = evaluate_term(arg, {})
        if value is None:
            raise WhyNotError(text, f"argument {arg} is undefined")
        values.append(value)
    return parsed.predicate, tuple(values)


def _pattern_text(predicate: str, args: Pattern) -> str:
    if not args:
        return predicate
    return f"{predicate}({','.join('_' if a is None else format_term(a) for a in args)})"


class _Explainer:
    def __init__(self, result: Result, bounds: WhyNotBounds) -> None:
        self.bounds = bounds
        self.F = result._store.F
        self.pids = {sig: pid for pid, sig in enumerate(result._sigs)}
        program = result._ruleset.program
        self.rules_by_sig: dict[tuple[str, int], list[Rule]] = {}
        self.facts_by_sig: set[tuple[str, int]] = set()
        for rule in program.rules:
            if rule.is_fact:
                self.facts_by_sig.add(rule.head.signature)
            else:
                self.rules_by_sig.setdefault(rule.head.signature, []).append(rule)
        self.walker = result._reasons
        self._outside: dict[tuple[int, int], set[str]] = {}
        self._indexes: dict[tuple[int, tuple[int, ...]], dict[tuple[Term, ...], list[tuple[Term, ...]]]] = {}
        self.steps = 0

    # model access

    def rows(self, sig: tuple[str, int], bound: dict[int, Term]) -> list[tuple[Term, ...]]:
        """Facts of ``sig`` with the given values at the given positions, in term order."""
        pid = self.pids.get(sig)
        if pid is None:
            return []
        cols = tuple(sorted(bound))
        key = (pid, cols)
        index = self._indexes.get(key)
        if index is None:
            index = {}
            for row in sort_rows(self.F[pid]):
                index.setdefault(tuple(row[c] for c in cols), []).append(row)
            self._indexes[key] = index
        return index.get(tuple(bound[c] for c in cols), [])

    def holds(self, predicate: str, values: tuple[Term, ...]) -> bool:
        pid = self.pids.get((predicate, len(values)))
        return pid is not None and values in self.F[pid]

    def source(self, sig: tuple[str, int]) -> str:
        return "derived" if sig in self.rules_by_sig else "input"

    # explanation of one pattern

    def explain(self, predicate: str, args: Pattern, depth: int, ancestors: frozenset[Any]) -> WhyNot:
        sig = (predicate, len(args))
        text = _pattern_text(predicate, args)
        rules = self.rules_by_sig.get(sig, [])
        out = WhyNot(text, f"{predicate}/{len(args)}", args, self.source(sig), [])
        if not rules:
            facts = " and it is not among the facts" if sig not in self.facts_by_sig else ""
            out.message = f"no rule derives {predicate}/{len(args)}{facts}"
            return out
        self.steps = 0
        children_left = self.bounds.breadth
        ancestors = ancestors | {(predicate, args)}
        for rule in rules:
            head_env = _unify_head(rule.head, args)
            if head_env is None:
                continue
            attempt = RuleAttempt(rule.index, rule.span.line, rule.text, dict(head_env))
            self._attempt(rule, args, head_env, attempt)
            out.rules.append(attempt)
        if not out.rules:
            out.message = f"no rule for {predicate}/{len(args)} has a head that matches {text}"
        # nested explanations of this atom's missing derived atoms, in the order of its
        # failures, once all its rules are done (each nested one resets the step budget)
        for attempt in out.rules:
            for failure in attempt.failures:
                if failure.kind != "missing" or failure.source != "derived" or failure.args is None:
                    continue
                assert failure.atom is not None
                name = _predicate_of(failure.atom)
                child_key = (name, failure.args)
                if child_key in ancestors:
                    failure.cycle = True
                    continue
                if depth >= self.bounds.depth or children_left <= 0:
                    out.truncated = True
                    continue
                children_left -= 1
                failure.why_not = self.explain(name, failure.args, depth + 1, ancestors)
        return out

    def _attempt(self, rule: Rule, target: Pattern, head_env: Env, attempt: RuleAttempt) -> None:
        try:
            for failure in self._matches(rule, target, head_env, frozenset(), attempt):
                attempt.total_failures += 1
                if len(attempt.failures) < self.bounds.failures:
                    attempt.failures.append(failure)
        except _OutOfSteps:  # inside an aggregate: its value unknown, no claim is made about it
            attempt.complete = False

    def _matches(
        self, rule: Rule, target: Pattern, env: Env, done: frozenset[int], attempt: RuleAttempt
    ) -> Iterator[Failure]:
        """Follow every partial match of ``rule``'s body from ``env``; yield where each fails."""
        if self.steps >= self.bounds.steps:
            attempt.complete = False
            return
        self.steps += 1
        position = self._next_literal(rule, env, done)
        if position is None:
            if len(done) < len(rule.body):  # unreachable for a safe rule: kept total anyway
                attempt.complete = False
                return
            head = tuple(evaluate_term(a, env) for a in rule.head.args)
            mismatch = any(h is None or (t is not None and h != t) for h, t in zip(head, target, strict=True))
            if not mismatch:
                raise AssertionError(f"{rule.text} derives {_pattern_text(rule.head.predicate, target)}")
            shown = "undefined" if None in head else format_atom(rule.head.predicate, head)  # type: ignore[arg-type]
            yield Failure(-1, str(rule.head), "head_mismatch", _visible(env), evaluated=shown)
            return
        lit = rule.body[position]
        now = done | {position}
        if isinstance(lit, Positive):
            matched = False
            for extended in self._positive(lit.atom, env):
                matched = True
                yield from self._matches(rule, target, extended, now, attempt)
            if not matched:
                yield self._missing(position, lit, env)
            return
        outcome = self._filter(lit, env, position)
        if isinstance(outcome, Failure):
            yield outcome
        else:
            yield from self._matches(rule, target, outcome, now, attempt)

    def _next_literal(self, rule: Rule, env: Env, done: frozenset[int]) -> int | None:
        """The first literal in written order that can be evaluated under ``env``."""
        for position, lit in enumerate(rule.body):
            if position not in done and self._ready(lit, env, rule, position):
                return position
        return None

    def _ready(self, lit: Literal, env: Env, rule: Rule, position: int) -> bool:
        if isinstance(lit, Positive):
            # an argument computed from unbound variables is solved for them (gringo inverts
            # ``X+1``, ``2*X``, ``-X``): ready when each such argument has one unbound variable
            return all(
                isinstance(a, Var) or len({v.name for v in term_vars(a) if v.name not in env}) <= 1
                for a in lit.atom.args
            )
        if isinstance(lit, Negative):
            return all(v.anonymous or v.name in env for v in lit.atom.vars())
        if isinstance(lit, Comparison):
            unbound = {v.name for t in (lit.left, lit.right) for v in term_vars(t) if v.name not in env}
            if not unbound:
                return True
            return lit.op == "=" and _assigned_side(lit, env) is not None
        outside = self._outside_vars(rule, position)
        local = {v.name for el in lit.elements for t in _element_terms(el) for v in term_vars(t)}
        if any(name in outside and name not in env for name in local):
            return False
        guards = [g for g in (lit.left, lit.right) if g is not None]
        return all(
            all(v.name in env for v in term_vars(g.term)) or (g.op == "=" and isinstance(g.term, Var))
            for g in guards
        )

    def _outside_vars(self, rule: Rule, position: int) -> set[str]:
        """Variables of ``rule`` outside the aggregate at ``position`` (its global variables)."""
        key = (rule.index, position)
        found = self._outside.get(key)
        if found is None:
            found = {v.name for v in rule.head.vars()}
            for i, lit in enumerate(rule.body):
                if i == position:
                    continue
                if isinstance(lit, Aggregate):
                    for g in (lit.left, lit.right):
                        if g is not None:
                            found |= {v.name for v in term_vars(g.term)}
                elif isinstance(lit, Comparison):
                    found |= {v.name for t in (lit.left, lit.right) for v in term_vars(t)}
                else:
                    found |= {v.name for v in lit.atom.vars()}
            agg = rule.body[position]
            assert isinstance(agg, Aggregate)
            for g in (agg.left, agg.right):
                if g is not None:
                    found |= {v.name for v in term_vars(g.term)}
            self._outside[key] = found
        return found

    # literals

    def _positive(self, atom: Atom, env: Env) -> Iterator[Env]:
        bound: dict[int, Term] = {}
        free: list[tuple[int, str]] = []
        solved: list[tuple[int, TermNode]] = []  # arithmetic over an unbound variable
        for i, a in enumerate(atom.args):
            if isinstance(a, Var):
                if a.anonymous:
                    continue
                if a.name in env:
                    bound[i] = env[a.name]
                else:
                    free.append((i, a.name))
                continue
            if any(v.name not in env for v in term_vars(a)):
                solved.append((i, a))
                continue
            value = evaluate_term(a, env)
            if value is None:  # undefined arithmetic: no instance of the literal exists
                return
            bound[i] = value
        for row in self.rows(atom.signature, bound):
            extended: Env | None = dict(env)
            for i, name in free:
                assert extended is not None
                seen = extended.get(name)
                if seen is None:
                    extended[name] = row[i]
                elif seen != row[i]:
                    extended = None
                    break
            for i, term in solved:
                if extended is None:
                    break
                extended = _solve_for(term, row[i], extended)
            if extended is not None:
                yield extended

    def _missing(self, position: int, lit: Positive, env: Env) -> Failure:
        parts: list[str] = []
        args: list[Term | None] = []
        names: list[str] = []
        recursable = True
        for a in lit.atom.args:
            if isinstance(a, Var) and a.name not in env:
                parts.append("_" if a.anonymous else a.name)
                if not a.anonymous:
                    recursable &= a.name not in names
                    names.append(a.name)
                args.append(None)
                continue
            if any(v.name not in env for v in term_vars(a)):  # X+1 with X unbound
                parts.append(_plain_term(a))
                args.append(None)
                recursable = False
                continue
            value = evaluate_term(a, env)
            if value is None:  # undefined arithmetic (e.g. "a"+1): nothing to look for
                return Failure(
                    position, str(lit), "undefined", _visible(env), atom=str(lit.atom), evaluated="undefined"
                )
            parts.append(format_term(value))
            args.append(value)
        text = lit.atom.predicate + (f"({','.join(parts)})" if parts else "")
        return Failure(
            position,
            str(lit),
            "missing",
            _visible(env),
            atom=text,
            # a repeated unbound variable is a constraint a pattern cannot state: no nested explanation
            args=tuple(args) if recursable else None,
            source=self.source(lit.atom.signature),
        )

    def _filter(self, lit: Literal, env: Env, position: int) -> Env | Failure:
        if isinstance(lit, Negative):
            bound: dict[int, Term] = {}
            shown: list[str] = []
            for i, a in enumerate(lit.atom.args):
                if isinstance(a, Var) and a.anonymous:
                    shown.append("_")
                    continue
                value = evaluate_term(a, env)
                if value is None:  # undefined: the rule instance does not exist
                    return Failure(position, str(lit), "undefined", _visible(env), evaluated="undefined")
                bound[i] = value
                shown.append(format_term(value))
            witnesses = self.rows(lit.atom.signature, bound)
            if not witnesses:
                return env
            atom = lit.atom.predicate + (f"({','.join(shown)})" if shown else "")
            reasons = None
            pid = self.pids.get(lit.atom.signature)
            if self.walker is not None and pid is not None:  # why the witness holds, in reasons
                reasons = [r.to_json() for r in self.walker.reasons(pid, witnesses[0])] or None
            return Failure(
                position,
                str(lit),
                "negation_holds",
                _visible(env),
                atom=atom,
                witness=format_atom(lit.atom.predicate, witnesses[0]),
                reasons=reasons,
            )
        if isinstance(lit, Comparison):
            side = _assigned_side(lit, env)
            if side is not None:
                var, expr = side
                value = evaluate_term(expr, env)
                if value is None:
                    return Failure(position, str(lit), "undefined", _visible(env), evaluated="undefined")
                return {**env, var: value}
            left = evaluate_term(lit.left, env)
            right = evaluate_term(lit.right, env)
            if left is None or right is None:
                return Failure(position, str(lit), "undefined", _visible(env), evaluated="undefined")
            if _COMPARE[lit.op](left, right):
                return env
            evaluated = f"{format_term(left)} {lit.op} {format_term(right)}"
            return Failure(position, str(lit), "comparison_false", _visible(env), evaluated=evaluated)
        assert isinstance(lit, Aggregate)
        return self._aggregate(lit, env, position)

    def _aggregate(self, lit: Aggregate, env: Env, position: int) -> Env | Failure:
        assigning = [
            g
            for g in (lit.left, lit.right)
            if g is not None and g.op == "=" and isinstance(g.term, Var) and g.term.name not in env
        ]
        tuples: set[tuple[Term, ...]] = set()
        for el in lit.elements:
            for local in self._solve(el.condition, env):
                values = tuple(evaluate_term(t, local) for t in el.terms)
                if None not in values:
                    tuples.add(values)  # type: ignore[arg-type]
        guard = "_guard" if lit.function == "sum" and not assigning else ""
        value: Term = NAMESPACE[f"_agg_{lit.function}{guard}"](tuples)
        out = dict(env)
        for g, value_left in ((lit.left, False), (lit.right, True)):
            if g is None:
                continue
            if g in assigning:
                assert isinstance(g.term, Var)
                out[g.term.name] = value
                continue
            bound = evaluate_term(g.term, out)
            if bound is None:
                return Failure(position, str(lit), "undefined", _visible(env), evaluated="undefined")
            left, right = (value, bound) if value_left else (bound, value)
            if not _COMPARE[g.op](left, right):
                return Failure(
                    position,
                    str(lit),
                    "aggregate_false",
                    _visible(env),
                    evaluated=f"{format_term(left)} {g.op} {format_term(right)}",
                    value=value,
                )
        return out

    def _solve(self, condition: tuple[ConditionLiteral, ...], env: Env) -> Iterator[Env]:
        """Every way an aggregate element's condition holds in the model under ``env``."""
        positives = [c for c in condition if isinstance(c, Positive)]
        others = [c for c in condition if not isinstance(c, Positive)]

        def join(i: int, local: Env) -> Iterator[Env]:
            self.steps += 1  # an aggregate over a large relation counts against the budget too
            if self.steps > self.bounds.steps:
                raise _OutOfSteps
            if i < len(positives):
                for extended in self._positive(positives[i].atom, local):
                    yield from join(i + 1, extended)
                return
            for lit in others:
                if isinstance(lit, Comparison) and any(
                    v.name not in local for t in (lit.left, lit.right) for v in term_vars(t)
                ):
                    side = _assigned_side(lit, local)
                    if side is None:
                        return
                    value = evaluate_term(side[1], local)
                    if value is None:
                        return
                    local = {**local, side[0]: value}
                    continue
                outcome = self._filter(lit, local, -1)
                if isinstance(outcome, Failure):
                    return
                local = outcome
            yield local

        yield from join(0, env)


class _OutOfSteps(Exception):
    """The step budget ran out while an aggregate was being computed."""


def _plain_term(term: TermNode) -> str:
    text = str(term)
    return text[1:-1] if isinstance(term, BinOp) else text


def _predicate_of(atom_text: str) -> str:
    return atom_text.split("(", 1)[0]


def _element_terms(el: Any) -> list[TermNode]:
    terms: list[TermNode] = list(el.terms)
    for c in el.condition:
        if isinstance(c, Comparison):
            terms += [c.left, c.right]
        else:
            terms += list(c.atom.args)
    return terms


def _assigned_side(lit: Comparison, env: Env) -> tuple[str, TermNode] | None:
    """For ``X = expr`` (either way round) with X unbound and expr bound: (X, expr)."""
    if lit.op != "=":
        return None
    for var, expr in ((lit.left, lit.right), (lit.right, lit.left)):
        if (
            isinstance(var, Var)
            and not var.anonymous
            and var.name not in env
            and all(v.name in env for v in term_vars(expr))
        ):
            return var.name, expr
    return None


def _solve_for(term: TermNode, value: Term, env: Env) -> Env | None:
    """``env`` extended so that ``term`` (one unbound variable, under + - * and unary
    minus) evaluates to ``value``; None if no integer does. The solution is checked by
    evaluating the term, so 32-bit wrap-around never yields a wrong binding."""
    unbound = {v.name for v in term_vars(term) if v.name not in env}
    if len(unbound) != 1 or type(value) is not int:
        if not unbound and evaluate_term(term, env) == value:
            return env
        return None
    (name,) = unbound
    candidate = _invert(term, value, env)
    if candidate is None:
        return None
    extended = {**env, name: candidate}
    return extended if evaluate_term(term, extended) == value else None


def _invert(term: TermNode, value: int, env: Env) -> int | None:
    if isinstance(term, Var):
        return value
    if isinstance(term, Minus):
        return _invert(term.operand, -value, env)
    if not isinstance(term, BinOp):
        return None
    left_free = any(v.name not in env for v in term_vars(term.left))
    free, other = (term.left, term.right) if left_free else (term.right, term.left)
    known = evaluate_term(other, env)
    if type(known) is not int:
        return None
    if term.op == "+":
        return _invert(free, value - known, env)
    if term.op == "-":
        return _invert(free, value + known if left_free else known - value, env)
    if term.op == "*" and known != 0 and value % known == 0:
        return _invert(free, value // known, env)
    return None


def _unify_head(head: Atom, target: Pattern) -> Env | None:
    """Bindings the head gets from the target, or None if no instance of it can match."""
    env: Env = {}
    for arg, value in zip(head.args, target, strict=True):
        if value is None:
            continue
        if isinstance(arg, Var):
            seen = env.get(arg.name)
            if seen is None:
                env[arg.name] = value
            elif seen != value:
                return None
            continue
        if isinstance(arg, Num | Str | Sym) or (isinstance(arg, Minus) and not term_vars(arg)):
            if evaluate_term(arg, {}) != value:
                return None
            continue
        if isinstance(arg, BinOp) and not term_vars(arg):
            ground = evaluate_term(arg, {})
            if ground is None or ground != value:
                return None
        # computed from variables: whether it matches is decided once the body binds them
    return env


def _visible(env: Env) -> dict[str, Term]:
    return {k: v for k, v in env.items() if not is_anonymous_name(k)}


# -- text ------------------------------------------------------------------------------------

_FAILURE_TEXT: dict[str, str] = {
    "missing": "no fact {atom} ({source})",
    "negation_holds": "{atom} holds: {witness}",
    "comparison_false": "false: {evaluated}",
    "aggregate_false": "false: {evaluated}",
    "undefined": "undefined arithmetic",
    "head_mismatch": "derives {evaluated} instead",
}


def _render(why: WhyNot, indent: int) -> list[str]:
    pad = "  " * indent
    lines = [f"{pad}why not {why.atom}:"]
    if why.message is not None:
        lines.append(f"{pad}  {why.message}")
    for attempt in why.rules:
        head = ", ".join(f"{k}={format_term(v)}" for k, v in attempt.head_bindings.items())
        lines.append(f"{pad}  rule, line {attempt.line}: {attempt.text}" + (f"  with {head}" if head else ""))
        for f in attempt.failures:
            where = "head" if f.position < 0 else f"literal {f.position + 1}"
            binds = ", ".join(f"{k}={format_term(v)}" for k, v in f.bindings.items())
            detail = _FAILURE_TEXT[f.kind].format(
                atom=f.atom, source=f.source, witness=f.witness, evaluated=f.evaluated
            )
            lines.append(f"{pad}    {where} {f.literal}: {detail}" + (f"  [{binds}]" if binds else ""))
            for reason in f.reasons or ():
                lines.append(f"{pad}      reason {reason['code']}: {reason['message']}")
            if f.cycle:
                lines.append(f"{pad}      ({f.atom} is being explained above)")
            if f.why_not is not None:
                lines.extend(_render(f.why_not, indent + 3))
        hidden = attempt.total_failures - len(attempt.failures)
        if hidden > 0:
            lines.append(f"{pad}    … {hidden} more partial match(es) fail")
        if not attempt.complete:
            lines.append(f"{pad}    … the search stopped at its step limit")
    if why.truncated:
        lines.append(f"{pad}  (nested explanations cut at the depth/breadth limit)")
    return lines


# -- the service's form ----------------------------------------------------------------------

MAX_ATOMS = 20  # why-not atoms per decision request
MAX_ATOM_CHARS = 1000


def check_atoms(atoms: list[str]) -> None:
    """Refuse (WhyNotError) a request's why-not atoms that could never be explained:
    too many, too long, not parsing, not ground. Whether each holds is decided later."""
    if len(atoms) > MAX_ATOMS:
        raise WhyNotError(atoms[MAX_ATOMS], f"at most {MAX_ATOMS} atoms per request")
    for atom in atoms:
        if len(atom) > MAX_ATOM_CHARS:
            raise WhyNotError(atom[:40] + "…", f"longer than {MAX_ATOM_CHARS} characters")
        parse_ground_atom(atom)


def why_not_json(result: Result, atom: str, bounds: WhyNotBounds | None = None) -> dict[str, Any]:
    """The explanation of one requested atom as a decision carries it: the
    ``entail.why_not.v1`` document, or, for an atom that holds, ``"holds": true``
    and a message (a request may ask about atoms whose outcome it does not know)."""
    predicate, values = parse_ground_atom(atom)
    # a result evaluated on demand holds part of some relations: why-not reads them all
    explainer = _Explainer(result.complete, bounds or WhyNotBounds())
    if explainer.holds(predicate, values):
        return {
            "schema": SCHEMA,
            "atom": format_atom(predicate, values),
            "holds": True,
            "message": "the atom holds in the model: query it with explain for its proof",
        }
    return explainer.explain(predicate, values, 0, frozenset()).to_json()
