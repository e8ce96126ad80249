"""The service's caps reach every engine limit a request can name, compile-time
ones included (a request may lower a cap, never raise it)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from entail_backend.routes.decisions import _limits

from entail import reasoning
from entail.settings import Settings


def caps(**settings: Any) -> dict[str, int]:
    services: Any = SimpleNamespace(settings=Settings(**settings))
    return _limits(services, {})


def test_compile_limits_come_from_the_settings() -> None:
    limits = caps(limit_compile_time_ms=1234, limit_rule_body_literals=56)
    assert limits["compile_time_ms"] == 1234
    assert limits["rule_body_literals"] == 56


def test_a_request_cannot_raise_a_compile_cap() -> None:
    services: Any = SimpleNamespace(settings=Settings(limit_rule_body_literals=56))
    assert _limits(services, {"rule_body_literals": 10_000_000})["rule_body_literals"] == 56
    assert _limits(services, {"rule_body_literals": 7})["rule_body_literals"] == 7


def test_the_capped_rule_body_is_enforced_by_the_engine() -> None:
    body = ", ".join(f"a{i}(X)" for i in range(60))
    limits = reasoning.Limits.from_mapping(caps(limit_rule_body_literals=56))
    with pytest.raises(reasoning.EntailError) as refused:
        reasoning.compile(f"p(X) :- {body}.", limits=limits)
    assert refused.value.code == "limit-rule-body"


def test_the_caps_of_a_request_asking_for_none_are_worked_out_once_and_copied() -> None:
    from entail.decisions import service_limits

    settings = Settings(limit_wall_time_ms=4321)
    first = service_limits(settings, {})
    first["wall_time_ms"] = 1  # the caller's own copy
    again = service_limits(settings, {})
    assert again["wall_time_ms"] == 4321 and again is not first
    # other caps (another settings object, or the same one changed) are their own
    assert service_limits(Settings(limit_wall_time_ms=99), {})["wall_time_ms"] == 99
    settings.limit_wall_time_ms = 77
    assert service_limits(settings, {})["wall_time_ms"] == 77
    assert service_limits(settings, {"wall_time_ms": 5})["wall_time_ms"] == 5
