"""The predicate arities of a published program, for checking case facts at submission.

Runs in the backend's compute pool (it compiles the program, which may be big);
the backend keeps the answer per ruleset hash (``entail_backend.facts_check``).
"""

from __future__ import annotations

from .compute import tasks


def program_arities(source: str, filename: str, limits: dict[str, int]) -> dict[str, int]:
    """Each predicate name the program uses -> its arity, as the engine checks facts
    against them (a name used with two arities maps to the last, as in evaluation)."""
    ruleset = tasks._compiled(source, filename, limits)  # the pool process's compiled cache
    return dict(ruleset.analysis.signatures)
