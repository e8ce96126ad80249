"""ENTAIL_DECISION_DEADLINE_S never lets the sweeper end a decision a worker may
still finish: a deadline set at or under twice the wall-time limit is refused,
and the default grows with a long wall-time limit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from entail.settings import Settings


def test_default_deadline_is_ten_minutes() -> None:
    assert Settings().decision_deadline_s == 600


def test_default_grows_with_a_long_wall_time_limit() -> None:
    assert Settings(limit_wall_time_ms=600_000).decision_deadline_s == 2 * 600 + 60
    assert Settings(limit_wall_time_ms=600_001).decision_deadline_s == 2 * 601 + 60


def test_a_deadline_set_too_short_is_refused() -> None:
    with pytest.raises(ValidationError, match="must exceed twice ENTAIL_LIMIT_WALL_TIME_MS"):
        Settings(limit_wall_time_ms=10_000, decision_deadline_s=20)
    assert Settings(limit_wall_time_ms=10_000, decision_deadline_s=21).decision_deadline_s == 21
