"""Upload parsing: streamed parts -> one sorted Parquet file per predicate + the hash.

Every store (local, cloud) turns an upload into the same files the same way:

1. each part's chunks are **spooled** to a file under a work directory, counting
   bytes against the caps (never the whole body in memory);
2. the spool is **parsed**: NDJSON and CSV line by line in Python (so a bad line
   is a 422 naming the part, line and column), Parquet by DuckDB (its column
   types checked); valid rows go, in batches, to one staging CSV per predicate;
3. DuckDB turns each staging file into ``<predicate>.parquet``: distinct rows in
   canonical order (clingo's term order: integers before strings, then by value);
4. the **content hash** ``entail.dataset.v1`` is computed by reading the Parquet
   files back in that order (docs/datasets.md, "Content hash").

Column layout of a predicate file (holds a column mixing ints and strings):
for argument ``k`` (0-based) two columns, ``i{k}`` BIGINT (the value when it is
an int, else NULL) and ``s{k}`` VARCHAR (the value when it is a string, else
NULL); exactly one of the two is set. Ordering by ``i{k} NULLS LAST, s{k}`` per
argument is the canonical order. A predicate of arity 0 has one column ``u``
(always 0) and at most one row.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import duckdb
import orjson

from .port import DatasetError, PredicateStats, Progress, Row, UploadPart, Value

HASH_SCHEME = "entail.dataset.v1"
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
#: a predicate name: a clingo identifier, safe as a file name
PREDICATE_RE = re.compile(r"[a-z][A-Za-z0-9_]{0,63}\Z")
#: a dataset name: as a ruleset name (letters, digits, '_', '.', '-', starting with a letter)
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_DECIMAL = re.compile(r"-?[0-9]{1,10}\Z")
MAX_ARITY = 64
MAX_LINE_BYTES = 1 << 20  # one fact's line: past this a 413 (a hostile single line)
_BATCH = 20_000  # rows staged per write


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a dataset (a path segment of the store), or None."""
    if NAME_RE.match(name) and not _HEX64.match(name):
        return None
    return (
        f"invalid dataset name {name!r}: letters, digits, '_', '.', '-'; start with a letter "
        "(at most 64, and not a 64-digit hex hash, which would read as a version hash)"
    )


def predicate_problem(predicate: str) -> str | None:
    if PREDICATE_RE.match(predicate):
        return None
    return (
        f"invalid predicate name {predicate!r}: "
        "a lower-case letter, then letters, digits and '_' (at most 64)"
    )


@dataclass(frozen=True)
class Limits:
    """Caps of one upload: facts, bytes of this upload, bytes the tenant may still add."""

    max_facts: int = 10_000_000
    max_bytes: int = 2 << 30
    tenant_bytes_left: int | None = None


@dataclass
class IngestResult:
    """The built files: ``directory/<predicate>.parquet`` for each of ``predicates``."""

    directory: Path
    predicates: tuple[PredicateStats, ...]
    hash: str
    facts: int
    bytes: int  # the Parquet files' size


@dataclass
class _Stage:
    """A predicate's staging file: one JSON array of its arguments a line (DuckDB
    reads it back with the column types decided per value)."""

    predicate: str
    arity: int
    path: Path
    handle: IO[bytes]
    pending: list[object] = field(default_factory=list)
    rows: int = 0
    origin: str = ""  # where its arity was first seen (for an arity-mix error)

    def flush(self) -> None:
        if self.pending:
            self.handle.write(b"\n".join(map(orjson.dumps, self.pending)))
            self.handle.write(b"\n")
            self.rows += len(self.pending)
            self.pending.clear()


def _where(part: str, line: int, column: int | None = None) -> str:
    return f"part {part}, line {line}" + (f", column {column}" if column is not None else "")


