"""The ``entail`` command: check, test and run rulesets from the shell.

Exit codes: 0 success; 1 program errors (including a file that is not
UTF-8), failing tests or a failed evaluation; 2 bad usage or unreadable input
files (missing, not UTF-8 facts or test files, malformed JSON/YAML); 3 a limit
was reached (``limit-program-size``, ``limit-file-size``,
``limit-derived-facts``, ``limit-wall-time``, ``limit-input-facts``). When
several facts files fail differently, the highest code wins.

Every file is read with a size cap before it is parsed (the program:
``program_bytes``, 1 MB by default), so ``entail run /dev/zero`` stops at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .audit_cli import add_audit_commands, add_canary_command
from .batch_cli import add_batch_parser
from .cli_remote import add_decide_command, add_report_command, add_schema_command
from .dataset_cli import add_dataset_commands
from .reasoning import (
    Diagnostic,
    EntailError,
    LimitExceeded,
    Limits,
    ProgramError,
    ProgramSizeLimitExceeded,
    QueryError,
    Ruleset,
    compile,
    explain_absent,
)
from .reasoning.reasons import valid_locale
from .reasoning.testing import TestFileError, load_facts_file, load_test_cases, run_test_case
from .reasoning.textfile import EncodingError, FileReadError, FileSizeLimitExceeded, read_text

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_LIMIT = 0, 1, 2, 3


class UsageError(EntailError):
    """A command-line argument that cannot be used (exit 2)."""

    code = "usage"


def _utf8_argument(value: str, what: str) -> str:
    """An argument as text; bytes that are not UTF-8 reach Python as lone surrogates (PEP 383)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = ord(value[exc.start]) - 0xDC00
        shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        detail = f"byte {byte:#04x}" if 0x80 <= byte <= 0xFF else f"U+{ord(value[exc.start]):04X}"
        raise UsageError(f"{what} {shown} is not valid UTF-8 ({detail} at character {exc.start})") from None
    return value


def _read_program(path: str, limits: Limits | None = None) -> str:
    """The program text, read no further than its size limit; bad bytes are a diagnostic."""
    cap = (limits or Limits()).program_bytes
    try:
        return read_text(path, cap)
    except FileSizeLimitExceeded as exc:
        error = ProgramSizeLimitExceeded(cap, exc.value)
        error.args = (str(exc).replace("file size limit", "program size limit", 1),)
        raise error from None
    except EncodingError as exc:
        raise ProgramError(
            [Diagnostic("invalid-encoding", exc.reason, exc.line, exc.column, filename=path)]
        ) from None


def _compile(path: str, err: TextIO, limits: Limits | None = None) -> Ruleset | None:
    try:
        rs = compile(_read_program(path, limits), path, limits=limits)
    except ProgramError as exc:
        print(exc.render(), file=err)
        errors = sum(d.severity == "error" for d in exc.diagnostics)
        print(f"{path}: {errors} error(s)", file=err)
        return None
    for w in rs.warnings:
        print(w.render(), file=err)
    return rs


def cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        source = _read_program(args.program)
        rs = compile(source, args.program)
        diagnostics = list(rs.warnings)
        ok = True
        for query in args.query:
            try:
                diagnostics.extend(rs.check_query(query))
            except QueryError as exc:
                column = exc.column or 1
                diagnostics.append(Diagnostic("invalid-query", str(exc), 1, column, filename="<query>"))
                ok = False
    except ProgramError as exc:
        diagnostics = list(exc.diagnostics)
        ok = False
    except LimitExceeded as exc:
        if args.format != "json":
            raise
        json.dump({"ok": False, "diagnostics": [], "error": exc.to_json()}, out, indent=2)
        out.write("\n")
        return EXIT_LIMIT
    if args.format == "json":
        json.dump({"ok": ok, "diagnostics": [d.to_json() for d in diagnostics]}, out, indent=2)
        out.write("\n")
    else:
        for d in diagnostics:
            print(d.render(), file=out)
        errors = sum(d.severity == "error" for d in diagnostics)
        warnings = len(diagnostics) - errors
        print(f"{args.program}: {errors} error(s), {warnings} warning(s)", file=out)
    return EXIT_OK if ok else EXIT_FAIL


