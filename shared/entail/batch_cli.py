"""``entail batch``: run a ruleset as SQL on DuckDB over DuckDB tables, Parquet or CSV files.

A command, not part of the engine: the database is opened by the composition
root (:func:`entail.bootstrap.open_batch_database`); the run itself is the
engine's :func:`entail.reasoning.sql.run.run_batch`. No audit row is written:
audited batch runs are ``functions/batch_reason``'s (docs/batch.md)."""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any, TextIO

from .reasoning.errors import EntailError, ProgramError
from .reasoning.limits import Limits
from .reasoning.ruleset import compile
from .reasoning.sql.backend import DuckDBBackend
from .reasoning.sql.errors import BatchInputError
from .reasoning.sql.run import BatchLimits, Progress, parse_signature, run_batch
from .reasoning.textfile import TEST_FILE_BYTES, EncodingError, FileReadError, read_json, read_text

_FILE_READERS = {
    ".parquet": "read_parquet",
    ".csv": "read_csv_auto",
    ".tsv": "read_csv_auto",
    ".json": "read_json_auto",
    ".jsonl": "read_json_auto",
    ".ndjson": "read_json_auto",
}


def add_batch_parser(sub: Any) -> None:
    batch = sub.add_parser(
        "batch",
        help="run a ruleset as SQL on DuckDB over tables, Parquet or CSV files",
        description="Compile the ruleset to SQL and run it in DuckDB; derived predicates are "
        "written to tables of --db and described by a JSON manifest (docs/batch.md).",
    )
    batch.add_argument("program")
    batch.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="PRED=SOURCE",
        help="an input predicate: a .parquet/.csv/.tsv/.json file, a table of --db, or 'sql:SELECT ...'; "
        "append ':clingo' to read text cells in clingo syntax",
    )
    batch.add_argument("--mapping", help="JSON file with the input mapping (docs/batch.md)")
    batch.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="BINDING=SELECTOR",
        help="a %%@dataset binding of the program: a dataset selector (orgchart@3, @prod, @latest, a hash; "
        "resolved in the local store of --tenant) or a version directory of Parquet files; "
        "unnamed bindings read NAME@latest",
    )
    batch.add_argument("--tenant", help="the tenant whose datasets the selectors name")
    batch.add_argument("--db", default=":memory:", help="DuckDB database file (default: in memory)")
    batch.add_argument("--dest-schema", default="main", help="schema of the output tables")
    batch.add_argument(
        "--output", action="append", default=[], metavar="NAME/ARITY", help="predicates to write"
    )
    batch.add_argument("--export", metavar="DIR", help="also write each output table to DIR/<pred>.parquet")
    batch.add_argument("--manifest", metavar="FILE", help="write the manifest here (default: stdout)")
    batch.add_argument("--max-iterations", type=int, default=BatchLimits.max_iterations)
    batch.add_argument("--max-rows", type=int, default=BatchLimits.max_rows)
    batch.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 16GB")
    batch.add_argument("--threads", type=int, help="DuckDB threads")
    batch.add_argument(
        "--keep-work", action="store_true", help="keep the working tables (schema entail_work)"
    )
    batch.add_argument("--quiet", action="store_true", help="no progress display")
    batch.set_defaults(func=cmd_batch)


def parse_input_flag(text: str) -> tuple[str, dict[str, Any]]:
    """``PRED=SOURCE[:clingo]`` → (predicate key, mapping entry)."""
    key, sep, source = text.partition("=")
    if not sep or not key or not source:
        raise BatchInputError(f"--input {text!r}: expected PRED=SOURCE")
    encoding = "typed"
    if source.endswith(":clingo"):
        encoding, source = "clingo", source[: -len(":clingo")]
    if source.startswith("sql:"):
        return key, {"query": source[4:], "encoding": encoding}
    suffix = Path(source).suffix.lower()
    if suffix in _FILE_READERS:
        if not Path(source).exists():
            raise BatchInputError(f"--input {text!r}: no such file {source!r}")
        literal = "'" + source.replace("'", "''") + "'"
        return key, {"query": f"SELECT * FROM {_FILE_READERS[suffix]}({literal})", "encoding": encoding}
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}", source):
        raise BatchInputError(f"--input {text!r}: {source!r} is neither a known file type nor a table name")
    return key, {"table": source, "encoding": encoding}


