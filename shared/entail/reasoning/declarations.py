"""Typed inputs: ``%@input`` declarations of the case-fact predicates' argument types.

A declaration is a line comment, so the program stays valid clingo
(docs/engine.md, "Typed inputs")::

    %@input person(name: const, age: int).
    %@input reports(string, const).

Types: ``int`` (a 32-bit integer), ``string`` (a JSON string, kept a string),
``const`` (a JSON string that becomes the symbolic constant of that name, so
``"bob"`` in the case facts matches ``bob`` in the program) and ``any`` (any
value, as without declarations). A name before ``:`` documents the column (it
titles the JSON Schema's item); it is optional.

With declarations a service checks each case at submission: a wrong type, a wrong
number of arguments or an undeclared predicate is a 422 with the JSON pointer of
each problem (:meth:`Declarations.problems`); the engine maps ``const`` columns
to constants (:meth:`Declarations.convert`); the static type inference treats the
declared kinds as known, and a clash becomes an error (type_infer.py).

Parsing reads the lexer's own comment tokens (a ``%@input`` inside a block
comment or a string is not a declaration) and runs only when the source contains
``%@input``: a program without declarations pays nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .bindings import Signature
from .errors import Diagnostic, FactsError
from .parse import _TOKEN as _LEX_TOKEN
from .terms import INT_MAX, INT_MIN, Const, Term

MARK = "%@input"
TYPES = ("int", "string", "const", "any")
#: at most this many problems are listed in one 422 (the first ones, in body order)
MAX_PROBLEMS = 50


_HEAD = re.compile(r"\s*(_*[a-z][A-Za-z0-9_']*)\s*")
_COLUMN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_']*)\s*:\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*")
_CONST_PATTERN = "^_*[a-z][A-Za-z0-9_']*$"
_CONST_NAME = re.compile(r"_*[a-z][A-Za-z0-9_']*\Z")


@dataclass(frozen=True)
class Declaration:
    """One ``%@input``: a predicate, its argument types (and optional names)."""

    predicate: str
    types: tuple[str, ...]
    names: tuple[str | None, ...]
    line: int
    column: int

    @property
    def signature(self) -> Signature:
        return (self.predicate, len(self.types))

    def text(self) -> str:
        cols = ", ".join(f"{n}: {t}" if n else t for n, t in zip(self.names, self.types, strict=True))
        return f"{self.predicate}({cols})" if self.types else self.predicate


@dataclass(frozen=True)
class Problem:
    """A case fact the declarations refuse: ``pointer`` into the facts object."""

    pointer: str
    detail: str

    def to_json(self, prefix: str = "") -> dict[str, str]:
        return {"pointer": prefix + self.pointer, "detail": self.detail}


def _escape(part: object) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _pointer(*parts: object) -> str:
    return "".join("/" + _escape(p) for p in parts)


def _value_text(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "true", False: "false", None: "null"}[v]
    if isinstance(v, str):
        return f'the string "{v[:40]}"'
    if isinstance(v, int):
        return f"the integer {v}"
    if isinstance(v, float):
        return f"the number {v}"
    return "a list" if isinstance(v, list) else "an object" if isinstance(v, dict) else type(v).__name__


class Declarations:
    """A program's input declarations, by predicate name (one arity per name)."""

    def __init__(self, declarations: Iterable[Declaration]) -> None:
        self.by_name: dict[str, Declaration] = {d.predicate: d for d in declarations}
        # the columns a JSON string turns into a constant, per predicate name
        self._const_cols = {
            name: tuple(i for i, t in enumerate(d.types) if t == "const")
            for name, d in self.by_name.items()
            if "const" in d.types
        }

    def __len__(self) -> int:
        return len(self.by_name)

    def signatures(self) -> list[Signature]:
        return [d.signature for d in self.by_name.values()]

    def kinds(self) -> dict[Signature, list[int]]:
        """The declared kinds per argument, as type_infer's bits."""
        from .type_infer import ANY, CONST, INT, STR

        bits = {"int": INT, "string": STR, "const": CONST, "any": ANY}
        return {d.signature: [bits[t] for t in d.types] for d in self.by_name.values()}

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {
                "predicate": d.predicate,
                "arity": len(d.types),
                "types": list(d.types),
                "names": list(d.names),
            }
            for d in self.by_name.values()
        ]

    # --- checking a case ---------------------------------------------------------

    def problems(self, facts: Any, *, strict: bool = True) -> list[Problem]:
        """Every declared-type problem of a JSON case (pointers into ``facts``), at
        most MAX_PROBLEMS. ``strict``: a predicate without a declaration is one.
        Shapes the plain facts check refuses (not an object, a row not a list) are
        left to it, except where needed to walk the rows."""
        out: list[Problem] = []
        if not isinstance(facts, Mapping):
            return out
        for name, rows in facts.items():
            if len(out) >= MAX_PROBLEMS:
                break
            decl = self.by_name.get(name) if isinstance(name, str) else None
            if decl is None:
                if strict:
                    declared = ", ".join(sorted(d.text() for d in self.by_name.values()))
                    out.append(
                        Problem(
                            _pointer(name),
                            f"'{name}' is not a declared input of this ruleset (declared: {declared})",
                        )
                    )
                continue
            if not isinstance(rows, list):
                continue
            self._row_problems(decl, name, rows, out)
        return out[:MAX_PROBLEMS]

    def _row_problems(self, decl: Declaration, name: str, rows: list[Any], out: list[Problem]) -> None:
        types = decl.types
        n = len(types)
        for i, row in enumerate(rows):
            if len(out) >= MAX_PROBLEMS:
                return
            if not isinstance(row, list):
                continue
            if len(row) != n:
                out.append(
                    Problem(
                        _pointer(name, i),
                        f"'{name}' is declared with {n} argument(s) ({decl.text()}), this row has {len(row)}",
                    )
                )
                continue
            for j, (v, t) in enumerate(zip(row, types, strict=True)):
                detail = _type_problem(v, t)
                if detail is not None:
                    label = f" ({decl.names[j]})" if decl.names[j] else ""
                    out.append(Problem(_pointer(name, i, j), f"argument {j + 1}{label} of '{name}' {detail}"))

    def check(self, facts: Any, *, strict: bool = False) -> None:
        """Raise FactsError with the first problem (the engine's check: not strict,
        since a dataset may bring predicates the declarations leave open)."""
        found = self.problems(facts, strict=strict)
        if found:
            raise FactsError(found[0].detail, found[0].pointer)

    def convert(self, facts: dict[tuple[str, int], set[tuple[Term, ...]]]) -> None:
        """Turn the strings of ``const`` columns into constants, in place."""
        for (name, arity), rows in facts.items():
            cols = self._const_cols.get(name)
            if not cols or arity != len(self.by_name[name].types) or not rows:
                continue
            converted = set()
            for row in rows:
                if any(type(row[c]) is str for c in cols):
                    values = list(row)
                    for c in cols:
                        v = values[c]
                        if isinstance(v, str):
                            values[c] = Const(v)
                    converted.add(tuple(values))
                else:
                    converted.add(row)
            rows.clear()
            rows.update(converted)

    # --- JSON Schema -------------------------------------------------------------

    def facts_schema(self) -> dict[str, Any]:
        """The JSON Schema (2020-12) of a ``facts`` object these declarations accept."""
        props: dict[str, Any] = {}
        for d in self.by_name.values():
            items = [_column_schema(t, n) for t, n in zip(d.types, d.names, strict=True)]
            row: dict[str, Any] = {"type": "array", "minItems": len(items), "maxItems": len(items)}
            if items:
                row["prefixItems"] = items
                row["items"] = False
            props[d.predicate] = {"type": "array", "items": row, "description": f"%@input {d.text()}."}
        return {"type": "object", "properties": props, "additionalProperties": False}


