"""entail.state.embedded: the valkey-server from the pinned wheel, and its CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from entail.net import free_port
from entail.state import EmbeddedRedis
from entail.state.embedded import PortInUseError


def gone(pid: int, within_s: float = 5.0) -> bool:
    """True once no process has ``pid`` (a zombie still counts as there)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def test_start_stop_leaves_no_process(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r").start()
    pid = server.pid
    assert pid is not None
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    with redis.Redis.from_url(server.url) as client:
        assert client.info("server")["process_id"] == pid
    server.stop()
    server.stop()  # idempotent
    assert server.process is None and gone(pid)
    assert (tmp_path / "r" / "valkey.log").read_text()


def test_configuration(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "r") as server, redis.Redis.from_url(server.url) as client:
        config = client.config_get("*")
        assert config["bind"] == "127.0.0.1"
        assert config["protected-mode"] == "no"
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "everysec"
        assert config["save"] == ""
        assert config["dir"] == str((tmp_path / "r").resolve())
        assert config["logfile"] == str(server.log_path)
    assert server.process is None


def test_data_survives_a_restart(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "r") as server, redis.Redis.from_url(server.url) as client:
        client.set("k", "v")
    with EmbeddedRedis(tmp_path / "r") as again, redis.Redis.from_url(again.url) as client:
        assert client.get("k") == b"v"


def test_relative_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with EmbeddedRedis(Path("rel/redis")) as server:
        assert server.data_dir == tmp_path / "rel" / "redis"
    assert (tmp_path / "rel" / "redis" / "valkey.log").exists()


def test_a_taken_port(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "a") as first:
        # a port the caller chose: an error, and PING from the other server is not mistaken for ours
        with pytest.raises(PortInUseError, match="Address already in use"):
            EmbeddedRedis(tmp_path / "b", port=first.port).start()
        # a port it picked itself (taken meanwhile): it picks another
        second = EmbeddedRedis(tmp_path / "c")
        second.port = first.port
        with second:
            assert second.port != first.port
            with redis.Redis.from_url(second.url) as client:
                assert client.info("server")["process_id"] == second.pid


def test_start_twice_is_refused(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "r") as server, pytest.raises(RuntimeError, match="already running"):
        server.start()


def test_atexit_stops_a_forgotten_server(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from entail.state import EmbeddedRedis
        print(EmbeddedRedis(Path({str(tmp_path / "r")!r})).start().pid, flush=True)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert gone(int(out.stdout))


def run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "entail.state.embedded", *args], stdout=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_runs_until_signalled(tmp_path: Path, signum: signal.Signals) -> None:
    port = [] if signum == signal.SIGINT else ["--port", str(free_port())]
    cli = run_cli("--data-dir", str(tmp_path / "r"), *port)
    try:
        assert cli.stdout is not None
        url = cli.stdout.readline().strip()
        assert url.startswith("redis://127.0.0.1:")
        if port:
            assert url == f"redis://127.0.0.1:{port[1]}/0"
        with redis.Redis.from_url(url) as client:
            assert client.ping()
            server_pid = client.info("server")["process_id"]
        cli.send_signal(signum)
        assert cli.wait(timeout=10) == 0
        assert gone(server_pid)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
