"""Limits on one evaluation. Each, when exceeded, raises its own named error."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Per-evaluation resource limits (library defaults; services cap them further)."""

    derived_facts: int = 5_000_000
    wall_time_ms: int = 60_000
    input_facts: int = 1_000_000
    program_bytes: int = 1_000_000
    proof_depth: int = 200  # deeper proof nodes are cut and marked "truncated"
    proof_nodes: int = 100_000  # all proofs of one evaluation together
    aggregate_elements_shown: int = 20  # contributing tuples listed per aggregate node
    # compiling: parse, analysis, planning and code generation together (limit-compile-time)
    compile_time_ms: int = 10_000
    # literals in one rule's body, those inside its aggregates included (limit-rule-body)
    rule_body_literals: int = 10_000

    def capped_by(self, cap: Limits) -> Limits:
        """These limits, each no higher than ``cap``'s."""
        return replace(
            self, **{f.name: min(getattr(self, f.name), getattr(cap, f.name)) for f in fields(self)}
        )

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Limits:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}")
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"limit {key!r} must be a positive integer, got {value!r}")
        return cls(**data)

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
