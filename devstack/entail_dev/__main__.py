"""``python -m entail_dev`` / ``entail-dev``: the local stack (what ``entail up`` runs)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .stack import run as run_stack


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="entail-dev", description="the local stack (entail up)")
    parser.add_argument(
        "--ha",
        action="store_true",
        help="Redis as 1 primary + 2 replicas + 3 Sentinels (failover; durable acknowledgements)",
    )
    args = parser.parse_args(argv)
    return run_stack(ha=args.ha)


if __name__ == "__main__":
    raise SystemExit(run())
