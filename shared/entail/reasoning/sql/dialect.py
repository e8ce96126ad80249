"""What differs between the SQL dialects the compiler targets: DuckDB and BigQuery.

Everything else the compiler writes is the portable core both accept: joins,
``NOT EXISTS``, ``GROUP BY``, ``CASE``, ``COALESCE``, ``UNION ALL``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect(ABC):
    name: str
    int_type: str
    text_type: str

    @abstractmethod
    def quote_ident(self, name: str) -> str: ...

    @abstractmethod
    def string(self, text: str) -> str:
        """A string literal."""
        ...

    @abstractmethod
    def int_div(self, left: str, right: str) -> str:
        """Integer division of two non-negative integers."""
        ...

    @abstractmethod
    def except_distinct(self) -> str: ...

    @abstractmethod
    def json_string(self, expr: str) -> str:
        """The unescaped value of a JSON string literal (clingo's string escapes are JSON's)."""
        ...

    def char(self, code: int) -> str:
        """A one-character string for a code point (``CHR`` in both dialects; bqemulator
        mistranslates ``CODE_POINTS_TO_STRING([9])`` next to an ``UNNEST`` of structs)."""
        return f"CHR({code})"

    def clingo_string(self, expr: str) -> str:
        """The value of a clingo string literal (``"a\\"b"``).

        clingo escapes only ``\\``, ``"`` and newline and prints every other control
        character raw (``"tab<TAB>x"``), which JSON refuses: those are escaped as
        ``\\u00XX`` first, then the literal is read as a JSON string.
        """
        for code in range(32):
            escape = self.string("\\u%04x" % code)  # noqa: UP031 (a backslash cannot sit in an f-string field)
            expr = f"REPLACE({expr}, {self.char(code)}, {escape})"
        return self.json_string(expr)

    @abstractmethod
    def int_literal_test(self, expr: str) -> str:
        """SQL condition: the text is an integer literal (``-12``)."""
        ...

    def string_literal_test(self, expr: str) -> str:
        """SQL condition: the text is a clingo string literal (starts with a double quote)."""
        return f"STARTS_WITH({expr}, '\"')"

    @abstractmethod
    def constant_name_test(self, expr: str) -> str:
        """SQL condition: the text is a constant's name (``_*[a-z][A-Za-z0-9_']*``), what a
        dataset's ``const`` column must hold."""
        ...

    @abstractmethod
    def values(self, rows: Sequence[Sequence[str]], columns: Sequence[str]) -> str:
        """A derived table from literal rows (SQL expressions), as ``(...) AS name`` body."""
        ...

    @abstractmethod
    def is_integer_type(self, type_name: str) -> bool: ...

    @abstractmethod
    def is_text_type(self, type_name: str) -> bool: ...

    def create_table_as(self, table: str, select: str) -> str:
        return f"CREATE OR REPLACE TABLE {table} AS {select}"

    def int_literal(self, value: int) -> str:
        """An integer operand of arithmetic, typed 64-bit: DuckDB types a small literal
        ``INTEGER`` and raises on ``2147483647 + 1`` instead of letting :meth:`wrap32` wrap it."""
        return f"CAST({value} AS {self.int_type})"

    def wrap32(self, expr: str) -> str:
        """Two's complement 32-bit wrap-around of a 64-bit integer expression (clingo's ints)."""
        m = 4294967296
        return f"CAST(MOD(MOD({expr} + 2147483648, {m}) + {m}, {m}) - 2147483648 AS {self.int_type})"


class DuckDB(Dialect):
    def __init__(self) -> None:
        super().__init__("duckdb", "BIGINT", "VARCHAR")

    def quote_ident(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def string(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def int_div(self, left: str, right: str) -> str:
        return f"({left} // {right})"

    def except_distinct(self) -> str:
        return "EXCEPT"

    def json_string(self, expr: str) -> str:
        return f"json_extract_string({expr}, '$')"

    def int_literal_test(self, expr: str) -> str:
        return f"regexp_full_match({expr}, '-?[0-9]+')"

    def constant_name_test(self, expr: str) -> str:
        return f"regexp_full_match({expr}, '_*[a-z][A-Za-z0-9_'']*')"

    def values(self, rows: Sequence[Sequence[str]], columns: Sequence[str]) -> str:
        body = ", ".join("(" + ", ".join(r) + ")" for r in rows)
        return f"(SELECT * FROM (VALUES {body}) AS v({', '.join(columns)}))"

    def is_integer_type(self, type_name: str) -> bool:
        t = type_name.upper()
        return t in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"} or t in {
            "UINTEGER",
            "UBIGINT",
            "INT",
            "INT64",
        }

    def is_text_type(self, type_name: str) -> bool:
        return type_name.upper() in {"VARCHAR", "TEXT", "STRING"}


class BigQuery(Dialect):
    def __init__(self) -> None:
        super().__init__("bigquery", "INT64", "STRING")

    def quote_ident(self, name: str) -> str:
        return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"

    def string(self, text: str) -> str:
        escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
        return "'" + escaped + "'"

    def int_div(self, left: str, right: str) -> str:
        return f"DIV({left}, {right})"

    def except_distinct(self) -> str:
        return "EXCEPT DISTINCT"

    def json_string(self, expr: str) -> str:
        return f"JSON_VALUE({expr})"

    def int_literal_test(self, expr: str) -> str:
        return f"REGEXP_CONTAINS({expr}, r'^-?[0-9]+$')"

    def constant_name_test(self, expr: str) -> str:
        # a raw string in double quotes holds the apostrophe a constant may contain
        return f'REGEXP_CONTAINS({expr}, r"^_*[a-z][A-Za-z0-9_\']*$")'

    def values(self, rows: Sequence[Sequence[str]], columns: Sequence[str]) -> str:
        structs = ", ".join(
            "STRUCT(" + ", ".join(f"{v} AS {c}" for v, c in zip(r, columns, strict=True)) + ")" for r in rows
        )
        return f"(SELECT * FROM UNNEST([{structs}]))"

    def is_integer_type(self, type_name: str) -> bool:
        return type_name.upper() in {"INT64", "INTEGER", "INT", "SMALLINT", "BIGINT", "TINYINT", "BYTEINT"}

    def is_text_type(self, type_name: str) -> bool:
        return type_name.upper() == "STRING"


DUCKDB = DuckDB()
BIGQUERY = BigQuery()
DIALECTS: dict[str, Dialect] = {"duckdb": DUCKDB, "bigquery": BIGQUERY}
