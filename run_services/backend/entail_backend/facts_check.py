"""Case facts are checked at submission as the worker will check them: shape,
values, the ruleset's arities and the input-facts limit. A case the worker would
refuse gets a 422 here, not a 202 and a failed decision later."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from entail import reasoning
from entail.arities import program_arities
from entail.bootstrap import Services
from entail.compute import ComputePool
from entail.models import RulesetVersion
from entail.reasoning.facts import validate_facts

from . import compute
from .problems import Problem

_CACHE_MAX = 512
# ruleset hash -> its arities: a hash names one source, so an entry never goes stale
_ARITIES: OrderedDict[str, dict[str, int]] = OrderedDict()


async def ruleset_arities(
    services: Services, pool: ComputePool, version: RulesetVersion, limits: dict[str, int]
) -> dict[str, int]:
    found = _ARITIES.get(version.hash)
    if found is not None:
        _ARITIES.move_to_end(version.hash)
        return found
    source = await services.registry.source(version.hash)
    if source is None:
        raise Problem(
            503,
            "unavailable",
            "Service unavailable",
            f"the source of ruleset {version.name}@{version.version} is not readable yet; retry",
            headers={"Retry-After": "1"},
        )
    arities = await compute.run(
        pool,
        program_arities,
        source,
        f"{version.name}.lp",
        limits,
        budget_ms=int(services.settings.limit_wall_time_ms),
        tenant=version.tenant,
    )
    _ARITIES[version.hash] = arities
    if len(_ARITIES) > _CACHE_MAX:
        _ARITIES.popitem(last=False)
    return arities


def check_facts(facts: dict[str, Any], arities: dict[str, int], limits: dict[str, int], where: str) -> None:
    """422 with the JSON pointer of the first problem, or of the input limit."""
    try:
        validate_facts(facts, arities, reasoning.Limits.from_mapping(limits))
    except reasoning.FactsError as exc:
        raise Problem(
            422, "invalid-facts", "Invalid facts", f"{where}/facts{exc.path}: {exc}", path=exc.path
        ) from None
    except reasoning.InputFactsLimitExceeded as exc:
        raise Problem(
            422, exc.code, "Limit exceeded", f"{where}/facts: {exc}", limit=exc.limit, value=exc.value
        ) from None
