"""RecBole atomic files: ``.item`` (catalogue) and ``.inter`` (interactions), typed TSV with CSV-style quotes.

Columns are found by header name (``name:type``, the type suffix dropped), so files with another column order
or extra columns read the same way: extra ``.item`` columns go into ``attributes``; extra ``.inter`` columns are
ignored, because the interactions table has no place for them.

Two parsers, one result:
- polars parses and types the whole file. Its result is used only if it accounts for every TAB and newline
  byte, so no row was ragged or blank and no row was split differently from how `csv` splits it. Rows whose
  values look wrong (missing id, non-finite number, fractional timestamp) then go through the `fields` getters,
  and a row the getters refuse is rejected.
- otherwise, or if polars refuses the file (stray quote, invalid UTF-8, a number it cannot parse), the `csv`
  module re-parses it record by record and checks every row with the getters. Each reject gets its physical
  line number.

Bad input: a row repeating an earlier one in every field (a file appended to itself) is dropped and counted
(``duplicate_interactions_dropped``, ``duplicate_items_dropped``); a later row for a known item_id that differs is
rejected. An id must be non-blank without control characters (NUL...). When the ``.inter`` header declares a
rating or timestamp column, an empty value there is a reject, not a silent null. A reject keeps its row's raw
text exactly as written (both parsers).

Text: HTML entities in text columns (title, brand, categories and other token columns) are decoded with
`html.unescape`. The Amazon conversion kept ``&amp;`` and ``&#39;``, and it spells one category both ways
("Home &amp; Kitchen", "Toys & Games").
"""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ops.ingest.delimited import csv_reader
from ops.ingest.errors import IngestError, RowError
from ops.ingest.fields import CONTROL_CHARACTER, get_float, get_id, get_int
from ops.ingest.frames import attributes_expr, first_of_each, has_text_expr, with_missing_items
from ops.ingest.lines import read_bytes, undecodable_text
from ops.ingest.rejects import RejectLog
from ops.ingest.result import ReaderResult
from ops.ingest.schema import ITEMS, RAW_INTERACTIONS

SOURCE = "recbole"

# How each column is checked and typed: "id" (required string), "text", "seq" (list of names), "float", "int", and
# "raw" for a column the caller does not keep (compared for duplicates only).
_KIND_BY_NAME = {
    "user_id": "id",
    "item_id": "id",
    "rating": "float",
    "timestamp": "int",  # declared float by RecBole; whole unix seconds
    "title": "text",
    "description": "text",
    "brand": "text",
    "categories": "seq",
    "price": "float",
}
_KIND_BY_TYPE = {"token": "text", "token_seq": "seq", "float": "float"}  # other RecBole types stay raw text
_CHECKED = ("id", "float", "int")  # kinds whose values go through the `fields` getters
_FILLED_INTERACTION_COLUMNS = ("rating", "timestamp")  # present in the header -> every row needs a value
_QUOTED_NAME = re.compile(r"'[^']*'|\"[^\"]*\"")  # one name of a Python-repr list: 'Makeup' or "Women's"
_TAB, _NEWLINE = ord("\t"), ord("\n")


def read_recbole(inter: Path, items: Path) -> ReaderResult:
    """A RecBole ``.inter`` file with its ``.item`` catalogue.

    The items table is the whole catalogue, which may hold items no interaction uses (the 10-core
    ``.inter.filtered`` uses 733 of the 12,101 Beauty items). Each item that an interaction names but the
    catalogue lacks gets a text-less placeholder, counted as ``textless_items``.
    """
    rejects = RejectLog()
    catalogue, duplicate_items = read_recbole_items(items, rejects)
    interactions, duplicates = _read_atomic(
        Path(inter), rejects, ("user_id", "item_id"), columns=RAW_INTERACTIONS, filled=_FILLED_INTERACTION_COLUMNS
    )
    interactions = _with_columns_of(interactions, RAW_INTERACTIONS)
    all_items, textless = with_missing_items(catalogue, interactions, SOURCE)
    counters = {
        "duplicate_interactions_dropped": duplicates,
        "duplicate_items_dropped": duplicate_items,
        "textless_items": textless,
    }
    return ReaderResult(all_items, interactions, rejects, counters=counters)


def read_recbole_items(path: Path, rejects: RejectLog) -> tuple[pl.DataFrame, int]:
    """The items table of a ``.item`` file and its count of repeated rows dropped (`read_item_table`)."""
    table, duplicates = read_item_table(path, rejects)
    return finish_items(table, SOURCE), duplicates


