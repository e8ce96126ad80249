"""Run a compiled program in the warehouse: load, evaluate stratum by stratum, write outputs.

Contract: :func:`run_batch` takes a compiled :class:`~entail.reasoning.Ruleset`,
a :class:`~.backend.Backend` and the input mapping, and returns the
:class:`~.manifest.Manifest` of the run, or raises a named error
(:class:`~.errors.BatchInputError`, :class:`~.errors.IterationLimitExceeded`,
:class:`~.errors.RowLimitExceeded`, :class:`~.errors.ScannedBytesLimitExceeded`).

The steps, all as SQL in the warehouse:

1. the symbol dictionary ``sym(kind, text, code)``: every constant and string
   of the program, the inputs and the bound datasets, ranked in term order
   (:mod:`.encoding`);
2. one table of codes per predicate, filled with the ruleset's facts and the
   encoded inputs (a value that is not a 32-bit integer or text is refused); a
   dataset predicate no rule derives is instead a view that encodes the
   dataset's relation in place (:mod:`.datasets`);
3. the strata in order: a non-recursive stratum is one ``INSERT`` of the union
   of its rules; a recursive one runs semi-naive rounds — each round computes
   the new facts of every predicate of the stratum from the last round's
   deltas (``EXCEPT`` what is already known), then commits them — until a
   round adds nothing. Never a fixed unrolling depth;
4. every output predicate decoded into a destination table whose columns are
   typed by what they hold (see :mod:`.manifest`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..bindings import Signature, sig_text
from ..ruleset import Ruleset
from ..syntax import Aggregate, BinOp, Comparison, Minus, Negative, Positive, Rule
from ..terms import INT_MAX, INT_MIN
from .backend import Backend
from .compile import CompiledProgram, StratumSQL, Tables, columns, compile_program, program_symbols, width
from .datasets import ROW_COLUMN, DatasetSource, DatasetTable, DatasetTypeMismatch
from .encoding import INF_CODE, KIND_CONST, KIND_STRING, SUP_CODE, SYMBOL_BASE
from .errors import BatchInputError, IterationLimitExceeded, RowLimitExceeded, ScannedBytesLimitExceeded
from .inputs import InputSpec, parse_inputs
from .manifest import SCHEMA, ColumnInfo, Manifest, OutputInfo, StratumInfo


@dataclass(frozen=True)
class BatchLimits:
    """Limits of one batch run; each raises its own named error."""

    max_iterations: int = 100_000  # semi-naive rounds per recursive stratum
    max_rows: int = 2_000_000_000  # derived rows, all predicates together
    max_bytes_scanned: int | None = None  # warehouse bytes (BigQuery), all jobs together


@dataclass(frozen=True)
class Progress:
    """One step of a run, for a progress display."""

    event: str  # "load", "stratum", "round", "output", "done"
    stratum: int = 0
    strata: int = 0
    iteration: int = 0
    predicates: tuple[str, ...] = ()
    new_rows: int = 0
    total_rows: int = 0


ProgressFn = Callable[[Progress], None]


def table_stem(sig: Signature) -> str:
    """A table name for a predicate: its name with ``'`` spelt ``_q``."""
    return sig[0].replace("'", "_q")


