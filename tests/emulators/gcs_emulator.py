"""The Cloud Storage emulator for tests: gcp-storage-emulator, in memory, on a free
127.0.0.1 port, with one bucket.

    with GcsEmulator(bucket="roots") as gcs:
        gcs.endpoint  # the JSON API base, e.g. http://127.0.0.1:41234

It lives in ``.tools/gcs-emulator-venv`` (``tests/emulators/setup_gcs_emulator.sh``,
run by ``make emulators``). What it does not do, and tests must not expect: it
ignores preconditions (``ifGenerationMatch=0`` overwrites an existing object
instead of answering 412) and has no retention policies or locks; tests check
create-once behaviour through the publisher's read-before-write, and the bucket
lock through Terraform (tests/cloud). Starting, waiting for it and stopping it
are ``emulator_process.py``'s, shared with the BigQuery emulator.
"""

from __future__ import annotations

from pathlib import Path
from subprocess import Popen
from types import TracebackType
from urllib.parse import quote

import httpx

from emulators.emulator_process import EmulatorProcess
from entail.net import free_port

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".tools" / "gcs-emulator-venv"
BINARY = VENV / "bin" / "gcp-storage-emulator"


def available() -> str | None:
    """None when the emulator can run, else why not."""
    if not BINARY.exists():
        return f"gcp-storage-emulator is not installed in {VENV}: run `make emulators`"
    return None


class GcsEmulator:
    def __init__(self, bucket: str = "entail-roots", *, ready_timeout_s: float = 30.0) -> None:
        self.bucket = bucket
        self.port = free_port()
        self.ready_timeout_s = ready_timeout_s
        self._process = EmulatorProcess(
            "gcp-storage-emulator", log_prefix="gcs-emulator-", ready_timeout_s=ready_timeout_s
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

    def start(self) -> GcsEmulator:
        reason = available()
        if reason:
            raise RuntimeError(reason)
        self._process.start(
            [str(BINARY), "start", "--host", "127.0.0.1", "--port", str(self.port),
             "--in-memory", "--default-bucket", self.bucket, "--quiet"],
            ready_url=f"{self.endpoint}/storage/v1/b/{self.bucket}",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        self._process.stop()

    def objects(self) -> dict[str, bytes]:
        """Every object of the bucket and its bytes."""
        listing = httpx.get(f"{self.endpoint}/storage/v1/b/{self.bucket}/o", timeout=10).json()
        out: dict[str, bytes] = {}
        for item in listing.get("items", []):
            name = item["name"]
            got = httpx.get(
                f"{self.endpoint}/storage/v1/b/{self.bucket}/o/{quote(name, safe='')}",
                params={"alt": "media"},
                timeout=10,
            )
            got.raise_for_status()
            out[name] = got.content
        return out

    def __enter__(self) -> GcsEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
