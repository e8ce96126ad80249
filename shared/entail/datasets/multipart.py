"""A streaming ``multipart/form-data`` reader for dataset uploads.

Each part is written to a file as its bytes arrive (never whole in memory),
counting against the upload's byte cap, so a multipart upload is held to the
same limits as a plain body. Only what uploads need: parts with a
``Content-Disposition: form-data; name=...`` (and optionally ``filename=``)
and a ``Content-Type``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .port import DatasetError

MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 1000
_BOUNDARY = re.compile(r"""boundary=(?:"([^"]{1,200})"|([^\s;,"]{1,200}))""", re.IGNORECASE)
_PARAM = re.compile(r"""(\w+)\*?=(?:"((?:[^"\\]|\\.)*)"|([^\s;]+))""")


@dataclass(frozen=True)
class SpooledPart:
    name: str
    filename: str | None
    content_type: str
    path: Path
    size: int


def boundary_of(content_type: str) -> bytes:
    found = _BOUNDARY.search(content_type)
    if not found:
        raise DatasetError("dataset-malformed-multipart", "the multipart Content-Type names no boundary")
    return (found.group(1) or found.group(2)).encode("latin-1")


def _bad(message: str) -> DatasetError:
    return DatasetError("dataset-malformed-multipart", message)


def _headers(raw: bytes, index: int) -> tuple[str, str | None, str]:
    name: str | None = None
    filename: str | None = None
    content_type = ""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"part {index}: its headers are not UTF-8") from None
    for line in text.split("\r\n"):
        key, colon, value = line.partition(":")
        if not colon:
            raise _bad(f"part {index}: a header line without ':'")
        key = key.strip().lower()
        if key == "content-disposition":
            for param, quoted, bare in _PARAM.findall(value):
                got = quoted.replace('\\"', '"') if quoted else bare
                if param.lower() == "name":
                    name = got
                elif param.lower() == "filename":
                    filename = got
        elif key == "content-type":
            content_type = value.strip()
    if not name:
        raise _bad(f"part {index}: Content-Disposition names no part (name=...)")
    return name, filename, content_type


async def spool_parts(
    chunks: AsyncIterator[bytes], boundary: bytes, work: Path, max_bytes: int
) -> list[SpooledPart]:
    """Split the body at ``boundary`` into files under ``work``; 413 past ``max_bytes``."""
    work.mkdir(parents=True, exist_ok=True)
    delimiter = b"\r\n--" + boundary
    buffer = b"\r\n"  # the first boundary has no CRLF before it
    seen = 0
    parts: list[SpooledPart] = []
    state = "preamble"  # preamble -> after-delimiter -> headers -> body -> ... -> done
    out: IO[bytes] | None = None
    current: tuple[str, str | None, str, Path] | None = None
    size = 0

    def close_part() -> None:
        nonlocal out, current, size
        if out is not None and current is not None:
            out.close()
            parts.append(SpooledPart(current[0], current[1], current[2], current[3], size))
        out, current, size = None, None, 0

    try:
        async for chunk in chunks:
            seen += len(chunk)
            if seen > max_bytes:
                raise DatasetError(
                    "dataset-too-large",
                    f"the upload exceeds ENTAIL_DATASET_MAX_BYTES ({max_bytes} bytes)",
                    status=413,
                )
            buffer += chunk
            while True:
                if state in ("preamble", "body"):
                    at = buffer.find(delimiter)
                    if at < 0:
                        keep = len(delimiter) - 1
                        if len(buffer) > keep:
                            if out is not None:
                                out.write(buffer[:-keep])
                                size += len(buffer) - keep
                            buffer = buffer[-keep:]
                        break
                    if out is not None:
                        out.write(buffer[:at])
                        size += at
                    close_part()
                    buffer = buffer[at + len(delimiter) :]
                    state = "after-delimiter"
                if state == "after-delimiter":
                    if len(buffer) < 2:
                        break
                    if buffer.startswith(b"--"):
                        state = "done"
                        buffer = b""
                        break
                    # transport padding (spaces, tabs) may follow a delimiter
                    line_end = buffer.find(b"\r\n")
                    if line_end < 0:
                        if len(buffer) > 256:
                            raise _bad("a boundary is not followed by a line break")
                        break
                    if buffer[:line_end].strip(b" \t"):
                        raise _bad("a boundary is followed by text on its line")
                    buffer = buffer[line_end + 2 :]
                    state = "headers"
                if state == "headers":
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        if len(buffer) > MAX_HEADER_BYTES:
                            raise _bad(f"part {len(parts) + 1}: headers longer than {MAX_HEADER_BYTES} bytes")
                        break
                    if len(parts) >= MAX_PARTS:
                        raise _bad(f"more than {MAX_PARTS} parts")
                    name, filename, content_type = _headers(buffer[:end], len(parts) + 1)
                    path = work / f"multipart-{len(parts)}.part"
                    out = path.open("wb")
                    current = (name, filename, content_type, path)
                    buffer = buffer[end + 4 :]
                    state = "body"
                    continue
                if state == "done":
                    buffer = b""
                    break
        if state != "done":
            raise _bad("the multipart body ends before its closing boundary")
    finally:
        if out is not None:
            out.close()
    return parts


async def file_chunks(path: Path, size: int = 1 << 16) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk
