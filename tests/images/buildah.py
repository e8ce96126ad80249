"""Build and boot images with buildah (no Docker engine): the storage, the
stand-in base images and the driver are those of ``scripts/images/`` (under
``.tools/images/``), so these helpers only say which image and which command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts" / "images"

# Bounds, so a wedged build or a service that never listens fails the test
# instead of hanging the suite.
PREPARE_TIMEOUT_S = 900.0  # a fresh machine: apt-get, debootstrap, import
BUILD_TIMEOUT_S = 600.0
BOOT_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class ImageError(AssertionError):
    """A step failed: the message carries the command's output."""


def buildah(*args: str, timeout_s: float = 120.0) -> str:
    """Run ``buildah`` on the project's storage; its stdout, or ImageError with the output."""
    argv = ["bash", str(SCRIPTS / "buildah.sh"), *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        raise ImageError(f"buildah {' '.join(args[:3])} ran over {timeout_s:.0f} s:\n{_text(exc)}") from exc
    if done.returncode != 0:
        output = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        raise ImageError(f"buildah {' '.join(args)} exited {done.returncode}:\n{output}")
    return done.stdout


def _text(exc: subprocess.TimeoutExpired) -> str:
    """What a timed-out command had written (bytes or str, by how it was run)."""
    parts = [exc.stdout, exc.stderr]
    return "\n".join(p.decode(errors="replace") if isinstance(p, bytes) else (p or "") for p in parts)


def prepare() -> str:
    """``scripts/images/prepare.sh``: tools, base root filesystem, stand-in bases (cached)."""
    try:
        done = subprocess.run(
            ["bash", str(SCRIPTS / "prepare.sh")],
            capture_output=True,
            text=True,
            timeout=PREPARE_TIMEOUT_S,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired as exc:
        raise ImageError(f"prepare.sh ran over {PREPARE_TIMEOUT_S:.0f} s:\n{_text(exc)}") from exc
    if done.returncode != 0:
        raise ImageError(f"prepare.sh exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stderr


def build(dockerfile: Path, tag: str, context: Path, build_args: Mapping[str, str] | None = None) -> str:
    """Build like Cloud Build's ``docker build`` would, but never pulling: every
    base must be one of the local stand-ins. ``--layers`` keeps each step's
    layer, so an unchanged step is not run again on the next build. Returns
    the image's id: ``tag`` may be moved meanwhile by another run of the tier."""
    # --force-rm: buildah 1.28 otherwise leaves a working container behind
    # for each stage used only by COPY --from (the uv stage)
    args = ["bud", "--pull=never", "--layers", "--force-rm", "--isolation", "chroot", "--format", "docker"]
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    with tempfile.TemporaryDirectory() as tmp:
        iidfile = Path(tmp) / "iid"
        args += ["--iidfile", str(iidfile)]
        buildah(*args, "-f", str(dockerfile), "-t", tag, str(context), timeout_s=BUILD_TIMEOUT_S)
        return iidfile.read_text().strip().removeprefix("sha256:")


@dataclass(frozen=True)
class ImageConfig:
    user: str
    cmd: list[str]
    entrypoint: list[str]
    env: dict[str, str]
    healthcheck: list[str]
    size: str  # as buildah reports it, e.g. "319 MB"


def inspect(image: str) -> ImageConfig:
    data = json.loads(buildah("inspect", "--type", "image", image))
    config = data["Docker"]["config"]
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    health = (config.get("Healthcheck") or {}).get("Test") or []
    return ImageConfig(
        user=config.get("User") or "",
        cmd=list(config.get("Cmd") or []),
        entrypoint=list(config.get("Entrypoint") or []),
        env=env,
        healthcheck=list(health),
        size=image_size(image),
    )


def image_size(image: str) -> str:
    return str(json.loads(buildah("images", "--json", image))[0]["size"])


@dataclass
class Running:
    """One image's entrypoint running in a working container."""

    container: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def exec(self, argv: list[str], timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Another command in the same container (as the image's user, with its env)."""
        run_args = ["run", "--isolation", "chroot", "--network", "host"]
        for key, value in self.env.items():
            run_args += ["--env", f"{key}={value}"]
        argv_ = ["bash", str(SCRIPTS / "buildah.sh"), *run_args, self.container, "--", *argv]
        return subprocess.run(argv_, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT)


@contextmanager
def run_image(
    image: str,
    name: str,
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    volumes: Mapping[Path, str] | None = None,
) -> Iterator[Running]:
    """Start ``image``'s entrypoint (ENTRYPOINT + CMD, as its USER, WORKDIR, ENV)
    with ``env`` on top, on the host's network, with ``volumes`` (host
    directory: container path) bound in; stopped and removed on exit."""
    config = inspect(image)
    command = config.entrypoint + config.cmd
    assert command, f"{image} has neither ENTRYPOINT nor CMD"
    # unique: another run of the tier (another checkout's, an xdist worker's)
    # may be using the same storage at the same time
    name = f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    container = buildah("from", "--pull=never", "--name", name, image).strip()
    run_env = {"PORT": str(port), **env}
    run_args = ["run", "--isolation", "chroot", "--network", "host"]
    for key, value in run_env.items():
        run_args += ["--env", f"{key}={value}"]
    for host_dir, container_dir in (volumes or {}).items():
        run_args += ["--volume", f"{host_dir}:{container_dir}"]
    log = log_path.open("wb")
    process = subprocess.Popen(
        ["bash", str(SCRIPTS / "buildah.sh"), *run_args, container, "--", *command],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,  # its own process group: stopped as one
    )
    running = Running(container, process, log_path, port, run_env)
    try:
        yield running
    finally:
        stop(process)
        log.close()
        buildah("rm", container)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the container's process group (buildah, buildah-chroot-exec and
    every process of the image share it), then wait until the whole group is
    gone, not only buildah: the server may still be shutting down, holding its
    files. SIGKILL whatever is left after STOP_TIMEOUT_S."""
    group = process.pid  # start_new_session: the group's id is buildah's pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, sig)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            process.poll()  # reaps buildah itself
            if not _group_alive(group):
                return
            time.sleep(0.1)
    raise ImageError(f"processes of group {group} survived SIGKILL")


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def wait_http(running: Running, path: str, timeout_s: float = BOOT_TIMEOUT_S) -> tuple[int, bytes]:
    """GET ``path`` until the service answers (any status); its status and body."""
    url = f"http://127.0.0.1:{running.port}{path}"
    deadline = time.monotonic() + timeout_s
    while True:
        if running.process.poll() is not None:
            raise ImageError(
                f"the container exited ({running.process.returncode}) before answering:\n{running.log()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            if time.monotonic() > deadline:
                raise ImageError(
                    f"nothing answered {url} within {timeout_s:.0f} s:\n{running.log()}"
                ) from None
            time.sleep(0.2)


def listening_pids(port: int) -> dict[int, int]:
    """{pid: real uid} of the processes holding a listening TCP socket on ``port``
    (read from /proc: buildah's chroot isolation shares the host's PID and
    network namespaces, so the server's process is visible here)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    owners: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _fd_links(entry) & inodes:
                status = (entry / "status").read_text()
                uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
                owners[int(entry.name)] = int(uid_line.split()[1])
        except (OSError, StopIteration):
            continue
    return owners


def wait_listening(port: int, timeout_s: float = 5.0) -> dict[int, int]:
    """``listening_pids(port)``, asked again for up to ``timeout_s`` while it is
    empty: /proc is read without a lock, so one reading can miss a process."""
    deadline = time.monotonic() + timeout_s
    while not (owners := listening_pids(port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return owners


def _fd_links(process: Path) -> set[str]:
    """What ``process``'s open descriptors point to. One descriptor closed
    between the listing and its readlink (a server still opening and closing
    pipes and connections, as the worker's compute pool does after boot) is
    skipped, not the whole process: skipping the process hid the listener."""
    links: set[str] = set()
    for fd in (process / "fd").iterdir():
        with contextlib.suppress(OSError):
            links.add(os.readlink(fd))
    return links
