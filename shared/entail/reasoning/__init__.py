"""entail.reasoning — the Datalog engine: parse → analyse → plan → evaluate → prove.

See docs/engine.md for the language, the API and the proof schema.
"""

from ..engine_version import ENGINE_VERSION
from .errors import (
    CompileTimeLimitExceeded,
    DatasetPredicateInCase,
    DatasetTypeError,
    DerivedFactsLimitExceeded,
    Diagnostic,
    EntailError,
    FactsError,
    InputFactsLimitExceeded,
    LimitExceeded,
    ProgramError,
    ProgramSizeLimitExceeded,
    QueryError,
    RuleBodyLimitExceeded,
    WallTimeLimitExceeded,
)
from .facts import FactSet, facts_from_json, parse_facts_lp, validate_facts
from .limits import Limits
from .prove import SCHEMA as PROOF_SCHEMA
from .prove import proof_schema
from .prove import render_text as render_proof
from .query import Query, parse_query
from .reference import Materialised
from .ruleset import Answer, QueryResult, Result, Ruleset, check, compile
from .terms import Const, format_atom, format_term
from .why_not import WhyNot, WhyNotBounds, WhyNotError, explain_absent, why_not_schema

__all__ = [
    "ENGINE_VERSION",
    "PROOF_SCHEMA",
    "Answer",
    "CompileTimeLimitExceeded",
    "Const",
    "DatasetPredicateInCase",
    "DatasetTypeError",
    "DerivedFactsLimitExceeded",
    "Diagnostic",
    "EntailError",
    "FactSet",
    "FactsError",
    "InputFactsLimitExceeded",
    "LimitExceeded",
    "Limits",
    "Materialised",
    "ProgramError",
    "ProgramSizeLimitExceeded",
    "Query",
    "QueryError",
    "QueryResult",
    "Result",
    "RuleBodyLimitExceeded",
    "Ruleset",
    "WallTimeLimitExceeded",
    "WhyNot",
    "WhyNotBounds",
    "WhyNotError",
    "check",
    "compile",
    "explain_absent",
    "facts_from_json",
    "format_atom",
    "format_term",
    "parse_facts_lp",
    "parse_query",
    "proof_schema",
    "render_proof",
    "validate_facts",
    "why_not_schema",
]
