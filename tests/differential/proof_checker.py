"""An independent checker for Entail proofs (schema ``entail.proof.v1``).

It trusts nothing from the engine but the proof JSON: rule texts are re-parsed
with clingo's own AST parser, bindings are substituted and every literal is
re-evaluated here with gringo's semantics, and every fact is looked up in the
model clingo computed.  A proof passes when

- each fact node's fact is in clingo's model; ``input`` facts are case facts,
  ``ruleset_fact`` facts are facts written in the program;
- a ``rule`` node names a rule of the program (same text up to clingo's
  normalisation, same line), its bindings instantiate the head to the node's
  fact and its body children match the instantiated body literals one to one,
  in source order: positive atoms by fact nodes, ``not a`` by negation nodes
  whose atom clingo's model lacks, comparisons and assignments by nodes whose
  relation holds, aggregates by nodes whose value and elements agree with the
  aggregate recomputed over clingo's model;
- it is well-founded: no fact is its own ancestor, and ``shared`` nodes name a
  fact whose expansion finished earlier in depth-first order.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import clingo
from clingo import ast

from .clingo_ref import FactsJson, fact_symbols

FACT_KINDS = frozenset({"input", "ruleset_fact", "rule", "shared", "truncated"})
_INT_MIN = -(2**31)

_COMPARE: dict[ast.ComparisonOperator, tuple[str, Callable[[Any, Any], bool]]] = {
    ast.ComparisonOperator.Equal: ("=", operator.eq),
    ast.ComparisonOperator.NotEqual: ("!=", operator.ne),
    ast.ComparisonOperator.LessThan: ("<", operator.lt),
    ast.ComparisonOperator.LessEqual: ("<=", operator.le),
    ast.ComparisonOperator.GreaterThan: (">", operator.gt),
    ast.ComparisonOperator.GreaterEqual: (">=", operator.ge),
}
_AGGREGATE_NAMES = {
    ast.AggregateFunction.Count: "count",
    ast.AggregateFunction.Sum: "sum",
    ast.AggregateFunction.Min: "min",
    ast.AggregateFunction.Max: "max",
}

Pattern = tuple[clingo.Symbol | None, ...]  # None is an anonymous ``_`` position


class ProofError(AssertionError):
    """A proof that does not justify its fact."""


class UndefinedTerm(Exception):
    """Arithmetic on non-integers or division by zero: gringo drops the instance."""


# -- terms ------------------------------------------------------------------------


def wrap32(value: int) -> int:
    """gringo's integers are 32-bit and ``+ - *`` wrap around."""
    return (value - _INT_MIN) % 2**32 + _INT_MIN


def _divide(left: int, right: int) -> tuple[int, int]:
    """C division: the quotient truncates toward zero, the remainder has the dividend's sign."""
    if right == 0:
        raise UndefinedTerm("division by zero")
    if left == _INT_MIN and right == -1:
        raise ProofError("INT_MIN / -1: clingo 5.8.3 itself dies of SIGFPE here")
    quotient = abs(left) // abs(right)
    if (left < 0) != (right < 0):
        quotient = -quotient
    return quotient, left - right * quotient


def _binary(op: ast.BinaryOperator, left: int, right: int) -> int:
    if op == ast.BinaryOperator.Plus:
        return wrap32(left + right)
    if op == ast.BinaryOperator.Minus:
        return wrap32(left - right)
    if op == ast.BinaryOperator.Multiplication:
        return wrap32(left * right)
    if op == ast.BinaryOperator.Division:
        return wrap32(_divide(left, right)[0])
    if op == ast.BinaryOperator.Modulo:
        return wrap32(_divide(left, right)[1])
    raise ProofError(f"operator {op!r} is outside the checked fragment")


