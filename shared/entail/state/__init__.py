"""entail.state — everything Entail keeps in Redis (keys in :mod:`entail.state.keys`)."""

from .cache import ResultCache
from .client import connect
from .decisions import DecisionStore
from .embedded import EmbeddedRedis
from .ratelimit import RateDecision, RateLimiter
from .registry import RulesetRegistry, RulesetSummary, RulesetVersion, TagMove, source_hash

__all__ = [
    "DecisionStore",
    "EmbeddedRedis",
    "RateDecision",
    "RateLimiter",
    "ResultCache",
    "RulesetRegistry",
    "RulesetSummary",
    "RulesetVersion",
    "TagMove",
    "connect",
    "source_hash",
]
