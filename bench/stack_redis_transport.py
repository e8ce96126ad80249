"""Run another bench with the local stack's services reaching the embedded Redis
over a Unix socket or over loopback TCP (the default): the same tree, the same
minutes, only the transport differs.

    .venv/bin/python bench/stack_redis_transport.py unix bench/load.py --seconds 6 --concurrency 1
    .venv/bin/python bench/stack_redis_transport.py tcp bench/audit_throughput.py --decisions 300 --runs 2

Everything after the bench's path goes to the bench.
"""

from __future__ import annotations

import functools
import runpy
import sys

from entail_dev import stack


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in ("unix", "tcp"):
        sys.exit(__doc__)
    original = stack.Stack.__init__
    # every Stack the bench makes uses this transport
    stack.Stack.__init__ = functools.partialmethod(original, redis_unix_socket=sys.argv[1] == "unix")
    sys.argv = sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