def read_item_table(path: Path, rejects: RejectLog) -> tuple[pl.DataFrame, int]:
    """Typed columns of a ``.item`` file, one row per item in file order, and the number of repeated rows dropped.

    A row equal to an earlier one is dropped (counted); another row for a known item_id is rejected. Kept apart
    from `finish_items` so that a reader (P5) can add columns for `finish_items` to pack into attributes.
    """
    return _read_atomic(Path(path), rejects, ("item_id",), key="item_id")


def finish_items(table: pl.DataFrame, source: str) -> pl.DataFrame:
    """The items table from typed item columns: ITEMS columns kept, every other column packed into attributes."""
    extra = pl.Schema({name: dtype for name, dtype in table.schema.items() if name not in ITEMS})
    items = _with_columns_of(
        table.with_columns(attributes_expr(extra).alias("attributes")),
        {name: dtype for name, dtype in ITEMS.items() if name not in ("has_text", "source")},
    )
    return items.with_columns(has_text_expr().alias("has_text"), pl.lit(source).alias("source"))


def _with_columns_of(table: pl.DataFrame, schema: pl.Schema | dict[str, pl.DataType]) -> pl.DataFrame:
    """``table`` restricted to ``schema``'s columns, in its order; a column the file lacks is all-null."""
    return table.select(
        pl.col(name) if name in table.columns else pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in schema.items()
    )


def _read_atomic(
    path: Path,
    rejects: RejectLog,
    required: Sequence[str],
    columns: Collection[str] | None = None,
    filled: Collection[str] = (),
    key: str | None = None,
) -> tuple[pl.DataFrame, int]:
    """Parse, check and type one atomic file: the wanted columns (all by default), and the repeats dropped.

    ``required`` columns must be in the header; ``filled`` ones, when present, need a value in every row. Rows
    equal in every field (those not wanted included) to an earlier row are dropped and counted; then a row whose
    ``key`` was already seen is rejected.
    """
    content = read_bytes(path, rejects)
    names = _header_names(path, content)
    missing = [name for name in required if name not in names]
    if missing:
        raise IngestError(path, f"header has no {', '.join(missing)} column", line=1)
    kinds = {
        name: _KIND_BY_NAME.get(name, _KIND_BY_TYPE.get(declared, "text"))
        if columns is None or name in columns
        else "raw"
        for name, declared in names.items()
    }
    source = _Source(content)
    table = _parse_with_polars(path, content, names, kinds, filled, rejects, source)
    if table is None:
        table = _parse_with_csv(path, content, names, kinds, filled, rejects, source)
    if not rejects.rows_read[str(path)]:
        raise IngestError(path, "no data rows after the header", line=2)
    table, duplicates = first_of_each(_typed(table, kinds), list(kinds))
    if key is not None:
        table = _first_row_per_key(path, table, key, rejects, source)
    wanted = [name for name, kind in kinds.items() if kind != "raw"]
    return table.select(wanted), duplicates


class _Source:
    """The physical lines of a file, split on first use: a reject keeps its row's raw text exactly as written."""

    def __init__(self, content: bytes):
        self._content = content
        self._lines: list[bytes] | None = None

    def raw(self, line: int, span: int) -> bytes:
        """The ``span`` physical lines (a quoted field may hold line breaks) from 1-based ``line``."""
        if self._lines is None:
            self._lines = self._content.split(b"\n")
        return b"\n".join(self._lines[line - 1 : line - 1 + span]).removesuffix(b"\r")


def _header_names(path: Path, content: bytes) -> dict[str, str]:
    """Column name -> declared RecBole type (``token``, ``float``...), in file order, from the header line."""
    end = content.find(b"\n")
    try:
        header = content[: end if end >= 0 else len(content)].rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        raise IngestError(path, "header is not valid UTF-8", line=1) from None
    names: dict[str, str] = {}
    for column in header.split("\t"):
        name, _, declared = column.partition(":")
        if not name or name in names:
            raise IngestError(path, f"header column {column!r} is empty or repeated", line=1)
        names[name] = declared
    return names


