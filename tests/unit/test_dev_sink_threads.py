"""The local stack's audit sink serves as many pushes at once as the relay keeps in
flight, so that its group commits can batch them all (bench/PROFILE.md)."""

from __future__ import annotations

import os
import subprocess
import sys

from entail_dev.stack import SINK_SOURCE

from entail.relay import Relay

PROBE = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("local_sink", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(os.environ["THREADS"], module.sink.committer.gather_rows, module.sink.committer.gather_s)
"""


def _probe(env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(SINK_SOURCE)], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_the_local_sink_serves_the_relays_pushes_in_flight_at_once() -> None:
    env = {k: v for k, v in os.environ.items() if k != "THREADS"}
    defaults = Relay.__init__.__kwdefaults__ or {}
    in_flight = defaults["max_in_flight"]
    threads, gather_rows, gather_s = _probe(env)
    assert int(threads) == int(gather_rows) == in_flight == 16
    assert float(gather_s) == 0.1


def test_an_operators_threads_setting_wins() -> None:
    threads, gather_rows, _ = _probe({**os.environ, "THREADS": "5"})
    assert (threads, gather_rows) == ("5", "5")
