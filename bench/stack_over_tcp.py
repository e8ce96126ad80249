"""Run another bench with the local stack's Redis on loopback TCP, as before the
stack moved its services to the embedded server's Unix socket: the same tree, the
same minutes, only the transport differs.

    .venv/bin/python bench/stack_over_tcp.py bench/load.py --seconds 6 --concurrency 1
    .venv/bin/python bench/stack_over_tcp.py bench/audit_throughput.py --decisions 300 --runs 2

Everything after the bench's path goes to the bench.
"""

from __future__ import annotations

import functools
import runpy
import sys

from entail_dev import stack


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    original = stack.Stack.__init__
    # every Stack the bench makes keeps TCP (the keyword's default is the socket)
    stack.Stack.__init__ = functools.partialmethod(original, redis_unix_socket=False)  # type: ignore[method-assign]
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
