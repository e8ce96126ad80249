"""Regenerate the ``expected.json`` files of the conformance corpus with clingo.

Usage (from the repository root)::

    .venv/bin/python tests/conformance/regen.py          # rewrite expected.json files
    .venv/bin/python tests/conformance/regen.py --check  # exit 1 if any would change

Every case folder without ``expected.err`` is run on clingo: the program plus the
case facts (``facts.json`` converted to clingo facts) must have exactly one answer
set. ``expected.json`` records the shown atoms of that answer set and, when the
case has a ``query.txt``, the atoms of the whole model matching each query.

Importable: :func:`clingo_expected` computes the expected document of one case.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

PROGRAM = "program.lp"
FACTS = "facts.json"
QUERY = "query.txt"
EXPECTED_JSON = "expected.json"
EXPECTED_ERR = "expected.err"

PREDICATE_RE = re.compile(r"_*[a-z][A-Za-z0-9_']*\Z")


class CorpusError(Exception):
    """A case folder cannot be turned into an expected result."""


# --------------------------------------------------------------------------- cases


def case_dirs(root: Path = HERE) -> list[Path]:
    """All case folders (folders holding a ``program.lp``), sorted by name."""
    return sorted(p.parent for p in root.glob(f"*/{PROGRAM}"))


def is_error_case(case_dir: Path) -> bool:
    return (case_dir / EXPECTED_ERR).exists()


def read_queries(case_dir: Path) -> list[str]:
    """The query lines of a case (stripped, blank lines ignored); [] without query.txt."""
    path = case_dir / QUERY
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


# --------------------------------------------------------------------------- facts


def quote_string(value: str) -> str:
    """A Python string as a clingo string literal (escapes: backslash, quote, newline)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def facts_to_clingo(obj: Any) -> str:
    """Convert the JSON facts shape ``{"pred": [[1, "a"], ...]}`` to clingo facts."""
    if not isinstance(obj, dict):
        raise CorpusError("facts.json must be an object")
    lines: list[str] = []
    for pred, rows in obj.items():
        if not isinstance(pred, str) or not PREDICATE_RE.match(pred):
            raise CorpusError(f"bad predicate name in facts.json: {pred!r}")
        if not isinstance(rows, list):
            raise CorpusError(f"facts.json: {pred} must map to a list of rows")
        for row in rows:
            if not isinstance(row, list):
                raise CorpusError(f"facts.json: {pred} row {row!r} is not a list")
            args: list[str] = []
            for value in row:
                if isinstance(value, bool) or not isinstance(value, int | str):
                    raise CorpusError(f"facts.json: {pred} has unsupported value {value!r}")
                args.append(str(value) if isinstance(value, int) else quote_string(value))
            lines.append(f"{pred}({','.join(args)})." if args else f"{pred}.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class QVar:
    name: str  # "_" is anonymous


@dataclass(frozen=True)
class QConst:
    name: str


@dataclass(frozen=True)
class Query:
    name: str
    args: tuple[int | str | QVar | QConst, ...]


_QUERY_TOKEN = re.compile(
    r"""\s*(?:
        (?P<int>-?[0-9]+)
      | (?P<str>"(?:[^"\\\n]|\\[\\"n])*")
      | (?P<var>_*[A-Z][A-Za-z0-9_']*)
      | (?P<const>_*[a-z][A-Za-z0-9_']*)
      | (?P<anon>_)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)


def _unescape(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), body)


def parse_query(text: str) -> Query:
    """Parse ``name``, ``name(arg, ...)``; args: ints, "strings", constants, Variables, ``_``."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _QUERY_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise CorpusError(f"bad query {text!r} at column {pos + 1}")
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    if not tokens or tokens[0][0] != "const":
        raise CorpusError(f"query must start with a predicate name: {text!r}")
    name = tokens[0][1]
    rest = tokens[1:]
    if not rest:
        return Query(name, ())
    if rest[0] != ("punct", "(") or rest[-1] != ("punct", ")") or len(rest) < 3:
        raise CorpusError(f"bad query arguments: {text!r}")
    args: list[int | str | QVar | QConst] = []
    inner = rest[1:-1]
    for i, (kind, value) in enumerate(inner):
        if i % 2 == 1:
            if (kind, value) != ("punct", ","):
                raise CorpusError(f"expected ',' in query {text!r}")
            continue
        if kind == "int":
            args.append(int(value))
        elif kind == "str":
            args.append(_unescape(value))
        elif kind in ("var", "anon"):
            args.append(QVar(value))
        elif kind == "const":
            args.append(QConst(value))
        else:
            raise CorpusError(f"unexpected {value!r} in query {text!r}")
    if len(inner) % 2 == 0:
        raise CorpusError(f"dangling ',' in query {text!r}")
    return Query(name, tuple(args))


def query_matches(query: Query, symbol: Any) -> bool:
    """Does the clingo symbol (an atom) match the query pattern?"""
    import clingo

    if symbol.type != clingo.SymbolType.Function or symbol.name != query.name:
        return False
    if not symbol.positive or len(symbol.arguments) != len(query.args):
        return False
    bound: dict[str, Any] = {}
    for pattern, arg in zip(query.args, symbol.arguments, strict=True):
        if isinstance(pattern, QVar):
            if pattern.name == "_":
                continue
            if pattern.name in bound:
                if bound[pattern.name] != arg:
                    return False
            else:
                bound[pattern.name] = arg
        elif isinstance(pattern, QConst):
            if not (
                arg.type == clingo.SymbolType.Function
                and arg.positive
                and not arg.arguments
                and arg.name == pattern.name
            ):
                return False
        elif isinstance(pattern, int):
            if arg.type != clingo.SymbolType.Number or arg.number != pattern:
                return False
        elif arg.type != clingo.SymbolType.String or arg.string != pattern:
            return False
    return True


# --------------------------------------------------------------------------- clingo


def clingo_expected(case_dir: Path | str) -> dict[str, Any]:
    """Run the case on clingo and return the ``expected.json`` document."""
    import clingo

    case_dir = Path(case_dir)
    if is_error_case(case_dir):
        raise CorpusError(f"{case_dir.name}: error cases have no clingo expectation")
    program = (case_dir / PROGRAM).read_text(encoding="utf-8")
    facts = ""
    if (case_dir / FACTS).exists():
        facts = facts_to_clingo(json.loads((case_dir / FACTS).read_text(encoding="utf-8")))
    queries = read_queries(case_dir)
    if len(set(queries)) != len(queries):
        raise CorpusError(f"{case_dir.name}: duplicate query lines")
    parsed = [parse_query(q) for q in queries]

    messages: list[str] = []
    ctl = clingo.Control(["--warn=none", "--models=0"], logger=lambda _code, msg: messages.append(msg))
    try:
        ctl.add("base", [], program)
        if facts:
            ctl.add("base", [], facts)
        ctl.ground([("base", [])])
    except RuntimeError as exc:
        raise CorpusError(f"{case_dir.name}: clingo failed: {exc}: {''.join(messages)}") from exc

    models: list[tuple[list[str], list[Any]]] = []

    def on_model(model: Any) -> None:
        shown = sorted(str(s) for s in model.symbols(shown=True))
        models.append((shown, list(model.symbols(atoms=True))))

    ctl.solve(on_model=on_model)
    if len(models) != 1:
        raise CorpusError(f"{case_dir.name}: clingo found {len(models)} models, expected 1")
    shown, atoms = models[0]
    expected: dict[str, Any] = {"atoms": shown}
    if (case_dir / QUERY).exists():
        expected["answers"] = {
            text: sorted(str(s) for s in atoms if query_matches(q, s))
            for text, q in zip(queries, parsed, strict=True)
        }
    return expected


def render(expected: dict[str, Any]) -> str:
    return json.dumps(expected, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)

    changed: list[str] = []
    failed: list[str] = []
    cases = case_dirs()
    for case in cases:
        if is_error_case(case):
            continue
        try:
            text = render(clingo_expected(case))
        except CorpusError as exc:
            failed.append(str(exc))
            continue
        target = case / EXPECTED_JSON
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            changed.append(case.name)
            if not args.check:
                target.write_text(text, encoding="utf-8")

    for msg in failed:
        print(f"FAILED {msg}", file=sys.stderr)
    verb = "would change" if args.check else "updated"
    for name in changed:
        print(f"{verb}: {name}")
    n_err = sum(is_error_case(c) for c in cases)
    print(f"{len(cases)} cases ({n_err} error cases), {len(changed)} {verb}, {len(failed)} failed")
    if failed or (args.check and changed):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
