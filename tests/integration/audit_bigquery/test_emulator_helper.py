"""The emulator helper other tests build on: it answers on its endpoint with the
project it was given, and stopping it leaves no process and no log behind."""

from __future__ import annotations

import os

import pytest
from emulators.bigquery_emulator import BigQueryEmulator


def test_an_emulator_starts_answers_and_stops_without_a_trace() -> None:
    with BigQueryEmulator(project="helper-test") as bq:
        assert bq.endpoint.startswith("http://127.0.0.1:")
        client = bq.client()
        client.create_dataset("probe", retry=None)
        assert [d.dataset_id for d in client.list_datasets(retry=None)] == ["probe"]
        assert bq.env()["ENTAIL_BIGQUERY_ENDPOINT"] == bq.endpoint
        assert bq.proc is not None
        group, log = bq.proc.pid, bq.log_path
        assert log.exists()
        client.close()
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)  # the emulator and anything it started are gone
    assert not log.exists()


def test_an_emulator_not_ready_in_time_is_stopped_not_left_running() -> None:
    slow = BigQueryEmulator(ready_timeout_s=0.2)
    with pytest.raises(RuntimeError, match=r"not ready in 0\.2 s"):
        slow.start()
    assert slow.proc is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(slow.proc.pid, 0)
    assert not slow.log_path.exists()
