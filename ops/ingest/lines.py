"""Read raw files line by line, transparently through gzip, turning file-level damage into `IngestError`."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from ops.ingest.errors import IngestError

_GZIP_MAGIC = b"\x1f\x8b"


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
