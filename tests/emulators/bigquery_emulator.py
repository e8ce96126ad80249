"""The BigQuery emulator for tests: bqemulator 1.4.0, started on a free 127.0.0.1 port.

    with BigQueryEmulator(project="entail-test") as bq:
        client = bq.client()  # google-cloud-bigquery, anonymous, pointed at bq.endpoint

The emulator lives in ``.tools/bqemulator-venv`` (``tests/emulators/setup_bqemulator.sh``,
run by ``make emulators``). What it does not do, and tests must not expect:
it ignores insertIds (no best-effort de-duplication), does not expire
partitions, does not keep ``require_partition_filter`` or column descriptions,
does not enforce REQUIRED columns on streaming inserts, and answers a row of
the wrong type with HTTP 500 rather than per-row ``insertErrors``. Pass
``retry=None`` to client calls in tests so a failure surfaces at once instead
of being retried for minutes.

The API: ``BigQueryEmulator(project)`` with ``start()``/``stop()`` or ``with``;
``.endpoint``, ``.project``, ``.client()``, ``.env()`` (settings for a process)
and ``.log()`` (its output, until ``stop()`` removes it); ``available()`` says
why it cannot run, if it cannot. This module is deliberately not called
``bqemulator.py``: ``bqemulator_main.py`` runs with this folder first on
``sys.path`` and would import it instead of the emulator's package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from entail.net import free_port

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".tools" / "bqemulator-venv"
PYTHON = VENV / "bin" / "python"
MAIN = Path(__file__).with_name("bqemulator_main.py")


def available() -> str | None:
    """None when the emulator can run, else why not (a skip reason)."""
    if not PYTHON.exists():
        return f"bqemulator is not installed in {VENV}: run `make emulators`"
    ext = Path.home() / ".duckdb/extensions/v1.5.5/linux_amd64/spatial.duckdb_extension"
    if not ext.exists():
        return f"the DuckDB spatial extension is missing at {ext}: run `make emulators`"
    return None


class BigQueryEmulator:
    def __init__(self, project: str = "entail-test", *, ready_timeout_s: float = 60.0) -> None:
        self.project = project
        self.port = free_port()
        self.grpc_port = free_port()
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="bqemulator-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return Path(self._log.name)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> BigQueryEmulator:
        reason = available()
        if reason:
            raise RuntimeError(reason)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")},
            "NO_PROXY": "127.0.0.1",
            "OTEL_SDK_DISABLED": "true",
        }
        self.proc = subprocess.Popen(
            [
                str(PYTHON), str(MAIN), "start",
                "--rest-host", "127.0.0.1", "--rest-port", str(self.port),
                "--grpc-host", "127.0.0.1", "--grpc-port", str(self.grpc_port),
                "--project", self.project, "--ephemeral", "--log-level", "warning",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + self.ready_timeout_s
        url = f"{self.endpoint}/bigquery/v2/projects/{self.project}/datasets"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bqemulator exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                output = self.log()[-4000:]
                self.stop()
                raise RuntimeError(f"bqemulator not ready in {self.ready_timeout_s} s:\n{output}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        self.log_path.unlink(missing_ok=True)  # read log() before stop() to keep it

    def client(self) -> Any:
        """A google-cloud-bigquery Client on the emulator with anonymous credentials."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=self.endpoint),
        )

    def env(self) -> dict[str, str]:
        """The settings that point an Entail process at this emulator."""
        return {
            "ENTAIL_AUDIT_STORE": "bigquery",
            "ENTAIL_BIGQUERY_PROJECT": self.project,
            "ENTAIL_BIGQUERY_ENDPOINT": self.endpoint,
        }

    def __enter__(self) -> BigQueryEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
