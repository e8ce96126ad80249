"""Stage 5 — prove: provenance recorded during evaluation → proof trees.

Contract: :class:`ProofBuilder` turns the provenance of one evaluation into
JSON proof trees (schema ``entail.proof.v1``, docs/proofs.md). Nothing is
re-evaluated: each derived fact's node comes from the rule and bindings of its
first derivation, whose body facts were all in the model strictly earlier, so
every proof is well-founded. Facts already expanded in the same proof become
``shared`` nodes, which keeps a proof linear in the facts it uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .limits import Limits
from .runtime import evaluate_term
from .syntax import Aggregate, Atom, Comparison, Negative, Positive, Rule, Var, is_anonymous_name
from .terms import Term, format_atom, format_term, to_json

SCHEMA = "entail.proof.v1"


def proof_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every proof tree conforms to."""
    schema: dict[str, Any] = json.loads(
        resources.files("entail.reasoning").joinpath("schemas/proof.v1.json").read_text()
    )
    return schema


@dataclass
class RuleInfo:
    rule: Rule
    binding_names: list[str]  # the order of values in a provenance record
    assignments: dict[int, str]  # body position -> variable it assigns
    assigning_aggregates: frozenset[int] = frozenset()  # body positions of N = #agg{..}


class ProofBuilder:
    def __init__(
        self,
        rules: dict[int, RuleInfo],
        sigs: list[tuple[str, int]],
        pred_ids: dict[tuple[str, int], int],
        provenance: list[dict[tuple[Any, ...], Any]],
        inputs: list[set[tuple[Any, ...]]],
        ruleset_facts: list[set[tuple[Any, ...]]],
        limits: Limits,
        dataset_facts: list[Any] | None = None,
    ) -> None:
        self.rules = rules
        # per predicate id, the dataset facts (reference.py): leaves of kind dataset_fact
        self.dataset_facts = dataset_facts
        self.sigs = sigs
        self.pred_ids = pred_ids
        self.prov = provenance
        self.inputs = inputs
        self.ruleset_facts = ruleset_facts
        self.limits = limits
        self.nodes_left = limits.proof_nodes

    def prove(self, pid: int, fact: tuple[Any, ...]) -> dict[str, Any]:
        """The proof tree of one fact of the model."""
        return self._node(pid, fact, 0, set())

    def _text(self, pid: int, fact: tuple[Any, ...]) -> str:
        return format_atom(self.sigs[pid][0], fact)

    def _node(
        self, pid: int, fact: tuple[Any, ...], depth: int, expanded: set[tuple[int, Any]]
    ) -> dict[str, Any]:
        text = self._text(pid, fact)
        if fact in self.inputs[pid]:
            return {"fact": text, "kind": "input"}
        if fact in self.ruleset_facts[pid]:
            return {"fact": text, "kind": "ruleset_fact"}
        if self.dataset_facts is not None and fact in self.dataset_facts[pid]:
            return {"fact": text, "kind": "dataset_fact"}
        key = (pid, fact)
        if key in expanded:
            return {"fact": text, "kind": "shared"}
        if depth >= self.limits.proof_depth or self.nodes_left <= 0:
            return {"fact": text, "kind": "truncated"}
        record = self.prov[pid].get(fact)
        if record is None:  # cannot happen for facts of the model; keep proofs total anyway
            return {"fact": text, "kind": "truncated"}
        self.nodes_left -= 1
        expanded.add(key)
        rule_index, values, aggregates = record
        info = self.rules[rule_index]
        env: dict[str, Term] = dict(zip(info.binding_names, values, strict=True))
        body: list[dict[str, Any]] = []
        agg_iter = iter(aggregates)
        for position, lit in enumerate(info.rule.body):
            if isinstance(lit, Positive):
                child_pid, child = self._instantiate(lit.atom, env)
                body.append(self._node(child_pid, child, depth + 1, expanded))
            elif isinstance(lit, Negative):
                body.append(self._negation(lit, env))
            elif isinstance(lit, Comparison):
                body.append(self._comparison(lit, env, info.assignments.get(position)))
            else:
                assigns = position in info.assigning_aggregates
                body.append(self._aggregate(lit, env, next(agg_iter), assigns))
        return {
            "fact": text,
            "kind": "rule",
            "rule": {"index": rule_index, "line": info.rule.span.line, "text": info.rule.text},
            # only the anonymous '_' is dropped: '_Z' is a named variable the step needs
            "bindings": {
                name: to_json(env[name]) for name in info.binding_names if not is_anonymous_name(name)
            },
            "body": body,
        }

    def _instantiate(self, atom: Atom, env: dict[str, Term]) -> tuple[int, tuple[Any, ...]]:
        values = tuple(evaluate_term(a, env) for a in atom.args)
        return self.pred_ids[atom.signature], values

    def _negation(self, lit: Negative, env: dict[str, Term]) -> dict[str, Any]:
        parts: list[str] = []
        for a in lit.atom.args:
            if isinstance(a, Var) and a.anonymous:
                parts.append("_")
            else:
                v = evaluate_term(a, env)
                assert v is not None
                parts.append(format_term(v))
        atom = lit.atom.predicate + (f"({','.join(parts)})" if parts else "")
        return {"kind": "negation", "literal": f"not {atom}", "atom": atom}

    def _comparison(self, lit: Comparison, env: dict[str, Term], assigned: str | None) -> dict[str, Any]:
        if assigned is not None:
            value = env[assigned]
            return {
                "kind": "assignment",
                "literal": str(lit),
                "variable": assigned,
                "value": to_json(value),
            }
        left = evaluate_term(lit.left, env)
        right = evaluate_term(lit.right, env)
        assert left is not None and right is not None
        return {
            "kind": "comparison",
            "literal": str(lit),
            "evaluated": f"{format_term(left)} {lit.op} {format_term(right)}",
        }

    def _aggregate(
        self, lit: Aggregate, env: dict[str, Term], elements: dict[Any, Any], assigns: bool
    ) -> dict[str, Any]:
        from .runtime import NAMESPACE

        guard = "_guard" if lit.function == "sum" and not assigns else ""
        value = NAMESPACE[f"_agg_{lit.function}{guard}"](elements)
        cap = self.limits.aggregate_elements_shown
        from .terms import sort_key

        ordered = sorted(elements.items(), key=lambda kv: tuple(sort_key(v) for v in kv[0]))
        shown = [
            {
                "tuple": [to_json(v) for v in tup],
                "facts": [self._text(pid, fact) for pid, fact in facts],
            }
            for tup, facts in ordered[:cap]
        ]
        return {
            "kind": "aggregate",
            "literal": str(lit),
            "function": lit.function,
            "value": to_json(value),
            "elements": shown,
            "total_elements": len(elements),
            "truncated": len(elements) > cap,
        }