def evaluate_term(term: ast.AST, env: Mapping[str, clingo.Symbol]) -> clingo.Symbol:
    """The value of a term under ``env``; raises UndefinedTerm where gringo's is undefined."""
    kind = term.ast_type
    if kind == ast.ASTType.SymbolicTerm:
        symbol: clingo.Symbol = term.symbol
        return symbol
    if kind == ast.ASTType.Variable:
        if term.name not in env:
            raise ProofError(f"variable {term.name} has no binding")
        return env[term.name]
    if kind == ast.ASTType.UnaryOperation:
        value = evaluate_term(term.argument, env)
        if term.operator_type == ast.UnaryOperator.Minus:
            if value.type == clingo.SymbolType.Number:
                return clingo.Number(wrap32(-value.number))
            if value.type == clingo.SymbolType.Function and value.name:
                # gringo flips the classical sign of a symbolic function: -a
                return clingo.Function(value.name, value.arguments, not value.positive)
            raise UndefinedTerm(f"-{value}")
        if term.operator_type == ast.UnaryOperator.Absolute:
            if value.type != clingo.SymbolType.Number:
                raise UndefinedTerm(f"|{value}|")
            return clingo.Number(wrap32(abs(value.number)))
        raise ProofError(f"unary operator {term.operator_type!r} is outside the checked fragment")
    if kind == ast.ASTType.BinaryOperation:
        # both sides first, as gringo does: an undefined left must not hide INT_MIN / -1
        left = try_evaluate(term.left, env)
        right = try_evaluate(term.right, env)
        if left is None or right is None:
            raise UndefinedTerm(f"{term}")
        if left.type != clingo.SymbolType.Number or right.type != clingo.SymbolType.Number:
            raise UndefinedTerm(f"{left} {term.operator_type!r} {right}")
        return clingo.Number(_binary(term.operator_type, left.number, right.number))
    if kind == ast.ASTType.Function and not term.external:
        arguments = [evaluate_term(argument, env) for argument in term.arguments]
        return clingo.Function(term.name, arguments)
    raise ProofError(f"term {term} is outside the checked fragment")


def try_evaluate(term: ast.AST, env: Mapping[str, clingo.Symbol]) -> clingo.Symbol | None:
    try:
        return evaluate_term(term, env)
    except UndefinedTerm:
        return None


def symbol_from_json(value: Any) -> clingo.Symbol:
    """Typed JSON of a term: int -> number, string -> string, {"const": name} -> constant."""
    if isinstance(value, bool):
        raise ProofError(f"booleans are not terms: {value!r}")
    if isinstance(value, int):
        return clingo.Number(value)
    if isinstance(value, str):
        return clingo.String(value)
    if isinstance(value, dict) and set(value) == {"const"} and isinstance(value["const"], str):
        name = value["const"]
        if name == "#sup":
            return clingo.Supremum
        if name == "#inf":
            return clingo.Infimum
        return clingo.Function(name)
    raise ProofError(f"not a typed JSON term: {value!r}")


def parse_fact(text: Any) -> clingo.Symbol:
    """A ground atom in canonical clingo text (exactly as str(Symbol) renders it)."""
    if not isinstance(text, str):
        raise ProofError(f"fact must be a string, got {text!r}")
    try:
        symbol = clingo.parse_term(text)
    except RuntimeError as error:
        raise ProofError(f"unparsable fact {text!r}: {error}") from error
    if symbol.type != clingo.SymbolType.Function or not symbol.name or str(symbol) != text:
        raise ProofError(f"fact {text!r} is not a canonical ground atom (clingo: {symbol})")
    return symbol


# -- clingo AST helpers ---------------------------------------------------------------


def parse_statements(text: str) -> list[ast.AST]:
    statements: list[ast.AST] = []
    try:
        ast.parse_string(text, statements.append)
    except RuntimeError as error:
        raise ProofError(f"clingo cannot parse {text!r}: {error}") from error
    return [s for s in statements if s.ast_type != ast.ASTType.Program]


def parse_rule(text: str) -> ast.AST:
    statements = parse_statements(text)
    if len(statements) != 1 or statements[0].ast_type != ast.ASTType.Rule:
        raise ProofError(f"rule text {text!r} is not exactly one rule")
    return statements[0]


def parse_body_literal(text: str) -> ast.AST:
    rule = parse_rule(f"#false :- {text}.")
    if len(rule.body) != 1:
        raise ProofError(f"literal text {text!r} is not exactly one body literal")
    literal: ast.AST = rule.body[0]
    return literal


