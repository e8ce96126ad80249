"""The audited batch caps come from Settings (``ENTAIL_BATCH_*``), read once by the
composition root: bad values are refused with the variable's name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from entail.batch import BatchCaps
from entail.reasoning.sql.run import BatchLimits
from entail.settings import Settings


def test_caps_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTAIL_BATCH_MAX_BYTES", "1000")
    monkeypatch.setenv("ENTAIL_BATCH_MAX_ITERATIONS", "7")
    monkeypatch.setenv("ENTAIL_BATCH_MAX_ROWS", "99")
    monkeypatch.setenv("ENTAIL_BATCH_WORK_DATASET", "scratch")
    monkeypatch.setenv("ENTAIL_BIGQUERY_LOCATION", "EU")
    assert BatchCaps.from_settings(Settings()) == BatchCaps(
        max_bytes=1000, max_iterations=7, max_rows=99, work_dataset="scratch", location="EU"
    )


def test_the_defaults_are_the_engines_limits() -> None:
    # Settings does not import the engine, so its defaults are written twice: kept equal here
    caps = BatchCaps.from_settings(Settings())
    assert (caps.max_iterations, caps.max_rows) == (BatchLimits.max_iterations, BatchLimits.max_rows)
    assert caps.max_bytes == 10**12 and caps.work_dataset == "entail_batch_work"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENTAIL_BATCH_MAX_BYTES", "-1"),
        ("ENTAIL_BATCH_MAX_ROWS", "many"),
        ("ENTAIL_BATCH_WORK_DATASET", "no-dashes"),
    ],
)
def test_bad_values_are_refused_by_name(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("ENTAIL_").lower()):
        Settings()