def _check_values(values: Sequence[object], part: str, line: int) -> None:
    """DatasetError for a value that is not a string or a 32-bit integer."""
    for column, value in enumerate(values, 1):
        kind = type(value)
        if kind is int:
            if not INT_MIN <= value <= INT_MAX:  # type: ignore[operator]
                raise DatasetError(
                    "dataset-value-out-of-range",
                    f"{value} is outside the 32-bit integer range",
                    where=_where(part, line, column),
                )
        elif kind is not str:
            shown = "null" if value is None else type(value).__name__
            raise DatasetError(
                "dataset-value-type",
                f"a value must be an integer or a string, not {shown}",
                where=_where(part, line, column),
            )


class Builder:
    """One upload's work: spool, parse and stage the parts, then build the files.

    Blocking (DuckDB, file IO): the stores run :meth:`parse_spool` and :meth:`build`
    in a thread; :meth:`spool` is the only coroutine (it reads the request body)."""

    def __init__(self, work: Path, limits: Limits, progress: Progress | None = None) -> None:
        self.work = work
        self.limits = limits
        self.progress = progress or Progress()
        self.stages: dict[str, _Stage] = {}
        self.named: set[str] = set()  # predicates this upload names (base carries the others)
        self.parquet_stages: dict[str, list[Path]] = {}  # Parquet parts, copied as they came
        work.mkdir(parents=True, exist_ok=True)
        (work / "out").mkdir(exist_ok=True)

    # -- 1. spool ------------------------------------------------------------
    async def spool(self, part: UploadPart, index: int) -> Path:
        """Write the part's chunks to a file; 413 past the byte caps."""
        path = self.work / f"part-{index}.spool"
        cap = self.limits.max_bytes
        left = self.limits.tenant_bytes_left
        with path.open("wb") as out:
            async for chunk in part.chunks:
                self.progress.bytes += len(chunk)
                if self.progress.bytes > cap:
                    raise DatasetError(
                        "dataset-too-large",
                        f"the upload exceeds ENTAIL_DATASET_MAX_BYTES ({cap} bytes)",
                        status=413,
                    )
                if left is not None and self.progress.bytes > left:
                    raise DatasetError(
                        "dataset-tenant-quota",
                        f"the upload exceeds the tenant's remaining dataset storage ({left} bytes)",
                        status=413,
                    )
                out.write(chunk)
        return path

    # -- 2. parse ------------------------------------------------------------
    def parse_spool(self, part: UploadPart, spool: Path, label: str) -> None:
        if part.format == "ndjson":
            # DuckDB reads a clean file many times faster than Python; anything it does
            # not accept as clean is read line by line for the precise error
            if not self._fast_ndjson(spool, label):
                self._parse_ndjson(spool, label)
        elif part.format == "csv":
            predicate = self._part_predicate(part, label)
            if not self._fast_csv(spool, label, predicate, part.header):
                self._parse_csv(spool, label, predicate, part.header)
        else:
            self._parse_parquet(spool, label, self._part_predicate(part, label))
        spool.unlink(missing_ok=True)

    def _part_predicate(self, part: UploadPart, label: str) -> str:
        if not part.predicate:
            raise DatasetError(
                "dataset-predicate-missing",
                f"a {part.format} part names its predicate (?predicate=P, or the part's name)",
                where=f"part {label}",
            )
        problem = predicate_problem(part.predicate)
        if problem:
            raise DatasetError("dataset-predicate-name", problem, where=f"part {label}")
        return part.predicate

    def _stage(self, predicate: str, arity: int, where: str) -> _Stage:
        stage = self.stages.get(predicate)
        if stage is None:
            if arity > MAX_ARITY:
                raise DatasetError("dataset-arity", f"at most {MAX_ARITY} arguments", where=where)
            path = self.work / f"stage-{len(self.stages)}.ndjson"
            stage = _Stage(predicate, arity, path, path.open("wb"), origin=where)
            self.stages[predicate] = stage
            self.named.add(predicate)
        elif stage.arity != arity:
            raise DatasetError(
                "dataset-arity-mixed",
                f"predicate {predicate!r} has {arity} arguments here but {stage.arity} at {stage.origin}",
                where=where,
            )
        return stage

    def _too_many(self, where: str) -> DatasetError:
        return DatasetError(
            "dataset-too-many-facts",
            f"the upload exceeds ENTAIL_DATASET_MAX_FACTS ({self.limits.max_facts} facts)",
            status=413,
            where=where,
        )

    def _new_stage(self, predicate: object, values: Sequence[object], label: str, line: int) -> _Stage:
        """The stage of a predicate seen with another arity or not yet (the slow path)."""
        if type(predicate) is not str or predicate_problem(predicate):
            raise DatasetError(
                "dataset-predicate-name", predicate_problem(str(predicate)) or "", where=_where(label, line)
            )
        return self._stage(predicate, len(values), _where(label, line))

    def _lines(self, spool: Path, label: str) -> Iterator[tuple[int, bytes]]:
        with spool.open("rb") as f:
            for number, raw in enumerate(f, 1):
                if len(raw) > MAX_LINE_BYTES:
                    raise DatasetError(
                        "dataset-line-too-long",
                        f"a line is longer than {MAX_LINE_BYTES} bytes",
                        status=413,
                        where=_where(label, number),
                    )
                yield number, raw

    def _fast_ndjson(self, spool: Path, label: str) -> bool:
        """Stage a valid NDJSON file with DuckDB: True when done, False when the file
        is not plainly valid (then nothing was staged and Python reads it)."""
        if _needs_python(spool):
            return False
        con = duckdb.connect()  # in memory, spilling to temp_directory past its limit
        try:
            con.execute(f"SET temp_directory = '{sql_path(self.work / 'fast.tmp')}'")
            con.execute("SET preserve_insertion_order = false")
            try:
                con.execute(
                    "CREATE TABLE staged AS SELECT "
                    "CASE WHEN json_type(j) = 'ARRAY' THEN j->>'$[0]' ELSE j->>'$.predicate' END AS pred, "
                    "CASE WHEN json_type(j) = 'ARRAY' THEN (j->'$[*]')[2:] ELSE j->'$.args[*]' END AS args, "
                    "json_type(j) AS kind, "
                    "CASE WHEN json_type(j) = 'OBJECT' THEN list_sort(json_keys(j)) END AS keys, "
                    "CASE WHEN json_type(j) = 'ARRAY' THEN json_type(j, '$[0]') "
                    "ELSE json_type(j, '$.predicate') END AS pred_type, "
                    "CASE WHEN json_type(j) = 'OBJECT' THEN json_type(j, '$.args') END AS args_type, "
                    "strlen(j::VARCHAR) AS size "
                    f"FROM (SELECT json AS j FROM read_ndjson_objects('{sql_path(spool)}', "
                    f"maximum_object_size={MAX_LINE_BYTES}))"
                )
                summary = con.execute(
                    "SELECT pred, min(len(args)), max(len(args)), count(*), bool_and("
                    "kind IN ('ARRAY', 'OBJECT') AND pred_type = 'VARCHAR' AND args IS NOT NULL "
                    "AND (kind = 'ARRAY' OR (keys = ['args', 'predicate'] AND args_type = 'ARRAY')) "
                    "AND coalesce(list_bool_and(list_transform(args, lambda x: json_type(x) = 'VARCHAR' "
                    "OR (json_type(x) IN ('UBIGINT', 'BIGINT') "
                    f"AND TRY_CAST(x AS BIGINT) BETWEEN {INT_MIN} AND {INT_MAX}))), true) "
                    "AND regexp_full_match(pred, '[a-z][A-Za-z0-9_]{0,63}') "
                    f"AND size < {MAX_LINE_BYTES}) "
                    "FROM staged GROUP BY pred ORDER BY pred"
                ).fetchall()
            except duckdb.Error:
                return False
            total = 0
            for pred, low, high, count, valid in summary:
                if not valid or low != high or high > MAX_ARITY:
                    return False
                known = self.stages.get(pred)
                if known is not None and known.arity != high:
                    return False  # another part's arity: Python finds the line
                total += count
            if self.progress.facts + total > self.limits.max_facts:
                raise self._too_many(f"part {label}")
            for pred, arity, _high, _count, _valid in summary:
                stage = self._stage(pred, arity, f"part {label}")
                target = self.work / f"stage-{len(self.stages)}-{pred}-fast.parquet"
                if arity == 0:
                    select = "0 AS u"
                else:
                    select = ", ".join(
                        f"CASE WHEN json_type(args[{k + 1}]) = 'VARCHAR' THEN NULL "
                        f"ELSE args[{k + 1}]::BIGINT END AS i{k}, "
                        f"CASE WHEN json_type(args[{k + 1}]) = 'VARCHAR' THEN args[{k + 1}]->>'$' END AS s{k}"
                        for k in range(arity)
                    )
                con.execute(
                    f"COPY (SELECT {select} FROM staged WHERE pred = ?) "
                    f"TO '{sql_path(target)}' (FORMAT parquet)",
                    [pred],
                )
                self.parquet_stages.setdefault(pred, []).append(target)
                stage.origin = stage.origin or f"part {label}"
            self.progress.facts += total
            return True
        finally:
            con.close()
            (self.work / "fast.duckdb").unlink(missing_ok=True)
            (self.work / "fast.duckdb.wal").unlink(missing_ok=True)
            shutil.rmtree(self.work / "fast.tmp", ignore_errors=True)

    def _fast_csv(self, spool: Path, label: str, predicate: str, header: bool) -> bool:
        """Stage a plain CSV file (no quote, no CR, no NUL: then a line is its cells
        between commas, read alike by DuckDB and Python's csv module) with DuckDB;
        False for anything else, which Python reads line by line."""
        if _has_any(spool, (b'"', b"\r", b"\x00")):
            return False
        arity = _first_row_cells(spool, header)
        if arity is None or arity > MAX_ARITY:
            return False
        known = self.stages.get(predicate)
        if known is not None and known.arity != arity:
            return False
        con = duckdb.connect()
        try:
            con.execute(f"SET temp_directory = '{sql_path(self.work / 'fast.tmp')}'")
            con.execute("SET preserve_insertion_order = false")
            columns = "{" + ", ".join(f"'c{k}': 'VARCHAR'" for k in range(arity)) + "}"
            try:
                con.execute(
                    f"CREATE TABLE staged AS SELECT * FROM read_csv('{sql_path(spool)}', columns={columns}, "
                    f"header={'true' if header else 'false'}, delim=',', quote='', escape='', "
                    "auto_detect=false, strict_mode=true, null_padding=false, allow_quoted_nulls=false, "
                    f"max_line_size={MAX_LINE_BYTES})"
                )
                count = con.execute("SELECT count(*) FROM staged").fetchone()
            except duckdb.Error:
                return False
            rows = int(count[0]) if count else 0
            if self.progress.facts + rows > self.limits.max_facts:
                raise self._too_many(f"part {label}")
            self._stage(predicate, arity, f"part {label}")

            def is_int(k: int) -> str:  # a decimal in the 32-bit range, as the Python path decides
                return (
                    f"(regexp_full_match(coalesce(c{k}, ''), '-?[0-9]{{1,10}}') "
                    f"AND TRY_CAST(c{k} AS BIGINT) BETWEEN {INT_MIN} AND {INT_MAX})"
                )

            select = ", ".join(
                f"CASE WHEN {is_int(k)} THEN c{k}::BIGINT END AS i{k}, "
                f"CASE WHEN {is_int(k)} THEN NULL ELSE coalesce(c{k}, '') END AS s{k}"
                for k in range(arity)
            )
            target = self.work / f"stage-{len(self.stages)}-{predicate}-csv.parquet"
            con.execute(f"COPY (SELECT {select} FROM staged) TO '{sql_path(target)}' (FORMAT parquet)")
            self.parquet_stages.setdefault(predicate, []).append(target)
            self.progress.facts += rows
            return True
        finally:
            con.close()
            shutil.rmtree(self.work / "fast.tmp", ignore_errors=True)

    def _parse_ndjson(self, spool: Path, label: str) -> None:
        # the hot loop: one orjson parse, type checks inline, rows staged in batches
        loads = orjson.loads
        stages = self.stages
        low, high = INT_MIN, INT_MAX
        facts = self.progress.facts
        cap = self.limits.max_facts
        try:
            for number, raw in self._lines(spool, label):
                try:
                    fact = loads(raw)
                except orjson.JSONDecodeError as e:
                    if not raw.strip():
                        continue
                    raise DatasetError(
                        "dataset-malformed-line",
                        f"not a JSON value: {e.msg}",
                        where=_where(label, number, _json_column(e, raw)),
                    ) from None
                kind = type(fact)
                if kind is list and fact and type(fact[0]) is str:
                    predicate, values = fact[0], fact[1:]
                elif kind is dict and "predicate" in fact:
                    predicate, values = fact["predicate"], fact.get("args", [])
                    if len(fact) > 2 or (len(fact) == 2 and "args" not in fact) or type(values) is not list:
                        raise DatasetError(
                            "dataset-malformed-line",
                            'a fact is {"predicate": "p", "args": [...]} with nothing else',
                            where=_where(label, number),
                        )
                else:
                    raise DatasetError(
                        "dataset-malformed-line",
                        'a fact is {"predicate": "p", "args": [...]} or ["p", arg, ...]',
                        where=_where(label, number),
                    )
                stage = stages.get(predicate)
                if stage is None or stage.arity != len(values):
                    stage = self._new_stage(predicate, values, label, number)
                for value in values:
                    t = type(value)
                    if t is str or (t is int and low <= value <= high):
                        continue
                    _check_values(values, label, number)
                facts += 1
                if facts > cap:
                    raise self._too_many(_where(label, number))
                stage.pending.append(values)
                if len(stage.pending) >= _BATCH:
                    stage.flush()
        finally:
            self.progress.facts = facts

    def _parse_csv(self, spool: Path, label: str, predicate: str, header: bool) -> None:
        decimal = _DECIMAL.match
        # the csv module reads text: decode line by line (a bad byte is this line's error)
        number = 0

        def text() -> Iterator[str]:
            nonlocal number
            for number, raw in self._lines(spool, label):
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DatasetError(
                        "dataset-bad-utf8", f"not UTF-8: {e.reason}", where=_where(label, number)
                    ) from None

        reader = csv.reader(text(), strict=True)
        stage: _Stage | None = None
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise DatasetError(
                    "dataset-malformed-line", f"bad CSV: {e}", where=_where(label, reader.line_num)
                ) from None
            line = reader.line_num
            if header and line == 1:
                continue
            if not cells:
                continue
            if stage is None:
                stage = self._stage(predicate, len(cells), _where(label, line))
            elif len(cells) != stage.arity:
                raise DatasetError(
                    "dataset-arity-mixed",
                    f"{len(cells)} cells here but {stage.arity} at {stage.origin}",
                    where=_where(label, line),
                )
            row = [n if decimal(cell) and INT_MIN <= (n := int(cell)) <= INT_MAX else cell for cell in cells]
            self.progress.facts += 1
            if self.progress.facts > self.limits.max_facts:
                raise self._too_many(_where(label, line))
            stage.pending.append(row)
            if len(stage.pending) >= _BATCH:
                stage.flush()

    def _parse_parquet(self, spool: Path, label: str, predicate: str) -> None:
        con = duckdb.connect()
        try:
            try:
                described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(spool)]).fetchall()
            except duckdb.Error as e:
                raise DatasetError(
                    "dataset-malformed-parquet",
                    f"not a Parquet file: {_first_line(e)}",
                    where=f"part {label}",
                ) from None
            selects: list[str] = []
            for column, (name, kind, *_rest) in enumerate(described, 1):
                quoted = '"' + str(name).replace('"', '""') + '"'
                upper = str(kind).upper()
                if upper in {
                    "TINYINT",
                    "SMALLINT",
                    "INTEGER",
                    "BIGINT",
                    "UTINYINT",
                    "USMALLINT",
                    "UINTEGER",
                    "UBIGINT",
                    "HUGEINT",
                }:
                    bad = con.execute(
                        f"SELECT count(*) FROM read_parquet(?) WHERE {quoted} IS NULL "
                        f"OR {quoted} NOT BETWEEN {INT_MIN} AND {INT_MAX}",
                        [str(spool)],
                    ).fetchone()
                    if bad and bad[0]:
                        raise DatasetError(
                            "dataset-value-out-of-range",
                            f"column {name!r} has {bad[0]} nulls or values outside the 32-bit range",
                            where=f"part {label}, column {column}",
                        )
                    selects += [f"CAST({quoted} AS BIGINT)", "NULL::VARCHAR"]
                elif upper == "VARCHAR":
                    bad = con.execute(
                        f"SELECT count(*) FROM read_parquet(?) WHERE {quoted} IS NULL", [str(spool)]
                    ).fetchone()
                    if bad and bad[0]:
                        raise DatasetError(
                            "dataset-value-type",
                            f"column {name!r} has {bad[0]} nulls",
                            where=f"part {label}, column {column}",
                        )
                    selects += ["NULL::BIGINT", quoted]
                else:
                    raise DatasetError(
                        "dataset-value-type",
                        f"column {name!r} is {kind}: integer and string columns only",
                        where=f"part {label}, column {column}",
                    )
            arity = len(described)
            stage = self._stage(predicate, arity, f"part {label}")
            count = con.execute("SELECT count(*) FROM read_parquet(?)", [str(spool)]).fetchone()
            rows = int(count[0]) if count else 0
            self.progress.facts += rows
            if self.progress.facts > self.limits.max_facts:
                raise DatasetError(
                    "dataset-too-many-facts",
                    f"the upload exceeds ENTAIL_DATASET_MAX_FACTS ({self.limits.max_facts} facts)",
                    status=413,
                    where=f"part {label}",
                )
            # a Parquet part goes straight to its own Parquet stage (no CSV round trip)
            target = self.work / f"stage-{len(self.stages)}-{predicate}.parquet"
            columns = ", ".join(f"{s} AS {'i' if n % 2 == 0 else 's'}{n // 2}" for n, s in enumerate(selects))
            con.execute(
                f"COPY (SELECT {columns or '0 AS u'} FROM read_parquet(?)) "
                f"TO '{sql_path(target)}' (FORMAT parquet)",
                [str(spool)],
            )
            stage.rows += rows
            self.parquet_stages.setdefault(predicate, []).append(target)
        finally:
            con.close()

    # -- 3. build ------------------------------------------------------------
    def build(self, carried: Sequence[tuple[PredicateStats, Path]] = ()) -> IngestResult:
        """Sort, deduplicate and write each predicate's Parquet file; hash them.
        ``carried``: predicates of a base version this upload does not name, with
        their (already canonical) files, copied as they are."""
        out = self.work / "out"
        con = duckdb.connect()
        con.execute("SET preserve_insertion_order = true")
        stats: dict[str, PredicateStats] = {}
        try:
            for stage in self.stages.values():
                stage.flush()
                stage.handle.close()
                sources = []
                columns = columns_of(stage.arity)
                if stage.rows:
                    sources.append(_staged_sql(stage.path, stage.arity))
                for extra in self.parquet_stages.get(stage.predicate, []):
                    sources.append(f"SELECT {', '.join(columns)} FROM read_parquet('{sql_path(extra)}')")
                target = out / f"{stage.predicate}.parquet"
                union = " UNION ALL ".join(sources) if sources else f"SELECT {', '.join(columns)} WHERE false"
                con.execute(
                    f"COPY (SELECT DISTINCT * FROM ({union}) ORDER BY {order_by(stage.arity)}) "
                    f"TO '{sql_path(target)}' (FORMAT parquet, COMPRESSION zstd)"
                )
                stage.path.unlink(missing_ok=True)
                count = con.execute(f"SELECT count(*) FROM read_parquet('{sql_path(target)}')").fetchone()
                stats[stage.predicate] = PredicateStats(
                    stage.predicate, stage.arity, int(count[0]) if count else 0
                )
            for carried_stats, path in carried:
                if carried_stats.name in stats:
                    continue
                shutil.copyfile(path, out / f"{carried_stats.name}.parquet")
                stats[carried_stats.name] = carried_stats
        finally:
            con.close()
        ordered = tuple(sorted(stats.values(), key=lambda s: (s.name, s.arity)))
        digest = content_hash(out, ordered)
        size = sum((out / f"{s.name}.parquet").stat().st_size for s in ordered)
        return IngestResult(out, ordered, digest, sum(s.rows for s in ordered), size)

    def close(self) -> None:
        for stage in self.stages.values():
            if not stage.handle.closed:
                stage.handle.close()
        shutil.rmtree(self.work, ignore_errors=True)


