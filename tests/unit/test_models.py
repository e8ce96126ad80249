"""Shared models: request hashing and the production secrets."""

from __future__ import annotations

import pytest

from entail.models import request_hash
from entail.settings import Settings


def test_request_hash_ignores_key_order_and_query_spacing() -> None:
    a = request_hash({"p": [[1]], "q": [["x"]]}, ["p(X)"], False, {})
    b = request_hash({"q": [["x"]], "p": [[1]]}, ["  p(X) "], False, {})
    assert a == b
    assert a != request_hash({"p": [[1]], "q": [["x"]]}, ["p(X)"], True, {})
    assert a != request_hash({"p": [[2]], "q": [["x"]]}, ["p(X)"], False, {})


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValueError, match="ENTAIL_MASK_SECRET"):
        Settings(env="production", push_secret="a-real-push-secret")
    with pytest.raises(ValueError, match="ENTAIL_PUSH_SECRET"):
        Settings(env="production", mask_secret="a-real-mask-secret")
    Settings(env="production", push_secret="p" * 20, mask_secret="m" * 20)
