"""Case facts: JSON (docs/engine.md, "Case facts") or ``.lp`` files of ground facts, checked and converted.

JSON integers become integers and JSON strings become strings; floats,
booleans, nulls, nested lists and objects are refused with the JSON pointer of
the offending value, because a silent coercion would change a decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import FactsError, InputFactsLimitExceeded, ProgramError
from .factscan import scan_ground_facts
from .limits import Limits
from .syntax import Minus, Num, Str, Sym, ground_value
from .terms import INT_MAX, INT_MIN, Const, Term, format_atom


@dataclass
class FactSet:
    """Ground facts grouped by predicate signature (name, arity)."""

    facts: dict[tuple[str, int], set[tuple[Term, ...]]] = field(default_factory=dict)

    def add(self, predicate: str, args: tuple[Term, ...]) -> None:
        self.facts.setdefault((predicate, len(args)), set()).add(args)

    def __len__(self) -> int:
        return sum(len(v) for v in self.facts.values())

    def atoms(self) -> Iterator[str]:
        for (name, _), rows in sorted(self.facts.items()):
            for args in rows:
                yield format_atom(name, args)

    def to_json(self) -> dict[str, list[list[Any]]]:
        """The JSON shape back; constants (only possible from .lp files) as {"const": name}."""
        from .terms import sort_key, to_json

        out: dict[str, list[list[Any]]] = {}
        for (name, _), rows in sorted(self.facts.items()):
            ordered = sorted(rows, key=lambda r: tuple(sort_key(v) for v in r))
            out.setdefault(name, []).extend([to_json(v) for v in r] for r in ordered)
        return out


def _pointer(*parts: object) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _describe(value: Any) -> str:
    """A short, safe description: never a huge or recursive repr, never a 5,000-digit str()."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"number {value!r} (not an integer)"
    if isinstance(value, int):
        return f"integer {value}" if -(10**30) < value < 10**30 else "a very large integer"
    if isinstance(value, list):
        return "a nested list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    return f"a value of type {type(value).__name__}"


def _string_problem(text: str) -> str | None:
    """Why a string cannot be a term: a NUL (clingo ends strings there) or a lone surrogate."""
    if text.isascii():
        return "a NUL character" if "\x00" in text else None
    if "\x00" in text:
        return "a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start} (not valid Unicode)"
    return None