# escapes DuckDB and orjson may read differently (NUL, UTF-16 surrogates): Python reads them
_PYTHON_ONLY = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _needs_python(spool: Path) -> bool:
    with spool.open("rb") as f:
        tail = b""
        while chunk := f.read(1 << 20):
            if _PYTHON_ONLY.search(tail + chunk):
                return True
            tail = chunk[-8:]
    return False


def _has_any(spool: Path, needles: Sequence[bytes]) -> bool:
    with spool.open("rb") as f:
        while chunk := f.read(1 << 20):
            if any(n in chunk for n in needles):
                return True
    return False


def _first_row_cells(spool: Path, header: bool) -> int | None:
    """The number of cells of the first data line (None: no data line, or not UTF-8)."""
    with spool.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if (header and number == 1) or not raw.strip(b"\n"):
                continue
            if len(raw) > MAX_LINE_BYTES:
                return None
            return raw.count(b",") + 1
    return None


def _json_column(error: orjson.JSONDecodeError, raw: bytes) -> int:
    """The 1-based column (in characters) of a JSON error on one line: at most just
    past the line's last character (an error at the end of the data)."""
    text = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
    return min(max(error.pos, 0), len(text)) + 1


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__


def sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def columns_of(arity: int) -> list[str]:
    if arity == 0:
        return ["u"]
    return [c for k in range(arity) for c in (f"i{k}", f"s{k}")]


