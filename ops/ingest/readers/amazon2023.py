"""Amazon Reviews 2023: ``<Category>.jsonl`` reviews and ``meta_<Category>.jsonl`` item metadata.

The item is the ``parent_asin`` (the product, which the meta file is keyed by); the review's ``asin`` names one
variant of it and is not kept. Reviews -> interactions (user_id, parent_asin, timestamp, rating), timestamps
converted from milliseconds to seconds and repeated reviews dropped as in the 2018 reader (`read_reviews`); both
files are read in bounded-memory chunks, so a category larger than RAM's worth of text ingests.

Meta -> items through the 2018 catalogue machinery (`read_catalogue`: first record per item, scraped text
cleaned): description = ``description`` paragraphs then ``features`` bullets; brand = ``details["Brand"]``, else
the ``store`` name; price is a float or null (anything else is kept as ``price_raw``); every other field
(main_category, average_rating, rating_number, images, videos, store, details, bought_together) goes to
``attributes``. ``categories`` is kept as given, even when empty (as for all of Health_and_Personal_Care):
``main_category`` is a storefront label rather than a breadcrumb, so it stays in attributes.
Either file may be absent: meta alone is a catalogue-only data set; reviews alone give text-less items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ops.ingest.fields import get_float, get_id, get_int, get_str, get_str_list
from ops.ingest.frames import interactions_frame, with_missing_items
from ops.ingest.readers.amazon2018 import (
    CatalogueRow,
    Review,
    extra_fields,
    price_with_raw,
    read_catalogue,
    read_reviews,
)
from ops.ingest.rejects import RejectLog
from ops.ingest.result import ReaderResult
from ops.ingest.schema import ITEMS, empty

SOURCE = "amazon2023"

_MAPPED_META_FIELDS = frozenset({"parent_asin", "title", "categories", "description", "features", "price"})


def read_amazon2023(reviews: Path | None = None, meta: Path | None = None) -> ReaderResult:
    """Interactions from a reviews file and/or items from a meta file (the shared sample is meta only)."""
    if reviews is None and meta is None:
        raise ValueError("read_amazon2023 needs a reviews file, a meta file, or both")
    rejects = RejectLog()
    counters: dict[str, int] = {}
    interactions = interactions_frame([], [])
    if reviews is not None:
        interactions, counters["duplicate_reviews_dropped"] = read_reviews(Path(reviews), rejects, _review)
    items = empty(ITEMS)
    if meta is not None:
        items, meta_counters = read_catalogue(Path(meta), rejects, _catalogue_row, SOURCE)
        counters |= meta_counters
    items, counters["textless_items"] = with_missing_items(items, interactions, SOURCE)
    return ReaderResult(items=items, interactions=interactions, rejects=rejects, counters=counters)


def _review(record: dict[str, Any]) -> Review:
    return Review(
        user_id=get_id(record, "user_id"),
        item_id=get_id(record, "parent_asin"),
        timestamp=get_int(record, "timestamp", required=True) // 1000,  # milliseconds in this release
        rating=get_float(record, "rating", required=True),
        text=get_str(record, "text"),
    )


def _catalogue_row(record: dict[str, Any]) -> CatalogueRow:
    attributes = extra_fields(record, _MAPPED_META_FIELDS)
    return CatalogueRow(
        item_id=get_id(record, "parent_asin"),
        title=get_str(record, "title"),
        brand=_brand(record),
        categories=get_str_list(record, "categories"),
        paragraphs=get_str_list(record, "description") + get_str_list(record, "features"),
        price=price_with_raw(record, "price", attributes),
        attributes=attributes,
    )


def _brand(record: dict[str, Any]) -> str | None:
    details = record.get("details")
    brand = details.get("Brand") if isinstance(details, dict) else None
    return brand if isinstance(brand, str) and brand.strip() else get_str(record, "store")
