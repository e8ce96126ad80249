"""``entail dataset push|list|get|versions|facts|diff|tag``: datasets of a running
service, through the Python SDK (docs/datasets.md).

``push`` streams files (NDJSON, CSV, Parquet; several at once as a multipart
upload, one per predicate) and prints bytes and facts sent as it goes (to
stderr, so stdout holds the resulting version alone). Exit codes as the other
remote commands (cli_remote.py): 0 done, 2 bad usage or an error answer (its
problem printed: part, line and column of a bad line), 4 unreachable.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, TextIO

from .cli_remote import EXIT_OK, EXIT_USAGE, _run, _Usage, _with_service


def add_dataset_commands(sub: Any) -> None:
    dataset = sub.add_parser("dataset", help="datasets of a running service: push, list, get, diff, tag")
    dsub = dataset.add_subparsers(dest="dataset_command", required=True)

    push = _with_service(dsub.add_parser("push", help="upload files as a new version (streamed)"))
    push.add_argument("name", help="the dataset")
    push.add_argument(
        "files",
        nargs="+",
        help="NDJSON (.ndjson/.jsonl), CSV or Parquet files; CSV and Parquet as PREDICATE=FILE "
        "(or named after the predicate, e.g. edge.csv)",
    )
    push.add_argument("--format", choices=["ndjson", "csv", "parquet"], help="default: from the suffix")
    push.add_argument("--header", action="store_true", help="CSV: skip the first line (column names)")
    push.add_argument("--base", help="carry over this version's predicates the upload does not name")
    push.add_argument("--tag", help="move this tag to the new version")
    push.add_argument("--description", default="")
    push.add_argument("--quiet", action="store_true", help="no progress lines")
    push.set_defaults(func=cmd_push)

    listing = _with_service(dsub.add_parser("list", help="each dataset's latest version"))
    listing.set_defaults(func=cmd_list)

    get = _with_service(dsub.add_parser("get", help="one version's metadata (JSON)"))
    get.add_argument("selector", help='"name", "name@3", "name@tag" or a version hash')
    get.set_defaults(func=cmd_get)

    versions = _with_service(dsub.add_parser("versions", help="every version, newest first"))
    versions.add_argument("name")
    versions.set_defaults(func=cmd_versions)

    facts = _with_service(dsub.add_parser("facts", help="a predicate's rows, one JSON array a line"))
    facts.add_argument("selector")
    facts.add_argument("predicate")
    facts.add_argument("--limit", type=int, default=None, help="at most this many rows")
    facts.set_defaults(func=cmd_facts)

    diff = _with_service(dsub.add_parser("diff", help="facts added and removed between two versions"))
    diff.add_argument("name")
    diff.add_argument("from_", metavar="FROM", help="a version number, tag or selector")
    diff.add_argument("to", nargs="?", default="latest", help="default: latest")
    diff.add_argument("--sample", type=int, default=10, help="rows shown per predicate and side")
    diff.add_argument("--format", choices=["text", "json"], default="text")
    diff.set_defaults(func=cmd_diff)

    tag = _with_service(dsub.add_parser("tag", help="point a tag at a version"))
    tag.add_argument("name")
    tag.add_argument("tag")
    tag.add_argument("version", type=int)
    tag.set_defaults(func=cmd_tag)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class _Progress:
    """Progress lines on stderr: at most a few a second, and the last one always."""

    def __init__(self, err: TextIO, total: int, quiet: bool) -> None:
        self.err, self.total, self.quiet = err, total, quiet
        self.started = time.monotonic()
        self.shown = 0.0
        self.bytes = self.facts = 0

    def __call__(self, sent: int, facts: int) -> None:
        self.bytes, self.facts = sent, facts
        now = time.monotonic()
        if now - self.shown >= 0.5:
            self.shown = now
            self.show()

    def show(self) -> None:
        if self.quiet:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        share = f" ({100 * self.bytes / self.total:.0f}%)" if self.total else ""
        print(
            f"sent {_human(self.bytes)} of {_human(self.total)}{share}, {self.facts} facts, "
            f"{_human(int(self.bytes / elapsed))}/s",
            file=self.err,
        )


def _parts(files: list[str]) -> dict[str, Path]:
    """``PREDICATE=FILE`` or ``FILE`` (named after its predicate, or NDJSON)."""
    parts: dict[str, Path] = {}
    for item in files:
        predicate, eq, path = item.partition("=")
        if not eq:
            path, predicate = item, Path(item).name.split(".", 1)[0]
        if predicate in parts:
            raise _Usage(f"{predicate!r} is given twice")
        parts[predicate] = Path(path)
    return parts


def cmd_push(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        parts = _parts(args.files)
    except _Usage as exc:
        print(f"entail: {exc}", file=err)
        return EXIT_USAGE
    for path in parts.values():
        if not path.is_file():
            print(f"entail: {path}: no such file", file=err)
            return EXIT_USAGE
    total = sum(p.stat().st_size for p in parts.values())

    def go(client: Any) -> int:
        progress = _Progress(err, total, args.quiet)
        common = {
            "base": args.base,
            "tag": args.tag,
            "description": args.description,
            "header": args.header,
            "progress": progress,
        }
        try:
            if len(parts) == 1:
                ((predicate, path),) = parts.items()
                fmt = args.format or _suffix_format(path)
                version = client.push_dataset(
                    args.name,
                    path,
                    format=fmt,
                    predicate=None if fmt == "ndjson" else predicate,
                    **common,
                )
            else:
                version = client.push_dataset_parts(args.name, parts, **common)
        except ValueError as exc:
            raise _Usage(str(exc)) from None
        progress.show()
        verb = "new version" if version.get("created") else "unchanged: the latest version has this content"
        print(
            f"{version['name']}@{version['version']} ({verb}): {version['facts']} facts, "
            f"{_human(version['bytes'])} stored, hash {version['hash']}",
            file=err,
        )
        json.dump(version, out, indent=2)
        out.write("\n")
        return EXIT_OK

    return _run(args, err, go)


def _suffix_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in (
        (".ndjson", "ndjson"),
        (".jsonl", "ndjson"),
        (".csv", "csv"),
        (".parquet", "parquet"),
    ):
        if name.endswith(suffix):
            return fmt
    raise _Usage(f"{path}: name the format with --format (ndjson, csv or parquet)")


def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(client: Any) -> int:
        for v in client.datasets()["datasets"]:
            tags = f" [{', '.join(v['tags'])}]" if v["tags"] else ""
            predicates = ", ".join(f"{p['name']}/{p['arity']}: {p['rows']}" for p in v["predicates"])
            print(f"{v['name']}@{v['version']}{tags}  {v['facts']} facts  {predicates}", file=out)
        return EXIT_OK

    return _run(args, err, go)


def cmd_get(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(client: Any) -> int:
        json.dump(client.dataset(args.selector), out, indent=2)
        out.write("\n")
        return EXIT_OK

    return _run(args, err, go)


def cmd_versions(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(client: Any) -> int:
        for v in client.dataset_versions(args.name)["versions"]:
            tags = f" [{', '.join(v['tags'])}]" if v["tags"] else ""
            print(f"{v['version']}{tags}  {v['created_at']}  {v['facts']} facts  {v['hash']}", file=out)
        return EXIT_OK

    return _run(args, err, go)


def cmd_facts(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(client: Any) -> int:
        for n, row in enumerate(client.dataset_facts(args.selector, args.predicate)):
            if args.limit is not None and n >= args.limit:
                break
            print(json.dumps(row, ensure_ascii=False), file=out)
        return EXIT_OK

    return _run(args, err, go)


def cmd_diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(client: Any) -> int:
        diff = client.dataset_diff(args.name, args.from_, args.to, sample=args.sample)
        if args.format == "json":
            json.dump(diff, out, indent=2)
            out.write("\n")
            return EXIT_OK
        print(f"{args.name}: {diff['from_version']} -> {diff['to_version']}", file=out)
        if not diff["predicates"]:
            print("  no differences", file=out)
        for d in diff["predicates"]:
            print(f"  {d['predicate']}/{d['arity']}: +{d['added']} -{d['removed']}", file=out)
            for row in d["added_sample"]:
                print(f"    + {json.dumps(row, ensure_ascii=False)}", file=out)
            for row in d["removed_sample"]:
                print(f"    - {json.dumps(row, ensure_ascii=False)}", file=out)
        return EXIT_OK

    return _run(args, err, go)


def cmd_tag(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(client: Any) -> int:
        move = client.tag_dataset(args.name, args.tag, args.version)
        was = f" (was {move['previous']})" if move.get("previous") is not None else ""
        print(f"{args.name}@{args.tag} -> {move['version']}{was}", file=out)
        return EXIT_OK

    return _run(args, err, go)
