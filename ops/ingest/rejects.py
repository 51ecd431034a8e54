"""Keep every refused row, with file, line, field and reason, and decide when a file is too broken to use.

The log is also the ledger of what a reader read: rows per file, and the sha256 of each file's bytes as they were
parsed, which the normalize stage compares with the digests it cached the result under.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import polars as pl

from ops.ingest.errors import IngestError
from ops.ingest.schema import REJECTS


class RejectLog:
    """Collects rejected rows across the files of one data set, the rows read per file and each file's digest."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, int, str, str, str]] = []
        self.rows_read: Counter[str] = Counter()
        self.digests: dict[str, str] = {}  # file -> sha256 of the bytes the reader parsed

    def add(self, file: Path | str, line: int, field: str, reason: str, raw: bytes | str) -> None:
        """Record one refused row with its whole raw text, so nothing is lost."""
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        self._rows.append((str(file), line, field, reason, raw))

    def record_input(self, file: Path | str, content: bytes) -> None:
        """Note the sha256 of the bytes read from ``file``; a second read that found other bytes fails."""
        self.record_digest(file, hashlib.sha256(content).hexdigest())

    def record_digest(self, file: Path | str, digest: str) -> None:
        """Note the sha256 of ``file``'s bytes, computed by the caller (a streaming reader hashes as it reads)."""
        if self.digests.setdefault(str(file), digest) != digest:
            raise IngestError(file, "the file changed while it was read (two reads gave different bytes); re-run")

    def count_read(self, file: Path | str, n: int = 1) -> None:
        self.rows_read[str(file)] += n

    def __len__(self) -> int:
        return len(self._rows)

    def by_file(self) -> Counter[str]:
        return Counter(row[0] for row in self._rows)

    def check(self, max_fraction: float) -> None:
        """Raise `IngestError` naming the first bad row of the first file whose reject rate exceeds ``max_fraction``."""
        per_file = self.by_file()
        for file, n_rejected in per_file.items():
            n_read = max(self.rows_read[file], n_rejected)
            if n_rejected / n_read > max_fraction:
                first = next(row for row in self._rows if row[0] == file)
                raise IngestError(
                    file,
                    f"{first[3]} ({n_rejected} of {n_read} rows rejected, more than the allowed "
                    f"{max_fraction:.2%}; every rejected row is listed in the rejects table)",
                    line=first[1],
                    field=first[2],
                )

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self._rows, schema=REJECTS, orient="row")
