"""An independent checker for why-not explanations (schema ``entail.why_not.v1``).

Like :mod:`.proof_checker` it trusts nothing from the engine but the JSON: rule
texts are re-parsed with clingo's AST parser, bindings are substituted and each
claim is re-evaluated with gringo's semantics against the model clingo
computed. An explanation passes when

- its atom (a pattern: ``null`` arguments stand for any value) matches no atom
  of clingo's model, and ``holds`` is false;
- the rules it lists are exactly the program's rules (with a body) whose head
  can unify with the atom, each with the bindings the head gives;
- every failure is a real partial match that really fails: its bindings extend
  the head bindings, every literal before it in written order that they make
  evaluable holds under them, and the failing literal fails as stated — a
  ``missing`` atom matches nothing in the model (``source`` says whether a rule
  derives its predicate), a ``negation_holds`` witness is in the model and
  instantiates the negated atom, a ``comparison_false`` / ``aggregate_false``
  relation is false with the values given, an ``undefined`` literal is
  undefined, a ``head_mismatch`` head evaluates to another atom;
- nested explanations pass the same checks for the missing atom they explain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import clingo
from clingo import ast

from .clingo_ref import FactsJson
from .proof_checker import (
    _COMPARE,
    Model,
    ProofChecker,
    ProofError,
    UndefinedTerm,
    _head_atom,
    _relation_holds,
    aggregate_value,
    evaluate_term,
    parse_body_literal,
    parse_statements,
    symbol_from_json,
    try_evaluate,
)

Pattern = tuple[clingo.Symbol | None, ...]


class WhyNotChecker:
    """Checks the why-not explanations of one evaluation against clingo's model."""

    def __init__(self, source: str, facts: FactsJson, model_atoms: Iterable[clingo.Symbol]) -> None:
        self.model = Model(model_atoms)
        self._aggregates = ProofChecker(source, facts, self.model.atoms)  # aggregate recomputation
        self.rules: list[tuple[int, ast.AST]] = []  # (index among statements, rule) of rules with a body
        for index, statement in enumerate(
            s for s in parse_statements(source) if s.ast_type == ast.ASTType.Rule
        ):
            if statement.body:
                self.rules.append((index, statement))
        self.derived = {(_head_atom(rule).name, len(_head_atom(rule).arguments)) for _, rule in self.rules}

    def check(self, explanation: Any, path: str = "why_not") -> None:
        if not isinstance(explanation, dict) or explanation.get("holds") is not False:
            raise ProofError(f"{path}: not a why-not explanation: {explanation!r}")
        predicate, arity = str(explanation["predicate"]).rsplit("/", 1)
        pattern: Pattern = tuple(None if a is None else symbol_from_json(a) for a in explanation["args"])
        if len(pattern) != int(arity):
            raise ProofError(f"{path}: {len(pattern)} args for {predicate}/{arity}")
        witness = next(self.model.matching(predicate, pattern), None)
        if witness is not None:
            raise ProofError(f"{path}: {explanation['atom']} holds in clingo's model: {witness}")
        expected_source = "derived" if (predicate, len(pattern)) in self.derived else "input"
        if explanation["source"] != expected_source:
            raise ProofError(f"{path}: source {explanation['source']!r}, expected {expected_source!r}")
        unifying = {}
        for index, rule in self.rules:
            head = _head_atom(rule)
            if head.name != predicate or len(head.arguments) != len(pattern):
                continue
            env = _head_unify(head, pattern)
            if env is not None:
                unifying[index] = (rule, env)
        listed = {r["rule"]["index"]: r for r in explanation["rules"]}
        if len(listed) != len(explanation["rules"]) or set(listed) != set(unifying):
            raise ProofError(
                f"{path}: lists rules {sorted(listed)}, the heads of rules {sorted(unifying)} unify"
            )
        if not unifying and not explanation.get("message"):
            raise ProofError(f"{path}: no rule unifies and no message says so")
        for index, attempt in listed.items():
            rule, head_env = unifying[index]
            self._attempt(rule, head_env, pattern, attempt, f"{path}.rule[{index}]")

    def _attempt(
        self,
        rule: ast.AST,
        head_env: dict[str, clingo.Symbol],
        pattern: Pattern,
        attempt: dict[str, Any],
        path: str,
    ) -> None:
        if str(parse_statements(attempt["rule"]["text"])[0]) != str(rule):
            raise ProofError(f"{path}: rule text {attempt['rule']['text']!r} is not {rule}")
        given = {k: symbol_from_json(v) for k, v in attempt["head_bindings"].items()}
        if given != head_env:
            raise ProofError(f"{path}: head bindings {given}, the head gives {head_env}")
        failures = attempt["failures"]
        total = attempt["total_failures"]
        if attempt["complete"] and total < 1:
            raise ProofError(f"{path}: a complete search found no failing partial match")
        if len(failures) > total:
            raise ProofError(f"{path}: {len(failures)} failures listed of {total}")
        for number, failure in enumerate(failures):
            self._failure(rule, head_env, pattern, failure, f"{path}.failures[{number}]")

    def _failure(
        self,
        rule: ast.AST,
        head_env: Mapping[str, clingo.Symbol],
        pattern: Pattern,
        failure: dict[str, Any],
        path: str,
    ) -> None:
        env = {k: symbol_from_json(v) for k, v in failure["bindings"].items()}
        for name, value in head_env.items():
            if env.get(name) != value:
                raise ProofError(f"{path}: bindings {env} drop the head binding {name}={value}")
        position = failure["position"]
        kind = failure["kind"]
        if kind == "head_mismatch":
            if position != -1:
                raise ProofError(f"{path}: head_mismatch at position {position}")
            for index, literal in enumerate(rule.body):
                if not self._holds(literal, env, path):
                    raise ProofError(f"{path}: body literal {index} {literal} is false under {env}")
            try:
                head = evaluate_term(_head_atom(rule), env)
            except UndefinedTerm:
                return
            if _matches(head, pattern):
                raise ProofError(f"{path}: the body holds and the head {head} is the asked atom")
            return
        literal = rule.body[position]
        if str(parse_body_literal(failure["literal"])) != str(literal):
            raise ProofError(f"{path}: literal {failure['literal']!r} is not {literal}")
        for index in range(position):
            earlier = rule.body[index]
            if _evaluable(earlier, env) and not self._holds(earlier, env, path):
                raise ProofError(f"{path}: earlier literal {earlier} is false under {env}")
        atom = literal.atom
        if kind == "missing":
            if literal.sign != ast.Sign.NoSign or atom.ast_type != ast.ASTType.SymbolicAtom:
                raise ProofError(f"{path}: 'missing' for {literal}")
            symbol = atom.symbol
            for candidate in self.model.with_signature(symbol.name, len(symbol.arguments)):
                if _unify(symbol.arguments, candidate.arguments, dict(env)) is not None:
                    raise ProofError(f"{path}: {literal} under {env} matches {candidate} in clingo's model")
            source = "derived" if (symbol.name, len(symbol.arguments)) in self.derived else "input"
            if failure["source"] != source:
                raise ProofError(f"{path}: source {failure['source']!r}, expected {source!r}")
            args = failure.get("args")
            if args is not None:
                for term, arg in zip(symbol.arguments, args, strict=True):
                    bound = None if _unbound(term, env) else try_evaluate(term, env)
                    if (None if arg is None else symbol_from_json(arg)) != bound:
                        raise ProofError(f"{path}: args {args} do not instantiate {literal} under {env}")
            nested = failure.get("why_not")
            if nested is not None:
                self.check(nested, f"{path}.why_not")
        elif kind == "negation_holds":
            if literal.sign != ast.Sign.Negation:
                raise ProofError(f"{path}: 'negation_holds' for {literal}")
            witness = clingo.parse_term(failure["witness"])
            if witness not in self.model:
                raise ProofError(f"{path}: witness {witness} is not in clingo's model")
            symbol = atom.symbol
            if witness.name != symbol.name or _unify(symbol.arguments, witness.arguments, dict(env)) is None:
                raise ProofError(f"{path}: witness {witness} does not instantiate {literal} under {env}")
        elif kind == "comparison_false":
            if atom.ast_type != ast.ASTType.Comparison:
                raise ProofError(f"{path}: 'comparison_false' for {literal}")
            values = [evaluate_term(atom.term, env), *(evaluate_term(g.term, env) for g in atom.guards)]
            if _chain_holds(atom, values):
                raise ProofError(f"{path}: {literal} holds under {env}")
            evaluated = f"{values[0]} {_COMPARE[atom.guards[0].comparison][0]} {values[1]}"
            if failure["evaluated"] != evaluated:
                raise ProofError(f"{path}: evaluated {failure['evaluated']!r}, expected {evaluated!r}")
        elif kind == "aggregate_false":
            if atom.ast_type != ast.ASTType.BodyAggregate:
                raise ProofError(f"{path}: 'aggregate_false' for {literal}")
            if self._holds(literal, env, path):
                raise ProofError(f"{path}: {literal} holds under {env}")
        elif kind == "undefined":
            if self._defined(literal, env):
                raise ProofError(f"{path}: {literal} is defined under {env}")
        else:
            raise ProofError(f"{path}: unknown failure kind {kind!r}")

    def _holds(self, literal: ast.AST, env: Mapping[str, clingo.Symbol], path: str) -> bool:
        """Whether ``literal`` is true under ``env`` in clingo's model (an unbound
        aggregate assignment variable is not expected here: it is in ``env``)."""
        atom = literal.atom
        if atom.ast_type == ast.ASTType.SymbolicAtom:
            symbol = atom.symbol
            found = any(
                _unify(symbol.arguments, c.arguments, dict(env)) is not None
                for c in self.model.with_signature(symbol.name, len(symbol.arguments))
            )
            return found if literal.sign == ast.Sign.NoSign else not found
        if atom.ast_type == ast.ASTType.Comparison:
            try:
                values = [evaluate_term(atom.term, env), *(evaluate_term(g.term, env) for g in atom.guards)]
            except UndefinedTerm:
                return False
            return _chain_holds(atom, values)
        supports = self._aggregates._aggregate_tuples(atom.elements, dict(env), path)
        function = {
            ast.AggregateFunction.Count: "count",
            ast.AggregateFunction.Sum: "sum",
            ast.AggregateFunction.Min: "min",
            ast.AggregateFunction.Max: "max",
        }[atom.function]
        value = aggregate_value(function, supports)
        for guard, guard_left in ((atom.left_guard, True), (atom.right_guard, False)):
            if guard is None:
                continue
            bound = try_evaluate(guard.term, env)
            if bound is None:
                return False
            left, right = (bound, value) if guard_left else (value, bound)
            if not _relation_holds(left, guard.comparison, right):
                return False
        return True

    def _defined(self, literal: ast.AST, env: Mapping[str, clingo.Symbol]) -> bool:
        atom = literal.atom
        if atom.ast_type == ast.ASTType.SymbolicAtom:
            terms = [t for t in atom.symbol.arguments if not _unbound(t, env)]
        elif atom.ast_type == ast.ASTType.Comparison:
            terms = [atom.term, *(g.term for g in atom.guards)]
            terms = [t for t in terms if not _unbound(t, env)]
        else:
            terms = [g.term for g in (atom.left_guard, atom.right_guard) if g is not None]
            terms = [t for t in terms if not _unbound(t, env)]
        return all(try_evaluate(t, env) is not None for t in terms)


