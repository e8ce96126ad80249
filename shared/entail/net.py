"""Free TCP ports on 127.0.0.1 for local servers (embedded Redis, test stacks, benches)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now (the caller must still expect a race)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