def _column_schema(t: str, name: str | None) -> dict[str, Any]:
    if t == "int":
        out: dict[str, Any] = {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}
    elif t == "string":
        out = {"type": "string"}
    elif t == "const":
        out = {"type": "string", "pattern": _CONST_PATTERN}
    else:
        out = {"anyOf": [{"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}, {"type": "string"}]}
    if name:
        out["title"] = name
    return out


def _type_problem(v: Any, t: str) -> str | None:
    if t == "any":
        return None  # the plain facts check refuses floats, booleans, ...
    if t == "int":
        if type(v) is int:
            return None if INT_MIN <= v <= INT_MAX else "does not fit in 32 bits"
        return f"is declared int, got {_value_text(v)}"
    if type(v) is not str:
        return f"is declared {t}, got {_value_text(v)}"
    if t == "const" and not _CONST_NAME.match(v):
        return (
            f'is declared const, but "{v[:40]}" is not a constant name '
            "(a lowercase letter first, then letters, digits, _ or ')"
        )
    return None


def arity_schema(arities: Mapping[str, int]) -> dict[str, Any]:
    """The permissive facts schema of a program without declarations: each predicate
    the program uses, rows of its arity holding integers or strings; other names
    are allowed (facts the program never reads are still part of the model)."""
    value = {"anyOf": [{"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}, {"type": "string"}]}
    props = {
        name: {
            "type": "array",
            "items": {"type": "array", "minItems": n, "maxItems": n, "items": value},
        }
        for name, n in sorted(arities.items())
    }
    return {
        "type": "object",
        "properties": props,
        "additionalProperties": {"type": "array", "items": {"type": "array", "items": value}},
    }


def request_schema(facts: dict[str, Any], title: str, queries: list[str] | None = None) -> dict[str, Any]:
    """A decision request's JSON Schema around a facts schema."""
    query: dict[str, Any] = {"type": "string", "minLength": 1}
    if queries:
        query["examples"] = queries
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "properties": {
            "facts": facts,
            "queries": {"type": "array", "items": query},
        },
        "required": ["facts"],
    }


# --- parsing ----------------------------------------------------------------------


def _comments(source: str, mark: str = MARK) -> Iterable[tuple[str, int, int]]:
    """The line comments that start with ``mark``: (text, line, column)."""
    line, line_start = 1, 0
    for m in _LEX_TOKEN.finditer(source):
        kind = m.lastgroup
        if kind == "nl":
            line += 1
            line_start = m.end()
        elif kind == "block":
            text = m["block"]
            if "\n" in text:
                line += text.count("\n")
                line_start = m.end() - len(text) + text.rfind("\n") + 1
        elif kind == "comment":
            text = m["comment"]
            if text.startswith(mark):
                yield text, line, m.end() - len(text) - line_start + 1
        elif kind == "str":
            text = m["str"]
            if "\n" in text:
                line += text.count("\n")


def collect(
    source: str, arities: Mapping[str, int] | None = None, filename: str = "<program>"
) -> tuple[Declarations | None, list[Diagnostic]]:
    """The declarations of a program, or diagnostics (line and column).

    ``arities``: the program's own uses (name -> arity); a declaration of another
    arity is ``input-arity-mismatch``.

    >>> d, errors = collect("%@input person(name: const, age: int).")
    >>> d.by_name["person"].types, errors
    (('const', 'int'), [])
    >>> [(e.code, e.column) for e in collect("%@input p(float).")[1]]
    [('input-unknown-type', 11)]
    """
    if MARK not in source:
        return None, []
    lines = source.split("\n")
    errors: list[Diagnostic] = []

    def error(code: str, message: str, line: int, column: int, width: int = 1) -> None:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        errors.append(
            Diagnostic(code, message, line, column, "error", column + max(1, width), filename, text)
        )

    found: dict[str, Declaration] = {}
    for text, line, column in _comments(source):
        rest = text[len(MARK) :]
        if rest and rest[0] not in " \t":
            word = text.split()[0]
            error(
                "input-syntax",
                f"unknown annotation '{word}' (write %@input p(type, ...).)",
                line,
                column,
                len(word),
            )
            continue
        decl = _declaration(rest, line, column + len(MARK), error)
        if decl is None:
            continue
        earlier = found.get(decl.predicate)
        if earlier is not None:
            same = earlier.types == decl.types
            error(
                "input-duplicate" if same else "input-conflict",
                f"'{decl.predicate}' is already declared on line {earlier.line}"
                + ("" if same else f" as {earlier.text()}")
                + ": one declaration per predicate",
                line,
                decl.column,
                len(decl.predicate),
            )
            continue
        used = arities.get(decl.predicate) if arities is not None else None
        if used is not None and used != len(decl.types):
            error(
                "input-arity-mismatch",
                f"'{decl.predicate}' is declared with {len(decl.types)} argument(s) but the program uses "
                f"'{decl.predicate}/{used}'",
                line,
                decl.column,
                len(decl.predicate),
            )
            continue
        found[decl.predicate] = decl
    if errors:
        return None, errors
    return (Declarations(found.values()) if found else None), []


def _declaration(rest: str, line: int, column: int, error: Any) -> Declaration | None:
    """Parse `` name(col, ...).`` (``column``: of rest's first character)."""
    found = _predicate(rest, 0, line, column, error, "input", "%@input person(const, int).")
    if found is None:
        return None
    decl, pos = found
    if not _ends(rest, pos, line, column, error, "input"):
        return None
    return decl


def _ends(rest: str, pos: int, line: int, column: int, error: Any, prefix: str) -> bool:
    """A declaration ends with '.' and nothing after it."""
    tail = rest[pos:].strip()
    if tail != ".":
        error(
            f"{prefix}-syntax",
            "a declaration ends with '.' (and nothing after it)",
            line,
            column + pos + (len(rest[pos:]) - len(rest[pos:].lstrip())),
        )
        return False
    return True


def _predicate(
    rest: str, pos: int, line: int, column: int, error: Any, prefix: str, example: str
) -> tuple[Declaration, int] | None:
    """Parse ``name(col, ...)`` at ``rest[pos:]``: the declaration and where it ends."""
    m = _HEAD.match(rest, pos)
    if m is None or not m.group(1):
        error(
            f"{prefix}-syntax",
            f"expected a predicate name after %@{prefix}, as in {example}",
            line,
            column + pos,
        )
        return None
    name = m.group(1)
    name_col = column + m.start(1)
    pos = m.end()
    types: list[str] = []
    names: list[str | None] = []
    if pos < len(rest) and rest[pos] == "(":
        pos += 1
        while True:
            cm = _COLUMN.match(rest, pos)
            if cm is None or not cm.group(2):
                error(f"{prefix}-syntax", "expected a type (int, string, const or any)", line, column + pos)
                return None
            label, typ = cm.group(1), cm.group(2)
            if typ not in TYPES:
                at = column + cm.start(2)
                error(
                    f"{prefix}-unknown-type",
                    f"unknown type '{typ}' (the types are int, string, const and any)",
                    line,
                    at,
                    len(typ),
                )
                return None
            types.append(typ)
            names.append(label)
            pos = cm.end()
            if pos < len(rest) and rest[pos] == ",":
                pos += 1
                continue
            if pos < len(rest) and rest[pos] == ")":
                pos += 1
                break
            error(f"{prefix}-syntax", "expected ',' or ')' in a declaration", line, column + pos)
            return None
    return Declaration(name, tuple(types), tuple(names), line, name_col), pos


# --- datasets (docs/datasets.md, "Declaring what a program reads") ------------------

DATASET_MARK = "%@dataset"
#: a dataset (and binding) name: the store's naming rule
DATASET_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}\Z")
_BINDING = re.compile(r"\s*([^\s:]*)\s*")


@dataclass(frozen=True)
class DatasetBinding:
    """One ``%@dataset NAME: p(type, ...), ...``: the binding's name and its predicates
    (several lines may name the same binding; their predicates add up)."""

    name: str
    predicates: tuple[Declaration, ...]
    line: int
    column: int


def collect_datasets(
    source: str,
    arities: Mapping[str, int] | None = None,
    filename: str = "<program>",
    inputs: Declarations | None = None,
) -> tuple[dict[str, DatasetBinding], list[Diagnostic]]:
    """The ``%@dataset`` declarations of a program (binding name -> binding, in
    declaration order), or diagnostics with line and column.

    ``arities``: the program's own uses (a declared predicate of another arity is
    ``dataset-arity-mismatch``); ``inputs``: its ``%@input`` declarations (a
    predicate declared by both is ``dataset-predicate-redeclared``).

    >>> b, errors = collect_datasets("%@dataset org: manages(const, const), limit(p: const, n: int).")
    >>> [(d.predicate, d.types) for d in b["org"].predicates], errors
    ([('manages', ('const', 'const')), ('limit', ('const', 'int'))], [])
    >>> [(e.code, e.column) for e in collect_datasets("%@dataset Org: p(int).")[1]]
    [('dataset-name', 11)]
    """
    if DATASET_MARK not in source:
        return {}, []
    lines = source.split("\n")
    errors: list[Diagnostic] = []

    def error(code: str, message: str, line: int, column: int, width: int = 1) -> None:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        errors.append(
            Diagnostic(code, message, line, column, "error", column + max(1, width), filename, text)
        )

    example = "%@dataset orgchart: manages(const, const)."
    bindings: dict[str, list[Declaration]] = {}
    where: dict[str, tuple[int, int]] = {}
    owner: dict[str, tuple[str, Declaration]] = {}  # predicate name -> (binding, declaration)
    for text, line, column in _comments(source, DATASET_MARK):
        rest = text[len(DATASET_MARK) :]
        base = column + len(DATASET_MARK)
        if rest and rest[0] not in " \t":
            word = text.split()[0]
            error("dataset-syntax", f"unknown annotation '{word}' (write {example})", line, column, len(word))
            continue
        m = _BINDING.match(rest)
        assert m is not None  # the pattern matches the empty string
        name = m.group(1)
        pos = m.end()
        if not name:
            error(
                "dataset-syntax",
                f"expected a dataset name after %@dataset, as in {example}",
                line,
                base + pos,
            )
            continue
        if not DATASET_NAME.match(name):
            error(
                "dataset-name",
                f"'{name[:64]}' is not a dataset name (a lowercase letter first, then up to 62 lowercase "
                "letters, digits, '_' or '-')",
                line,
                base + m.start(1),
                len(name),
            )
            continue
        if pos >= len(rest) or rest[pos] != ":":
            error("dataset-syntax", f"expected ':' after the dataset name, as in {example}", line, base + pos)
            continue
        pos += 1
        decls: list[Declaration] = []
        ok = True
        while True:
            found = _predicate(rest, pos, line, base, error, "dataset", example)
            if found is None:
                ok = False
                break
            decl, pos = found
            decls.append(decl)
            after = len(rest[pos:]) - len(rest[pos:].lstrip())
            if rest[pos + after : pos + after + 1] == ",":
                pos += after + 1
                continue
            break
        if not ok or not _ends(rest, pos, line, base, error, "dataset"):
            continue
        for decl in decls:
            earlier = owner.get(decl.predicate)
            declared = inputs.by_name.get(decl.predicate) if inputs is not None else None
            if earlier is not None or declared is not None:
                where_text = (
                    f"by %@dataset {earlier[0]} on line {earlier[1].line}"
                    if earlier is not None
                    else f"by %@input on line {declared.line}"  # type: ignore[union-attr]
                )
                error(
                    "dataset-predicate-redeclared",
                    f"'{decl.predicate}' is already declared {where_text}: a predicate comes from one "
                    "dataset or from the case, never both",
                    line,
                    decl.column,
                    len(decl.predicate),
                )
                continue
            used = arities.get(decl.predicate) if arities is not None else None
            if used is not None and used != len(decl.types):
                error(
                    "dataset-arity-mismatch",
                    f"'{decl.predicate}' is declared with {len(decl.types)} argument(s) but the program uses "
                    f"'{decl.predicate}/{used}'",
                    line,
                    decl.column,
                    len(decl.predicate),
                )
                continue
            owner[decl.predicate] = (name, decl)
            bindings.setdefault(name, []).append(decl)
            where.setdefault(name, (line, base + m.start(1)))
    if errors:
        return {}, errors
    return {name: DatasetBinding(name, tuple(decls), *where[name]) for name, decls in bindings.items()}, []
