"""entail.state — everything Entail keeps in Redis (keys in :mod:`entail.state.keys`)."""

from .cache import ResultCache
from .client import RedisClients, connect, connect_clients, connect_sync
from .decisions import DecisionStore
from .durability import Durability, DurabilityNotConfirmed
from .embedded import EmbeddedRedis
from .ratelimit import RateDecision, RateLimiter
from .registry import RulesetRegistry, RulesetSummary, TagMove, source_hash

__all__ = [
    "DecisionStore",
    "Durability",
    "DurabilityNotConfirmed",
    "EmbeddedRedis",
    "RateDecision",
    "RateLimiter",
    "RedisClients",
    "ResultCache",
    "RulesetRegistry",
    "RulesetSummary",
    "TagMove",
    "connect",
    "connect_clients",
    "connect_sync",
    "source_hash",
]
