"""Runs ``bqemulator`` (in its own venv) without reaching the internet.

At start the emulator runs ``INSTALL avro`` (best effort), which makes DuckDB
try to download the extension from extensions.duckdb.org. Tests must never send
traffic off 127.0.0.1, and nothing of ours reads Avro, so skip that step; the
spatial extension it needs is installed locally by setup_bqemulator.sh.
"""

import sys

from bqemulator.cli import main
from bqemulator.storage import engine

engine.DuckDBEngine._load_format_extensions = lambda self: None  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv[0] = "bqemulator"
    sys.exit(main())
