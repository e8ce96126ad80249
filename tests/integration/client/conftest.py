"""One local stack for the SDK and CLI tests of this folder (the retry tests start
their own, with a tiny rate limit)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..services.stack import LocalStack, local_stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with local_stack(tmp_path_factory.mktemp("sdk")) as s:
        yield s
