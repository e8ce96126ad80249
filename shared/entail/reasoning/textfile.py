"""Reading files from users: a size cap before anything is parsed, strict UTF-8, bounded JSON.

Every file the ``entail`` command reads (programs, ``.lp`` and JSON facts,
YAML/JSON test files) goes through here, so ``/dev/zero`` stops after the cap
instead of filling memory, a stray Latin-1 byte is reported with its byte
offset instead of a ``UnicodeDecodeError`` traceback, and a JSON document
nested 10,000 deep is refused with the JSON pointer of the deepest value
instead of a ``RecursionError``.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from pathlib import Path
from typing import Any

from .errors import EntailError, LimitExceeded

FACTS_FILE_BYTES = 64 * 1024 * 1024
"""Cap on one facts file: above the 1M-fact input limit written as JSON (~25 bytes a fact)."""
TEST_FILE_BYTES = 16 * 1024 * 1024
"""Cap on one YAML/JSON test file."""
JSON_MAX_DEPTH = 64
"""Deepest nesting accepted in a JSON file (facts need 3, test files a few more)."""

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "UTF-32 (little-endian byte-order mark)"),
    (codecs.BOM_UTF32_BE, "UTF-32 (big-endian byte-order mark)"),
    (codecs.BOM_UTF8, "UTF-8 with a byte-order mark"),
    (codecs.BOM_UTF16_LE, "UTF-16 (little-endian byte-order mark)"),
    (codecs.BOM_UTF16_BE, "UTF-16 (big-endian byte-order mark)"),
)


class FileReadError(EntailError):
    """A file that cannot be read or decoded; the message names the file and the place."""

    code = "unreadable-file"

    def __init__(self, path: str, message: str, *, offset: int | None = None) -> None:
        self.path = path
        self.offset = offset
        super().__init__(f"{path}: {message}")


class FileSizeLimitExceeded(LimitExceeded):
    """A file larger than its cap; reading stopped one byte past the cap."""

    code = "limit-file-size"
    what = "file size"
    unit = "bytes"

    def __init__(self, path: str, limit: int, value: int, *, exact: bool) -> None:
        super().__init__(limit, value)
        self.path = path
        size = f"{value} bytes" if exact else f"more than {limit} bytes"
        self.args = (f"{path}: file size limit exceeded: {size}, limit is {limit} bytes",)


class EncodingError(FileReadError):
    """Bytes that are not UTF-8: ``line`` and ``column`` (1-based, in characters) locate them."""

    code = "invalid-encoding"

    def __init__(self, path: str, message: str, offset: int, line: int, column: int) -> None:
        super().__init__(path, message, offset=offset)
        self.line = line
        self.column = column
        self.reason = message


class JsonDepthError(FileReadError):
    """A JSON document nested deeper than ``JSON_MAX_DEPTH``; ``pointer`` is where."""

    code = "json-too-deep"

    def __init__(self, path: str, limit: int, pointer: str | None) -> None:
        where = f"{pointer or '/'}: JSON nested" if pointer is not None else "brackets nested"
        super().__init__(path, f"{where} deeper than {limit} levels")
        self.pointer = pointer
        self.limit = limit


def read_capped(path: str | Path, cap: int) -> bytes:
    """At most ``cap`` bytes of ``path``; raises FileSizeLimitExceeded past it, FileReadError on OS errors.

    Reads ``cap + 1`` bytes at most, whatever the file is (a device, a pipe, a
    file that grows), so memory stays bounded by the cap.
    """
    name = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
            if len(data) > cap:
                try:
                    st = os.fstat(handle.fileno())
                    regular = st.st_mode & 0o170000 == 0o100000
                except OSError:
                    regular = False
                size = st.st_size if regular and st.st_size > cap else cap + 1
                raise FileSizeLimitExceeded(name, cap, size, exact=regular and st.st_size > cap)
    except OSError as exc:
        raise FileReadError(name, exc.strerror or str(exc)) from None
    return data


def decode_utf8(data: bytes, path: str) -> str:
    """Strict UTF-8 (no BOM, no encoded surrogates); EncodingError names the first bad byte."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise EncodingError(
                path, f"the file is {name}; save it as UTF-8 without a byte-order mark", 0, 1, 1
            )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start
        line_start = data.rfind(b"\n", 0, offset) + 1
        line = data.count(b"\n", 0, offset) + 1
        column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
        bad = data[offset : min(exc.end, offset + 4)].hex(" ")
        guess = _utf16_guess(data)
        hint = f" (it looks like {guess})" if guess else ""
        message = f"invalid UTF-8 at byte offset {offset} (line {line}, column {column}: byte(s) {bad}){hint}"
        raise EncodingError(path, message, offset, line, column) from None