def order_by(arity: int) -> str:
    if arity == 0:
        return "u"
    return ", ".join(f"i{k} ASC NULLS LAST, s{k} ASC NULLS FIRST" for k in range(arity))


def _staged_sql(path: Path, arity: int) -> str:
    """A staging file's rows in the column layout (each value's JSON type decides
    its column)."""
    source = f"(SELECT json AS j FROM read_ndjson_objects('{sql_path(path)}', maximum_object_size=4194304))"
    if arity == 0:
        return f"SELECT 0 AS u FROM {source}"
    select = ", ".join(
        f"CASE WHEN json_type(j, '$[{k}]') = 'VARCHAR' THEN NULL ELSE (j->>'$[{k}]')::BIGINT END AS i{k}, "
        f"CASE WHEN json_type(j, '$[{k}]') = 'VARCHAR' THEN j->>'$[{k}]' END AS s{k}"
        for k in range(arity)
    )
    return f"SELECT {select} FROM {source}"


def rows_of(path: Path, arity: int, *, offset: int = 0, limit: int | None = None) -> Iterator[Row]:
    """A predicate file's rows in canonical (file) order, as tuples of int | str."""
    con = duckdb.connect()
    try:
        source = f"read_parquet('{sql_path(path)}')"
        window = ""
        if limit is not None:
            window = f" LIMIT {int(limit)} OFFSET {int(offset)}"
        elif offset:
            window = f" OFFSET {int(offset)}"
        if arity == 0:
            count = con.execute(f"SELECT count(*) FROM (SELECT u FROM {source}{window})").fetchone()
            yield from [()] * (int(count[0]) if count else 0)
            return
        # a column of one type only (the common case) is read as it is: DuckDB's rows are
        # then the tuples, with no Python per row
        counts = con.execute(
            "SELECT " + ", ".join(f"count(i{k}), count(s{k})" for k in range(arity)) + f" FROM {source}"
        ).fetchone()
        assert counts is not None
        pure = [
            f"i{k}" if not counts[2 * k + 1] else f"s{k}" if not counts[2 * k] else None for k in range(arity)
        ]
        if all(pure):
            cursor = con.execute(f"SELECT {', '.join(c for c in pure if c)} FROM {source}{window}")
            while batch := cursor.fetchmany(100_000):
                yield from batch
            return
        cursor = con.execute(f"SELECT {', '.join(columns_of(arity))} FROM {source}{window}")
        while batch := cursor.fetchmany(50_000):
            for record in batch:
                yield tuple(
                    record[j] if record[j] is not None else record[j + 1] for j in range(0, 2 * arity, 2)
                )
    finally:
        con.close()