def _variables(node: Any, into: set[str]) -> set[str]:
    if isinstance(node, ast.AST):
        if node.ast_type == ast.ASTType.Variable:
            into.add(node.name)
        elif node.ast_type == ast.ASTType.BodyAggregate:
            # element variables are local to the aggregate; only the guards are global
            for guard in (node.left_guard, node.right_guard):
                if guard is not None:
                    _variables(guard.term, into)
        else:
            for key in node.child_keys:
                _variables(getattr(node, key), into)
    elif isinstance(node, Sequence) and not isinstance(node, str):
        for child in node:
            _variables(child, into)
    return into


def global_variables(rule: ast.AST) -> set[str]:
    """Variables a rule binding must name: all but aggregate-local ones and ``_``."""
    names = _variables([rule.head, *rule.body], set())
    names.discard("_")
    return names


def _head_atom(rule: ast.AST) -> ast.AST:
    head = rule.head
    if head.ast_type != ast.ASTType.Literal or head.atom.ast_type != ast.ASTType.SymbolicAtom:
        raise ProofError(f"rule head {head} is outside the checked fragment")
    atom: ast.AST = head.atom.symbol
    return atom


def render_pattern(name: str, pattern: Pattern) -> str:
    if not pattern:
        return name
    return f"{name}({','.join('_' if value is None else str(value) for value in pattern)})"


def _relation_holds(left: clingo.Symbol, op: ast.ComparisonOperator, right: clingo.Symbol) -> bool:
    return _COMPARE[op][1](left, right)


# -- the model ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramIndex:
    """What a proof may cite: the program's rules (by normalised text) and facts."""

    rule_lines: Mapping[str, frozenset[int]]
    program_facts: frozenset[clingo.Symbol]
    statements: Sequence[str]
    """Rules and facts in source order (a rule node's ``index`` points here)."""

    @classmethod
    def of(cls, source: str) -> ProgramIndex:
        lines: dict[str, set[int]] = defaultdict(set)
        facts: set[clingo.Symbol] = set()
        statements: list[str] = []
        for statement in parse_statements(source):
            if statement.ast_type != ast.ASTType.Rule:
                continue
            statements.append(str(statement))
            if not statement.body and statement.head.ast_type == ast.ASTType.Literal:
                facts.add(evaluate_term(_head_atom(statement), {}))
            else:
                lines[str(statement)].add(statement.location.begin.line)
        return cls({text: frozenset(found) for text, found in lines.items()}, frozenset(facts), statements)


class Model:
    """clingo's answer set, indexed by predicate signature."""

    def __init__(self, atoms: Iterable[clingo.Symbol]) -> None:
        self.atoms = frozenset(atoms)
        self._by_signature: dict[tuple[str, int], list[clingo.Symbol]] = defaultdict(list)
        for atom in sorted(self.atoms):
            self._by_signature[(atom.name, len(atom.arguments))].append(atom)

    def __contains__(self, atom: object) -> bool:
        return atom in self.atoms

    def with_signature(self, name: str, arity: int) -> list[clingo.Symbol]:
        return self._by_signature.get((name, arity), [])

    def matching(self, name: str, pattern: Pattern) -> Iterator[clingo.Symbol]:
        for atom in self.with_signature(name, len(pattern)):
            if all(p is None or p == a for p, a in zip(pattern, atom.arguments, strict=True)):
                yield atom


# -- the checker ------------------------------------------------------------------------