def _variables(term: ast.AST) -> set[str]:
    from .proof_checker import _variables as collect

    return collect(term, set()) - {"_"}


def _unbound(term: ast.AST, env: Mapping[str, clingo.Symbol]) -> bool:
    return not _variables(term) <= env.keys() or (term.ast_type == ast.ASTType.Variable and term.name == "_")


def _evaluable(literal: ast.AST, env: Mapping[str, clingo.Symbol]) -> bool:
    """Whether every global variable of ``literal`` is bound (the engine then has evaluated it)."""
    atom = literal.atom
    if atom.ast_type == ast.ASTType.BodyAggregate:
        return False  # its element variables may be global: not decidable from here
    names = _variables(atom)
    return names <= env.keys()


def _chain_holds(comparison: ast.AST, values: list[clingo.Symbol]) -> bool:
    return all(
        _relation_holds(left, guard.comparison, right)
        for left, guard, right in zip(values, comparison.guards, values[1:], strict=False)
    )


def _head_unify(head: ast.AST, pattern: Pattern) -> dict[str, clingo.Symbol] | None:
    """The bindings a head gets from a pattern; None if no instance of the head matches it."""
    env: dict[str, clingo.Symbol] = {}
    for term, value in zip(head.arguments, pattern, strict=True):
        if value is None:
            continue
        if term.ast_type == ast.ASTType.Variable:
            if term.name in env and env[term.name] != value:
                return None
            env[term.name] = value
        elif not _variables(term):
            if try_evaluate(term, {}) != value:
                return None
    return env