def _utf16_guess(data: bytes) -> str | None:
    """UTF-16/32 without a byte-order mark shows as NULs between ASCII bytes."""
    head = data[:64]
    if len(head) >= 4 and b"\x00" in head:
        encoding = json.detect_encoding(head)
        if encoding.startswith(("utf-16", "utf-32")):
            return encoding.upper()
    return None


def read_text(path: str | Path, cap: int) -> str:
    """A UTF-8 text file of at most ``cap`` bytes."""
    return decode_utf8(read_capped(path, cap), str(path))


def check_json_depth(text: str, path: str, limit: int = JSON_MAX_DEPTH, *, pointer: bool = True) -> None:
    """Raise JsonDepthError, with the pointer of the first too-deep value, if nesting exceeds ``limit``.

    A quick count of brackets outside strings comes first; only a document that
    is really too deep is walked token by token to build the pointer. With
    ``pointer=False`` (YAML flow style, where the pointer would miss block keys)
    the error names no pointer.
    """
    if text.count("[") + text.count("{") <= limit:
        return
    if _raw_depth_at_most(text, limit) or _max_depth(text) <= limit:
        return
    raise JsonDepthError(path, limit, _pointer_at_depth(text, limit + 1) if pointer else None)


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)


_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def _raw_depth_at_most(text: str, limit: int) -> bool:
    """The quick test, at C speed: every bracket (strings not skipped) pairs up within ``limit`` levels.

    Removing innermost ``[]`` pairs once per level empties a well-nested
    sequence in as many passes as it is deep. Brackets inside strings could
    only make a too-deep document look shallow if they were placed on purpose;
    such a document still parses without recursion trouble (``json.loads``
    stops at Python's recursion limit, which ``loads_json`` reports).
    """
    raw = text.encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKETS)
    sequence = raw.replace(b"{", b"[").replace(b"}", b"]")
    for _ in range(limit):
        if not sequence:
            return True
        shorter = sequence.replace(b"[]", b"")
        if len(shorter) == len(sequence):
            return False  # unbalanced: let the exact scan decide
        sequence = shorter
    return not sequence


def _max_depth(text: str) -> int:
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _pointer_at_depth(text: str, target: int) -> str:
    """The JSON pointer of the first container opened at nesting level ``target``."""
    # each frame: [is_object, index in an array, last key seen in an object]
    frames: list[list[Any]] = []
    pending_key: str | None = None
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            if frames and not frames[-1][0]:
                pass  # the index was counted by the commas before it
            elif frames:
                frames[-1][2] = pending_key
            if len(frames) + 1 == target:
                return _render_pointer(frames)
            frames.append([token == "{", 0, None])
            pending_key = None
        elif token in "]}":
            if frames:
                frames.pop()
        elif token == ",":
            if frames and not frames[-1][0]:
                frames[-1][1] += 1
        elif token == ":":
            continue
        elif frames and frames[-1][0]:
            try:
                pending_key = json.loads(token)
            except ValueError:
                pending_key = token[1:-1]
            frames[-1][2] = pending_key
    return _render_pointer(frames)


def _render_pointer(frames: list[list[Any]]) -> str:
    parts: list[str] = []
    for is_object, index, key in frames:
        part = str(key if is_object else index)
        parts.append(part.replace("~", "~0").replace("/", "~1"))
    return "".join("/" + p for p in parts)


def loads_json(text: str, path: str, limit: int = JSON_MAX_DEPTH) -> Any:
    """``json.loads`` with the depth bounded first; every failure is a FileReadError."""
    if "\x00" in text[:64]:
        guess = _utf16_guess(text[:64].encode("utf-8"))
        if guess:
            raise EncodingError(path, f"the file is {guess}; save it as UTF-8", 0, 1, 1)
    check_json_depth(text, path, limit)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileReadError(
            path, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", offset=exc.pos
        ) from None
    except ValueError:  # int(): a literal longer than Python's 4,300-digit conversion limit
        raise FileReadError(path, "not valid JSON: a number with more than 4300 digits") from None
    except RecursionError:  # only brackets hidden in strings get here: find the real depth
        raise JsonDepthError(path, limit, _pointer_at_depth(text, limit + 1)) from None


def read_json(path: str | Path, cap: int, limit: int = JSON_MAX_DEPTH) -> Any:
    """A UTF-8 JSON file of at most ``cap`` bytes, nested at most ``limit`` deep."""
    return loads_json(read_text(path, cap), str(path), limit)
