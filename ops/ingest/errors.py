"""Errors raised by ingestion, each naming the file (and line and field where known)."""

from __future__ import annotations

from pathlib import Path


class IngestError(Exception):
    """A file cannot be ingested: truncated, undecodable, or too many rejected rows.

    The message always starts with ``file[:line[:field]]`` so a user can jump straight to the problem.
    """

    def __init__(self, file: Path | str, reason: str, line: int | None = None, field: str | None = None):
        self.file = str(file)
        self.line = line
        self.field = field
        self.reason = reason
        location = self.file
        if line is not None:
            location += f":{line}"
        if field is not None:
            location += f":{field}"
        super().__init__(f"{location}: {reason}")


class RowError(Exception):
    """One row is invalid; the reader records it as a reject and goes on."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")
