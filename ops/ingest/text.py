"""Clean scraped text columns (vectorized): HTML entities and tags out, whitespace collapsed, junk to null."""

from __future__ import annotations

import html
from collections.abc import Sequence

import polars as pl

# Whole tags, a tag cut off at the end of a value, and the tail of one cut off at its start (`"a-color" />`).
_MARKUP = r"<[A-Za-z/!?][^<>]*>|<[A-Za-z/!?][^<>]*$|^[^<>]*[\"']\s*/?>"
_SPACES = r"\s\s+|[^\S ]"  # runs of whitespace and lone tabs/newlines; 4x faster than \s+ on long text
_DIRTY = r"[<>&]|\s\s|[^\S ]"  # a value that may hold markup, entities or whitespace to collapse


def strip_html(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """Plain text from scraped HTML in String and List(String) ``columns``.

    Entities are decoded, then tags removed, including the half tags a scraper leaves at either end of a value
    (most 2018 Amazon Magazine "titles" are only ``<span class="a-size-medium a-color-secondary"``), then
    whitespace collapsed. Decoding first also removes markup that was escaped twice (``&lt;br&gt;``). A value left
    with no letter or digit becomes null (and is dropped from its list), so junk never passes for text downstream.

    Scraped catalogues repeat the same brands, categories and boilerplate, so each distinct value is cleaned once
    and mapped back: cheaper than cleaning every cell, and the list columns need no per-element evaluation.
    """
    raw = pl.concat([_values(frame, name) for name in columns]).drop_nulls().unique()
    clean = _clean(raw)

    def mapped(name: str) -> pl.Expr:
        if isinstance(frame.schema[name], pl.List):
            return pl.col(name).list.eval(pl.element().replace_strict(raw, clean, default=None)).list.drop_nulls()
        return pl.col(name).replace_strict(raw, clean, default=None)

    return frame.with_columns(mapped(name) for name in columns)


def _values(frame: pl.DataFrame, name: str) -> pl.Series:
    column = frame[name]
    return column.explode() if isinstance(column.dtype, pl.List) else column


def _clean(values: pl.Series) -> pl.Series:
    """Clean distinct values; only those that show markup, entities or odd whitespace go through the regexes."""
    dirty = values.str.contains(_DIRTY)
    text = values.str.strip_chars().scatter(dirty.arg_true(), _untag(values.filter(dirty)))
    return pl.select(pl.when(text.str.contains(r"[\p{L}\p{N}]")).then(text)).to_series()


def _untag(values: pl.Series) -> pl.Series:
    escaped = values.filter(values.str.contains("&", literal=True))
    text = values.replace(escaped, pl.Series([html.unescape(value) for value in escaped], dtype=pl.String))
    return collapse_spaces(text.str.replace_all(_MARKUP, " "))


def collapse_spaces(text: pl.Expr | pl.Series) -> pl.Expr | pl.Series:
    """Whitespace runs, tabs and newlines become one space; no space at either end."""
    return text.str.replace_all(_SPACES, " ").str.strip_chars()


def nonblank_text(column: str) -> pl.Expr:
    """The column with whitespace collapsed; null where nothing is left (an empty TSV/CSV field means no text)."""
    text = collapse_spaces(pl.col(column))
    return pl.when(text != "").then(text)