def render_text(proof: dict[str, Any], indent: int = 0) -> str:
    """A readable, indented rendering of a proof tree."""
    pad = "  " * indent
    kind = proof["kind"]
    if kind in ("input", "ruleset_fact", "dataset_fact", "shared", "truncated"):
        label = {
            "input": "case fact",
            "ruleset_fact": "ruleset fact",
            "dataset_fact": "dataset fact",
            "shared": "shown above",
            "truncated": "proof cut at the depth limit",
        }[kind]
        return f"{pad}{proof['fact']}  [{label}]"
    if kind == "negation":
        return f"{pad}{proof['literal']}  [absent from the model]"
    if kind == "comparison":
        return f"{pad}{proof['literal']}  [{proof['evaluated']}]"
    if kind == "assignment":
        return f"{pad}{proof['literal']}  [{proof['variable']} = {_json_term(proof['value'])}]"
    if kind == "aggregate":
        lines = [
            f"{pad}{proof['literal']}  [= {_json_term(proof['value'])}, {proof['total_elements']} element(s)]"
        ]
        for el in proof["elements"]:
            tup = ",".join(_json_term(v) for v in el["tuple"])
            facts = ", ".join(el["facts"]) or "no condition"
            lines.append(f"{pad}  · ({tup}) from {facts}")
        if proof["truncated"]:
            lines.append(f"{pad}  · … {proof['total_elements'] - len(proof['elements'])} more")
        return "\n".join(lines)
    bindings = ", ".join(f"{k}={_json_term(v)}" for k, v in proof["bindings"].items())
    head = f"{pad}{proof['fact']}  [rule, line {proof['rule']['line']}: {proof['rule']['text']}"
    head += f"  with {bindings}]" if bindings else "]"
    return "\n".join([head] + [render_text(child, indent + 1) for child in proof["body"]])


def _json_term(value: Any) -> str:
    from .terms import from_json

    return format_term(from_json(value))
