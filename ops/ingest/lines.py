"""Read raw files line by line, transparently through gzip, turning file-level damage into `IngestError`."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ops.ingest.errors import IngestError, RowError
from ops.ingest.rejects import RejectLog

Row = TypeVar("Row")

_GZIP_MAGIC = b"\x1f\x8b"
_SURROGATE = re.compile("[\udc80-\udcff]")  # what ``surrogateescape`` turns undecodable bytes into


def read_bytes(path: Path) -> bytes:
    """The whole (decompressed) content of ``path``; a truncated or corrupt gzip raises `IngestError`."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "file not found")
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise IngestError(path, f"truncated or corrupt gzip stream ({error}); re-download the file") from error


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` for each non-blank line, 1-based, without the line terminator."""
    content = read_bytes(path)
    for number, line in enumerate(content.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if line.strip():
            yield number, line


def decode_utf8(line: bytes) -> str:
    """Decode one line strictly; the caller turns `UnicodeDecodeError` into a reject."""
    return line.decode("utf-8")


def iter_json_rows(path: Path, rejects: RejectLog, parse: Callable[[dict[str, Any]], Row]) -> Iterator[Row]:
    """``parse`` applied to each JSON-object line of ``path``; every line that fails is rejected, never dropped.

    Invalid UTF-8 is rejected as ``<encoding>``, unparsable JSON or a non-object as ``<record>``, and a
    `RowError` from ``parse`` under its field. orjson parses the raw bytes directly (no decode step), which is
    what makes this faster than ``pandas.read_json``.
    """

    def parse_line(line: bytes) -> Row:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise RowError("<record>" if _is_utf8(line) else "<encoding>", f"not a JSON line: {error}") from None
        if not isinstance(record, dict):
            raise RowError("<record>", f"expected a JSON object, got {type(record).__name__}")
        return parse(record)

    return iter_parsed_lines(path, rejects, parse_line)


def _is_utf8(line: bytes) -> bool:
    try:
        decode_utf8(line)
    except UnicodeDecodeError:
        return False
    return True


def load_json_object(path: Path) -> tuple[dict[str, Any], bool]:
    """A whole-file JSON object and whether all of it was valid UTF-8.

    Invalid bytes do not fail the file: they are kept as lone surrogates (``surrogateescape``) so the reader can
    reject just the records that hold them (see `check_decodable`). A file that is not a JSON object raises
    `IngestError` with the line of the syntax error.
    """
    content = read_bytes(path)
    try:
        document, decodable = orjson.loads(content), True
    except orjson.JSONDecodeError:
        text = content.decode("utf-8", errors="surrogateescape")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise IngestError(path, f"JSON parse error: {error.msg}", line=error.lineno) from None
        decodable = _SURROGATE.search(text) is None
    if not isinstance(document, dict):
        raise IngestError(path, f"expected a JSON object at the top level, got {type(document).__name__}")
    return document, decodable


def check_decodable(value: Any) -> None:
    """Raise `RowError` on ``<encoding>`` if ``value`` (from `load_json_object`) holds undecodable bytes."""
    if _SURROGATE.search(json.dumps(value, ensure_ascii=False)):
        raise RowError("<encoding>", "invalid UTF-8 bytes in the record")


def undecodable_text(text: str) -> bool:
    """True if ``text`` was decoded with ``surrogateescape`` from bytes that are not UTF-8."""
    return _SURROGATE.search(text) is not None


def iter_parsed_lines(path: Path, rejects: RejectLog, parse: Callable[[bytes], Row]) -> Iterator[Row]:
    """``parse`` applied to each non-blank line of ``path``; a line whose parse raises `RowError` is rejected.

    For line formats that are not JSON objects (Python-literal meta lines, integer sequences).
    """
    for number, line in iter_lines(path):
        rejects.count_read(path)
        try:
            yield parse(line)
        except RowError as error:
            rejects.add(path, number, error.field, error.reason, line)


def iter_object_rows(
    path: Path,
    records: dict[str, Any],
    decodable: bool,
    rejects: RejectLog,
    parse: Callable[[str, Any], Row],
) -> Iterator[Row]:
    """``parse(key, value)`` for each entry of a JSON object from `load_json_object`, rejecting the bad ones.

    The reject's ``line`` is the entry's 1-based position in ``records`` (these files have no line structure).
    """
    rejects.count_read(path, len(records))
    for number, (key, value) in enumerate(records.items(), start=1):
        try:
            if not decodable:
                check_decodable([key, value])
            yield parse(key, value)
        except RowError as error:
            raw = json.dumps({key: value}, ensure_ascii=False).encode("utf-8", errors="surrogateescape")
            rejects.add(path, number, error.field, error.reason, raw)
