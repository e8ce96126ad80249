"""Rulesets bind datasets: checked and pinned at publish, resolved at each decision.

A program declares what it reads (``%@dataset NAME: pred(...)``, docs/datasets.md);
a publish binds each declared NAME to a dataset selector. Two kinds:

- **pinned** (``orgchart@7`` or a version hash): resolved once, at publish, and kept
  as ``name@N``; every decision of the ruleset version reads that version;
- **floating** (``orgchart``, ``orgchart@latest``, ``orgchart@prod``): kept as
  given (``name`` as ``name@latest``) and resolved at each decision's submission,
  so moving the tag moves the decisions.

Either way a decision records the exact versions it read (``DatasetRef``: binding,
name, version, hash), the request hash covers their hashes, and the worker, replay
and impact read those recorded versions, never the selector again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .datasets.port import DatasetStore
from .models import DatasetRef

_HASH = re.compile(r"[0-9a-f]{64}\Z")
_NUMBERED = re.compile(r"@[0-9]{1,15}\Z")


class DatasetBindingError(Exception):
    """A binding that cannot be honoured (a 4xx): ``code`` names it for problem+json."""

    def __init__(self, code: str, message: str, *, status: int = 422, binding: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.binding = binding


def is_pinned(selector: str) -> bool:
    """A selector naming one version for good (``name@7``, a version hash)."""
    return bool(_HASH.match(selector) or _NUMBERED.search(selector))


def dataset_name(selector: str) -> str:
    """The dataset a stored binding reads (stored bindings are ``name@...``)."""
    return selector.partition("@")[0]


async def bind_at_publish(
    store: DatasetStore | None, tenant: str, declared: Iterable[str], given: Mapping[str, str]
) -> dict[str, str]:
    """The bindings a new ruleset version keeps: every ``%@dataset`` name of the program
    bound (an unbound one to ``NAME@latest``), pinned selectors as ``name@N``.

    :class:`DatasetBindingError` ``dataset-not-declared`` for a bound name the program
    does not declare, ``dataset-not-found`` for a selector that resolves to nothing
    (no store configured counts as nothing)."""
    names = set(declared)
    stray = sorted(set(given) - names)
    if stray:
        raise DatasetBindingError(
            "dataset-not-declared",
            f"the program declares no dataset {stray[0]!r} (declared: {sorted(names) or 'none'}); "
            "declare it with %@dataset or drop the binding",
            binding=stray[0],
        )
    out: dict[str, str] = {}
    for binding in sorted(names):
        selector = given.get(binding) or binding
        if "@" not in selector and not _HASH.match(selector):
            selector += "@latest"
        found = await store.resolve(tenant, selector) if store is not None else None
        if found is None:
            raise DatasetBindingError(
                "dataset-not-found",
                f"dataset binding {binding!r}: {selector!r} names no dataset version of this tenant",
                binding=binding,
            )
        out[binding] = f"{found.name}@{found.version}" if is_pinned(selector) else selector
    return out


async def resolve_bindings(
    store: DatasetStore | None, tenant: str, bindings: Mapping[str, str]
) -> list[DatasetRef]:
    """The exact versions a decision reads now, sorted by binding.

    :class:`DatasetBindingError` ``dataset-not-found`` (409: the request is fine, the
    tenant's datasets are not) when a selector resolves to nothing any more."""
    refs: list[DatasetRef] = []
    for binding, selector in sorted(bindings.items()):
        found = await store.resolve(tenant, selector) if store is not None else None
        if found is None:
            raise DatasetBindingError(
                "dataset-not-found",
                f"the ruleset binds {binding!r} to {selector!r}, which names no dataset version now",
                status=409,
                binding=binding,
            )
        refs.append(DatasetRef(binding=binding, name=found.name, version=found.version, hash=found.hash))
    return refs


async def override_bindings(
    store: DatasetStore | None,
    tenant: str,
    recorded: Iterable[DatasetRef],
    overrides: Mapping[str, str],
) -> list[DatasetRef]:
    """Impact's "same rules, new data": the recorded versions with some bindings
    resolved afresh from ``overrides`` (binding -> selector); a binding the decision
    did not record is ``dataset-not-declared``."""
    by_binding = {r.binding: r for r in recorded}
    stray = sorted(set(overrides) - set(by_binding))
    if stray:
        raise DatasetBindingError(
            "dataset-not-declared",
            f"the decisions read no dataset binding {stray[0]!r} (recorded: {sorted(by_binding) or 'none'})",
            binding=stray[0],
        )
    try:
        fresh = await resolve_bindings(store, tenant, overrides)
    except DatasetBindingError as exc:  # the caller's override names nothing: their input
        raise DatasetBindingError(exc.code, str(exc), binding=exc.binding) from None
    for ref in fresh:
        by_binding[ref.binding] = ref
    return [by_binding[b] for b in sorted(by_binding)]
