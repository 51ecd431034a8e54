"""Raw Amazon 2014 (McAuley) files: ``reviews_<Category>_5.json`` and ``meta_<Category>.json`` (either may be .gz).

- Reviews are strict JSON lines: reviewerID, asin, overall (rating), unixReviewTime and review text that the
  interactions table does not keep.
- Meta lines are each ONE PYTHON DICT LITERAL (single quotes, ``u''`` strings), parsed with `ast.literal_eval`,
  which evaluates literals only and never code. ``categories`` is a list of breadcrumbs: the first becomes
  ``categories``, and all of them are kept as attribute ``category_paths`` when there is more than one.
  salesRank, related, imUrl and any other field go into ``attributes`` under their source names.
Text (title, description, brand, category names) is HTML-unescaped: the scraped meta keeps ``&amp;`` and
``&#39;``, and the embedding model should see the characters.
"""

from __future__ import annotations

import ast
import html
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from ops.ingest.errors import RowError
from ops.ingest.fields import get_float, get_id, get_int, get_str
from ops.ingest.frames import attributes_json, has_text_expr, items_frame, with_missing_items
from ops.ingest.lines import decode_utf8, iter_parsed_lines
from ops.ingest.readers.amazon2018 import Review, read_reviews
from ops.ingest.rejects import RejectLog
from ops.ingest.result import ReaderResult

SOURCE = "amazon2014"
_ITEM_FIELDS = ("asin", "title", "description", "brand", "categories", "price")


def read_amazon2014(reviews: Path, meta: Path | None = None) -> ReaderResult:
    """Interactions in file order (the official files are sorted by asin, not time) and the meta catalogue.

    Repeated reviews are dropped and counted as in the 2018 reader (`read_reviews`: same user, item, text, time).
    The items table holds every meta record plus a text-less placeholder for each reviewed item that the meta
    lacks (all of them without ``meta``), counted as ``textless_items``. A repeated meta asin is rejected;
    its first record is kept.
    """
    rejects = RejectLog()
    interactions, duplicates = read_reviews(Path(reviews), rejects, _review)
    catalogue = _catalogue(Path(meta), rejects) if meta is not None else items_frame([])
    items, textless = with_missing_items(catalogue, interactions, SOURCE)
    counters = {"duplicate_reviews_dropped": duplicates, "textless_items": textless}
    return ReaderResult(items, interactions, rejects, counters=counters)


def _review(record: dict[str, Any]) -> Review:
    return Review(
        user_id=get_id(record, "reviewerID"),
        item_id=get_id(record, "asin"),
        timestamp=get_int(record, "unixReviewTime"),
        rating=get_float(record, "overall"),
        text=get_str(record, "reviewText"),
    )


def _catalogue(path: Path, rejects: RejectLog) -> pl.DataFrame:
    rows = iter_parsed_lines(path, rejects, partial(_meta_item, seen=set()))
    return items_frame(rows).with_columns(has_text_expr().alias("has_text"))


def _meta_item(line: bytes, seen: set[str]) -> dict[str, Any]:
    """One meta line as an ITEMS row; ``seen`` holds the asins read so far (a repeat is refused)."""
    record = _python_literal(line)
    asin = get_id(record, "asin")
    if asin in seen:
        raise RowError("asin", f"duplicate asin {asin!r}; its first record is kept")
    paths = _category_paths(record)
    attributes = {key: value for key, value in record.items() if key not in _ITEM_FIELDS}
    if len(paths) > 1:
        attributes["category_paths"] = paths
    row = {
        "item_id": asin,
        "title": _unescaped(get_str(record, "title")),
        "description": _unescaped(get_str(record, "description")),
        "brand": _unescaped(get_str(record, "brand")),
        "categories": paths[0] if paths else [],
        "price": get_float(record, "price"),
        "attributes": attributes_json(attributes),
        "source": SOURCE,
    }
    seen.add(asin)
    return row


def _python_literal(line: bytes) -> dict[str, Any]:
    try:
        text = decode_utf8(line)
    except UnicodeDecodeError as error:
        raise RowError("<encoding>", f"invalid UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        record = ast.literal_eval(text)
    except SyntaxError as error:
        raise RowError("<record>", f"Python literal parse error: {error.msg} at column {error.offset}") from None
    except (ValueError, TypeError, MemoryError, RecursionError) as error:
        # the message of a ValueError names an AST node by its memory address: keep the reason deterministic
        raise RowError("<record>", f"not a Python literal ({type(error).__name__}): code is never evaluated") from None
    if not isinstance(record, dict):
        raise RowError("<record>", f"expected a dict literal, got {type(record).__name__}")
    return record


def _category_paths(record: dict[str, Any]) -> list[list[str]]:
    """The ``categories`` breadcrumbs, names HTML-unescaped."""
    paths = record.get("categories") or []
    if not isinstance(paths, list) or not all(
        isinstance(path, list) and all(isinstance(name, str) for name in path) for path in paths
    ):
        raise RowError("categories", f"expected a list of category lists, got {paths!r:.60}")
    return [[html.unescape(name) for name in path] for path in paths]


def _unescaped(text: str | None) -> str | None:
    """HTML-unescaped text; None for a missing or blank field."""
    return html.unescape(text) if text and text.strip() else None
