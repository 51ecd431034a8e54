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
_BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark, which some tools write at the start of a file
_SURROGATE = re.compile("[\udc80-\udcff]")  # what ``surrogateescape`` turns undecodable bytes into


def read_bytes(path: Path, log: RejectLog) -> bytes:
    """The whole (decompressed) content of ``path``, without a leading UTF-8 BOM; every reader reads through here.

    The sha256 of the bytes on disk goes to ``log`` (see `RejectLog.record_input`), so the stage can check that it
    parsed the bytes it fingerprinted. A truncated or corrupt gzip, and a file with no data (0 bytes, only
    whitespace, only a BOM), raise `IngestError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "file not found")
    raw = path.read_bytes()
    log.record_input(path, raw)
    content = raw
    if raw[:2] == _GZIP_MAGIC:
        try:
            content = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise IngestError(path, f"truncated or corrupt gzip stream ({error}); re-download the file") from error
    content = content.removeprefix(_BOM)  # the same object when there is none: no copy of a large file
    if not content or content.isspace():
        raise IngestError(path, "empty file: it holds no data")
    return content


def iter_lines(content: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` for each non-blank line, 1-based, without the line terminator."""
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

    return iter_parsed_lines(path, rejects, lambda line: parse(json_object(line)))


def json_object(line: bytes) -> dict[str, Any]:
    """One JSON-object line, or `RowError` under ``<encoding>`` (invalid UTF-8) or ``<record>`` (anything else)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise RowError("<record>" if _is_utf8(line) else "<encoding>", f"not a JSON line: {error}") from None
    if not isinstance(record, dict):
        raise RowError("<record>", f"expected a JSON object, got {type(record).__name__}")
    return record


def _is_utf8(line: bytes) -> bool:
    try:
        decode_utf8(line)
    except UnicodeDecodeError:
        return False
    return True


class RepeatedKeys(dict):
    """A JSON object that names some key more than once: the first value of each key, and every pair in order.

    ``json`` (like every dict-based parser) keeps the last value silently; this keeps the evidence so that the
    repeated entries are rejected instead of overwriting data.
    """

    def __init__(self, pairs: list[tuple[str, Any]]):
        super().__init__()
        for key, value in pairs:
            self.setdefault(key, value)
        self.pairs = pairs


def load_json_object(path: Path, log: RejectLog) -> tuple[dict[str, Any], bool]:
    """A whole-file JSON object, and whether it is clean: valid UTF-8, no key repeated in any object.

    Neither flaw fails the file: invalid bytes are kept as lone surrogates (``surrogateescape``) and repeated keys
    as `RepeatedKeys`, so the reader can reject just the entries that hold them (`iter_object_rows`). A file that
    is not a JSON object raises `IngestError` with the line of the syntax error; an empty object (``{}``) too.
    """
    text = read_bytes(path, log).decode("utf-8", errors="surrogateescape")
    repeated = False

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        record = dict(pairs)
        if len(record) == len(pairs):
            return record
        repeated = True
        return RepeatedKeys(pairs)

    try:
        document = json.loads(text, object_pairs_hook=build)
    except json.JSONDecodeError as error:
        raise IngestError(path, f"JSON parse error: {error.msg}", line=error.lineno) from None
    if not isinstance(document, dict):
        raise IngestError(path, f"expected a JSON object at the top level, got {type(document).__name__}")
    if not document:
        raise IngestError(path, "empty JSON object: it holds no entries")
    return document, not repeated and _SURROGATE.search(text) is None


def check_entry(value: Any) -> None:
    """Raise `RowError` if ``value`` (from `load_json_object`) holds undecodable bytes or a repeated key."""
    if _SURROGATE.search(json.dumps(value, ensure_ascii=False)):
        raise RowError("<encoding>", "invalid UTF-8 bytes in the record")
    key = _first_repeated_key(value)
    if key is not None:
        raise RowError(key, f"repeated key {key!r} in one object; a record must name each field once")


def _first_repeated_key(value: Any) -> str | None:
    """The first key named twice in one object anywhere inside ``value``, or None."""
    if isinstance(value, RepeatedKeys):
        seen: set[str] = set()
        for key, _ in value.pairs:
            if key in seen:
                return key
            seen.add(key)
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        key = _first_repeated_key(child)
        if key is not None:
            return key
    return None


def _json_text(value: Any) -> str:
    """``value`` as JSON text, each pair of a `RepeatedKeys` object included (``json.dumps`` would drop them)."""
    if isinstance(value, dict):
        pairs = value.pairs if isinstance(value, RepeatedKeys) else value.items()
        return "{" + ", ".join(f"{_json_text(key)}: {_json_text(item)}" for key, item in pairs) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json_text(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def undecodable_text(text: str) -> bool:
    """True if ``text`` was decoded with ``surrogateescape`` from bytes that are not UTF-8."""
    return _SURROGATE.search(text) is not None


def iter_parsed_lines(
    path: Path, rejects: RejectLog, parse: Callable[[bytes], Row], content: bytes | None = None
) -> Iterator[Row]:
    """``parse`` applied to each non-blank line of ``path``; a line whose parse raises `RowError` is rejected.

    For line formats that are not JSON objects (Python-literal meta lines, integer sequences). A caller that has
    already read the file passes its ``content``, so the file is read (and hashed) once.
    """
    for number, line in iter_lines(read_bytes(path, rejects) if content is None else content):
        rejects.count_read(path)
        try:
            yield parse(line)
        except RowError as error:
            rejects.add(path, number, error.field, error.reason, line)


def iter_object_rows(
    path: Path,
    records: dict[str, Any],
    clean: bool,
    rejects: RejectLog,
    key_field: str,
    parse: Callable[[str, Any], Row],
) -> Iterator[Row]:
    """``parse(key, value)`` for each entry of a JSON object from `load_json_object`, rejecting the bad ones.

    A repeated key is rejected under ``key_field`` (what the keys are: ``user_id``...); its first entry is kept.
    The reject's ``line`` is the entry's 1-based position in ``records`` (these files have no line structure).
    """
    entries = records.pairs if isinstance(records, RepeatedKeys) else list(records.items())
    rejects.count_read(path, len(entries))
    seen: set[str] = set()
    for number, (key, value) in enumerate(entries, start=1):
        try:
            if key in seen:
                raise RowError(key_field, f"repeated key {key!r}; its first entry is kept")
            seen.add(key)
            if not clean:
                check_entry([key, value])
            yield parse(key, value)
        except RowError as error:
            raw = _json_text({key: value}).encode("utf-8", errors="surrogateescape")
            rejects.add(path, number, error.field, error.reason, raw)
