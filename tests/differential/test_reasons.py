"""Reasons cite only rule instances that hold, and every instance a proof shows.

Every rule of a random program gets a reason template (where the annotation can
go: the first statement of its line). For each answer, each rule instance the
reason walk cites (rule and variable values, recorded as it is cited) is checked
by clingo: the program plus ``__chk(k) :- head, body.`` with the instance's
values substituted must derive ``__chk(k)``. And every rule node of the answer's
proof with a template is among the cited instances (the walk follows the
recorded derivations and adds the others).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings

from entail import reasoning
from entail.reasoning import reasons
from entail.reasoning.syntax import Num, Program, Rule, Str, Sym, Var, is_anonymous_name
from entail.reasoning.terms import Const, from_json

from .clingo_ref import clingo_symbols
from .programs import SETTINGS, stratified_programs
from .programs import Program as Generated
from .test_proofs import query_for


def annotate(source: str) -> tuple[str, int]:
    """``source`` with a template before each line whose first statement is a rule."""
    program = reasoning.compile(source).program
    first: dict[int, tuple[int, Rule | None]] = {}
    for rule in program.rules:
        first.setdefault(rule.span.line, (rule.span.column, rule))
        if rule.span.column < first[rule.span.line][0]:
            first[rule.span.line] = (rule.span.column, rule)
    for show in (*program.shows, *program.defined):
        if show.span.line in first and show.span.column < first[show.span.line][0]:
            first[show.span.line] = (show.span.column, None)
    lines = source.split("\n")
    out: list[str] = []
    n = 0
    for number, line in enumerate(lines, start=1):
        _, rule = first.get(number, (0, None))
        if rule is not None and not rule.is_fact:
            out.append(f'%@reason code=R{rule.index} weight={rule.index % 7} "rule {rule.index}"')
            n += 1
        out.append(line)
    return "\n".join(out), n


def _value_node(value: Any, span: Any) -> Any:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return Num(value, span)
    if isinstance(value, str):
        return Str(value, span)
    assert isinstance(value, Const)
    return Sym(value.name, span)


def substitute(node: Any, env: dict[str, Any]) -> Any:
    """``node`` with its named variables replaced by their values (anonymous ones kept)."""
    if isinstance(node, Var):
        if not node.anonymous and not is_anonymous_name(node.name) and node.name in env:
            return _value_node(env[node.name], node.span)
        return node
    if isinstance(node, tuple):
        return tuple(substitute(n, env) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {
            f.name: substitute(getattr(node, f.name), env)
            for f in dataclasses.fields(node)
            if f.name not in ("span", "source")
        }
        return dataclasses.replace(node, **changes)
    return node


def check_rule(program: Program, index: int, env: dict[str, Any], k: int) -> str:
    rule = program.rules[index]
    parts = [str(substitute(rule.head, env))] + [str(substitute(lit, env)) for lit in rule.body]
    return f"__chk({k}) :- {', '.join(parts)}."


def proof_rule_nodes(node: Any, out: set[tuple[int, tuple[tuple[str, Any], ...]]]) -> None:
    if isinstance(node, dict):
        if node.get("kind") == "rule":
            bindings = tuple(sorted((k, from_json(v)) for k, v in node["bindings"].items()))
            out.add((node["rule"]["index"], bindings))
        for child in node.get("body", []):
            proof_rule_nodes(child, out)


@settings(SETTINGS, max_examples=120)
@given(stratified_programs())
def test_cited_instances_hold_in_clingos_model_and_cover_the_proofs(program: Generated) -> None:
    source, n = annotate(program.source)
    if n == 0:
        return
    rs = reasoning.compile(source)
    queries = [query_for(name, arity) for name, arity in program.shown]
    cited: list[tuple[int, dict[str, Any]]] = []
    original = reasons.ReasonWalker._instance

    def recording(self: Any, rule_index: int, env: dict[str, Any], found: Any, stack: Any) -> None:
        if rule_index in self.book.templates:
            cited.append((rule_index, dict(env)))
        original(self, rule_index, env, found, stack)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reasons.ReasonWalker, "_instance", recording)
        result = rs.evaluate(program.facts, queries, explain=True)
    for query in result.answers:
        for answer in query.answers:
            assert answer.reasons is not None
            # completeness: each templated rule node of the proof is cited (the bindings
            # the proof shows are the named ones; the walk's env may hold more)
            shown: set[tuple[int, tuple[tuple[str, Any], ...]]] = set()
            proof_rule_nodes(answer.proof, shown)
            cited_named = {
                (i, tuple(sorted((k, v) for k, v in env.items() if not is_anonymous_name(k))))
                for i, env in cited
            }
            for index, bindings in shown:
                if index in rs.reasons.templates if rs.reasons else False:
                    assert (index, bindings) in cited_named, program.describe()
                    assert f"rule {index}" in {r.message for r in answer.reasons}
    if not cited:
        return
    # soundness: each cited instance holds in clingo's model
    unique = {(i, tuple(sorted(env.items(), key=lambda kv: kv[0]))) for i, env in cited}
    checks = [check_rule(rs.program, i, dict(env), k) for k, (i, env) in enumerate(sorted(unique, key=repr))]
    model = {str(s) for s in clingo_symbols(source + "\n" + "\n".join(checks), program.facts, shown=False)}
    for k, check in enumerate(checks):
        assert f"__chk({k})" in model, f"{check}\n{program.describe()}"