class ProofChecker:
    """Checks the proofs of one evaluation (one program, one set of case facts)."""

    def __init__(self, source: str, facts: FactsJson, model_atoms: Iterable[clingo.Symbol]) -> None:
        self.program = ProgramIndex.of(source)
        self.inputs = frozenset(fact_symbols(facts))
        self.model = Model(model_atoms)
        self._rules: dict[str, ast.AST] = {}
        self._completed: set[clingo.Symbol] = set()
        self._ancestors: set[clingo.Symbol] = set()
        self._atom_vars: set[str] = set()

    def check(self, answer_atom: str, proof: Any) -> None:
        """Raise ProofError unless ``proof`` justifies ``answer_atom``."""
        if not isinstance(proof, dict):
            raise ProofError(f"proof of {answer_atom} is not an object: {proof!r}")
        if parse_fact(proof.get("fact")) != parse_fact(answer_atom):
            raise ProofError(f"proof root {proof.get('fact')!r} is not the answer {answer_atom!r}")
        self._completed = set()
        self._ancestors = set()
        self._fact_node(proof, "proof")

    # fact nodes

    def _fact_node(self, node: Any, path: str) -> None:
        if not isinstance(node, dict) or node.get("kind") not in FACT_KINDS:
            raise ProofError(f"{path}: expected a fact node, got {node!r}")
        kind = node["kind"]
        fact = parse_fact(node.get("fact"))
        if fact not in self.model:
            raise ProofError(f"{path}: {fact} is not in clingo's model")
        if fact in self._ancestors:
            raise ProofError(f"{path}: {fact} is its own ancestor (circular support)")
        if kind == "input":
            if fact not in self.inputs:
                raise ProofError(f"{path}: {fact} is marked input but is no case fact")
        elif kind == "ruleset_fact":
            if fact not in self.program.program_facts:
                raise ProofError(f"{path}: {fact} is marked ruleset_fact but no program fact")
        elif kind == "shared":
            if fact not in self._completed:
                raise ProofError(f"{path}: shared {fact} was not expanded earlier in the proof")
        elif kind == "rule":
            self._ancestors.add(fact)
            self._rule_node(node, fact, path)
            self._ancestors.remove(fact)
        if kind in ("input", "ruleset_fact", "rule"):
            self._completed.add(fact)

    def _rule_node(self, node: dict[str, Any], fact: clingo.Symbol, path: str) -> None:
        info = node.get("rule")
        if not isinstance(info, dict) or not isinstance(info.get("text"), str):
            raise ProofError(f"{path}: rule node without rule text: {node!r}")
        rule = self._parse_rule(info["text"])
        lines = self.program.rule_lines.get(str(rule))
        if lines is None:
            raise ProofError(f"{path}: {info['text']!r} is not a rule of the program")
        if info.get("line") not in lines:
            raise ProofError(
                f"{path}: rule {info['text']!r} is on line(s) {sorted(lines)}, not {info.get('line')!r}"
            )
        index = info.get("index")
        statements = self.program.statements
        if not isinstance(index, int) or not 0 <= index < len(statements) or statements[index] != str(rule):
            raise ProofError(f"{path}: rule index {index!r} does not point at {info['text']!r}")
        bindings = node.get("bindings")
        if not isinstance(bindings, dict):
            raise ProofError(f"{path}: bindings missing")
        env = {name: symbol_from_json(value) for name, value in bindings.items()}
        # Every named variable needs its value, ``_Z`` included: only ``_`` itself is
        # anonymous. A binding for a name the rule lacks (or for ``_``) is as wrong.
        expected = global_variables(rule)
        missing = expected - env.keys()
        if missing:
            raise ProofError(f"{path}: no binding for {sorted(missing)} in {bindings!r}")
        extra = env.keys() - expected
        if extra:
            raise ProofError(f"{path}: bindings for {sorted(extra)}, which are no variables of {rule}")
        try:
            head = evaluate_term(_head_atom(rule), env)
        except UndefinedTerm as error:
            raise ProofError(f"{path}: the head of {rule} is undefined: {error}") from error
        if head != fact:
            raise ProofError(f"{path}: {rule} with {bindings} derives {head}, not {fact}")
        body = node.get("body")
        if not isinstance(body, list) or len(body) != len(rule.body):
            raise ProofError(f"{path}: {len(rule.body)} body literals in {rule}, proof body {body!r}")
        # variables a positive atom binds (an assignment may solve for one of them)
        self._atom_vars = _variables(
            [
                lit.atom
                for lit in rule.body
                if lit.atom.ast_type == ast.ASTType.SymbolicAtom and lit.sign == ast.Sign.NoSign
            ],
            set(),
        )
        for index, (literal, child) in enumerate(zip(rule.body, body, strict=True)):
            self._body_literal(literal, child, env, f"{path}.body[{index}]")

    def _parse_rule(self, text: str) -> ast.AST:
        if text not in self._rules:
            self._rules[text] = parse_rule(text)
        return self._rules[text]

    # body literals

    def _body_literal(
        self, literal: ast.AST, child: Any, env: Mapping[str, clingo.Symbol], path: str
    ) -> None:
        if not isinstance(child, dict):
            raise ProofError(f"{path}: body node is not an object: {child!r}")
        atom = literal.atom
        if atom.ast_type == ast.ASTType.SymbolicAtom:
            name, pattern = self._pattern(atom.symbol, env, path)
            if literal.sign == ast.Sign.NoSign:
                fact = parse_fact(child.get("fact"))
                if (
                    fact.name != name
                    or len(fact.arguments) != len(pattern)
                    or not all(p is None or p == a for p, a in zip(pattern, fact.arguments, strict=True))
                ):
                    raise ProofError(f"{path}: {child.get('fact')} does not instantiate {literal}")
                self._fact_node(child, path)
            elif literal.sign == ast.Sign.Negation:
                self._negation(name, pattern, child, path)
            else:
                raise ProofError(f"{path}: {literal} is outside the checked fragment")
        elif atom.ast_type == ast.ASTType.Comparison:
            self._comparison(literal, child, env, path)
        elif atom.ast_type == ast.ASTType.BodyAggregate:
            self._aggregate(literal, child, env, path)
        else:
            raise ProofError(f"{path}: {literal} is outside the checked fragment")

    def _pattern(self, atom: ast.AST, env: Mapping[str, clingo.Symbol], path: str) -> tuple[str, Pattern]:
        values: list[clingo.Symbol | None] = []
        for argument in atom.arguments:
            if argument.ast_type == ast.ASTType.Variable and argument.name == "_":
                values.append(None)
                continue
            try:
                values.append(evaluate_term(argument, env))
            except UndefinedTerm as error:
                raise ProofError(f"{path}: {atom} is undefined under the bindings: {error}") from error
        return atom.name, tuple(values)

    def _negation(self, name: str, pattern: Pattern, child: dict[str, Any], path: str) -> None:
        if child.get("kind") != "negation":
            raise ProofError(f"{path}: expected a negation node, got {child!r}")
        expected = render_pattern(name, pattern)
        if child.get("atom") != expected or child.get("literal") != f"not {expected}":
            raise ProofError(f"{path}: negation node {child!r} is not for 'not {expected}'")
        witness = next(self.model.matching(name, pattern), None)
        if witness is not None:
            raise ProofError(f"{path}: 'not {expected}' is false: clingo's model has {witness}")

    def _same_literal(self, literal: ast.AST, text: Any, path: str) -> None:
        if not isinstance(text, str) or str(parse_body_literal(text)) != str(literal):
            raise ProofError(f"{path}: node literal {text!r} is not the rule's {literal}")

    def _comparison(
        self, literal: ast.AST, child: dict[str, Any], env: Mapping[str, clingo.Symbol], path: str
    ) -> None:
        comparison = literal.atom
        kind = child.get("kind")
        if kind not in ("comparison", "assignment"):
            raise ProofError(f"{path}: expected a comparison or assignment node, got {child!r}")
        self._same_literal(literal, child.get("literal"), path)
        try:
            values = [evaluate_term(comparison.term, env)]
            values += [evaluate_term(guard.term, env) for guard in comparison.guards]
        except UndefinedTerm as error:
            raise ProofError(f"{path}: {literal} is undefined under the bindings: {error}") from error
        for left, guard, right in zip(values, comparison.guards, values[1:], strict=False):
            if not _relation_holds(left, guard.comparison, right):
                raise ProofError(
                    f"{path}: {literal} is false: {left} {_COMPARE[guard.comparison][0]} {right}"
                )
        if kind == "assignment":
            # ``X = Z`` with both sides variables may assign either one: the engine
            # picks by join order, and both readings state the same equation.
            variable = child.get("variable")
            sides = [comparison.term, *(guard.term for guard in comparison.guards)]
            assigned = [
                value
                for side, value in zip(sides, values, strict=True)
                if side.ast_type == ast.ASTType.Variable and side.name == variable
            ]
            # or a variable solved for through arithmetic (Y + 0 = Z binds Y from Z,
            # as gringo inverts a linear term), when no bare side is a variable only
            # this literal can bind (that one is the assigned variable)
            free = [
                side.name
                for side in sides
                if side.ast_type == ast.ASTType.Variable and side.name not in self._atom_vars
            ]
            if not assigned and not free and isinstance(variable, str):
                assigned = [
                    v for side, v in zip(sides, values, strict=True) if variable in _variables(side, set())
                ]
            if not assigned or [guard.comparison for guard in comparison.guards] != [
                ast.ComparisonOperator.Equal
            ]:
                raise ProofError(f"{path}: {literal} does not assign {variable!r}")
            if symbol_from_json(child.get("value")) != assigned[0]:
                raise ProofError(f"{path}: {variable} = {assigned[0]}, node says {child.get('value')!r}")
        else:
            ops = [_COMPARE[guard.comparison][0] for guard in comparison.guards]
            evaluated = " ".join(
                part for pair in zip(map(str, values), [*ops, ""], strict=True) for part in pair if part
            )
            if child.get("evaluated") != evaluated:
                raise ProofError(f"{path}: evaluated {child.get('evaluated')!r}, expected {evaluated!r}")

    def _aggregate(
        self, literal: ast.AST, child: dict[str, Any], env: Mapping[str, clingo.Symbol], path: str
    ) -> None:
        aggregate = literal.atom
        if child.get("kind") != "aggregate":
            raise ProofError(f"{path}: expected an aggregate node, got {child!r}")
        self._same_literal(literal, child.get("literal"), path)
        function = _AGGREGATE_NAMES.get(aggregate.function)
        if function is None or child.get("function") != function:
            raise ProofError(f"{path}: function {child.get('function')!r}, rule has {aggregate.function!r}")
        supports = self._aggregate_tuples(aggregate.elements, env, path)
        value = aggregate_value(function, supports)
        if symbol_from_json(child.get("value")) != value:
            raise ProofError(
                f"{path}: {literal} is {value} over clingo's model, node says {child.get('value')!r}"
            )
        for guard, guard_left in ((aggregate.left_guard, True), (aggregate.right_guard, False)):
            if guard is None:
                continue
            try:
                bound = evaluate_term(guard.term, env)
            except UndefinedTerm as error:
                raise ProofError(f"{path}: guard of {literal} is undefined: {error}") from error
            left, right = (bound, value) if guard_left else (value, bound)
            if not _relation_holds(left, guard.comparison, right):
                raise ProofError(
                    f"{path}: {literal} is false: {left} {_COMPARE[guard.comparison][0]} {right}"
                )
        if child.get("total_elements") != len(supports):
            raise ProofError(
                f"{path}: total_elements {child.get('total_elements')!r}, "
                f"clingo's model gives {len(supports)}"
            )
        elements = child.get("elements")
        truncated = child.get("truncated")
        if not isinstance(elements, list) or not isinstance(truncated, bool):
            raise ProofError(f"{path}: malformed aggregate node {child!r}")
        if (len(elements) < len(supports)) != truncated or len(elements) > len(supports):
            raise ProofError(
                f"{path}: {len(elements)} of {len(supports)} elements listed, truncated={truncated}"
            )
        seen: set[tuple[clingo.Symbol, ...]] = set()
        for element in elements:
            tuple_ = tuple(symbol_from_json(value) for value in element.get("tuple", ()))
            if tuple_ not in supports or tuple_ in seen:
                raise ProofError(f"{path}: element {element!r} is not a (new) tuple of {literal}")
            seen.add(tuple_)
            facts = frozenset(parse_fact(text) for text in element.get("facts", ()))
            if facts not in supports[tuple_]:
                raise ProofError(f"{path}: facts of element {element!r} do not support it in clingo's model")

    def _aggregate_tuples(
        self, elements: Sequence[ast.AST], env: Mapping[str, clingo.Symbol], path: str
    ) -> dict[tuple[clingo.Symbol, ...], set[frozenset[clingo.Symbol]]]:
        """Each tuple of the aggregate in clingo's model, with the fact sets supporting it."""
        supports: dict[tuple[clingo.Symbol, ...], set[frozenset[clingo.Symbol]]] = defaultdict(set)
        for element in elements:
            for local_env, facts in self._solve(list(element.condition), dict(env), path):
                try:
                    tuple_ = tuple(evaluate_term(term, local_env) for term in element.terms)
                except UndefinedTerm:
                    continue
                supports[tuple_].add(frozenset(facts))
        return supports

    def _solve(
        self, condition: list[ast.AST], env: dict[str, clingo.Symbol], path: str
    ) -> Iterator[tuple[dict[str, clingo.Symbol], list[clingo.Symbol]]]:
        """All ways the condition holds in the model: positive atoms join, then the rest filter."""
        positives: list[ast.AST] = []
        filters: list[ast.AST] = []
        for lit in condition:
            is_positive = lit.atom.ast_type == ast.ASTType.SymbolicAtom and lit.sign == ast.Sign.NoSign
            (positives if is_positive else filters).append(lit)

        def join(index: int, env: dict[str, clingo.Symbol], facts: list[clingo.Symbol]) -> Iterator[Any]:
            if index == len(positives):
                if all(self._condition_filter(lit, env, path) for lit in filters):
                    yield env, facts
                return
            atom = positives[index].atom.symbol
            for candidate in self.model.with_signature(atom.name, len(atom.arguments)):
                extended = _unify(atom.arguments, candidate.arguments, env)
                if extended is not None:
                    yield from join(index + 1, extended, [*facts, candidate])

        yield from join(0, env, [])

    def _condition_filter(self, literal: ast.AST, env: Mapping[str, clingo.Symbol], path: str) -> bool:
        atom = literal.atom
        if atom.ast_type == ast.ASTType.SymbolicAtom and literal.sign == ast.Sign.Negation:
            pattern: list[clingo.Symbol | None] = []
            for argument in atom.symbol.arguments:
                if argument.ast_type == ast.ASTType.Variable and argument.name == "_":
                    pattern.append(None)
                    continue
                value = try_evaluate(argument, env)
                if value is None:
                    return False  # an undefined argument drops the element instance
                pattern.append(value)
            return next(self.model.matching(atom.symbol.name, tuple(pattern)), None) is None
        if atom.ast_type == ast.ASTType.Comparison:
            try:
                values = [evaluate_term(atom.term, env)]
                values += [evaluate_term(guard.term, env) for guard in atom.guards]
            except UndefinedTerm:
                return False
            return all(
                _relation_holds(left, guard.comparison, right)
                for left, guard, right in zip(values, atom.guards, values[1:], strict=False)
            )
        raise ProofError(f"{path}: condition literal {literal} is outside the checked fragment")


def _unify(
    terms: Sequence[ast.AST], values: Sequence[clingo.Symbol], env: dict[str, clingo.Symbol]
) -> dict[str, clingo.Symbol] | None:
    extended = env
    for term, value in zip(terms, values, strict=True):
        if term.ast_type == ast.ASTType.Variable:
            if term.name == "_":
                continue
            if term.name not in extended:
                extended = {**extended, term.name: value}
                continue
        if try_evaluate(term, extended) != value:
            return None
    return extended


def aggregate_value(function: str, supports: Mapping[tuple[clingo.Symbol, ...], object]) -> clingo.Symbol:
    """gringo's aggregate over a set of tuples: weights are first elements."""
    tuples = list(supports)
    if function == "count":
        return clingo.Number(len(tuples))
    if function == "sum":
        weights = [t[0].number for t in tuples if t and t[0].type == clingo.SymbolType.Number]
        return clingo.Number(sum(weights))
    firsts = [t[0] for t in tuples if t]
    if function == "min":
        return min(firsts, default=clingo.Supremum)
    return max(firsts, default=clingo.Infimum)