def _parse_with_polars(
    path: Path,
    content: bytes,
    names: dict[str, str],
    kinds: dict[str, str],
    filled: Collection[str],
    rejects: RejectLog,
    source: _Source,
) -> pl.DataFrame | None:
    """The columns typed by polars plus ``line`` and ``span``, rows the getters refuse rejected; None if it can't vouch.

    The TAB and newline bytes must be exactly those the parsed rows account for: ``len(names) - 1`` separators
    and one line break per record, plus those inside quoted fields. A short row, a blank line or a split
    different from `csv`'s breaks the equality, and the `csv` parser then takes over.
    """
    schema = {name: pl.Float64 if kinds[name] in ("float", "int") else pl.String for name in names}
    try:
        frame = pl.read_csv(
            content, separator="\t", quote_char='"', has_header=False, skip_rows=1, schema=schema, null_values=[""]
        )
    except pl.exceptions.PolarsError:
        return None
    text_columns = [name for name, kind in kinds.items() if kind in ("text", "seq", "raw")]
    inside = _breaks_inside(frame, text_columns, b'"' in content)
    byte_values = np.frombuffer(content, dtype=np.uint8)
    separators = (frame.height + 1) * (len(names) - 1) + inside["tabs"].sum()
    line_breaks = frame.height + inside["newlines"].sum() + content.endswith(b"\n")
    if np.count_nonzero(byte_values == _TAB) != separators or np.count_nonzero(byte_values == _NEWLINE) != line_breaks:
        return None
    rejects.count_read(path, frame.height)
    lines = pl.int_range(2, frame.height + 2, dtype=pl.Int64, eager=True)
    newlines = pl.zeros(frame.height, dtype=pl.Int64, eager=True)
    if inside["newlines"].sum():  # a record after a quoted line break starts that many lines further down
        newlines = newlines.scatter(inside["row"], inside["newlines"])
        lines += newlines.cum_sum() - newlines
    frame = frame.with_columns(lines.alias("line"), (newlines + 1).alias("span"))
    return _without_refused(path, frame, kinds, filled, rejects, source)


def _breaks_inside(frame: pl.DataFrame, columns: list[str], quoted: bool) -> pl.DataFrame:
    """``row``, ``tabs`` and ``newlines`` of each row whose fields in ``columns`` hold TABs or newlines.

    Only a quoted field can hold them, so a file without quotes needs no scan. Other columns are not scanned:
    a TAB or newline there leaves the byte counts unequal, and the `csv` parser takes over.
    """
    schema = {"row": pl.Int64, "tabs": pl.Int64, "newlines": pl.Int64}
    if not (quoted and columns):
        return pl.DataFrame(schema=schema)
    holding = frame.with_row_index("row").filter(pl.any_horizontal(pl.col(c).str.contains("[\t\n]") for c in columns))
    counts = {
        label: pl.sum_horizontal(pl.col(c).str.count_matches(character, literal=True).fill_null(0) for c in columns)
        for label, character in (("tabs", "\t"), ("newlines", "\n"))
    }
    return holding.select(pl.col("row"), **counts).cast(schema)


def _without_refused(
    path: Path,
    frame: pl.DataFrame,
    kinds: dict[str, str],
    filled: Collection[str],
    rejects: RejectLog,
    source: _Source,
) -> pl.DataFrame:
    """``frame`` less the rows whose checked values look wrong and that the getters refuse (each rejected)."""
    suspicious = [_suspect(name, kind, name in filled) for name, kind in kinds.items() if kind in _CHECKED]
    suspects = frame.filter(pl.any_horizontal(suspicious)) if suspicious else frame.clear()
    refused = []
    for record in suspects.iter_rows(named=True):
        try:
            _checked(record, kinds, filled)
        except RowError as error:
            rejects.add(path, record["line"], error.field, error.reason, source.raw(record["line"], record["span"]))
            refused.append(record["line"])
    return frame.filter(~pl.col("line").is_in(refused)) if refused else frame


def _suspect(name: str, kind: str, filled: bool) -> pl.Expr:
    """True where a typed value may break the getters' rules: the getters then look at the row."""
    value = pl.col(name)
    if kind == "id":
        return value.is_null() | ~value.str.contains(r"\S") | value.str.contains(CONTROL_CHARACTER)
    bad = ~value.is_finite()
    if kind == "int":
        bad = bad | (value != value.floor())
    return bad.fill_null(filled)


def _checked(record: dict[str, Any], kinds: dict[str, str], filled: Collection[str]) -> dict[str, Any]:
    """The checked values of ``record`` as the getters read them; raises the first getter's `RowError`."""
    checked: dict[str, Any] = {}
    for name, kind in kinds.items():
        if kind == "id":
            checked[name] = get_id(record, name)
        elif kind == "float":
            checked[name] = get_float(record, name, required=name in filled)
        elif kind == "int":
            checked[name] = get_int(record, name, required=name in filled)
    return checked


