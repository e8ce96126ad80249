"""``entail up`` / ``make run``: the whole local stack as child processes.

Part of the ``entail-dev`` package, which depends on the library, both services
and functions-framework, so that ``pip install entail-dev`` gives a working
``entail up`` without a checkout: the audit sink runs from this package's
:mod:`entail_dev.sink`. Starts the embedded Redis (unless ``ENTAIL_REDIS_URL`` is set; with ``--ha`` a
primary, 2 replicas and 3 Sentinels instead; ``redis_unix_socket=True``: the
services connect over a Unix socket in its data directory), the backend, the reasoning worker
and the push relay, each with its output prefixed; waits until
they are ready; publishes the bundled example rulesets for the ``dev`` tenant;
prints the URLs, the dev API key and a curl that returns a decision with its proof.
Ctrl-C (or SIGTERM, or any child dying) stops everything it started.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from entail.auth import key_entry, new_key
from entail.settings import Settings

from .examples import example_case, example_rulesets

__all__ = ["SINK_SOURCE", "Child", "Stack", "StackError", "example_case", "run"]

COLOURS = {"redis": 31, "backend": 32, "worker": 33, "relay": 36, "sink": 35}

#: The embedded Redis's Unix socket, in its data directory (made 0700).
SOCKET_NAME = "valkey.sock"

#: The functions-framework source file of the local audit sink (installed with this package).
SINK_SOURCE = Path(__file__).resolve().with_name("sink.py")


class StackError(RuntimeError):
    """The stack could not start; the message says which part and why."""


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)
    retired: bool = False  # killed on purpose (tests): its exit is not a failure


def _prefix_lines(name: str, stream: IO[bytes], out: IO[str], colour: bool) -> None:
    label = f"{name:<8}|"
    if colour:
        label = f"\033[{COLOURS.get(name, 37)}m{label}\033[0m"
    for raw in iter(stream.readline, b""):
        out.write(f"{label} {raw.decode(errors='replace').rstrip()}\n")
        out.flush()


class Stack:
    """Owns the child processes; ``stop()`` is safe to call more than once."""

    def __init__(
        self,
        settings: Settings,
        *,
        out: IO[str] | None = None,
        colour: bool | None = None,
        extra_env: dict[str, str] | None = None,
        extra_keys: list[dict[str, Any]] | None = None,
        ha: bool = False,
        redis_unix_socket: bool = False,
    ) -> None:
        self.settings = settings
        self.ha = ha
        # True: the services reach the embedded server over a Unix socket in its 0700
        # data directory (TCP still when the path is past the kernel's limit). Off by
        # default: on the 2-core VM it cost the backend no less CPU per request than
        # loopback TCP (bench/PROFILE.md, "The local Redis over a Unix socket")
        self.redis_unix_socket = redis_unix_socket
        self.extra_env = extra_env or {}
        self.extra_keys = extra_keys or []
        self.out = out or sys.stdout
        self.colour = self.out.isatty() if colour is None else colour
        self.children: list[Child] = []
        self.redis: Any = None
        self.api_key = settings.dev_api_key or new_key()
        self.backend_url = f"http://127.0.0.1:{settings.backend_port}"
        self.worker_url = f"http://127.0.0.1:{settings.worker_port}"
        self._stopped = False
        self.env: dict[str, str] = {}

    # lifecycle -----------------------------------------------------------------
    def start(self, *, publish_examples: bool = True, ready_timeout_s: float = 60.0) -> None:
        if self.settings.bus != "redis" or self.settings.audit_store != "duckdb":
            raise StackError(
                "entail up runs the local stack (Redis Streams and the relay, a DuckDB audit file): "
                "unset ENTAIL_BUS and ENTAIL_AUDIT_STORE; cloud mode is deployed (docs/deploy.md)"
            )
        data_dir = self.settings.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o700)  # keys, Redis's files, audit.duckdb: this user's only
        redis_url = self.extra_env.get("ENTAIL_REDIS_URL") or os.environ.get("ENTAIL_REDIS_URL")
        redis_env = {"ENTAIL_REDIS_URL": redis_url or ""}
        if self.ha:
            from entail.state.embedded_ha import EmbeddedHA

            self.redis = EmbeddedHA(data_dir / "redis-ha").start()
            redis_env = self.redis.env()
            self._say(
                "redis",
                f"embedded primary :{self.redis.primary.port} (pid {self.redis.primary.pid}), replicas "
                f"{', '.join(f':{r.port}' for r in self.redis.replicas)}, Sentinels "
                f"{self.redis.sentinels_setting} (data in {data_dir / 'redis-ha'})",
            )
        elif not redis_url:
            self.redis = self._embedded_redis(data_dir / "redis").start()
            redis_env = {"ENTAIL_REDIS_URL": self.redis.url}
            self._say(
                "redis",
                f"embedded valkey-server on {self.redis.address} with a password "
                f"(data in {data_dir / 'redis'})",
            )
        keys_file = data_dir / "keys.json"
        entries = [key_entry(self.api_key, "dev", "dev", ["admin"]), *self.extra_keys]
        keys_file.write_text(json.dumps(entries, indent=2))
        keys_file.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if k != "PORT"}
        env.update(
            {
                **redis_env,
                "ENTAIL_API_KEYS_FILE": str(keys_file),
                "ENTAIL_PUSH_SECRET": os.environ.get("ENTAIL_PUSH_SECRET") or secrets.token_urlsafe(24),
                "ENTAIL_BACKEND_PORT": str(self.settings.backend_port),
                "ENTAIL_WORKER_PORT": str(self.settings.worker_port),
                "ENTAIL_WORKER_PUSH_URL": f"{self.worker_url}/push/reasoning-jobs",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        self.env = env
        python = sys.executable
        self._spawn("backend", [python, "-m", "entail_backend"], env)
        self._spawn("worker", [python, "-m", "entail_worker"], env)
        sink_port = self.settings.audit_sink_port
        env["ENTAIL_AUDIT_SINK_URL"] = f"http://127.0.0.1:{sink_port}/"
        env["ENTAIL_AUDIT_DUCKDB_PATH"] = str(self.settings.audit_duckdb_path or data_dir / "audit.duckdb")
        if self.settings.audit_sink_enabled:
            self._spawn(
                "sink",
                [
                    python, "-m", "functions_framework",
                    "--source", str(SINK_SOURCE), "--target", "audit_sink",
                    "--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(sink_port),
                ],
                env,
            )  # fmt: skip
            self._wait_port(sink_port, "sink", ready_timeout_s)
        else:
            env["ENTAIL_AUDIT_SINK_ENABLED"] = "false"
        self._spawn("relay", [python, "-m", "entail.relay"], env)
        self._wait_ready(f"{self.backend_url}/readyz", "backend", ready_timeout_s)
        self._wait_ready(f"{self.worker_url}/readyz", "worker", ready_timeout_s)
        if publish_examples:
            self.publish_examples()

    def _embedded_redis(self, redis_dir: Path) -> Any:
        """The single embedded server, on a Unix socket in its own directory when asked
        and the path fits; a fresh password per start, which reaches every process in
        ENTAIL_REDIS_URL."""
        from entail.state.embedded import EmbeddedRedis, UnixSocketPathTooLong

        password = secrets.token_urlsafe(24)
        if self.redis_unix_socket:
            try:
                return EmbeddedRedis(redis_dir, password=password, unix_socket=redis_dir / SOCKET_NAME)
            except UnixSocketPathTooLong as exc:
                self._say("redis", f"{exc}; the services connect over TCP instead")
        return EmbeddedRedis(redis_dir, password=password)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        try:
            # a session of its own: Ctrl-C reaches only `entail up`, which stops
            # the children in order (relay first, Redis last)
            process = subprocess.Popen(
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=0o077,  # what the services write (audit.duckdb) is 0600
            )
        except OSError as exc:
            self.stop()
            raise StackError(f"{name}: cannot start {shlex.join(argv)}: {exc}") from None
        assert process.stdout is not None
        pump = threading.Thread(
            target=_prefix_lines, args=(name, process.stdout, self.out, self.colour), daemon=True
        )
        pump.start()
        self.children.append(Child(name, argv, env, process, pump))

    def spawn(self, name: str, module: str, **env: str) -> Child:
        """Start one more service process (tests: a second backend, a restarted worker)."""
        self._spawn(name, [sys.executable, "-m", module], {**self.env, **env})
        return self.children[-1]

    def kill(self, name: str) -> None:
        """SIGKILL the newest process called ``name``: a crash, not a shutdown."""
        child = self.child(name)
        child.retired = True
        assert child.process is not None
        child.process.kill()
        child.process.wait()

    def child(self, name: str) -> Child:
        return next(c for c in reversed(self.children) if c.name == name)

    def wait_ready(self, url: str, name: str, timeout_s: float = 60.0) -> None:
        self._wait_ready(url, name, timeout_s)

    def _wait_ready(self, url: str, name: str, timeout_s: float) -> None:
        def answers() -> bool:
            try:
                return httpx.get(url, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait_until(answers, f"{name} was not ready at {url}", timeout_s)

    def _wait_port(self, port: int, name: str, timeout_s: float) -> None:
        """The functions framework has no health route: wait until it accepts connections."""

        def listens() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        self._wait_until(listens, f"{name} did not listen on 127.0.0.1:{port}", timeout_s)

    def _wait_until(self, check: Callable[[], bool], failure: str, timeout_s: float) -> None:
        """Poll ``check``; stop the stack if a child dies or the deadline passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            dead = self.dead_child()
            if dead is not None:
                self.stop()
                raise StackError(f"{dead} exited while starting; its output is above")
            if check():
                return
            time.sleep(0.1)
        self.stop()
        raise StackError(f"{failure} within {timeout_s:.0f} s")

    def dead_child(self) -> str | None:
        for child in self.children:
            if not child.retired and child.process is not None and child.process.poll() is not None:
                return f"{child.name} (exit code {child.process.returncode})"
        return None

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=2)
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    # examples and banner ------------------------------------------------------
    def publish_examples(self, api_key: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key or self.api_key}"}
        with httpx.Client(base_url=self.backend_url, headers=headers, timeout=30) as client:
            for body in example_rulesets():
                response = client.post("/v1/rulesets", json=body)
                if response.status_code not in (200, 201):
                    raise StackError(f"publishing example {body['name']!r} failed: {response.text}")
                data = response.json()
                self._say(
                    "up", f"ruleset {data['name']} version {data['version']} ({len(body['tests'])} tests)"
                )

    def curl_example(self) -> str:
        body = {
            "ruleset": "loan",
            "facts": example_case(),
            "query": ["decision(A, D)"],
            "explain": True,
            "wait_ms": 5000,
        }
        return (
            f"curl -s {self.backend_url}/v1/decisions \\\n"
            f"  -H 'Authorization: Bearer {self.api_key}' \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            f"  -d '{json.dumps(body, separators=(',', ':'))}'"
        )

    def _web_app(self) -> str:
        """Where the backend serves the built web app, or how to build it."""
        from entail_backend.webapp import default_dist

        dist = self.settings.static_dir or default_dist()
        if (dist / "index.html").exists():
            return f"{self.backend_url}/   (sign in with the API key below)"
        return f"not built ({dist}): `make web` in a checkout, or ENTAIL_STATIC_DIR=<a built static/dist>"

    def banner(self) -> str:
        return "\n".join(
            [
                "",
                "Entail is up.",
                f"  web app       {self._web_app()}",
                f"  API           {self.backend_url}   (OpenAPI: {self.backend_url}/docs)",
                f"  worker        {self.worker_url}    (push endpoint; not for clients)",
                f"  metrics       {self.backend_url}/metrics",
                f"  audit sink    http://127.0.0.1:{self.settings.audit_sink_port}/  "
                f"(CloudEvents from topic decisions; DuckDB {self.env.get('ENTAIL_AUDIT_DUCKDB_PATH', '')})",
                *([f"  redis (HA)    {self._ha_summary()}"] if self.ha else []),
                "  tenant        dev",
                f"  API key       {self.api_key}",
                "",
                "A decision with its proof:",
                "",
                self.curl_example(),
                "",
                "Ctrl-C stops everything.",
                "",
            ]
        )

    def _ha_summary(self) -> str:
        sentinels = self.env.get("ENTAIL_REDIS_SENTINELS", "")
        return f"Sentinels {sentinels}, master name {self.env.get('ENTAIL_REDIS_MASTER_NAME', '')}"

    def _say(self, name: str, text: str) -> None:
        self.out.write(f"{name:<8}| {text}\n")
        self.out.flush()


def run(settings: Settings | None = None, *, ha: bool = False) -> int:
    """Run the stack in the foreground until Ctrl-C / SIGTERM or a child dies."""
    settings = settings or Settings()
    stack = Stack(settings, ha=ha)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
    except StackError as exc:
        print(f"entail up: {exc}", file=sys.stderr)
        return 1
    print(stack.banner(), flush=True)
    code = 0
    try:
        while not stop.wait(0.5):
            dead = stack.dead_child()
            if dead is not None:
                print(f"entail up: {dead} stopped; stopping the stack", file=sys.stderr)
                code = 1
                break
    finally:
        print("stopping…", flush=True)
        stack.stop()
    return code


if __name__ == "__main__":
    raise SystemExit(run())
