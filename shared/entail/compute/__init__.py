"""CPU-heavy work off the event loop: a bounded, supervised pool of worker processes.

See :mod:`entail.compute.pool` (the pool and its guarantees) and
:mod:`entail.compute.tasks` (what runs in it); docs/service.md "Compute pool".
"""

from . import tasks
from .pool import (
    ComputePool,
    PoolBusy,
    PoolClosed,
    PoolError,
    TaskCrashed,
    TaskError,
    TaskKilled,
    TaskOutOfMemory,
)

__all__ = [
    "ComputePool",
    "PoolBusy",
    "PoolClosed",
    "PoolError",
    "TaskCrashed",
    "TaskError",
    "TaskKilled",
    "TaskOutOfMemory",
    "tasks",
]