def _line_sql(arity: int) -> str:
    """A row's hash line in SQL: its JSON array, no spaces (``to_json`` escapes strings)."""
    if arity == 0:
        return "'[]'"
    cells = " || ',' || ".join(f"coalesce(i{k}::VARCHAR, to_json(s{k})::VARCHAR)" for k in range(arity))
    return f"'[' || {cells} || ']'"


def content_hash(directory: Path, predicates: Sequence[PredicateStats]) -> str:
    """``entail.dataset.v1`` over the predicate files of ``directory`` (canonical order).

    DuckDB writes the lines, in chunks of 64k rows joined in file order, so the
    hash costs no Python per row (a 1M-row predicate in well under a second)."""
    digest = hashlib.sha256()
    digest.update(HASH_SCHEME.encode() + b"\n")
    con = duckdb.connect()
    try:
        for stats in sorted(predicates, key=lambda s: (s.name, s.arity)):
            digest.update(f"#predicate {stats.name}/{stats.arity}\n".encode())
            path = sql_path(directory / f"{stats.name}.parquet")
            cursor = con.execute(
                f"SELECT string_agg({_line_sql(stats.arity)}, chr(10) ORDER BY file_row_number) "
                f"FROM read_parquet('{path}', file_row_number=true) "
                "GROUP BY file_row_number // 65536 ORDER BY file_row_number // 65536"
            )
            while True:
                batch = cursor.fetchmany(8)
                if not batch:
                    break
                for (chunk,) in batch:
                    digest.update(chunk.encode())
                    digest.update(b"\n")
    finally:
        con.close()
    return digest.hexdigest()


