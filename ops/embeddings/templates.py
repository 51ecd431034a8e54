"""Item text templates: which fields of the normalized items table make up the text that gets embedded.

A template is a tuple of field names joined by ``"; "``. Empty fields are left out (no ``"; ;"``), whitespace is
collapsed, and an item whose rendered text is empty, or that has ``has_text == False``, is reported as text-less
rather than embedded as an empty string.

Field names:

- ``title``, ``description``, ``brand``: those columns;
- ``categories``: the whole breadcrumb joined with ``", "``;
- ``category`` / ``subcategory``: ``categories[0]`` / ``categories[1]`` (MIND's two levels);
- ``abstract``: the ``description`` column under MIND's name;
- ``attributes.<key>``: a key of the ``attributes`` JSON object (H&M's colour, pattern, product type, ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

SEPARATOR = "; "
ATTRIBUTE_PREFIX = "attributes."
_COLUMN_FIELDS = {"title": "title", "description": "description", "abstract": "description", "brand": "brand"}
_CATEGORY_LEVELS = {"category": 0, "subcategory": 1}


@dataclass(frozen=True)
class TextTemplate:
    name: str  # shown in metadata and part of the cache key
    fields: tuple[str, ...]  # rendered in this order, joined by "; "

    def __post_init__(self) -> None:
        known = {*_COLUMN_FIELDS, *_CATEGORY_LEVELS, "categories"}
        unknown = [f for f in self.fields if f not in known and not f.startswith(ATTRIBUTE_PREFIX)]
        if unknown or not self.fields:
            raise ValueError(f"template {self.name!r}: unknown or no fields {unknown}; known: {sorted(known)}")

    @property
    def identity(self) -> str:
        """The fields, not just the name: editing a template must not reuse vectors of the old text."""
        return f"{self.name}:{SEPARATOR.join(self.fields)}"


# The MoC / TIGER / LC-Rec item text for the Amazon data sets.
AMAZON = TextTemplate("amazon", ("title", "brand", "categories"))
# MIND news: the fields of news.tsv that carry text.
MIND = TextTemplate("mind", ("title", "abstract", "category", "subcategory"))
# H&M articles: product name, breadcrumb, the colour and pattern attributes, then the free-text description.
HM = TextTemplate(
    "hm",
    (
        "title",
        "categories",
        "attributes.colour_group_name",
        "attributes.graphical_appearance_name",
        "description",
    ),
)
TEMPLATES: Mapping[str, TextTemplate] = {t.name: t for t in (AMAZON, MIND, HM)}


def _field(row: Mapping[str, Any], attributes: Mapping[str, Any], field: str) -> str:
    if field in _COLUMN_FIELDS:
        return row[_COLUMN_FIELDS[field]] or ""
    categories = row["categories"] or []
    if field == "categories":
        return ", ".join(c for c in categories if c)
    if field in _CATEGORY_LEVELS:
        level = _CATEGORY_LEVELS[field]
        return categories[level] if len(categories) > level else ""
    value = attributes.get(field.removeprefix(ATTRIBUTE_PREFIX))
    return "" if value is None else str(value)


def field_values(row: Mapping[str, Any], template: TextTemplate) -> list[str]:
    """Each field's text in template order, whitespace collapsed, "" where the item has none (LAMIA reads the
    fields one by one: some make the content, each one a task)."""
    needs_attributes = any(f.startswith(ATTRIBUTE_PREFIX) for f in template.fields)
    attributes = json.loads(row["attributes"] or "{}") if needs_attributes else {}
    return [" ".join(_field(row, attributes, f).split()) for f in template.fields]


def render(row: Mapping[str, Any], template: TextTemplate) -> str:
    """One item's text; "" when the item has none (the caller reports it as text-less)."""
    if not row["has_text"]:
        return ""
    return SEPARATOR.join(p for p in field_values(row, template) if p)


def render_texts(items: pl.DataFrame, template: TextTemplate) -> list[str]:
    """Texts in ``items`` row order ("" for text-less items)."""
    return [render(row, template) for row in items.iter_rows(named=True)]
