"""Upload parsing without a service: both NDJSON paths (DuckDB's and Python's) build
the same files and hash, the hash is its definition's, and hostile input is a precise
DatasetError (part, line, column), never a crash."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from entail.datasets.ingest import Builder, IngestResult, Limits, canonical_hash, rows_of
from entail.datasets.multipart import boundary_of, spool_parts
from entail.datasets.port import DatasetError, UploadPart

WEIRD = ["", 'é,"x\n', "\x0b\\u000b", "\\\x1f", "a\\u001fb", "😀", "\x01", "-0", "007", "Z", "a b", "\t"]


async def _chunks(data: bytes, size: int = 5) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def build(
    tmp: Path, parts: list[tuple[str, bytes, str | None]], *, python: bool = False, **limits: int
) -> IngestResult:
    async def run() -> IngestResult:
        builder = Builder(tmp / "work", Limits(**limits))
        if python:
            builder._fast_ndjson = lambda spool, label: False  # type: ignore[method-assign]
        for index, (fmt, data, predicate) in enumerate(parts):
            part = UploadPart(fmt, _chunks(data), predicate=predicate)  # type: ignore[arg-type]
            spool = await builder.spool(part, index)
            builder.parse_spool(part, spool, predicate or "body")
        return builder.build()

    return asyncio.run(run())


def random_facts(seed: int, n: int) -> tuple[bytes, dict[tuple[str, int], list[tuple[int | str, ...]]]]:
    rnd = random.Random(seed)
    facts: dict[tuple[str, int], list[tuple[int | str, ...]]] = {}
    lines = []
    for _ in range(n):
        name, arity = rnd.choice([("edge", 2), ("node", 1), ("flag", 0), ("w", 3)])
        choices: list[int | str] = [
            rnd.randrange(-5, 5),
            -(2**31),
            2**31 - 1,
            rnd.choice(WEIRD),
            f"s{rnd.randrange(9)}",
        ]
        row: tuple[int | str, ...] = tuple(rnd.choice(choices) for _ in range(arity))
        facts.setdefault((name, arity), []).append(row)
        if rnd.random() < 0.5:
            lines.append(orjson.dumps([name, *row]))
        else:
            lines.append(orjson.dumps({"predicate": name, "args": list(row)}))
    return b"\n".join(lines) + b"\n", facts


def test_duckdb_reads_a_valid_file(tmp_path: Path) -> None:
    # the fast path must not fall back silently on valid input (it did once: a SQL typo)
    data, _ = random_facts(7, 200)
    spool = tmp_path / "body.spool"
    spool.write_bytes(data)
    builder = Builder(tmp_path / "work", Limits())
    assert builder._fast_ndjson(spool, "body")
    assert not builder._fast_ndjson(_write(tmp_path / "bad.spool", b'["p", 1.5]\n'), "body")
    assert not builder._fast_ndjson(_write(tmp_path / "nul.spool", b'["p", "\\u0000"]\n'), "body")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_paths_build_the_defined_hash(tmp_path: Path, seed: int) -> None:
    data, facts = random_facts(seed, 400)
    fast = build(tmp_path / "fast", [("ndjson", data, None)])
    slow = build(tmp_path / "slow", [("ndjson", data, None)], python=True)
    assert fast.hash == slow.hash == canonical_hash(facts)
    for stats in fast.predicates:
        expected = sorted(
            set(facts[(stats.name, stats.arity)]), key=lambda r: [(isinstance(v, str), v) for v in r]
        )
        assert list(rows_of(fast.directory / f"{stats.name}.parquet", stats.arity)) == expected


def test_csv_cells_and_quoting(tmp_path: Path) -> None:
    data = b'a,1\r\n"b,c",-2147483648\n"say ""hi""",2147483648\n" 7",007\n'
    result = build(tmp_path, [("csv", data, "t")])
    rows = list(rows_of(result.directory / "t.parquet", 2))
    # a cell is an int only when it is a decimal in the 32-bit range
    assert rows == [(" 7", 7), ("a", 1), ("b,c", -(2**31)), ('say "hi"', "2147483648")]


def where(tmp: Path, parts: list[tuple[str, bytes, str | None]], **limits: Any) -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        build(tmp, parts, **limits)
    return caught.value


