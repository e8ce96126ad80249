"""One typed hierarchy for everything the engine refuses.

Program errors carry diagnostics with line and column and render a caret
snippet; limit errors name the limit and the value reached. Each error has a
stable ``code`` that the API and the conformance suite rely on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Span(NamedTuple):
    """A source position: 1-based line and column; ``end_column`` is exclusive.

    A named tuple: every node of a parsed program carries one, so it must be cheap."""

    line: int
    column: int
    end_column: int | None = None


@dataclass(frozen=True)
class Diagnostic:
    """One message about a program, tied to a position in its source."""

    code: str
    message: str
    line: int
    column: int
    severity: str = "error"
    end_column: int | None = None
    filename: str = "<program>"
    source_line: str = field(default="", compare=False)
    notes: tuple[str, ...] = ()

    def render(self) -> str:
        """``file:line:col: error[code]: message`` plus the line and a caret."""
        head = f"{self.filename}:{self.line}:{self.column}: {self.severity}[{self.code}]: {self.message}"
        lines = [head]
        if self.source_line:
            width = max(1, (self.end_column or self.column + 1) - self.column)
            gutter = f"{self.line} | "
            lines.append(gutter + self.source_line.rstrip("\n"))
            lines.append(" " * (len(gutter) + self.column - 1) + "^" * width)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "line": self.line,
            "column": self.column,
        }
        if self.end_column is not None:
            out["end_column"] = self.end_column
        if self.notes:
            out["notes"] = list(self.notes)
        return out


class EntailError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "entail-error"

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self)}


class ProgramError(EntailError):
    """The program is not valid; ``diagnostics`` says where and why."""

    code = "program-error"

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity == "error"]
        first = errors[0] if errors else diagnostics[0]
        self.code = first.code
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first.line}:{first.column}: {first.message}{more}")

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": str(self),
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }


class FactsError(EntailError):
    """Case facts that cannot be used; ``path`` locates the bad value (JSON pointer)."""

    code = "invalid-facts"

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self), "path": self.path}


class DatasetTypeError(FactsError):
    """A dataset value of the wrong type for its ``%@dataset`` column (found once, when
    the reference data is materialised); the message names binding, predicate, row
    (0-based, in the rows as given) and column (1-based)."""

    code = "dataset-type-mismatch"


class DatasetPredicateInCase(FactsError):
    """Case facts naming a predicate that comes from a dataset (``path``: its member)."""

    code = "facts-name-dataset-predicate"


class QueryError(EntailError):
    """A query that is not an atom of the language."""

    code = "invalid-query"

    def __init__(self, query: str, message: str, column: int | None = None) -> None:
        self.query = query
        self.column = column
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"query {query!r}{where}: {message}")


class LimitExceeded(EntailError):
    """An evaluation limit was reached; the evaluation stopped cleanly."""

    code = "limit"
    what = "limit"
    unit = ""

    def __init__(self, limit: int, value: int) -> None:
        self.limit = limit
        self.value = value
        unit = f" {self.unit}" if self.unit else ""
        super().__init__(f"{self.what} limit exceeded: reached {value}{unit}, limit is {limit}{unit}")

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self), "limit": self.limit, "value": self.value}


class DerivedFactsLimitExceeded(LimitExceeded):
    code = "limit-derived-facts"
    what = "derived facts"
    unit = "facts"


class WallTimeLimitExceeded(LimitExceeded):
    code = "limit-wall-time"
    what = "wall time"
    unit = "ms"


class InputFactsLimitExceeded(LimitExceeded):
    code = "limit-input-facts"
    what = "input facts"
    unit = "facts"


class ProgramSizeLimitExceeded(LimitExceeded):
    code = "limit-program-size"
    what = "program size"
    unit = "bytes"


class CompileTimeLimitExceeded(LimitExceeded):
    """Parsing, analysing, planning and generating code took longer than allowed."""

    code = "limit-compile-time"
    what = "compile time"
    unit = "ms"


class RuleBodyLimitExceeded(LimitExceeded):
    """One rule has more body literals (aggregate conditions included) than allowed."""

    code = "limit-rule-body"
    what = "body literals per rule"
    unit = "literals"

    def __init__(self, limit: int, value: int, line: int) -> None:
        self.line = line
        super().__init__(limit, value)
        self.args = (f"{self.args[0]} (the rule at line {line}); split it into smaller rules",)

    def __str__(self) -> str:
        return str(self.args[0])

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "line": self.line}
