"""``entail decide``, ``entail report``, ``entail schema`` and ``entail audit search``: the
CLI against a running service, through the Python SDK (entail_client), not the local engine or audit file.

The service is ``--url`` (else ``ENTAIL_URL``, else http://127.0.0.1:3005, the
local stack) and the key ``--key`` (else ``ENTAIL_API_KEY``). Exit codes: 0 the
decision succeeded (or the search ran); 1 the decision failed; 2 bad usage or an
error answer of the service (its problem is printed, with the line and column
of a program's diagnostics); 4 the service could not be reached or the decision
was not final within ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 4
FACTS_MAX_BYTES = 16 * 1024 * 1024  # the service refuses far less; this only bounds the read


def _with_service(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--url", help="the service (default: ENTAIL_URL, else http://127.0.0.1:3005)")
    p.add_argument("--key", help="the API key (default: ENTAIL_API_KEY)")
    return p


def add_decide_command(sub: Any) -> None:
    decide = _with_service(
        sub.add_parser(
            "decide",
            help="ask a running service for a decision (POST /v1/decisions, waiting for the answer)",
        )
    )
    decide.add_argument("ruleset", help='"name", "name@3", "name@tag" or a version hash')
    decide.add_argument("--facts", help="a JSON file of case facts: predicate -> rows (default: none)")
    decide.add_argument("--query", action="append", default=[], help="query atom; repeatable")
    decide.add_argument("--explain", action="store_true", help="proofs with the answers")
    decide.add_argument("--locale", help="language of the answers' reason messages (BCP 47, e.g. de)")
    decide.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the answer")
    decide.add_argument("--format", choices=["text", "json"], default="text")
    decide.set_defaults(func=cmd_decide)


def add_search_command(audit_sub: Any) -> None:
    search = _with_service(
        audit_sub.add_parser(
            "search",
            help="search a running service's audit trail (GET /v1/audit/decisions): one JSON line a decision",
        )
    )
    search.add_argument(
        "--start", help="completed at or after, ISO 8601 with a zone (default: --end less 24 h)"
    )
    search.add_argument("--end", help="completed before, ISO 8601 with a zone (default: now)")
    search.add_argument("--ruleset")
    search.add_argument("--version", type=int)
    search.add_argument("--status", choices=["succeeded", "failed"])
    search.add_argument("--predicate", help="answers contain an atom of name/arity, e.g. decision/2")
    search.add_argument("--page-size", type=int, default=100)
    search.add_argument("--limit", type=int, help="stop after this many decisions")
    search.set_defaults(func=cmd_audit_search)


def add_report_command(sub: Any) -> None:
    report = _with_service(
        sub.add_parser(
            "report",
            help="a decision's report from a running service (GET /v1/decisions/{id}/report): "
            "printable HTML, its SHA-256 checked",
        )
    )
    report.add_argument("decision_id", help="the decision (dec_…)")
    report.add_argument("-o", "--output", help="write the HTML to this file (default: standard output)")
    report.set_defaults(func=cmd_report)


def add_schema_command(sub: Any) -> None:
    schema = _with_service(
        sub.add_parser(
            "schema",
            help="the JSON Schema of a ruleset version's decision request, from its %%@input declarations "
            "(GET /v1/rulesets/{name}/schema)",
        )
    )
    schema.add_argument("ruleset", help="the ruleset's name")
    which = schema.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="a version number (default: the latest)")
    which.add_argument("--tag", help="a tag, e.g. prod")
    schema.set_defaults(func=cmd_schema)


# --- commands ------------------------------------------------------------------------


def cmd_decide(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(client: Any) -> int:
        facts = _facts(args.facts)
        record = client.decide(
            args.ruleset, facts, args.query, explain=args.explain, timeout=args.timeout, locale=args.locale
        )
        if args.format == "json":
            json.dump(record, out, indent=2, ensure_ascii=False)
            out.write("\n")
        else:
            _print_decision(record, out)
        return EXIT_OK if record["status"] == "succeeded" else EXIT_FAILED

    return _run(args, err, go)


def cmd_audit_search(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(client: Any) -> int:
        end = _when(args.end, "--end") if args.end else datetime.now(UTC)
        start = _when(args.start, "--start") if args.start else end - timedelta(hours=24)
        shown = 0
        pages = client.search(
            start,
            end,
            ruleset=args.ruleset,
            version=args.version,
            status=args.status,
            predicate=args.predicate,
            page_size=args.page_size,
        )
        for page in pages:
            for record in page["items"]:
                if args.limit is not None and shown >= args.limit:
                    return EXIT_OK
                out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
                shown += 1
        return EXIT_OK

    return _run(args, err, go)


def cmd_schema(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(client: Any) -> int:
        json.dump(client.schema(args.ruleset, version=args.version, tag=args.tag), out, indent=2)
        out.write("\n")
        return EXIT_OK

    return _run(args, err, go)


def cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(client: Any) -> int:
        try:
            report = client.report(args.decision_id)
        except ValueError as exc:  # the body is not the bytes its hash names
            raise _Usage(f"{args.decision_id}: {exc}") from None
        note = f"{args.decision_id}: sha256 {report.sha256} ({report.source} record)"
        if args.output is None:
            buffer = getattr(out, "buffer", None)
            if buffer is not None:
                out.flush()
                buffer.write(report.html)
                buffer.flush()
            else:
                out.write(report.html.decode("utf-8"))
            print(note, file=err)  # stdout holds the document alone
            return EXIT_OK
        try:
            Path(args.output).write_bytes(report.html)
        except OSError as exc:
            raise _Usage(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"{note}; wrote {args.output} ({len(report.html)} bytes)", file=out)
        return EXIT_OK

    return _run(args, err, go)


# --- plumbing --------------------------------------------------------------------------


class _Usage(Exception):
    pass


def _run(args: argparse.Namespace, err: TextIO, go: Callable[[Any], int]) -> int:
    """``go`` with a client, its failures as a message and an exit code."""
    import httpx
    from entail_client import Client, DecisionTimeout, EntailError

    try:
        with Client(args.url, api_key=args.key) as client:
            return go(client)
    except _Usage as exc:
        print(f"entail: {exc}", file=err)
        return EXIT_USAGE
    except DecisionTimeout as exc:
        print(
            f"entail: {exc.decision_id} not final within {exc.timeout:g} s; it goes on in the service",
            file=err,
        )
        return EXIT_UNREACHABLE
    except EntailError as exc:
        _print_problem(exc, err)
        return EXIT_USAGE
    except httpx.HTTPError as exc:
        print(f"entail: cannot reach the service: {exc}", file=err)
        return EXIT_UNREACHABLE


def _print_problem(exc: Any, err: TextIO) -> None:
    print(f"entail: {exc.status} {exc.title}: {exc.detail}", file=err)
    for diagnostic in exc.extra.get("diagnostics") or []:
        rendered = diagnostic.get("rendered") or (
            f"{diagnostic.get('line')}:{diagnostic.get('column')}: {diagnostic.get('message')}"
        )
        print(rendered, file=err)
    for error in exc.extra.get("errors") or []:
        print(f"  {error.get('location')}: {error.get('message')}", file=err)


def _facts(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with Path(path).open("rb") as f:
            data = f.read(FACTS_MAX_BYTES + 1)
    except OSError as exc:
        raise _Usage(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > FACTS_MAX_BYTES:
        raise _Usage(f"{path}: larger than {FACTS_MAX_BYTES} bytes")
    try:
        facts = json.loads(data)
    except UnicodeDecodeError:
        raise _Usage(f"{path}: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise _Usage(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}") from None
    if not isinstance(facts, dict):
        raise _Usage(f"{path}: expected a JSON object of predicate -> rows")
    return facts


def _when(text: str, flag: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _Usage(f"{flag}: {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise _Usage(f"{flag}: {text!r} has no time zone (add Z or +00:00)")
    return when


def _print_decision(record: Any, out: TextIO) -> None:
    ruleset = record["ruleset"]
    cached = " (cached)" if record.get("cached") else ""
    print(
        f"{record['decision_id']} {record['status']}{cached}: {ruleset['name']} version {ruleset['version']}",
        file=out,
    )
    if record["status"] != "succeeded":
        error = record.get("error") or {}
        print(f"error[{error.get('code')}]: {error.get('message')}", file=out)
        return
    for answered in record.get("answers") or []:
        print(f"{answered['query']}: {len(answered['answers'])} answer(s)", file=out)
        for answer in answered["answers"]:
            print(f"  {answer['atom']}", file=out)
            for r in answer.get("reasons") or ():  # the ruleset's reason templates
                print(
                    f"    reason {r['code']} ({r['severity']}, weight {r['weight']}): {r['message']}",
                    file=out,
                )
            if "proof" in answer:  # --explain
                proof = json.dumps(answer["proof"], indent=2, ensure_ascii=False)
                print("\n".join(f"    {line}" for line in proof.splitlines()), file=out)
