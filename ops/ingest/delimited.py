"""Delimited text files (MIND's TSV, H&M's CSV) as all-string polars columns, with line-accurate rejects.

The fast path is pyarrow's multithreaded CSV parser with every column read as a string, which keeps pace with
`pandas.read_csv`. Only a file it cannot parse cleanly (invalid UTF-8, a row with the wrong number of fields) goes
through the csv module record by record, which rejects exactly the damaged rows and keeps the rest. Readers then
validate values with vectorized expressions and hand the failing rows to `Table.reject`, which finds their lines
(by re-scanning the text only when there is something to reject).

Neither parser limits a field's length: a record longer than pyarrow's block is read again with larger blocks,
and the csv module's 128 KiB field limit is lifted, so a valid 2 MB abstract is a row, not a reject.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

from ops.ingest.errors import IngestError
from ops.ingest.fields import CONTROL_CHARACTER, CONTROL_REASON
from ops.ingest.frames import first_of_each
from ops.ingest.lines import read_bytes
from ops.ingest.rejects import RejectLog

RECORD = "_record"  # column holding each row's index into `Table`'s record locations
_BLOCK_SIZE = 1 << 20  # pyarrow's default block; every record must fit in one
_MAX_BLOCK_SIZE = (1 << 31) - 1  # pyarrow's block size is a 32-bit int
_FIELD_LIMIT = (1 << 31) - 1  # for the csv module, whose default (128 KiB) refuses long valid fields


@dataclass(frozen=True)
class Dialect:
    separator: str
    quoted: bool  # True: RFC 4180 double quotes, fields may span lines (CSV); False: no quoting at all (MIND TSV)


CSV = Dialect(",", quoted=True)
TSV = Dialect("\t", quoted=False)

Location = tuple[int, str]  # (first physical line, raw text) of one record


class Table:
    """The data rows of one delimited file as string columns (plus `RECORD`), and the way back to their lines."""

    def __init__(
        self,
        path: Path,
        rejects: RejectLog,
        frame: pl.DataFrame,
        locate: Callable[[], list[Location]],
    ):
        self.path = path
        self.rejects = rejects
        self.frame = frame
        self._locate = locate
        self._locations: list[Location] | None = None

    def reject(self, bad: pl.Expr | pl.Series, field: str, reason: str) -> None:
        """Move the rows where ``bad`` holds (or is null: unverifiable) to the reject log and drop them."""
        flags = self.frame.select(bad).to_series().fill_null(True)
        if not flags.any():
            return
        if self._locations is None:
            self._locations = self._locate()
        for record in self.frame.filter(flags)[RECORD]:
            line, raw = self._locations[record]
            self.rejects.add(self.path, line, field, reason, raw)
        self.frame = self.frame.filter(~flags)

    def require_ids(self, columns: Iterable[str]) -> None:
        """Reject rows whose id in any of ``columns`` is blank or holds a control character (e.g. NUL)."""
        for column in columns:
            self.reject(pl.col(column).str.strip_chars() == "", column, "required field is empty")
            self.reject_control_characters(column)

    def reject_control_characters(self, column: str) -> None:
        """Reject rows whose ``column`` (ids, or a list of ids) holds a control character such as NUL."""
        self.reject(pl.col(column).str.contains(CONTROL_CHARACTER), column, CONTROL_REASON)

    def drop_duplicates(self) -> int:
        """Drop every record identical in all its fields to an earlier one (the first is kept); returns how many."""
        self.frame, dropped = first_of_each(self.frame, [name for name in self.frame.columns if name != RECORD])
        return dropped

    def require_columns(self, names: Sequence[str]) -> None:
        """A header without the columns a reader needs means the wrong file or layout: nothing can be read."""
        missing = [name for name in names if name not in self.frame.columns]
        if missing:
            present = [name for name in self.frame.columns if name != RECORD]
            raise IngestError(self.path, f"missing columns {missing}; the header has {present}", line=1)


def read_table(path: Path, rejects: RejectLog, dialect: Dialect, columns: Sequence[str] | None = None) -> Table:
    """Read ``path`` as strings: named by ``columns``, or by its first line when ``columns`` is None (a header).

    Blank lines are skipped. Every data row is counted as read; damaged rows are rejected as ``<encoding>`` or
    ``<columns>``. A file without a single data row raises `IngestError`.
    """
    path = Path(path)
    content = read_bytes(path, rejects)
    names = list(columns) if columns is not None else _header(path, content, dialect)
    skip = 0 if columns is not None else 1
    read_before = rejects.rows_read[str(path)]
    try:
        frame = _fast_read(content, dialect, names, skip)
    except (pa.ArrowInvalid, csv.Error):
        table = _careful_read(path, rejects, content, dialect, names, skip)
    else:
        rejects.count_read(path, frame.height)
        table = Table(path, rejects, frame.with_row_index(RECORD), partial(_decoded_locations, content, dialect, skip))
    if rejects.rows_read[str(path)] == read_before:
        raise IngestError(path, "no data rows" + (" after the header" if skip else ""), line=skip + 1)
    return table


def _header(path: Path, content: bytes, dialect: Dialect) -> list[str]:
    first = content.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        names = next(csv.reader([first.decode("utf-8")], **_csv_options(dialect)), [])
    except UnicodeDecodeError:
        raise IngestError(path, "header line is not valid UTF-8", 1) from None
    if not any(names):
        raise IngestError(path, "the first line should name the columns but is blank", 1)
    return names


def _fast_read(content: bytes, dialect: Dialect, names: list[str], skip: int) -> pl.DataFrame:
    """pyarrow's parse; a record longer than a block (a 2 MB abstract) is read again with blocks that hold it."""
    block_size = _BLOCK_SIZE
    while True:
        try:
            return _arrow_read(content, dialect, names, skip, block_size)
        except pa.ArrowInvalid as error:
            largest = min(len(content) + 1, _MAX_BLOCK_SIZE)
            if "straddl" not in str(error) or block_size >= largest:  # "straddling object straddles two blocks"
                raise
            block_size = min(block_size * 8, largest)


