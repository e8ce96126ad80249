"""The SDK and CLI tests of this folder share the worker's default stack, with
tenants of their own (the retry tests start their own stack, with a tiny rate limit)."""

from __future__ import annotations

import pytest

from ..services.stack import LocalStack


@pytest.fixture(scope="package")
def stack(shared_stack: LocalStack) -> LocalStack:
    return shared_stack.with_own_tenants("sdk")
