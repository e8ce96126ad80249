"""The bounded reader behind every file the CLI reads: caps, strict UTF-8, JSON depth with a pointer."""

from __future__ import annotations

from pathlib import Path

import pytest

from entail.reasoning.textfile import (
    EncodingError,
    FileSizeLimitExceeded,
    JsonDepthError,
    decode_utf8,
    loads_json,
    read_capped,
)


def test_cap_counts_bytes_and_reports_the_real_size_of_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 11)
    assert read_capped(path, 11) == b"x" * 11
    with pytest.raises(FileSizeLimitExceeded) as caught:
        read_capped(path, 10)
    assert (caught.value.limit, caught.value.value) == (10, 11)
    assert "file size limit exceeded: 11 bytes, limit is 10 bytes" in str(caught.value)


def test_invalid_utf8_names_offset_line_and_column() -> None:
    with pytest.raises(EncodingError) as caught:
        decode_utf8("ok\nnaïve \xff".encode("utf-8", "surrogateescape")[:-1] + b"\xff", "f.lp")
    error = caught.value
    assert (error.offset, error.line, error.column) == (10, 2, 7)
    with pytest.raises(EncodingError, match="byte offset 1 "):
        decode_utf8(b"a\xed\xa0\x80", "f.lp")  # an encoded surrogate is not UTF-8


@pytest.mark.parametrize(
    ("text", "pointer"),
    [
        ('{"a": {"b/c": [1, [' + "[" * 70 + "]" * 70 + "]]}}", "/a/b~1c/1" + "/0" * 61),
        ("[" * 100_000 + "]" * 100_000, "/0" * 64),
        ('[0, "x", {"k": "v", "deep": ' + "[" * 80 + "]" * 80 + "}]", "/2/deep" + "/0" * 62),
    ],
    ids=["keys-escaped", "100k-deep", "after-strings"],
)
def test_depth_over_the_limit_names_the_pointer(text: str, pointer: str) -> None:
    with pytest.raises(JsonDepthError) as caught:
        loads_json(text, "f.json")
    assert caught.value.pointer == pointer


def test_brackets_inside_strings_neither_hide_nor_fake_depth() -> None:
    # 64 levels plus strings full of brackets: accepted
    text = "[" * 63 + '["[[[[", "]]]]", "{{"]' + "]" * 63
    assert loads_json(text, "f.json") is not None
    # 70 real levels whose depth strings try to hide: refused all the same
    hidden = "[" * 35 + '"' + "]" * 35 + '",' + "[" * 35 + "]" * 70
    with pytest.raises(JsonDepthError):
        loads_json(hidden, "f.json")
