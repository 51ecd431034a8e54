"""Read a raw line file in bounded memory: the same lines, rejects, digest and errors as `lines.read_bytes`.

`lines.read_bytes` holds the whole decompressed file (and `iter_lines` a list of its lines), so a 5 GB reviews file
needs several times that in RAM. Here the file is read in fixed-size blocks through a streaming gzip decoder, the
sha256 of the bytes on disk is computed as they pass, and parsed rows are handed out in lists of at most
``rows`` so a reader can turn each list into a columnar frame and drop the Python objects.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from ops.ingest.errors import IngestError, RowError
from ops.ingest.lines import json_object
from ops.ingest.rejects import RejectLog

Row = TypeVar("Row")

BLOCK_BYTES = 4 << 20  # decompressed bytes read at a time: large enough that per-block overhead is invisible
CHUNK_ROWS = 50_000  # parsed rows per list handed to the reader: ~40 MB of Python objects for review rows
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"


class _HashingReader:
    """A read-only file wrapper that feeds every byte it returns to a sha256 (the digest of the file on disk)."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha256.update(data)
        return data

    def drain(self) -> str:
        """Hash whatever the decoder left unread (gzip padding) and return the hex digest of the whole file."""
        while block := self.read(BLOCK_BYTES):
            del block
        return self.sha256.hexdigest()


def iter_file_lines(path: Path, log: RejectLog) -> Iterator[tuple[int, bytes]]:
    """``(line_number, line)`` for each non-blank line of ``path``, as ``iter_lines(read_bytes(path, log))`` gives.

    Plain or gzip, a leading UTF-8 BOM dropped, ``\\r\\n`` accepted. When the file is exhausted its sha256 goes to
    ``log`` (the stage checks it against the fingerprinted digest). A truncated or corrupt gzip and a file with
    no data raise `IngestError` naming the file, like `lines.read_bytes`.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "file not found")
    with path.open("rb") as raw:
        hashing = _HashingReader(raw)
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream: Any = gzip.GzipFile(fileobj=hashing, mode="rb") if compressed else hashing
        number, seen_data, tail, first = 0, False, b"", True
        while True:
            block = _read_block(stream, path)
            if first:
                block, first = block.removeprefix(_BOM), False
            if not block:
                break
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            for line in lines:
                number += 1
                line = line.rstrip(b"\r")
                if line.strip():
                    seen_data = True
                    yield number, line
        if tail.rstrip(b"\r").strip():
            seen_data = True
            yield number + 1, tail.rstrip(b"\r")
        log.record_digest(path, hashing.drain())
    if not seen_data:
        raise IngestError(path, "empty file: it holds no data")


def _read_block(stream: Any, path: Path) -> bytes:
    try:
        return stream.read(BLOCK_BYTES)
    except (EOFError, OSError, zlib.error) as error:
        raise IngestError(path, f"truncated or corrupt gzip stream ({error}); re-download the file") from error


def iter_json_chunks(
    path: Path, rejects: RejectLog, parse: Callable[[dict[str, Any]], Row], rows: int | None = None
) -> Iterator[list[Row]]:
    """``parse`` of each JSON-object line of ``path``, in file order, in lists of at most ``rows``.

    Every line that fails is rejected with its line number and whole raw text (as `lines.iter_json_rows`); the
    last list may be shorter, and none is empty. ``rows`` defaults to `CHUNK_ROWS`, read at call time.
    """
    rows = rows or CHUNK_ROWS
    chunk: list[Row] = []
    for number, line in iter_file_lines(path, rejects):
        rejects.count_read(path)
        try:
            chunk.append(parse(json_object(line)))
        except RowError as error:
            rejects.add(path, number, error.field, error.reason, line)
            continue
        if len(chunk) >= rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