def cmd_test(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rs = _compile(args.program, err)
    if rs is None:
        return EXIT_FAIL
    cases = [c for t in args.tests for c in load_test_cases(Path(t))]
    failed = 0
    for case in cases:
        outcome = run_test_case(rs, case)
        if outcome.passed:
            if args.verbose:
                print(f"PASS  {case.name}", file=out)
            continue
        failed += 1
        print(f"FAIL  {case.name}  ({case.source})", file=out)
        for p in outcome.problems:
            print(f"        {p}", file=out)
    print(f"{len(cases) - failed} passed, {failed} failed", file=out)
    return EXIT_FAIL if failed else EXIT_OK


def _limits(args: argparse.Namespace) -> Limits:
    base = Limits()
    overrides: dict[str, Any] = {}
    if args.max_derived_facts is not None:
        overrides["derived_facts"] = args.max_derived_facts
    if args.timeout_ms is not None:
        overrides["wall_time_ms"] = args.timeout_ms
    return Limits(**{**base.to_json(), **overrides})


def _locale_argument(text: str) -> str:
    if not valid_locale(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a BCP 47 language tag such as de or pt-BR")
    return text


def cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    for query in args.query:
        _utf8_argument(query, "--query")
    limits = _limits(args)
    rs = _compile(args.program, err, limits)
    if rs is None:
        return EXIT_FAIL
    sources: list[str] = args.facts or ["-"]
    status = EXIT_OK
    for name in sources:
        started = time.perf_counter()
        try:
            facts = None if name == "-" else load_facts_file(Path(name))
            result = rs.evaluate(facts, args.query, explain=args.explain, limits=limits, locale=args.locale)
            why_nots = [explain_absent(result, atom) for atom in args.why_not]
        except TestFileError:
            raise
        except EntailError as exc:
            status = max(status, EXIT_LIMIT if isinstance(exc, LimitExceeded) else EXIT_FAIL)
            if isinstance(exc, ProgramError):  # an .lp facts file with a syntax error
                print(exc.render(), file=err)
                continue
            if args.format == "jsonl":
                print(json.dumps({"facts": name, "error": exc.to_json()}), file=out)
            else:
                message = str(exc)
                where = "" if message.startswith(f"{name}: ") else f"{name}: "
                print(f"{where}error[{exc.code}]: {message}", file=err)
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if args.format != "text":  # text prints them under each query
            for answered in result.answers:
                for d in answered.diagnostics:
                    print(d.render(), file=err)
        if args.format == "atoms":
            # one text, one write: a print per atom was a tenth of a large run
            out.write(result.shown_text())
        elif args.format == "text":
            if len(sources) > 1:
                print(f"== {name}", file=out)
            print(result.render_text(), file=out)
            for why in why_nots:
                print(why.render_text(), file=out)
        else:
            doc = result.to_json()
            if why_nots:
                doc["why_not"] = [why.to_json() for why in why_nots]
            doc["facts"] = name
            doc["stats"]["total_ms"] = round(elapsed, 3)
            if args.format == "jsonl":
                print(json.dumps(doc, ensure_ascii=False), file=out)
            else:
                json.dump(doc, out, indent=2, ensure_ascii=False)
                out.write("\n")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entail", description="Auditable Datalog reasoning: check, test and run rulesets."
    )
    parser.add_argument("--version", action="version", version=f"entail {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="report diagnostics; exit 1 on errors")
    check.add_argument("program")
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.add_argument(
        "--query",
        action="append",
        default=[],
        help="also check a query (unknown predicate, arity); repeatable",
    )
    check.set_defaults(func=cmd_check)

    test = sub.add_parser("test", help="run example cases against a ruleset; exit 1 on any failure")
    test.add_argument("program")
    test.add_argument("tests", nargs="+", help="YAML/JSON test files or folders of them")
    test.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    test.set_defaults(func=cmd_test)

    run = sub.add_parser("run", help="evaluate a ruleset against case facts")
    run.add_argument("program")
    run.add_argument(
        "--facts",
        action="append",
        default=[],
        help="facts file (.json or .lp); repeat to evaluate several cases",
    )
    run.add_argument("--query", action="append", default=[], help="query atom, e.g. 'path(1, X)'")
    run.add_argument("--explain", action="store_true", help="include a proof for every answer")
    run.add_argument("--format", choices=["atoms", "text", "json", "jsonl"], default="text")
    run.add_argument(
        "--why-not",
        action="append",
        default=[],
        metavar="ATOM",
        help="explain why a ground atom does not hold, e.g. 'decision(\"bob\",approved)'; repeatable",
    )
    run.add_argument(
        "--locale",
        type=_locale_argument,
        default=None,
        help="language of the answers' reason messages (BCP 47, e.g. de); default: the templates' own",
    )
    run.add_argument("--max-derived-facts", type=int, default=None)
    run.add_argument("--timeout-ms", type=int, default=None)
    run.set_defaults(func=cmd_run)

    add_batch_parser(sub)

    up = sub.add_parser("up", help="start the local stack (Redis, backend, worker, relay); Ctrl-C stops it")
    up.add_argument(
        "--ha",
        action="store_true",
        help="Redis as 1 primary + 2 replicas + 3 Sentinels (failover; durable acknowledgements)",
    )
    up.set_defaults(func=cmd_up)

    relay = sub.add_parser("relay", help="deliver bus messages to push subscribers (local Pub/Sub stand-in)")
    relay.set_defaults(func=cmd_relay)

    audit = sub.add_parser("audit", help="the local audit store")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    expire = audit_sub.add_parser(
        "expire", help="delete decisions completed more than 7 years (2557 days) ago; rulesets are kept"
    )
    expire.add_argument(
        "--path", help="the DuckDB file (default: ENTAIL_AUDIT_DUCKDB_PATH or .entail/audit.duckdb)"
    )
    expire.set_defaults(func=cmd_audit_expire)
    add_audit_commands(audit_sub)  # roots, verify, inclusion, provenance, hold, export, key (audit_cli.py)
    add_canary_command(sub)
    add_decide_command(sub)  # against a running service, through the SDK (cli_remote.py)
    add_report_command(sub)  # a decision's report, through the SDK
    add_schema_command(sub)  # a ruleset version's request schema, through the SDK
    add_dataset_commands(sub)  # entail dataset push|list|get|versions|facts|diff|tag, through the SDK

    cloud = sub.add_parser("cloud", help="the deployment on Google Cloud")
    cloud_sub = cloud.add_subparsers(dest="cloud_command", required=True)
    status = cloud_sub.add_parser(
        "status", help="Cloud Run services: revisions, traffic split, min/max instances (read-only)"
    )
    status.add_argument("--project", help="default: ENTAIL_GCP_PROJECT, else the credentials' project")
    status.add_argument("--region", help="default: ENTAIL_GCP_REGION")
    status.add_argument(
        "--service", action="append", help="repeatable; default: backend and reasoning-worker"
    )
    status.add_argument("--revisions", type=int, default=5, help="newest revisions shown per service")
    status.set_defaults(func=cmd_cloud_status)

    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_sub.add_parser("new", help="print a new API key and the entry to add to the keys file")
    new.add_argument("--id", required=True, help="a name for the key, e.g. 'ci'")
    new.add_argument("--tenant", required=True)
    new.add_argument(
        "--scope", action="append", required=True, choices=["decide", "author", "audit", "admin"]
    )
    new.set_defaults(func=cmd_keys_new)
    return parser


def cmd_up(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # the stack spawns both services and the sink, which the library does not
    # depend on: they come with the entail-dev package
    try:
        from entail_dev.stack import run as run_stack
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "entail_dev":
            raise
        print(
            "entail up: the local stack is in the entail-dev package (the library, both services "
            "and the audit sink's functions-framework): pip install entail-dev",
            file=err,
        )
        return 2
    return run_stack(ha=args.ha)


def cmd_relay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .relay import run_relay
    from .settings import Settings

    run_relay(Settings())
    return 0


def cmd_cloud_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from . import cloud_status
    from .settings import Settings

    settings = Settings()
    return cloud_status.run(
        args.project or settings.gcp_project or None,
        args.region or settings.gcp_region,
        args.service or list(cloud_status.SERVICES),
        out,
        err,
        max_revisions=args.revisions,
    )


def cmd_audit_expire(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from datetime import UTC, datetime

    from .audit import RETENTION_DAYS, DuckDBAuditStore
    from .settings import Settings

    path = Path(args.path) if args.path else Settings().audit_path
    if not path.exists():
        print(f"entail: no audit store at {path}", file=err)
        return EXIT_USAGE
    with DuckDBAuditStore(path, shared=True) as store:
        removed = store.expire(datetime.now(UTC))
    print(
        f"removed {removed} decision(s) completed more than {RETENTION_DAYS} days ago from {path}", file=out
    )
    return 0


def cmd_keys_new(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .auth import key_entry, new_key

    key = new_key()
    print(f"key (shown once): {key}", file=out)
    print("entry for ENTAIL_API_KEYS_FILE / ENTAIL_API_KEYS_JSON:", file=out)
    json.dump(key_entry(key, args.id, args.tenant, args.scope), out)
    out.write("\n")
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args, out, err)
    except (TestFileError, FileReadError, ProgramError, UsageError) as exc:
        message = exc.render() if isinstance(exc, ProgramError) else str(exc)
        print(f"entail: {message}", file=err)
        return EXIT_USAGE
    except LimitExceeded as exc:
        print(f"entail: error[{exc.code}]: {exc}", file=err)
        return EXIT_LIMIT
    except EntailError as exc:
        print(f"entail: error[{exc.code}]: {exc}", file=err)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
