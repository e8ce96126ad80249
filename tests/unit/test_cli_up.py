"""``entail up`` is the entail-dev package's: the library alone says what to install."""

from __future__ import annotations

import io
import sys

import pytest

from entail.cli import main


def test_up_without_entail_dev_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "entail_dev.stack", None)  # as if not installed: imports fail
    out, err = io.StringIO(), io.StringIO()
    assert main(["up"], out, err) == 2
    assert "pip install entail-dev" in err.getvalue()
    assert out.getvalue() == ""


def test_a_broken_install_is_not_reported_as_a_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # entail-dev installed, one of its dependencies missing: the real error, not the hint
    monkeypatch.delitem(sys.modules, "entail_dev.stack", raising=False)
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ModuleNotFoundError, match="httpx"):
        main(["up"], io.StringIO(), io.StringIO())