def _arrow_read(content: bytes, dialect: Dialect, names: list[str], skip: int, block_size: int) -> pl.DataFrame:
    table = pacsv.read_csv(
        pa.py_buffer(content),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=skip, block_size=block_size),
        parse_options=pacsv.ParseOptions(
            delimiter=dialect.separator,
            quote_char='"' if dialect.quoted else False,
            newlines_in_values=dialect.quoted,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            null_values=[],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return pl.from_arrow(table)


def _careful_read(
    path: Path, rejects: RejectLog, content: bytes, dialect: Dialect, names: list[str], skip: int
) -> Table:
    """Record by record with the csv module: slow, but it rejects exactly the damaged rows and keeps the rest."""
    text = _decode(path, content, rejects)
    values: list[list[str]] = [[] for _ in names]
    kept: list[Location] = []
    for line, raw, fields in _records(text, dialect, skip):
        rejects.count_read(path)
        if len(fields) != len(names):
            reason = f"expected {len(names)} fields, got {len(fields)}" if fields else "unparsable record"
            rejects.add(path, line, "<columns>", reason, raw)
            continue
        for column, value in zip(values, fields, strict=True):
            column.append(value)
        kept.append((line, raw))
    frame = pl.DataFrame(dict(zip(names, values, strict=True)), schema=dict.fromkeys(names, pl.String))
    return Table(path, rejects, frame.with_row_index(RECORD), lambda: kept)


def _decode(path: Path, content: bytes, rejects: RejectLog) -> str:
    """The text of ``content``; an undecodable line is rejected and blanked, so later lines keep their numbers."""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = []
    for number, line in enumerate(content.split(b"\n"), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError as error:
            rejects.count_read(path)
            rejects.add(path, number, "<encoding>", f"invalid UTF-8: {error}", line)
            lines.append("")
    return "\n".join(lines)


def _decoded_locations(content: bytes, dialect: Dialect, skip: int) -> list[Location]:
    """Locations of a file pyarrow read: it checked the UTF-8 of every field, so "replace" only guards the lookup."""
    return _locations(content.decode("utf-8", errors="replace"), dialect, skip)


def _locations(text: str, dialect: Dialect, skip: int) -> list[Location]:
    return [(line, raw) for line, raw, _ in _records(text, dialect, skip)]


def _records(text: str, dialect: Dialect, skip: int) -> Iterator[tuple[int, str, list[str]]]:
    """``(first line, raw text, fields)`` of each non-blank record after the first ``skip`` lines.

    A record the csv module cannot parse comes back with no fields.
    """
    lines = text.split("\n")
    reader = csv_reader(text, **_csv_options(dialect))
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            fields = []
        end = reader.line_num
        if start > skip and (fields or lines[start - 1].strip()):
            yield start, "\n".join(lines[start - 1 : end]), fields
        start = end + 1


def _csv_options(dialect: Dialect) -> dict[str, object]:
    quoting = csv.QUOTE_MINIMAL if dialect.quoted else csv.QUOTE_NONE
    return {"delimiter": dialect.separator, "quoting": quoting, "strict": False}


def csv_reader(text: str, **options: object) -> Iterator[list[str]]:
    """``csv.reader`` over ``text`` without a field size limit (a process-wide setting that is only ever raised)."""
    csv.field_size_limit(_FIELD_LIMIT)
    return csv.reader(io.StringIO(text, newline=""), **options)