def _json_line(row: Sequence[Value]) -> bytes:
    """The reference encoding of a hash line: compact JSON, UTF-8, control characters
    without a short escape as ``\\u00XX`` in upper-case hex (as DuckDB's ``to_json``)."""
    text = orjson.dumps(list(row))
    if b"\\u00" not in text:
        return text
    parts = []
    for value in row:
        if isinstance(value, int):
            parts.append(str(value))
            continue
        encoded = orjson.dumps(value).decode()
        # only an escape is upper-cased, never the text "\\u00.." (an escaped backslash)
        parts.append(re.sub(r"(\\+)u00([01][0-9a-f])", _upper_escape, encoded))
    return ("[" + ",".join(parts) + "]").encode()


def _upper_escape(match: re.Match[str]) -> str:
    slashes = match.group(1)
    if len(slashes) % 2 == 0:
        return match.group(0)
    return f"{slashes}u00{match.group(2).upper()}"


def canonical_hash(facts: Mapping[tuple[str, int], Sequence[Row]]) -> str:
    """The same hash over facts in memory: the definition (tests, small datasets)."""
    digest = hashlib.sha256()
    digest.update(HASH_SCHEME.encode() + b"\n")
    for (name, arity), rows in sorted(facts.items()):
        digest.update(f"#predicate {name}/{arity}\n".encode())
        for row in sorted(set(map(tuple, rows)), key=canonical_key):
            digest.update(_json_line(row) + b"\n")
    return digest.hexdigest()


def canonical_key(row: Sequence[Value]) -> tuple[tuple[int, int, str], ...]:
    """Clingo's term order on a row: integers before strings, then by value."""
    return tuple((0, v, "") if isinstance(v, int) else (1, 0, v) for v in row)
