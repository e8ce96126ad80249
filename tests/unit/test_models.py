"""Shared models: request hashing and masking."""

from __future__ import annotations

import pytest

from entail.models import mask_facts, request_hash
from entail.settings import Settings


def test_request_hash_ignores_key_order_and_query_spacing() -> None:
    a = request_hash({"p": [[1]], "q": [["x"]]}, ["p(X)"], False, {})
    b = request_hash({"q": [["x"]], "p": [[1]]}, ["  p(X) "], False, {})
    assert a == b
    assert a != request_hash({"p": [[1]], "q": [["x"]]}, ["p(X)"], True, {})
    assert a != request_hash({"p": [[2]], "q": [["x"]]}, ["p(X)"], False, {})


def test_mask_facts() -> None:
    facts = {"ssn": [["ann", "123"]], "age": [["ann", 30]], "ssn3": [["a", "b", "c"]]}
    masked = mask_facts(facts, ["ssn/2"], "k1")
    assert masked["age"] == facts["age"] and masked["ssn3"] == facts["ssn3"]
    assert all(v.startswith("hmac-sha256:") and len(v) == 12 + 64 for v in masked["ssn"][0])
    assert masked == mask_facts(facts, ["ssn/2"], "k1")  # equal values stay equal
    assert masked != mask_facts(facts, ["ssn/2"], "k2")  # and depend on the secret
    assert facts["ssn"] == [["ann", "123"]]  # the input is not modified


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValueError, match="ENTAIL_MASK_SECRET"):
        Settings(env="production", push_secret="a-real-push-secret")
    with pytest.raises(ValueError, match="ENTAIL_PUSH_SECRET"):
        Settings(env="production", mask_secret="a-real-mask-secret")
    Settings(env="production", push_secret="p" * 20, mask_secret="m" * 20)
