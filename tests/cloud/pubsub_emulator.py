"""Google's Pub/Sub emulator as a test fixture: the Java server of the Cloud SDK
on a free 127.0.0.1 port, plus topic and subscription administration through
the same clients the bus adapter uses (plaintext gRPC, no credentials).

The emulator really delivers push subscriptions: it POSTs the Pub/Sub push
envelope to the endpoint and redelivers until a 2xx. It does not sign push
requests (no OIDC token), which is why the worker runs with
ENTAIL_PUSH_AUTH=none against it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from entail.bus.pubsub import publisher_client, subscriber_client, topic_path
from entail.net import free_port
from entail.settings import Settings

EMULATOR = Path(
    os.environ.get(
        "ENTAIL_TEST_PUBSUB_EMULATOR",
        "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator",
    )
)
PROJECT = "entail-test"
STARTED = "Server started"


def skip_reason() -> str | None:
    """Why the emulator cannot run here, or None."""
    if not EMULATOR.is_file():
        return f"the Pub/Sub emulator is not installed at {EMULATOR} (gcloud component pubsub-emulator)"
    if shutil.which("java") is None:
        return "the Pub/Sub emulator needs a Java runtime (java not on PATH)"
    return None


def require_emulator() -> None:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)


class PubSubEmulator:
    """``with PubSubEmulator(log_path) as emulator:`` — started, then stopped."""

    def __init__(self, log: Path, project: str = PROJECT) -> None:
        self.log = log
        self.project = project
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> PubSubEmulator:
        with self.log.open("wb") as out:
            self._process = subprocess.Popen(
                [str(EMULATOR), "--host=127.0.0.1", f"--port={self.port}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the script starts java: stop the whole group
            )
        deadline = time.monotonic() + timeout_s
        while STARTED not in self.log.read_text(errors="replace"):
            if self._process.poll() is not None:
                raise RuntimeError(f"the Pub/Sub emulator exited: {self.output()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Pub/Sub emulator is not up after {timeout_s:.0f} s: {self.output()}")
            time.sleep(0.1)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> PubSubEmulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # administration ---------------------------------------------------------------
    def settings(self, **values: Any) -> Settings:
        """Settings of a process that uses this emulator as its bus."""
        return Settings(bus="pubsub", gcp_project=self.project, pubsub_emulator_host=self.host, **values)

    def env(self) -> dict[str, str]:
        """The same, as environment variables of a service process."""
        return {
            "ENTAIL_BUS": "pubsub",
            "ENTAIL_GCP_PROJECT": self.project,
            "ENTAIL_PUBSUB_EMULATOR_HOST": self.host,
        }

    def create_topic(self, topic: str) -> str:
        client = publisher_client(self.settings())
        try:
            path = topic_path(self.project, topic)
            client.create_topic(name=path)
            return path
        finally:
            client.transport.close()

    def create_subscription(
        self, name: str, topic: str, *, push_endpoint: str | None = None, ack_deadline_s: int = 10
    ) -> str:
        """A pull subscription, or a push one to ``push_endpoint``."""
        client = subscriber_client(self.settings())
        try:
            path = f"projects/{self.project}/subscriptions/{name}"
            request: dict[str, Any] = {
                "name": path,
                "topic": topic_path(self.project, topic),
                "ack_deadline_seconds": ack_deadline_s,
            }
            if push_endpoint is not None:
                request["push_config"] = {"push_endpoint": push_endpoint}
            client.create_subscription(request=request)
            return path
        finally:
            client.close()

    def pull(self, subscription: str, max_messages: int = 10, timeout_s: float = 10.0) -> list[Any]:
        """Received messages of a pull subscription (acknowledged), waiting for at least one."""
        client = subscriber_client(self.settings())
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                response = client.pull(
                    request={"subscription": subscription, "max_messages": max_messages}, timeout=timeout_s
                )
                received = list(response.received_messages)
                if received:
                    client.acknowledge(
                        request={"subscription": subscription, "ack_ids": [m.ack_id for m in received]}
                    )
                    return [m.message for m in received]
                if time.monotonic() > deadline:
                    return []
                time.sleep(0.1)
        finally:
            client.close()