class _Run:
    def __init__(
        self,
        ruleset: Ruleset,
        backend: Backend,
        specs: list[InputSpec],
        limits: BatchLimits,
        progress: ProgressFn,
        keep_work: bool,
        datasets: Sequence[DatasetSource] = (),
    ) -> None:
        self.ruleset = ruleset
        self.backend = backend
        self.dialect = backend.dialect
        self.limits = limits
        self.progress = progress
        self.keep_work = keep_work
        self.sigs: list[Signature] = list(ruleset.analysis.signatures)
        self.index = {sig: i for i, sig in enumerate(self.sigs)}
        self.arity = dict(self.sigs)
        self.specs = specs
        self.counts: dict[Signature, int] = {}
        self.derived = 0
        self.created: list[str] = []
        self.views: list[str] = []
        self.tables = Tables(full=self.full, delta=self.delta)
        self.datasets = list(datasets)
        # the dataset predicates the program reads (a declared one it never uses is not read)
        self.dataset_of: dict[Signature, tuple[DatasetSource, DatasetTable]] = {}
        mapped = {spec.predicate for spec in specs}
        for source in self.datasets:
            for table in source.tables:
                sig = table.signature
                if sig not in self.index:
                    continue
                if sig in self.dataset_of:
                    other = self.dataset_of[sig][0].binding
                    raise BatchInputError(
                        f"predicate '{sig_text(sig)}' comes from both dataset {other!r} "
                        f"and {source.binding!r}"
                    )
                if sig[0] in mapped:
                    raise BatchInputError(
                        f"input '{sig[0]}': the predicate comes from dataset {source.binding!r}, "
                        "it cannot also be mapped to an input"
                    )
                self.dataset_of[sig] = (source, table)

    # names ---------------------------------------------------------------------------
    def full(self, sig: Signature) -> str:
        return self.backend.work_table(f"r{self.index[sig]}_{table_stem(sig)}")

    def delta(self, sig: Signature) -> str:
        return self.backend.work_table(f"d{self.index[sig]}_{table_stem(sig)}")

    def new(self, sig: Signature) -> str:
        return self.backend.work_table(f"n{self.index[sig]}_{table_stem(sig)}")

    def sym(self) -> str:
        return self.backend.work_table("sym")

    def create(self, table: str, select: str) -> None:
        self.backend.execute(self.dialect.create_table_as(table, select))
        if table not in self.created:
            self.created.append(table)

    def count(self, table: str) -> int:
        return int(self.backend.rows(f"SELECT COUNT(*) FROM {table}")[0][0])

    def check_bytes(self) -> None:
        cap = self.limits.max_bytes_scanned
        if cap is not None and self.backend.bytes_scanned > cap:
            raise ScannedBytesLimitExceeded(cap, self.backend.bytes_scanned)

    # inputs --------------------------------------------------------------------------
    def source_sql(self, spec: InputSpec) -> tuple[str, list[tuple[str, str]]]:
        arity = self.arity_of(spec.predicate)
        if arity is None:
            raise BatchInputError(f"input '{spec.predicate}': the program never uses this predicate")
        if spec.arity is not None and spec.arity != arity:
            raise BatchInputError(
                f"input '{spec.predicate}/{spec.arity}': the program uses '{spec.predicate}/{arity}'"
            )
        if spec.query is not None:
            base = f"SELECT * FROM ({spec.query}) AS q"
        else:
            assert spec.table is not None
            base = f"SELECT * FROM {self.backend.input_table(spec.table)}"
        described = self.backend.describe(base)
        if spec.columns is not None:
            by_name = {n.lower(): (n, t) for n, t in described}
            picked = []
            for col in spec.columns:
                if col.lower() not in by_name:
                    raise BatchInputError(
                        f"input '{spec.predicate}': no column {col!r} in {spec.describe()} "
                        f"(it has {', '.join(n for n, _ in described)})"
                    )
                picked.append(by_name[col.lower()])
            described = picked
        if len(described) != max(arity, 0) and not (arity == 0 and len(described) <= 1):
            raise BatchInputError(
                f"input '{spec.predicate}': {spec.describe()} has {len(described)} column(s) "
                f"but '{spec.predicate}' has {arity} argument(s)"
            )
        for name, type_name in described:
            ok = (
                self.dialect.is_text_type(type_name)
                if spec.encoding == "clingo"
                else (self.dialect.is_integer_type(type_name) or self.dialect.is_text_type(type_name))
            )
            if not ok:
                want = "text in clingo syntax" if spec.encoding == "clingo" else "integers or text"
                raise BatchInputError(
                    f"input '{spec.predicate}': column {name!r} of {spec.describe()} has type {type_name}; "
                    f"use {want} (e.g. integer cents instead of decimals)"
                )
        cols = ", ".join(f"src.{self.dialect.quote_ident(n)} AS i{i}" for i, (n, _) in enumerate(described))
        return f"SELECT {cols or '1 AS i0'} FROM ({base}) AS src", described

    def arity_of(self, name: str) -> int | None:
        for pred, arity in self.sigs:
            if pred == name:
                return arity
        return None

    # datasets ------------------------------------------------------------------------
    def dataset_where(self, source: DatasetSource, table: DatasetTable) -> str:
        return (
            f"dataset {source.binding!r} ({source.name}@{source.version}) "
            f"predicate '{sig_text(table.signature)}'"
        )

    def dataset_sql(self, source: DatasetSource, table: DatasetTable) -> str:
        """The relation's columns in the stores' layout, checked: per argument ``k`` an
        integer column ``i{k}`` and a text column ``s{k}`` (one of the two set), or a
        0-ary predicate's ``u``."""
        described = {n.lower(): t for n, t in self.backend.describe(table.select())}
        wanted = [(f"i{k}", True) for k in range(table.arity)] + [
            (f"s{k}", False) for k in range(table.arity)
        ]
        for name, integer in wanted:
            type_name = described.get(name)
            fits = type_name is not None and (
                self.dialect.is_integer_type(type_name) if integer else self.dialect.is_text_type(type_name)
            )
            if not fits:
                layout = ", ".join(f"{n} {'integer' if i else 'text'}" for n, i in wanted) or "u"
                raise BatchInputError(
                    f"{self.dataset_where(source, table)}: {table.describe()} is not in the datasets' "
                    f"column layout ({layout}); it has {', '.join(described) or 'no columns'}"
                )
        if table.arity == 0:
            return f"SELECT 1 AS u FROM ({table.select()}) AS src"
        cols = ", ".join(f"src.{c}" for k in range(table.arity) for c in (f"i{k}", f"s{k}"))
        return f"SELECT {cols} FROM ({table.select()}) AS src"

    def _bad(self, k: int, declared: str) -> tuple[str, str]:
        """SQL: argument ``k``'s value does not fit ``declared``, and the value as text."""
        i, s, text = f"i{k}", f"s{k}", self.dialect.text_type
        value = f"COALESCE(CAST({i} AS {text}), {s}, 'null')"
        out_of_range = f"({i} IS NOT NULL AND {i} NOT BETWEEN {INT_MIN} AND {INT_MAX})"
        if declared == "int":
            return f"({i} IS NULL OR {out_of_range})", value
        if declared == "string":
            return f"({s} IS NULL)", value
        if declared == "const":
            return f"({s} IS NULL OR NOT {self.dialect.constant_name_test(s)})", value
        return f"(({i} IS NULL AND {s} IS NULL) OR {out_of_range})", value

    def check_dataset(self, source: DatasetSource, table: DatasetTable, select: str) -> int:
        """One scan: the row count, and every value that does not fit its declared type
        refused (``dataset-type-mismatch`` naming the column, the first bad row and
        value, and how many there are)."""
        sums = "".join(
            f", SUM(CASE WHEN {self._bad(k, t)[0]} THEN 1 ELSE 0 END)" for k, t in enumerate(table.types)
        )
        row = self.backend.rows(f"SELECT COUNT(*){sums} FROM ({select}) AS v")[0]
        self.check_bytes()
        for k, declared in enumerate(table.types):
            count = int(row[1 + k] or 0)
            if not count:
                continue
            bad, value = self._bad(k, declared)
            where = ""
            if table.numbered is not None:
                only = f"{table.where} AND " if table.where else ""
                (first,) = self.backend.rows(
                    f"SELECT {value}, {ROW_COLUMN} FROM {table.numbered} AS v "
                    f"WHERE {only}{bad} ORDER BY {ROW_COLUMN} LIMIT 1"
                )
                where = f"row {int(first[1]) + 1}, "
            else:
                (first,) = self.backend.rows(f"SELECT {value} FROM ({select}) AS v WHERE {bad} LIMIT 1")
            what = {
                "int": "is not a 32-bit integer",
                "string": "is not a string",
                "const": "is not a constant's name (a lowercase letter first, then letters, digits, _ or ')",
            }.get(declared, "is not a 32-bit integer or a string")
            raise DatasetTypeMismatch(
                f"{self.dataset_where(source, table)}, {where}column {k + 1} (declared {declared}): "
                f"{str(first[0])[:60]!r} {what}; {count} value(s) of the column do not fit"
            )
        return int(row[0])

    def dataset_symbols(self, table: DatasetTable, select: str) -> list[str]:
        out: list[str] = []
        for k, declared in enumerate(table.types):
            if declared != "int":
                kind = KIND_CONST if declared == "const" else KIND_STRING
                out.append(f"SELECT {kind} AS kind, s{k} AS text FROM ({select}) AS s WHERE s{k} IS NOT NULL")
        return out

    def dataset_encoded(self, table: DatasetTable, select: str) -> str:
        """The relation as codes: integers as they are, text through the dictionary."""
        joins: list[str] = []
        values: list[str] = []
        for k, declared in enumerate(table.types):
            number = f"CAST(src.i{k} AS {self.dialect.int_type})"
            if declared == "int":
                values.append(number)
                continue
            alias, kind = f"y{k}", KIND_CONST if declared == "const" else KIND_STRING
            join = "JOIN" if declared in ("string", "const") else "LEFT JOIN"
            joins.append(
                f"{join} {self.sym()} AS {alias} ON {alias}.kind = {kind} AND {alias}.text = src.s{k}"
            )
            values.append(f"{alias}.code" if declared != "any" else f"COALESCE({number}, {alias}.code)")
        if not table.types:
            values = ["0"]
        cols = ", ".join(f"{e} AS c{i}" for i, e in enumerate(values))
        return f"SELECT {cols} FROM ({select}) AS src {' '.join(joins)}"

    def declared_consts(self, spec: InputSpec) -> set[int]:
        """The columns a ``%@input`` declaration makes constants: as for JSON case facts
        (docs/engine.md, "Typed inputs"), a typed input's text there is a constant's name."""
        declarations = self.ruleset.declarations
        if spec.encoding != "typed" or declarations is None:
            return set()
        declared = declarations.by_name.get(spec.predicate)
        return {i for i, t in enumerate(declared.types) if t == "const"} if declared is not None else set()

    def check_declared_consts(self, spec: InputSpec, source: str, described: list[tuple[str, str]]) -> None:
        for i in sorted(self.declared_consts(spec)):
            name, type_name = described[i]
            if not self.dialect.is_text_type(type_name):
                continue  # an integer column: the type check of the engine's declarations is not ours
            col = f"i{i}"
            bad = f"{col} IS NOT NULL AND NOT {self.dialect.constant_name_test(col)}"
            count, sample = self.backend.rows(
                f"SELECT COUNT(*), MIN({col}) FROM ({source}) AS s WHERE {bad}"
            )[0]
            if count:
                raise BatchInputError(
                    f"input '{spec.predicate}': {int(count)} value(s) of column {name!r} in "
                    f"{spec.describe()} are not constants' names, which %@input declares "
                    f"(e.g. {str(sample)[:60]!r})"
                )

    def symbol_sources(self, spec: InputSpec, source: str, described: list[tuple[str, str]]) -> list[str]:
        out: list[str] = []
        consts = self.declared_consts(spec)
        for i, (_, type_name) in enumerate(described):
            col = f"i{i}"
            if spec.encoding == "typed":
                if self.dialect.is_text_type(type_name):
                    typed_kind = KIND_CONST if i in consts else KIND_STRING
                    out.append(f"SELECT {typed_kind} AS kind, {col} AS text FROM ({source}) AS s{i}")
            else:
                is_str = self.dialect.string_literal_test(col)
                kind = f"CASE WHEN {is_str} THEN {KIND_STRING} ELSE {KIND_CONST} END"
                text = f"CASE WHEN {is_str} THEN {self.dialect.clingo_string(col)} ELSE {col} END"
                out.append(
                    f"SELECT {kind} AS kind, {text} AS text FROM ({source}) AS s{i} "
                    f"WHERE {col} IS NOT NULL AND NOT {self.dialect.int_literal_test(col)}"
                )
        return out

    def encoded(self, spec: InputSpec, source: str, described: list[tuple[str, str]], arity: int) -> str:
        joins: list[str] = []
        select: list[str] = []
        consts = self.declared_consts(spec)
        for i, (_, type_name) in enumerate(described):
            col = f"src.i{i}"
            if spec.encoding == "typed" and self.dialect.is_integer_type(type_name):
                in_range = f"{col} BETWEEN {INT_MIN} AND {INT_MAX}"
                select.append(f"CASE WHEN {in_range} THEN CAST({col} AS {self.dialect.int_type}) END")
                continue
            alias = f"y{i}"
            if spec.encoding == "typed":
                on = f"{alias}.kind = {KIND_CONST if i in consts else KIND_STRING} AND {alias}.text = {col}"
                joins.append(f"LEFT JOIN {self.sym()} AS {alias} ON {on}")
                select.append(f"{alias}.code")
            else:
                is_str = self.dialect.string_literal_test(col)
                text = f"CASE WHEN {is_str} THEN {self.dialect.clingo_string(col)} ELSE {col} END"
                kind = f"CASE WHEN {is_str} THEN {KIND_STRING} ELSE {KIND_CONST} END"
                joins.append(
                    f"LEFT JOIN {self.sym()} AS {alias} ON {alias}.kind = {kind} AND {alias}.text = {text}"
                )
                number = f"CAST({col} AS {self.dialect.int_type})"
                select.append(
                    f"CASE WHEN {self.dialect.int_literal_test(col)} THEN "
                    f"(CASE WHEN LENGTH({col}) <= 11 AND {number} BETWEEN {INT_MIN} AND {INT_MAX} "
                    f"THEN {number} END) "
                    f"ELSE {alias}.code END"
                )
        if arity == 0:
            select = ["0"]
        cols = ", ".join(f"{e} AS c{i}" for i, e in enumerate(select))
        return f"SELECT {cols} FROM ({source}) AS src {' '.join(joins)}"

    # the run -------------------------------------------------------------------------
    def run(self, outputs: Iterable[Signature] | None) -> Manifest:
        started = datetime.now(UTC)
        t0 = time.monotonic()
        self.backend.prepare()
        loaded: list[tuple[InputSpec, str, list[tuple[str, str]]]] = []
        for spec in self.specs:
            source, described = self.source_sql(spec)
            loaded.append((spec, source, described))
        read: list[tuple[DatasetTable, str]] = []
        absent: dict[Signature, int] = {}
        for dataset, table in self.dataset_of.values():
            if table.may_be_missing and not self.backend.table_exists(table.relation):
                absent[table.signature] = 0  # no table: the version has no rows of it
                continue
            read.append((table, self.dataset_sql(dataset, table)))
        # the dry-run estimate of reading every input, before any work: refused above the cap
        cap = self.limits.max_bytes_scanned
        estimate = 0
        for source in [s for _, s, _ in loaded] + [s for _, s in read]:
            estimate += self.backend.estimate_bytes(source) or 0
            if cap is not None and estimate > cap:
                raise ScannedBytesLimitExceeded(cap, estimate)
        dataset_rows = {
            **absent,
            **{
                table.signature: self.check_dataset(self.dataset_of[table.signature][0], table, select)
                for table, select in read
            },
        }
        for spec, source, described in loaded:
            self.check_declared_consts(spec, source, described)
        self.progress(Progress("load", strata=len(self.ruleset.analysis.strata)))
        codes = self.build_symbols(loaded, read)
        compiled = compile_program(self.ruleset, self.dialect, codes, self.tables)
        input_rows = self.load(compiled, loaded, read, dataset_rows)
        strata_info = self.evaluate(compiled)
        out_sigs = self.output_signatures(outputs)
        written = [self.write_output(sig) for sig in out_sigs]
        if not self.keep_work:
            for view in reversed(self.views):
                self.backend.execute(f"DROP VIEW IF EXISTS {view}")
            for work in reversed(self.created):
                self.backend.execute(f"DROP TABLE IF EXISTS {work}")
        elapsed = time.monotonic() - t0
        self.progress(Progress("done", total_rows=self.derived))
        return Manifest(
            schema=SCHEMA,
            ruleset_hash=self.ruleset.hash,
            dialect=self.dialect.name,
            started_at=started.isoformat(),
            finished_at=datetime.now(UTC).isoformat(),
            elapsed_ms=round(elapsed * 1000, 3),
            inputs={
                spec.predicate: {
                    **spec.to_json(),
                    "rows": input_rows[spec.predicate],
                    "columns": [{"name": n, "type": t} for n, t in described],
                    "snapshot_time": self.backend.snapshot_time(spec.table) if spec.table else None,
                }
                for spec, _, described in loaded
            },
            outputs=written,
            strata=strata_info,
            derived_rows=self.derived,
            bytes_scanned=self.backend.bytes_scanned,
            datasets=[
                {
                    **source.ref(),
                    "predicates": {
                        sig_text(t.signature): {
                            "relation": t.describe(),
                            "types": list(t.types),
                            "rows": dataset_rows[t.signature],
                        }
                        for t in source.tables
                        if t.signature in dataset_rows
                    },
                }
                for source in sorted(self.datasets, key=lambda d: d.binding)
            ],
            extra={"jobs": stats} if (stats := self.backend.job_stats()) is not None else {},
        )

    def build_symbols(
        self,
        loaded: list[tuple[InputSpec, str, list[tuple[str, str]]]],
        read: list[tuple[DatasetTable, str]],
    ) -> dict[tuple[int, str], int]:
        program = sorted(program_symbols(self.ruleset))
        parts: list[str] = []
        if program:
            rows = [(str(kind), self.dialect.string(text)) for kind, text in program]
            parts.append(f"SELECT kind, text FROM {self.dialect.values(rows, ['kind', 'text'])} AS p")
        for spec, source, described in loaded:
            parts.extend(self.symbol_sources(spec, source, described))
        for table, select in read:
            parts.extend(self.dataset_symbols(table, select))
        if parts:
            union = "\nUNION ALL\n".join(parts)
            distinct = f"SELECT DISTINCT kind, text FROM ({union}) AS u WHERE text IS NOT NULL"
        else:
            nothing = self.dialect.values([("0", self.dialect.string(""))], ["kind", "text"])
            distinct = f"SELECT kind, text FROM {nothing} AS p WHERE kind < 0"
        self.create(
            self.sym(),
            f"SELECT CAST(kind AS {self.dialect.int_type}) AS kind, text, "
            f"{SYMBOL_BASE} - 1 + ROW_NUMBER() OVER (ORDER BY kind, text) AS code FROM ({distinct}) AS d",
        )
        codes: dict[tuple[int, str], int] = {}
        if program:
            wanted = ", ".join(self.dialect.string(text) for text in sorted({t for _, t in program}))
            for kind, text, code in self.backend.rows(
                f"SELECT kind, text, code FROM {self.sym()} WHERE text IN ({wanted})"
            ):
                codes[(int(kind), str(text))] = int(code)
        return codes

    def load(
        self,
        compiled: CompiledProgram,
        loaded: list[tuple[InputSpec, str, list[tuple[str, str]]]],
        read: list[tuple[DatasetTable, str]],
        dataset_rows: dict[Signature, int],
    ) -> dict[str, int]:
        # a dataset predicate no rule derives is a view over the dataset's relation, read
        # in place by every rule that joins it; one that rules also derive is copied into
        # its table first, since rounds insert into it
        in_place = {
            table.signature for table, _ in read if table.signature not in self.ruleset.analysis.defined
        }
        for table, select in read:
            sig = table.signature
            if sig in in_place:
                view = self.full(sig)
                self.backend.execute(
                    f"CREATE OR REPLACE VIEW {view} AS {self.dataset_encoded(table, select)}"
                )
                self.views.append(view)
                self.counts[sig] = dataset_rows[sig]
        for sig in self.sigs:
            if sig in in_place:
                continue
            cols = ", ".join(f"{c} {self.dialect.int_type}" for c in columns(sig))
            self.backend.execute(f"CREATE OR REPLACE TABLE {self.full(sig)} ({cols})")
            self.created.append(self.full(sig))
            facts = compiled.facts.get(sig)
            if facts:
                values = self.dialect.values([[str(v) for v in row] for row in sorted(facts)], columns(sig))
                self.backend.execute(f"INSERT INTO {self.full(sig)} SELECT * FROM {values} AS f")
            self.counts[sig] = len(facts or ())
        input_rows: dict[str, int] = {}
        for spec, source, described in loaded:
            arity = self.arity_of(spec.predicate)
            assert arity is not None
            sig = (spec.predicate, arity)
            staging = self.backend.work_table(f"i{self.index[sig]}_{table_stem(sig)}")
            self.create(staging, self.encoded(spec, source, described, arity))
            nulls = ", ".join(f"SUM(CASE WHEN {c} IS NULL THEN 1 ELSE 0 END)" for c in columns(sig))
            row = self.backend.rows(f"SELECT COUNT(*), {nulls} FROM {staging}")[0]
            input_rows[spec.predicate] = int(row[0])
            for (name, type_name), bad in zip(described, row[1:], strict=False):
                if bad:
                    what = (
                        "NULL, or not a 32-bit integer or a clingo term"
                        if spec.encoding == "clingo"
                        else "NULL or outside the 32-bit integer range"
                    )
                    raise BatchInputError(
                        f"input '{spec.predicate}': {int(bad)} value(s) of column {name!r} ({type_name}) "
                        f"in {spec.describe()} are {what}"
                    )
            known = (
                f" {self.dialect.except_distinct()} SELECT * FROM {self.full(sig)}"
                if self.counts[sig]
                else ""
            )
            self.backend.execute(
                f"INSERT INTO {self.full(sig)} SELECT * FROM (SELECT DISTINCT * FROM {staging}{known}) AS x"
            )
            self.counts[sig] = self.count(self.full(sig))
            self.backend.execute(f"DROP TABLE IF EXISTS {staging}")
            self.check_bytes()
        for table, select in read:
            sig = table.signature
            if sig in in_place:
                continue
            encoded = self.dataset_encoded(table, select)
            known = (
                f" {self.dialect.except_distinct()} SELECT * FROM {self.full(sig)}"
                if self.counts[sig]
                else ""
            )
            distinct = f"SELECT DISTINCT * FROM ({encoded}) AS e{known}"
            self.backend.execute(f"INSERT INTO {self.full(sig)} SELECT * FROM ({distinct}) AS x")
            self.counts[sig] = self.count(self.full(sig))
            self.check_bytes()
        return input_rows

    def evaluate(self, compiled: CompiledProgram) -> list[StratumInfo]:
        info: list[StratumInfo] = []
        total = len(compiled.strata)
        for k, stratum in enumerate(compiled.strata, 1):
            names = tuple(sig_text(s) for s in stratum.predicates)
            if not stratum.rules:
                continue
            started = time.monotonic()
            self.progress(Progress("stratum", k, total, predicates=names))
            if self.backend.recursive_cte and _linear_closed(stratum):
                self.recursive_cte(stratum)
                self.progress(Progress("round", k, total, 1, names, 0, self.derived))
                elapsed = round((time.monotonic() - started) * 1000, 3)
                info.append(StratumInfo(list(names), True, 1, elapsed, "recursive-cte"))
                continue
            first = {sig: [r.full for r in rules] for sig, rules in stratum.rules.items()}
            grew = self.round(first, stratum.recursive)
            iteration = 1
            self.progress(Progress("round", k, total, iteration, names, sum(grew.values()), self.derived))
            while stratum.recursive and any(grew.values()):
                if iteration >= self.limits.max_iterations:
                    raise IterationLimitExceeded(self.limits.max_iterations, iteration + 1)
                queries = {
                    sig: [sql for r in rules for dsig, sql in r.deltas if grew.get(dsig)]
                    for sig, rules in stratum.rules.items()
                }
                grew = self.round(queries, True)
                iteration += 1
                self.progress(Progress("round", k, total, iteration, names, sum(grew.values()), self.derived))
            if stratum.recursive:
                for sig in stratum.predicates:
                    self.backend.execute(f"DROP TABLE IF EXISTS {self.delta(sig)}")
            info.append(
                StratumInfo(
                    list(names),
                    stratum.recursive,
                    iteration,
                    round((time.monotonic() - started) * 1000, 3),
                )
            )
        return info

    def recursive_cte(self, stratum: StratumSQL) -> None:
        """The whole stratum as one ``WITH RECURSIVE ... UNION`` (DuckDB): the engine keeps
        the hash table of known facts across iterations instead of rebuilding it for an
        ``EXCEPT`` every round, which is what a Python-driven round costs."""
        (sig,) = stratum.predicates
        rules = stratum.rules[sig]
        cte = "entail_rec"
        names = ", ".join(columns(sig))
        base = [f"SELECT * FROM {self.full(sig)}"] + [f"SELECT * FROM ({r.full}) AS b" for r in rules]
        (step,) = [sql.replace(self.delta(sig), cte) for r in rules for _, sql in r.deltas]
        before = self.counts[sig]
        select = (
            f"WITH RECURSIVE {cte}({names}) AS (\n"
            + "\nUNION\n".join(base)
            + f"\nUNION\nSELECT * FROM ({step}) AS s)\nSELECT * FROM {cte}"
        )
        self.create(self.new(sig), select)
        self.backend.execute(f"DROP TABLE IF EXISTS {self.full(sig)}")
        self.backend.rename(self.new(sig), self.full(sig))
        self.counts[sig] = self.count(self.full(sig))
        self.derived += self.counts[sig] - before
        if self.derived > self.limits.max_rows:
            raise RowLimitExceeded(self.limits.max_rows, self.derived)

    def round(self, queries: Mapping[Signature, list[str]], recursive: bool) -> dict[Signature, int]:
        """Compute every predicate's new facts from ``queries``, then commit them all."""
        grew: dict[Signature, int] = {}
        for sig, sqls in queries.items():
            if not sqls:
                grew[sig] = 0
                continue
            union = "\nUNION ALL\n".join(f"SELECT * FROM ({q}) AS r{i}" for i, q in enumerate(sqls))
            if self.counts[sig]:
                except_ = self.dialect.except_distinct()
                select = f"SELECT * FROM ({union}) AS u {except_} SELECT * FROM {self.full(sig)}"
            else:
                select = f"SELECT DISTINCT * FROM ({union}) AS u"
            self.create(self.new(sig), select)
            grew[sig] = self.count(self.new(sig))
            self.check_bytes()
        for sig, n in grew.items():
            if not queries[sig]:
                if recursive:
                    self.backend.execute(f"DROP TABLE IF EXISTS {self.delta(sig)}")
                continue
            if n:
                self.backend.execute(f"INSERT INTO {self.full(sig)} SELECT * FROM {self.new(sig)}")
                self.counts[sig] += n
                self.derived += n
            if recursive:
                self.backend.execute(f"DROP TABLE IF EXISTS {self.delta(sig)}")
                self.backend.rename(self.new(sig), self.delta(sig))
                if self.delta(sig) not in self.created:
                    self.created.append(self.delta(sig))
            else:
                self.backend.execute(f"DROP TABLE IF EXISTS {self.new(sig)}")
        if self.derived > self.limits.max_rows:
            raise RowLimitExceeded(self.limits.max_rows, self.derived)
        return grew

    # outputs -------------------------------------------------------------------------
    def output_signatures(self, outputs: Iterable[Signature] | None) -> list[Signature]:
        if outputs is not None:
            chosen = list(outputs)
            for sig in chosen:
                if sig not in self.index:
                    raise BatchInputError(f"output '{sig_text(sig)}': the program has no such predicate")
        else:
            prog = self.ruleset.program
            if prog.shows:
                chosen = [(s.predicate, s.arity) for s in prog.shows if (s.predicate, s.arity) in self.index]
            elif prog.show_nothing:
                chosen = []
            else:
                chosen = sorted(self.ruleset.analysis.defined)
        stems: dict[str, Signature] = {}
        for sig in chosen:
            other = stems.setdefault(table_stem(sig).lower(), sig)
            if other != sig:
                raise BatchInputError(
                    f"outputs '{sig_text(other)}' and '{sig_text(sig)}' would share the table name "
                    f"{table_stem(sig)!r} (table names ignore case)"
                )
        return sorted(set(chosen))

    def write_output(self, sig: Signature) -> OutputInfo:
        table = self.backend.dest_table(table_stem(sig))
        full = self.full(sig)
        cols: list[ColumnInfo] = []
        select: list[str] = []
        joins: list[str] = []
        if sig[1] == 0:
            self.create_dest(table, f"SELECT TRUE AS holds FROM {full}")
            return OutputInfo(sig_text(sig), table, [ColumnInfo("holds", "boolean")], self.counts[sig])
        ranges = ", ".join(f"MIN({c}), MAX({c})" for c in columns(sig))
        bounds = self.backend.rows(f"SELECT {ranges} FROM {full}")[0]
        n_const = self.backend.rows(f"SELECT COUNT(*) FROM {self.sym()} WHERE kind = {KIND_CONST}")[0][0]
        first_string = SYMBOL_BASE + int(n_const)
        for i, c in enumerate(columns(sig)):
            lo, hi = bounds[2 * i], bounds[2 * i + 1]
            name = f"c{i}"
            alias = f"y{i}"
            if lo is None or (lo >= INT_MIN and hi <= INT_MAX):
                cols.append(ColumnInfo(name, "integer"))
                select.append(f"CAST(f.{c} AS {self.dialect.int_type}) AS {name}")
                continue
            joins.append(f"LEFT JOIN {self.sym()} AS {alias} ON {alias}.code = f.{c}")
            if lo >= first_string and hi < SUP_CODE:
                cols.append(ColumnInfo(name, "string"))
                select.append(f"{alias}.text AS {name}")
            elif lo >= SYMBOL_BASE and hi < first_string:
                cols.append(ColumnInfo(name, "constant"))
                select.append(f"{alias}.text AS {name}")
            else:
                cols.append(ColumnInfo(name, "term"))
                lit = self.dialect.string
                backslash, quote = chr(92), chr(34)
                escaped = f"REPLACE({alias}.text, {lit(backslash)}, {lit(backslash * 2)})"
                escaped = f"REPLACE({escaped}, {lit(quote)}, {lit(backslash + quote)})"
                escaped = f"REPLACE({escaped}, {lit(chr(10))}, {lit(chr(92) + 'n')})"
                quoted = f"CONCAT({lit(quote)}, {escaped}, {lit(quote)})"
                select.append(
                    f"CASE WHEN f.{c} BETWEEN {INT_MIN} AND {INT_MAX} "
                    f"THEN CAST(f.{c} AS {self.dialect.text_type}) "
                    f"WHEN f.{c} = {INF_CODE} THEN '#inf' WHEN f.{c} = {SUP_CODE} THEN '#sup' "
                    f"WHEN {alias}.kind = {KIND_CONST} THEN {alias}.text ELSE {quoted} END AS {name}"
                )
        self.create_dest(table, f"SELECT {', '.join(select)} FROM {full} AS f {' '.join(joins)}")
        return OutputInfo(sig_text(sig), table, cols, self.counts[sig])

    def create_dest(self, table: str, select: str) -> None:
        self.backend.execute(self.dialect.create_table_as(table, select))