def _parse_with_csv(
    path: Path,
    content: bytes,
    names: dict[str, str],
    kinds: dict[str, str],
    filled: Collection[str],
    rejects: RejectLog,
    source: _Source,
) -> pl.DataFrame:
    """The careful parse: every record checked with the getters, rejects with their physical line numbers."""
    text = content.decode("utf-8", errors="surrogateescape")
    check_encoding = undecodable_text(text)
    positions = {name: position for position, name in enumerate(names)}
    reader = csv_reader(text, delimiter="\t", strict=True)
    next(reader)  # the header, already read by `_header_names`
    rows: list[dict[str, Any]] = []
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            rejects.count_read(path)
            raw = source.raw(line, reader.line_num - line + 1)
            rejects.add(path, line, "<record>", f"CSV parse error: {error}", raw)
            continue
        if len(fields) <= 1 and not "".join(fields).strip():
            continue  # a blank line is no record
        rejects.count_read(path)
        span = reader.line_num - line + 1
        try:
            rows.append(_csv_row(fields, positions, kinds, filled, check_encoding) | {"line": line, "span": span})
        except RowError as error:
            rejects.add(path, line, error.field, error.reason, source.raw(line, span))
    schema = {name: pl.Float64 if kind in ("float", "int") else pl.String for name, kind in kinds.items()}
    return pl.DataFrame(rows, schema=schema | {"line": pl.Int64, "span": pl.Int64}, orient="row")


def _csv_row(
    fields: list[str],
    positions: dict[str, int],
    kinds: dict[str, str],
    filled: Collection[str],
    check_encoding: bool,
) -> dict[str, Any]:
    """One csv record as values by column (empty -> None, checked ones through the getters)."""
    if len(fields) != len(positions):
        raise RowError("<record>", f"expected {len(positions)} tab-separated fields, got {len(fields)}")
    if check_encoding and undecodable_text("\t".join(fields)):
        raise RowError("<encoding>", "invalid UTF-8 bytes in the record")
    record = {name: fields[positions[name]] or None for name in kinds}
    return record | _checked(record, kinds, filled)


def _typed(table: pl.DataFrame, kinds: dict[str, str]) -> pl.DataFrame:
    """The checked columns in their table types; text HTML-unescaped, token_seq parsed (module docstring).

    Text and token_seq values are converted in plain Python once per distinct value (for text, only the values
    holding "&"). Category lists repeat a lot (245 distinct in 12,101 Beauty items), so this costs far less than
    one call per row. Two polars queries do the rest, whatever the number of columns.
    """
    converted = [name for name, kind in kinds.items() if kind in ("text", "seq")]
    distinct = {}
    if converted:
        distinct = table.select(_distinct(name, kinds[name]).implode() for name in converted).row(0, named=True)
    parsed = {
        name: pl.Series([_token_names(value) for value in distinct[name]], dtype=pl.List(pl.String))
        for name in converted
        if kinds[name] == "seq"
    }
    typed = table.with_columns(
        _typed_expr(name, kind, distinct.get(name, [])) for name, kind in kinds.items() if kind != "id"
    )
    return typed.with_columns(values.gather(typed[name]).fill_null([]).alias(name) for name, values in parsed.items())


def _distinct(name: str, kind: str) -> pl.Expr:
    value = pl.col(name)
    if kind == "text":
        value = value.filter(value.str.contains("&", literal=True))
    return value.drop_nulls().unique(maintain_order=True)


def _typed_expr(name: str, kind: str, distinct: list[str]) -> pl.Expr:
    """The table type of one column; a token_seq column becomes the index of its value in ``distinct``."""
    value = pl.col(name)
    if kind == "int":
        return value.cast(pl.Int64)
    if kind == "text":
        return value.replace(distinct, [html.unescape(text) for text in distinct]) if distinct else value
    if kind == "seq":
        return value.replace_strict(distinct, range(len(distinct)), default=None, return_dtype=pl.UInt32)
    return value


def _token_names(value: str) -> list[str]:
    """A token_seq value as names: quoted (Amazon: ``'Beauty', ""Women's""``) or space-separated tokens."""
    if value[0] in "'\"":
        return [html.unescape(name[1:-1]) for name in _QUOTED_NAME.findall(value)]
    return value.split()


def _first_row_per_key(path: Path, table: pl.DataFrame, key: str, rejects: RejectLog, source: _Source) -> pl.DataFrame:
    """Keep the first row of each ``key`` (item_id keys the items table); later rows are rejected, not lost."""
    first = pl.col(key).is_first_distinct()
    for record in table.filter(~first).iter_rows(named=True):
        reason = f"repeated {key} {record[key]!r} with other values; its first row is kept"
        rejects.add(path, record["line"], key, reason, source.raw(record["line"], record["span"]))
    return table.filter(first)