class ProgressBar:
    """One line per stratum on stderr; redrawn every round on a terminal."""

    WIDTH = 24

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.tty = err.isatty()
        self.started = time.monotonic()
        self.line = ""

    def __call__(self, p: Progress) -> None:
        if p.event == "load":
            self.err.write(f"loading inputs; {p.strata} strata\n")
            return
        if p.event == "done":
            self.flush()
            elapsed = time.monotonic() - self.started
            self.err.write(f"done: {p.total_rows:,} derived rows in {elapsed:.2f}s\n")
            return
        if p.event == "stratum":
            self.flush()  # the finished stratum's last state stays on screen / in the log
        filled = round(self.WIDTH * (p.stratum - (p.event == "stratum")) / max(p.strata, 1))
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.line = f"[{bar}] stratum {p.stratum}/{p.strata} {', '.join(p.predicates)}"
        if p.event == "round":
            self.line += f" · round {p.iteration} · +{p.new_rows:,} · {p.total_rows:,} derived"
        if self.tty:
            self.err.write("\r\x1b[2K" + self.line)
            self.err.flush()

    def flush(self) -> None:
        if self.line:
            self.err.write(("\r\x1b[2K" if self.tty else "") + self.line + "\n")
            self.line = ""


def cmd_batch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import duckdb

    # here, not at the top: every `entail` command builds this parser, and the
    # composition root pulls in pydantic and DuckDB (0.5 s) that `entail run` never needs
    from redis.exceptions import RedisError

    from .batch_datasets import resolve_datasets
    from .bootstrap import open_batch_database

    try:  # capped before parsing, strict UTF-8 (entail/reasoning/textfile.py)
        source = read_text(args.program, Limits().program_bytes)
    except FileReadError as exc:
        print(f"entail: {exc}", file=err)
        return 1 if isinstance(exc, EncodingError) else 2
    try:
        rs = compile(source, args.program)
    except ProgramError as exc:
        print(exc.render(), file=err)
        return 1
    mapping: dict[str, Any] = {}
    if args.mapping:
        loaded = read_json(args.mapping, TEST_FILE_BYTES)
        if not isinstance(loaded, dict):
            print(f"entail: {args.mapping}: the mapping file is a JSON object", file=err)
            return 2
        mapping.update(loaded)
    for flag in args.input:
        key, entry = parse_input_flag(flag)
        mapping[key] = entry
    outputs = [parse_signature(o) for o in args.output] or None
    try:
        datasets = resolve_datasets(rs.datasets, args.dataset, tenant=args.tenant)
    except EntailError as exc:
        print(f"entail: error[{exc.code}]: {exc}", file=err)
        return 1
    except (OSError, RedisError) as exc:  # the store's Redis is not reachable
        print(f"entail: cannot resolve the datasets: {exc}", file=err)
        return 2
    try:
        con = open_batch_database(args.db, memory_limit=args.memory_limit, threads=args.threads)
    except duckdb.Error as exc:  # a file that is not a database, a bad --memory-limit
        print(f"entail: cannot open --db {args.db!r}: {exc}", file=err)
        return 2
    try:
        backend = DuckDBBackend(con, dest_schema=args.dest_schema)
        limits = BatchLimits(max_iterations=args.max_iterations, max_rows=args.max_rows)
        progress = None if args.quiet else ProgressBar(err)
        try:
            manifest = run_batch(
                rs,
                backend,
                mapping,
                outputs=outputs,
                limits=limits,
                progress=progress,
                keep_work=args.keep_work,
                datasets=datasets,
            )
        except EntailError as exc:
            print(f"\nentail: error[{exc.code}]: {exc}", file=err)
            return 1
        doc = manifest.to_json()
        doc["database"] = args.db
        if args.export:
            target = Path(args.export)
            target.mkdir(parents=True, exist_ok=True)
            for o in manifest.outputs:
                path = target / f"{o.predicate.rsplit('/', 1)[0].replace(chr(39), '_q')}.parquet"
                literal = "'" + str(path).replace("'", "''") + "'"
                con.execute(f"COPY (SELECT * FROM {o.table}) TO {literal} (FORMAT PARQUET)")
                doc.setdefault("exported", {})[o.predicate] = str(path)
    finally:
        con.close()
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if args.manifest:
        Path(args.manifest).write_text(text)
    else:
        out.write(text)
    return 0
