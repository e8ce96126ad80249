"""The image tier: the service images built from their real Dockerfiles and
the functions' staged folders, against local stand-ins of the base images
(scripts/images/, docs/deploy.md "Images built and booted locally"), then
booted with buildah. Needs root (or buildah and debootstrap installed and a
root filesystem cached): a fresh machine takes minutes, a warm one seconds.

Each step's duration is recorded and printed at the end of the run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from entail.state.embedded import EmbeddedRedis

from .buildah import ROOT, prepare

TIMINGS_LOG = ROOT / ".tools" / "images" / "timings.log"


@pytest.fixture(scope="session")
def stand_in_bases() -> list[str]:
    """Tools, base root filesystem and stand-in images, made or found cached
    (prepare.sh holds a lock: xdist workers wait for one another). Its step
    times, once per worker: see ``timings``."""
    return [line.removeprefix("images: ").strip() for line in prepare().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server


class Timings:
    def __init__(self, record: list[tuple[str, object]]) -> None:
        self._record = record

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.note(f"{name}: {time.monotonic() - start:.1f} s")

    def note(self, text: str) -> None:
        self._record.append(("step", text))
        # also kept on disk: under xdist the controller may not print the summary
        with TIMINGS_LOG.open("a") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")


_prepare_noted: list[bool] = []


@pytest.fixture
def timings(request: pytest.FixtureRequest, stand_in_bases: list[str]) -> Timings:
    """Per-test step times, carried in the report (so they reach the xdist
    controller); the first test of a worker also carries prepare.sh's."""
    timings = Timings(request.node.user_properties)
    if not _prepare_noted:
        _prepare_noted.append(True)
        for line in stand_in_bases:
            timings.note(f"prepare: {line}")
    return timings


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call" or "tests/images/" not in report.nodeid:
                continue
            for key, value in report.user_properties:
                if key == "step":
                    lines.append(f"{report.nodeid.split('::', 1)[1]}  {value}")
    if lines:
        terminalreporter.section("image tier: steps")
        for line in sorted(lines):
            terminalreporter.write_line(line)
