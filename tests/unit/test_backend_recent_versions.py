"""What the backend process remembers of the versions ruleset names named (the
repeated cache hit is built against them): bounded in entries and in bytes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from entail_backend import deps


def request() -> Any:
    return SimpleNamespace(state=SimpleNamespace())


def test_a_name_is_remembered_replaced_and_forgotten() -> None:
    deps._RECENT_VERSIONS.clear()
    r = request()
    deps.resolved(r, "acme", "loan", b'{"v": 1}')
    assert r.state.resolved_ruleset == ("acme", "loan", b'{"v": 1}')
    assert deps.recent_version("acme", "loan") == b'{"v": 1}'
    assert deps.recent_version("beta", "loan") is None  # another tenant's name
    deps.resolved(request(), "acme", "loan", b'{"v": 2}')
    assert deps.recent_version("acme", "loan") == b'{"v": 2}'
    deps.resolved(request(), "acme", "loan", None)  # names nothing now
    assert deps.recent_version("acme", "loan") is None


def test_a_large_entry_is_not_kept_and_the_entries_are_bounded() -> None:
    deps._RECENT_VERSIONS.clear()
    deps.resolved(request(), "acme", "loan", b"x" * 10)
    deps.resolved(request(), "acme", "loan", b"x" * (deps._RECENT_VERSION_MAX_BYTES + 1))
    assert deps.recent_version("acme", "loan") is None  # neither the large one nor the stale one
    for i in range(deps._RECENT_VERSIONS_MAX + 5):
        deps.resolved(request(), "acme", f"r{i}", b"{}")
    assert len(deps._RECENT_VERSIONS) <= deps._RECENT_VERSIONS_MAX
