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
why it cannot run, if it cannot. Starting, waiting for it and stopping it are
``emulator_process.py``'s, shared with the Cloud Storage emulator. This module is deliberately not called
``bqemulator.py``: ``bqemulator_main.py`` runs with this folder first on
``sys.path`` and would import it instead of the emulator's package.
"""

from __future__ import annotations

from pathlib import Path
from subprocess import Popen
from types import TracebackType
from typing import Any

from emulators.emulator_process import EmulatorProcess
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
        self._process = EmulatorProcess(
            "bqemulator", log_prefix="bqemulator-", ready_timeout_s=ready_timeout_s
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proc(self) -> Popen[bytes] | None:
        return self._process.proc

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    def log(self) -> str:
        return self._process.log()

    def start(self) -> BigQueryEmulator:
        reason = available()
        if reason:
            raise RuntimeError(reason)
        self._process.start(
            [
                str(PYTHON), str(MAIN), "start",
                "--rest-host", "127.0.0.1", "--rest-port", str(self.port),
                "--grpc-host", "127.0.0.1", "--grpc-port", str(self.grpc_port),
                "--project", self.project, "--ephemeral", "--log-level", "warning",
            ],
            ready_url=f"{self.endpoint}/bigquery/v2/projects/{self.project}/datasets",
            env={"OTEL_SDK_DISABLED": "true"},
        )  # fmt: skip
        return self

    def stop(self) -> None:
        self._process.stop()  # read log() before stop() to keep it

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
