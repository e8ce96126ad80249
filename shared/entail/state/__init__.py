"""entail.state — everything Entail keeps in Redis (keys in :mod:`entail.state.keys`)."""

from .cache import ResultCache
from .client import connect
from .decisions import DecisionStore
from .ratelimit import RateDecision, RateLimiter
from .registry import RulesetRegistry, RulesetSummary, RulesetVersion, TagMove

__all__ = [
    "DecisionStore",
    "RateDecision",
    "RateLimiter",
    "ResultCache",
    "RulesetRegistry",
    "RulesetSummary",
    "RulesetVersion",
    "TagMove",
    "connect",
]
