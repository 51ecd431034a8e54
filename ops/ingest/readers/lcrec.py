"""LC-Rec / LETTER processed Amazon files: ``<Name>.inter.json`` and ``<Name>.item.json``.

- ``inter.json``: ``{"<user idx>": [item idx, ...]}``, 0-based ints, each user's items in time order.
- ``item.json``: ``{"<item idx>": {"title", "description", "brand", "categories"}}``. ``categories`` is the
  breadcrumb joined with "," and no space. It is split only on commas that are not followed by a space, so
  names such as "Creams, Gels & Lotions" keep their own ", ".
The ids are the indices as strings, because the format keeps no raw ASIN. Text is used as written: the
producer already ran ``html.unescape`` and stripped tags, and a second unescape would turn a literal "&amp;"
into "&". Two producer artefacts mean "no text":
- its ``clean_text`` turns empty text into ".", so a field that is only dots counts as missing;
- an item whose meta had neither title nor description gets the placeholders ``title_<idx+1>`` and
  ``description_<idx+1>``. Such items keep no title or description (counter ``placeholder_text_items``).
A key named twice in one object (a user, an item, or a field of an item) is a reject, never a silent overwrite.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from ops.ingest.errors import RowError
from ops.ingest.fields import get_id, get_int, get_int_list, get_str
from ops.ingest.frames import attributes_json, has_text_expr, interactions_frame, items_frame, with_missing_items
from ops.ingest.lines import iter_object_rows, load_json_object
from ops.ingest.rejects import RejectLog
from ops.ingest.result import ReaderResult

SOURCE = "lcrec"
_TEXT_FIELDS = ("title", "description", "brand", "categories")
_BREADCRUMB_SEPARATOR = re.compile(r",(?!\s)")


def read_lcrec(inter_json: Path, item_json: Path) -> ReaderResult:
    """Interactions in each user's order, and the items of ``item_json``.

    Items that ``inter_json`` uses but ``item_json`` lacks get text-less placeholders (counter ``textless_items``).
    """
    rejects = RejectLog()
    interactions = _interactions(Path(inter_json), rejects)
    catalogue, placeholders = _items(Path(item_json), rejects)
    items, textless = with_missing_items(catalogue, interactions, SOURCE)
    counters = {"textless_items": textless, "placeholder_text_items": placeholders}
    return ReaderResult(items, interactions, rejects, counters=counters)


def _interactions(path: Path, rejects: RejectLog) -> pl.DataFrame:
    document, clean = load_json_object(path, rejects)
    user_ids: list[str] = []
    item_ids: list[str] = []
    for user, items in iter_object_rows(path, document, clean, rejects, "user_id", _user_sequence):
        user_ids.extend([user] * len(items))
        item_ids.extend(items)
    return interactions_frame(user_ids, item_ids)


def _user_sequence(key: str, value: Any) -> tuple[str, list[str]]:
    """One ``"<user idx>": [item idx, ...]`` entry as string ids."""
    user = _index({"user_id": key}, "user_id")
    items = get_int_list({"item_ids": value}, "item_ids")
    if not items:
        raise RowError("item_ids", "the user has no items")
    if min(items) < 0:
        raise RowError("item_ids", f"negative item index {min(items)}")
    return user, [str(item) for item in items]


def _index(record: dict[str, Any], field: str) -> str:
    """A 0-based index, as the canonical decimal string the other file uses for the same id."""
    get_id(record, field)  # a NUL or other control character is refused as such, not as "not a number"
    index = get_int(record, field, required=True)
    if index < 0:
        raise RowError(field, f"negative index {index}")
    return str(index)


def _items(path: Path, rejects: RejectLog) -> tuple[pl.DataFrame, int]:
    """The items table and the number of items whose text was the producer's placeholder."""
    document, clean = load_json_object(path, rejects)
    rows = list(iter_object_rows(path, document, clean, rejects, "item_id", _item))
    items = items_frame(row for row, _ in rows).with_columns(has_text_expr().alias("has_text"))
    return items, sum(placeholder for _, placeholder in rows)


def _item(key: str, value: Any) -> tuple[dict[str, Any], bool]:
    """One item entry as an ITEMS row, and whether its title/description were placeholders."""
    item_id = _index({"item_id": key}, "item_id")
    if not isinstance(value, dict):
        raise RowError("<record>", f"expected a JSON object, got {type(value).__name__}")
    text = {field: _text(get_str(value, field)) for field in _TEXT_FIELDS}
    number = int(item_id) + 1
    placeholder = (text["title"], text["description"]) == (f"title_{number}", f"description_{number}")
    if placeholder:
        text["title"] = text["description"] = None
    row = {
        "item_id": item_id,
        **text,
        "categories": _breadcrumb(text["categories"]),
        "attributes": attributes_json({k: v for k, v in value.items() if k not in _TEXT_FIELDS}),
        "source": SOURCE,
    }
    return row, placeholder


def _text(value: str | None) -> str | None:
    """None for a missing field, and for the "." that the producer writes in place of empty text."""
    if value is None or not value.strip().strip("."):
        return None
    return value


def _breadcrumb(categories: str | None) -> list[str]:
    if categories is None:
        return []
    return [name.strip() for name in _BREADCRUMB_SEPARATOR.split(categories) if name.strip()]