def _unify(
    terms: Sequence[ast.AST], values: Sequence[clingo.Symbol], env: dict[str, clingo.Symbol]
) -> dict[str, clingo.Symbol] | None:
    """Match a literal's arguments against an atom's: plain variables bind, bound terms
    compare, and a term over one unbound variable is solved for it as a linear function
    (f(X) = a*X + b, a and b measured by evaluating f at 0 and 1), then re-checked."""
    extended = dict(env)
    pending: list[tuple[ast.AST, clingo.Symbol]] = []
    for term, value in zip(terms, values, strict=True):
        if term.ast_type == ast.ASTType.Variable:
            if term.name == "_":
                continue
            if term.name not in extended:
                extended[term.name] = value
                continue
        if not _variables(term) <= extended.keys():
            pending.append((term, value))
        elif try_evaluate(term, extended) != value:
            return None
    for term, value in pending:
        free = _variables(term) - extended.keys()
        if len(free) != 1 or value.type != clingo.SymbolType.Number:
            return None
        (name,) = free
        at = [try_evaluate(term, {**extended, name: clingo.Number(x)}) for x in (0, 1)]
        if any(v is None or v.type != clingo.SymbolType.Number for v in at):
            return None
        b = at[0].number  # type: ignore[union-attr]
        a = at[1].number - b  # type: ignore[union-attr]
        if a == 0 or (value.number - b) % a:
            return None
        extended[name] = clingo.Number((value.number - b) // a)
        if try_evaluate(term, extended) != value:
            return None
    return extended


def _matches(atom: clingo.Symbol, pattern: Pattern) -> bool:
    return len(atom.arguments) == len(pattern) and all(
        p is None or p == a for p, a in zip(pattern, atom.arguments, strict=True)
    )
