"""What the sync and async clients share for datasets: the calls, the upload's
format, and the upload body streamed from a file with progress."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Literal

from ._core import Call, _drop_none, _segment

Format = Literal["ndjson", "csv", "parquet"]
#: called as an upload streams: (bytes sent, facts sent: lines of NDJSON and CSV)
ProgressCallback = Callable[[int, int], None]
CONTENT_TYPES: dict[str, str] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
_SUFFIXES: dict[str, Format] = {".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv", ".parquet": "parquet"}
CHUNK = 1 << 18


def format_of(path: Path, given: str | None) -> Format:
    if given is not None:
        if given not in CONTENT_TYPES:
            raise ValueError(f"unknown format {given!r}: ndjson, csv or parquet")
        return given  # type: ignore[return-value]
    for suffix, fmt in _SUFFIXES.items():
        if path.name.lower().endswith(suffix):
            return fmt
    raise ValueError(f"{path}: name the format (.ndjson, .jsonl, .csv or .parquet, or format=...)")


class Counter:
    """Bytes and facts sent so far, reported to the callback as chunks go out."""

    def __init__(self, callback: ProgressCallback | None, count_lines: bool) -> None:
        self.callback, self.count_lines = callback, count_lines
        self.bytes = self.facts = 0
        self._last = b"\n"

    def sent(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        if self.count_lines and chunk:
            self.facts += chunk.count(b"\n")
            self._last = chunk[-1:]
        if self.callback is not None:
            self.callback(self.bytes, self.facts)

    def finish(self) -> None:
        if self.count_lines and self.bytes and self._last != b"\n":
            self.facts += 1  # a last line without its newline
            if self.callback is not None:
                self.callback(self.bytes, self.facts)


def file_chunks(path: Path, counter: Counter) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            counter.sent(chunk)
            yield chunk
    counter.finish()


async def afile_chunks(path: Path, counter: Counter) -> AsyncIterator[bytes]:
    for chunk in file_chunks(path, counter):
        yield chunk


class CountingFile:
    """A file part of a multipart upload that reports what httpx reads from it."""

    def __init__(self, handle: BinaryIO, counter: Counter) -> None:
        self.handle, self.counter = handle, counter

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.counter.sent(chunk)
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk


def upload_call(
    name: str,
    *,
    content_type: str,
    predicate: str | None,
    header: bool,
    base: str | None,
    tag: str | None,
    description: str,
    upload_id: str | None,
) -> Call:
    params = _drop_none(
        {
            "predicate": predicate,
            "header": "true" if header else None,
            "base": base,
            "tag": tag,
            "description": description or None,
        }
    )
    headers = {"X-Entail-Upload-Id": upload_id or uuid.uuid4().hex}
    if content_type:
        headers["Content-Type"] = content_type
    return Call("POST", f"/v1/datasets/{_segment(name)}", params=params or None, headers=headers)


def dataset_path(selector: str) -> str:
    return f"/v1/datasets/{_segment(selector)}"


def tag_call(name: str, tag: str, version: int) -> Call:
    return Call("PUT", f"{dataset_path(name)}/tags/{_segment(tag)}", json={"version": version})


def diff_params(from_: str | int, to: str | int, sample: int) -> dict[str, Any]:
    return {"from": str(from_), "to": str(to), "sample": sample}


def multipart_files(
    parts: Mapping[str, str | Path], counter: Counter
) -> tuple[list[tuple[str, Any]], list[BinaryIO]]:
    """httpx ``files=`` for one part per predicate (NDJSON parts: any name)."""
    files: list[tuple[str, Any]] = []
    handles: list[BinaryIO] = []
    for predicate, source in parts.items():
        path = Path(source)
        fmt = format_of(path, None)
        handle = path.open("rb")
        handles.append(handle)
        files.append((predicate, (path.name, CountingFile(handle, counter), CONTENT_TYPES[fmt])))
    return files, handles
