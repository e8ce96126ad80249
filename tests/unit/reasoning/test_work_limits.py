"""Work inside one rule is bounded (issue 12): the wall-time limit is checked inside
aggregate collection and inside every generated join loop, and the elements an
aggregate collects count toward the derived-facts limit."""

from __future__ import annotations

import time

import pytest

from entail import reasoning

FACTS = {"a": [[i] for i in range(1000)]}
LIMIT_MS = 300


@pytest.mark.parametrize(
    "source",
    [
        "t :- a(X), a(Y), a(Z), X+Y+Z < 0.",
        "s(N) :- N = #sum{ X,Y,Z : a(X), a(Y), a(Z) }.",
        "s :- #count{ X,Y,Z : a(X), a(Y), a(Z) } > 5.",
    ],
)
def test_wall_time_stops_close_to_the_limit(source: str) -> None:
    # each of these would run for about a minute; it must stop near the limit,
    # the release of what it collected included
    rs = reasoning.compile(source)
    limits = reasoning.Limits(wall_time_ms=LIMIT_MS, derived_facts=10**9)
    start = time.monotonic()
    with pytest.raises(reasoning.WallTimeLimitExceeded) as info:
        rs.evaluate(FACTS, limits=limits)
    elapsed_ms = (time.monotonic() - start) * 1000
    assert info.value.code == "limit-wall-time"
    assert elapsed_ms < 1.5 * LIMIT_MS + 150, elapsed_ms  # 150 ms of slack for a loaded machine


def test_aggregate_elements_count_toward_the_derived_facts_limit() -> None:
    rs = reasoning.compile("s(N) :- N = #count{ X,Y : a(X), a(Y) }.")
    with pytest.raises(reasoning.DerivedFactsLimitExceeded) as info:
        rs.evaluate(FACTS, limits=reasoning.Limits(derived_facts=50_000))
    assert info.value.value > 50_000
    # within the limit, the same aggregate completes
    small = {"a": [[i] for i in range(100)]}
    assert "s(10000)" in rs.evaluate(small, limits=reasoning.Limits(derived_facts=50_000)).shown_atoms()