def test_hostile_input_names_the_place(tmp_path: Path) -> None:
    e = where(tmp_path / "1", [("ndjson", b'["p", 1]\n["p", "x", 2]\n', None)])
    assert (e.code, e.where) == ("dataset-arity-mixed", "part body, line 2")
    e = where(tmp_path / "2", [("ndjson", b'["p", 1]\n["q", {"a": [1]}]\n', None)])
    assert (e.code, e.where) == ("dataset-value-type", "part body, line 2, column 1")
    e = where(tmp_path / "3", [("ndjson", b'["p", 1]\n["p", "\\ud800"]\n', None)])
    assert (e.code, e.where) == ("dataset-malformed-line", "part body, line 2, column 8")
    e = where(tmp_path / "4", [("ndjson", b'["p", 1]\n["p", 99999999999]\n', None)])
    assert (e.code, e.where) == ("dataset-value-out-of-range", "part body, line 2, column 1")
    e = where(tmp_path / "5", [("csv", b"1,2\n\xc3\x28,1\n", "e")])
    assert (e.code, e.where) == ("dataset-bad-utf8", "part e, line 2")
    e = where(tmp_path / "6", [("csv", b"1,2\n", "e"), ("ndjson", b'["e", 1]\n', None)])
    assert e.code == "dataset-arity-mixed" and "part e" in str(e)
    e = where(tmp_path / "7", [("parquet", b"PAR1garbagePAR1", "e")])
    assert e.code == "dataset-malformed-parquet"
    e = where(tmp_path / "8", [("ndjson", b'["p", 1]\n["p", 2]\n["p", 3]\n', None)], max_facts=2)
    assert (e.code, e.status) == ("dataset-too-many-facts", 413)
    e = where(tmp_path / "9", [("ndjson", b'["p", 1]\n' * 10, None)], max_bytes=40)
    assert (e.code, e.status) == ("dataset-too-large", 413)
    e = where(tmp_path / "10", [("csv", b"1\n", "Bad-Name")])
    assert e.code == "dataset-predicate-name"
    e = where(tmp_path / "11", [("ndjson", b'["p", "\\u0000"]\n["p", 1.0]\n', None)])
    assert (e.code, e.where) == ("dataset-value-type", "part body, line 2, column 1")


def test_multipart_reader_streams_parts_to_files(tmp_path: Path) -> None:
    body = (
        b"preamble\r\n--XyZ\r\n"
        b'Content-Disposition: form-data; name="edge"; filename="edge.csv"\r\nContent-Type: text/csv\r\n\r\n'
        b"1,2\r\n3,4\r\n"
        b"\r\n--XyZ  \r\n"
        b'Content-Disposition: form-data; name="n"; filename="n.ndjson"\r\n\r\n'
        b'["n", "--XyZ"]\n'
        b"\r\n--XyZ--\r\nepilogue"
    )
    for size in (1, 3, 64, 4096):

        async def run(size: int = size) -> list[tuple[str, str | None, str, bytes]]:
            parts = await spool_parts(
                _chunks(body, size),
                boundary_of('multipart/form-data; boundary="XyZ"'),
                tmp_path / str(size),
                10_000,
            )
            return [(p.name, p.filename, p.content_type, p.path.read_bytes()) for p in parts]

        assert asyncio.run(run()) == [
            ("edge", "edge.csv", "text/csv", b"1,2\r\n3,4\r\n"),
            ("n", "n.ndjson", "", b'["n", "--XyZ"]\n'),
        ]
    with pytest.raises(DatasetError) as unterminated:
        asyncio.run(spool_parts(_chunks(body[:-20]), b"XyZ", tmp_path / "u", 10_000))
    assert unterminated.value.code == "dataset-malformed-multipart"
    with pytest.raises(DatasetError) as large:
        asyncio.run(spool_parts(_chunks(body), b"XyZ", tmp_path / "l", 50))
    assert large.value.status == 413
    with pytest.raises(DatasetError):
        boundary_of("multipart/form-data")


def test_both_csv_paths_agree(tmp_path: Path) -> None:
    rnd = random.Random(5)
    cells = ["", "-0", "007", "2147483648", "-2147483648", "x y", "é", "a'b", "1e3", " 5", "+5", "Z"]
    lines = [",".join(rnd.choice([*cells, str(rnd.randrange(-9, 9))]) for _ in range(3)) for _ in range(300)]
    data = ("h1,h2,h3\n" + "\n".join(lines) + "\n\n").encode()

    def run(fast: bool, where: Path) -> IngestResult:
        async def go() -> IngestResult:
            builder = Builder(where, Limits())
            if not fast:
                builder._fast_csv = lambda *args: False  # type: ignore[method-assign]
            part = UploadPart("csv", _chunks(data, 64), predicate="t", header=True)
            spool = await builder.spool(part, 0)
            if fast:
                assert builder._fast_csv(_write(where / "copy.csv", data), "t", "t", True)
                builder.stages.clear()
                builder.parquet_stages.clear()
                builder.progress.facts = 0
            builder.parse_spool(part, spool, "t")
            return builder.build()

        return asyncio.run(go())

    fast, slow = run(True, tmp_path / "fast"), run(False, tmp_path / "slow")
    assert fast.hash == slow.hash and fast.facts == slow.facts
    # a quote, a CR or a short line is Python's to read (and to report)
    builder = Builder(tmp_path / "other", Limits())
    assert not builder._fast_csv(_write(tmp_path / "q.csv", b'a,"b"\n'), "t", "t", False)
    assert not builder._fast_csv(_write(tmp_path / "r.csv", b"a,b\r\n"), "t", "t", False)
    assert not builder._fast_csv(_write(tmp_path / "s.csv", b"a,b\nc\n"), "t", "t", False)
