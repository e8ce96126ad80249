"""The Cloud Storage emulator for tests: gcp-storage-emulator, in memory, on a free
127.0.0.1 port, with one bucket.

    with GcsEmulator(bucket="roots") as gcs:
        gcs.endpoint  # the JSON API base, e.g. http://127.0.0.1:41234

It lives in ``.tools/gcs-emulator-venv`` (``tests/emulators/setup_gcs_emulator.sh``,
run by ``make emulators``). What it does not do, and tests must not expect: it
ignores preconditions (``ifGenerationMatch=0`` overwrites an existing object
instead of answering 412) and has no retention policies or locks; tests check
create-once behaviour through the publisher's read-before-write, and the bucket
lock through Terraform (tests/cloud).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import httpx

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
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="gcs-emulator-", suffix=".log", delete=False)  # noqa: SIM115

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def start(self) -> GcsEmulator:
        reason = available()
        if reason:
            raise RuntimeError(reason)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")},
            "NO_PROXY": "127.0.0.1",
        }
        self.proc = subprocess.Popen(
            [str(BINARY), "start", "--host", "127.0.0.1", "--port", str(self.port),
             "--in-memory", "--default-bucket", self.bucket, "--quiet"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"gcp-storage-emulator exited with {self.proc.returncode}:\n{self.log()[-4000:]}"
                )
            try:
                if httpx.get(f"{self.endpoint}/storage/v1/b/{self.bucket}", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                output = self.log()[-4000:]
                self.stop()
                raise RuntimeError(f"gcp-storage-emulator not ready in {self.ready_timeout_s} s:\n{output}")
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
        Path(self._log.name).unlink(missing_ok=True)

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
