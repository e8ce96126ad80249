"""Case facts are checked at submission as the worker will check them: shape,
values, the ruleset's arities and the input-facts limit. A case the worker would
refuse gets a 422 here, not a 202 and a failed decision later."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from entail import reasoning
from entail.arities import program_arities
from entail.bootstrap import Services
from entail.compute import ComputePool
from entail.models import RulesetVersion
from entail.reasoning.declarations import Declarations
from entail.reasoning.declarations import collect as collect_declarations
from entail.reasoning.facts import FactSet, _pointer, validate_facts

from . import compute
from .problems import Problem

log = logging.getLogger("entail.backend")

_CACHE_MAX = 512
# ruleset hash -> its arities: a hash names one source, so an entry never goes stale
_ARITIES: OrderedDict[str, dict[str, int]] = OrderedDict()
# ruleset hash -> its %@input declarations (None: the program declares nothing)
_DECLARATIONS: OrderedDict[str, Declarations | None] = OrderedDict()


async def ruleset_declarations(services: Services, version: RulesetVersion) -> Declarations | None:
    """The version's ``%@input`` declarations, read once per ruleset hash (a scan of
    the source's comments, no compile: a published version's declarations were
    checked at publish). None when it declares nothing or its source is not readable."""
    if version.hash in _DECLARATIONS:
        _DECLARATIONS.move_to_end(version.hash)
        return _DECLARATIONS[version.hash]
    source = await services.registry.source(version.hash)
    if source is None:
        return None
    declarations, errors = collect_declarations(source)
    found = None if errors else declarations
    _DECLARATIONS[version.hash] = found
    if len(_DECLARATIONS) > _CACHE_MAX:
        _DECLARATIONS.popitem(last=False)
    return found


async def ruleset_arities(
    services: Services, pool: ComputePool, version: RulesetVersion, limits: dict[str, int]
) -> dict[str, int] | None:
    """The ruleset's arities, or None when they cannot be had now (the compute pool
    is busy or the source not readable yet): then only the shape, the values and
    the input limit are checked here, and the worker checks the arities as ever.
    A decision never waits for, or fails on, another tenant's heavy work."""
    found = _ARITIES.get(version.hash)
    if found is not None:
        _ARITIES.move_to_end(version.hash)
        return found
    source = await services.registry.source(version.hash)
    if source is None:
        return None
    try:
        arities = await compute.run(
            pool,
            program_arities,
            source,
            f"{version.name}.lp",
            limits,
            budget_ms=int(services.settings.limit_wall_time_ms),
            tenant=version.tenant,
        )
    except Problem as exc:
        log.warning("arities of %s@%s not checked at submission: %s", version.name, version.version, exc)
        return None
    _ARITIES[version.hash] = arities
    if len(_ARITIES) > _CACHE_MAX:
        _ARITIES.popitem(last=False)
    return arities


def known_checks(version: RulesetVersion) -> tuple[dict[str, int], Declarations | None] | None:
    """The version's arities and declarations when this process has both already
    (:func:`ruleset_arities`, :func:`ruleset_declarations`), without a read; else None."""
    arities = _ARITIES.get(version.hash)
    if arities is None or version.hash not in _DECLARATIONS:
        return None
    return arities, _DECLARATIONS[version.hash]


def check_facts(
    facts: dict[str, Any],
    arities: dict[str, int] | None,
    limits: dict[str, int],
    where: str,
    declarations: Declarations | None = None,
    decoded: FactSet | None = None,
) -> None:
    """422 with the JSON pointer of the first problem, or of the input limit. With
    declarations, first every declared-type problem (strict: an undeclared
    predicate is one), each in ``errors`` with its pointer into the request body.
    ``decoded``: ``facts`` as their shape check decoded them (the route's
    ``_check_case``): only the arities and the limit are left to check, not the
    whole case again."""
    if declarations is not None:
        found = declarations.problems(facts, strict=True)
        if found:
            errors = [p.to_json(f"{where}/facts") for p in found]
            detail = "; ".join(f"{e['pointer']}: {e['detail']}" for e in errors[:3])
            if len(errors) > 3:
                detail += f"; and {len(errors) - 3} more"
            raise Problem(
                422,
                "invalid-facts",
                "Invalid facts",
                detail,
                path=found[0].pointer,
                errors=errors,
            )
    try:
        if decoded is None:
            validate_facts(facts, arities, reasoning.Limits.from_mapping(limits))
        else:
            _check_decoded(decoded, arities, limits.get("input_facts", reasoning.Limits.input_facts))
    except reasoning.FactsError as exc:
        raise Problem(
            422, "invalid-facts", "Invalid facts", f"{where}/facts{exc.path}: {exc}", path=exc.path
        ) from None
    except reasoning.InputFactsLimitExceeded as exc:
        raise Problem(
            422, exc.code, "Limit exceeded", f"{where}/facts: {exc}", limit=exc.limit, value=exc.value
        ) from None


def _check_decoded(decoded: FactSet, arities: dict[str, int] | None, max_facts: int) -> None:
    """What :func:`~entail.reasoning.facts.validate_facts` finds in a case whose shape
    and values are known to be right (every row of a predicate has its first
    row's arity): the first predicate, in the body's order, that the program uses
    with another arity (at its first row), or the input limit, passed at the same
    fact and reported with the same count."""
    count = 0
    for (name, arity), rows in decoded.facts.items():
        expected = arities.get(name) if arities else None
        if expected is not None and arity != expected:
            raise reasoning.FactsError(
                f"'{name}' has {arity} argument(s) here but the program uses '{name}/{expected}'",
                _pointer(name, 0),
            )
        count += len(rows)
        if count > max_facts:
            raise reasoning.InputFactsLimitExceeded(max_facts, max_facts + 1)