def _linear_closed(stratum: StratumSQL) -> bool:
    """A recursive stratum ``WITH RECURSIVE`` may run: one predicate, one recursive rule
    that reads it once, and no arithmetic or aggregate anywhere in its rules — so no new
    values are invented and the fixpoint is bounded by the inputs' values (the iteration
    limit cannot be checked inside a recursive CTE)."""
    if not stratum.recursive or len(stratum.predicates) != 1:
        return False
    rules = stratum.rules.get(stratum.predicates[0], [])
    if sum(len(r.deltas) for r in rules) != 1:
        return False
    return all(not _invents(r.rule) for r in rules)


def _invents(rule: Rule) -> bool:
    if any(isinstance(lit, Aggregate) for lit in rule.body):
        return True
    return any(isinstance(t, BinOp | Minus) for t in _terms(rule))


def _terms(rule: Rule) -> list[object]:
    out: list[object] = list(rule.head.args)
    for lit in rule.body:
        if isinstance(lit, Positive | Negative):
            out.extend(lit.atom.args)
        elif isinstance(lit, Comparison):
            out.extend((lit.left, lit.right))
    return out


def run_batch(
    ruleset: Ruleset,
    backend: Backend,
    inputs: Mapping[str, Any],
    *,
    outputs: Iterable[Signature] | None = None,
    limits: BatchLimits | None = None,
    progress: ProgressFn | None = None,
    keep_work: bool = False,
    datasets: Sequence[DatasetSource] = (),
) -> Manifest:
    """Evaluate ``ruleset`` over the mapped inputs and the bound dataset versions in the
    warehouse; see the module docstring and :mod:`.datasets`."""
    specs = parse_inputs(inputs)
    run = _Run(
        ruleset, backend, specs, limits or BatchLimits(), progress or (lambda _p: None), keep_work, datasets
    )
    return run.run(outputs)


def parse_signature(text: str) -> Signature:
    """``name/arity`` → signature (for output selections)."""
    m = re.fullmatch(r"(_*[a-z][A-Za-z0-9_']*)/(\d+)", text.strip())
    if m is None:
        raise BatchInputError(f"not a predicate signature (name/arity): {text!r}")
    return m.group(1), int(m.group(2))


__all__ = ["BatchLimits", "Progress", "parse_signature", "run_batch", "width"]