def _name_for_message(name: object) -> str:
    if isinstance(name, str):
        shown = name if len(name) <= 40 else name[:40] + "..."
        return repr(shown.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace"))
    return _describe(name)


# names clingo reads as keywords, never as predicates
RESERVED_NAMES = frozenset({"not"})


def facts_from_json(
    data: Any, arities: Mapping[str, int] | None = None, *, max_facts: int | None = None
) -> FactSet:
    """Convert ``{"pred": [[arg, ...], ...]}``; ``arities`` are the program's own uses.

    Raises FactsError (with the JSON pointer of the offending value) for anything
    that is not a valid case, and InputFactsLimitExceeded once more than
    ``max_facts`` distinct facts were read; never another exception. Nesting is
    only ever walked three levels deep, so deep or cyclic input cannot recurse.
    """
    if not isinstance(data, Mapping):
        raise FactsError(f"facts must be an object mapping predicate names to lists, got {_describe(data)}")
    out = FactSet()
    count = 0
    for name, rows in data.items():
        if isinstance(name, str) and (problem := _string_problem(name)) is not None:
            raise FactsError(f"a predicate name contains {problem}")
        if not isinstance(name, str) or not _is_identifier(name):
            raise FactsError(
                f"{_name_for_message(name)} is not a predicate name "
                "(lowercase letter first, then letters, digits, _ or ')",
                _pointer(name) if isinstance(name, str) else "",
            )
        if name in RESERVED_NAMES:
            raise FactsError(f"'{name}' is a keyword, not a predicate name", _pointer(name))
        if not isinstance(rows, list):
            raise FactsError(f"expected a list of argument lists, got {_describe(rows)}", _pointer(name))
        expected = arities.get(name) if arities else None
        first_arity: int | None = None
        bucket: set[tuple[Term, ...]] | None = None
        for i, row in enumerate(rows):
            if not isinstance(row, list):
                raise FactsError(f"expected a list of arguments, got {_describe(row)}", _pointer(name, i))
            n = len(row)
            if expected is not None and n != expected:
                raise FactsError(
                    f"'{name}' has {n} argument(s) here but the program uses '{name}/{expected}'",
                    _pointer(name, i),
                )
            if first_arity is None:
                first_arity = n
                bucket = out.facts.setdefault((name, n), set())
            elif n != first_arity:
                raise FactsError(
                    f"'{name}' has {n} argument(s) here but {first_arity} in its first fact",
                    _pointer(name, i),
                )
            for j, v in enumerate(row):
                tv = type(v)
                if tv is str:
                    problem = _string_problem(v)
                    if problem is not None:
                        raise FactsError(f"string contains {problem}", _pointer(name, i, j))
                    continue
                if tv is int:
                    if not INT_MIN <= v <= INT_MAX:
                        raise FactsError(
                            f"{_describe(v)} does not fit in 32 bits (clingo's integer range)",
                            _pointer(name, i, j),
                        )
                    continue
                raise FactsError(
                    f"unsupported value: {_describe(v)}; use integers (e.g. cents) or strings",
                    _pointer(name, i, j),
                )
            assert bucket is not None
            before = len(bucket)
            bucket.add(tuple(row))
            if len(bucket) > before:
                count += 1
                if max_facts is not None and count > max_facts:
                    raise InputFactsLimitExceeded(max_facts, count)
    return out


def validate_facts(data: Any, arities: Mapping[str, int] | None, limits: Limits) -> FactSet:
    """Check case facts at submission as evaluation will: shape, values, arities, the input limit.

    ``arities`` maps each predicate name of the ruleset to its arity (a name
    the ruleset does not use may have any arity). Raises FactsError with a JSON
    pointer or InputFactsLimitExceeded; returns the decoded facts.
    """
    return facts_from_json(data, arities, max_facts=limits.input_facts)


_IDENTIFIER = re.compile(r"_*[a-z][A-Za-z0-9_']*")


def _is_identifier(name: str) -> bool:
    return _IDENTIFIER.fullmatch(name) is not None


def parse_facts_lp(text: str, filename: str = "<facts>") -> FactSet:
    """Ground facts written in program syntax (``edge(1,2). person("ann", 31).``).

    Plain ground facts are read by the scanner of ``factscan.py`` (15 to 25 times
    faster); anything else, errors included, by the general parser, whose facts
    and diagnostics the scanner's agree with.
    """
    scanned = scan_ground_facts(text)
    if scanned is not None:
        return FactSet(scanned)
    return parse_facts_general(text, filename)


def parse_facts_general(text: str, filename: str = "<facts>") -> FactSet:
    """:func:`parse_facts_lp` through the general parser: every construct, every diagnostic."""
    from .errors import Diagnostic
    from .parse import parse

    program = parse(text, filename)
    out = FactSet()
    lines = text.split("\n")
    problems: list[Diagnostic] = []
    for rule in program.rules:
        args: list[Term] = []
        for arg in rule.head.args:
            value = ground_value(arg)
            if value is None and isinstance(arg, Minus) and isinstance(arg.operand, Num):
                value = -arg.operand.value
            if value is None:
                span = arg.span
                problems.append(
                    Diagnostic(
                        "invalid-facts",
                        "facts files hold ground facts only: no variables or arithmetic",
                        span.line,
                        span.column,
                        filename=filename,
                        source_line=lines[span.line - 1],
                    )
                )
                break
            args.append(value)
        if rule.body:
            problems.append(
                Diagnostic(
                    "invalid-facts",
                    "facts files hold facts only, not rules",
                    rule.span.line,
                    rule.span.column,
                    filename=filename,
                    source_line=lines[rule.span.line - 1],
                )
            )
            continue
        out.add(rule.head.predicate, tuple(args))
    if program.shows:
        s = program.shows[0].span
        problems.append(
            Diagnostic(
                "invalid-facts",
                "facts files cannot contain #show",
                s.line,
                s.column,
                filename=filename,
                source_line=lines[s.line - 1],
            )
        )
    if problems:
        raise ProgramError(problems)
    return out


def fact_value(term: Num | Str | Sym) -> Term:
    if isinstance(term, Num):
        return term.value
    if isinstance(term, Str):
        return term.value
    return Const(term.name)
