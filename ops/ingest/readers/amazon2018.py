"""Amazon Review Data (2018): ``<Category>_5.json.gz`` reviews and ``meta_<Category>.json.gz`` item metadata.

Reviews -> interactions (reviewerID, asin, unixReviewTime, overall), in file order. The 5-core files repeat some
reviews once per ``style`` variant (one review attached to each size or colour of a product). A review is
identified by (reviewerID, asin, reviewText, unixReviewTime), the key that reproduces the release's duplicate
counts (All_Beauty 1,053, AMAZON_FASHION 89, Magazine_Subscriptions 44, Gift_Cards 0); the first copy is kept.
Without the text, distinct reviews of one day would merge; adding summary or vote would keep copies whose
helpful-vote count was scraped at another time.

Meta -> items (`read_catalogue`, shared with the 2023 reader):
- The meta file repeats records (Magazine: 3,385 lines, 2,320 asins): the first record of each asin wins.
- title, brand, category and description are scraped text: tags are stripped (also the half tags that most
  Magazine "titles" consist of), entities decoded, whitespace collapsed (`text.strip_html`). A title with no
  letter or digit left is null rather than junk, so item text falls back on description and categories; the
  ``titles_without_text`` counter says how many.
- description = the ``description`` paragraphs, then the ``feature`` bullets, one per line.
- price ``"$25.00"`` -> 25.0. A price that is not a plain amount (CSS scraped into the field) is null and its raw
  value is kept as ``price_raw`` in attributes: it is real data, not a broken row (counter ``prices_unparsed``).
- Images: the 2020 release's ``image`` list is the 2021 release's ``imageURL`` (the same thumbnails), so it is
  stored as ``imageURL``; ``imageURLHighRes`` (2021 only) is kept as is. Both releases give the same items but
  for that one key.
- Every other field (main_cat, rank, also_buy, also_view, details, ...) goes to ``attributes`` unchanged.
Reviewed asins without a meta record (or all of them, without a meta file) become text-less placeholder items.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import polars as pl
import pyarrow as pa

from ops.ingest.fields import get_float, get_id, get_int, get_str, get_str_list, parse_price
from ops.ingest.frames import attributes_json, has_text_expr, interactions_frame, with_missing_items
from ops.ingest.rejects import RejectLog
from ops.ingest.result import ReaderResult
from ops.ingest.schema import ITEMS, conform, empty
from ops.ingest.streaming import iter_json_chunks
from ops.ingest.text import strip_html

SOURCE = "amazon2018"

_MAPPED_META_FIELDS = frozenset({"asin", "title", "brand", "category", "description", "feature", "price", "image"})


class Review(NamedTuple):
    user_id: str
    item_id: str
    timestamp: int | None  # required in 2018/2023, optional in 2014
    rating: float | None
    text: str | None  # only for telling repeated reviews apart


class CatalogueRow(NamedTuple):
    """One meta record, parsed but not yet cleaned (cleaning is vectorized over the whole catalogue)."""

    item_id: str
    title: str | None
    brand: str | None
    categories: list[str]
    paragraphs: list[str]  # joined into ``description`` after cleaning
    price: float | None
    attributes: dict[str, Any]


def read_amazon2018(reviews: Path, meta: Path | None = None) -> ReaderResult:
    """Interactions from a 5-core reviews file; items from its meta file, or text-less placeholders without one."""
    rejects = RejectLog()
    interactions, duplicate_reviews = read_reviews(Path(reviews), rejects, _review)
    if meta is None:
        items, counters = empty(ITEMS), {}
    else:
        items, counters = read_catalogue(Path(meta), rejects, _catalogue_row, SOURCE)
    items, textless = with_missing_items(items, interactions, SOURCE)
    counters |= {"duplicate_reviews_dropped": duplicate_reviews, "textless_items": textless}
    return ReaderResult(items=items, interactions=interactions, rejects=rejects, counters=counters)


def read_reviews(path: Path, rejects: RejectLog, parse: Callable[[dict[str, Any]], Review]) -> tuple[pl.DataFrame, int]:
    """Interactions in file order without repeated reviews, and how many repeats were dropped.

    A review is (user, item, text, time): the same person's same words on the same item at the same moment are
    one review, however many product variants it was copied onto (and a file appended to itself adds nothing).
    The file is read in chunks (`streaming.iter_json_chunks`) and each review kept as its interaction plus a
    128-bit digest of that key, so memory grows with the interactions table, not with the file (reviews are
    mostly text): 1M generated 2023 reviews (444 MB) peak at ~0.36 GiB instead of 1.6 GiB.
    """
    frames = [_reviews_frame(chunk) for chunk in iter_json_chunks(path, rejects, parse)]
    frame = pl.concat(frames) if frames else _reviews_frame([])
    unique = frame.filter(pl.col("review_key").is_first_distinct())
    return unique.drop("review_key"), frame.height - unique.height


def _reviews_frame(reviews: list[Review]) -> pl.DataFrame:
    """One chunk of reviews as interactions plus ``review_key``, the digest of (user, item, time, text)."""
    users, items, timestamps, ratings, _ = zip(*reviews, strict=True) if reviews else ([], [], [], [], [])
    keys = [_review_key(review) for review in reviews]
    return interactions_frame(users, items, timestamps, ratings).with_columns(
        review_key=pl.Series(keys, dtype=pl.Binary)
    )


def _review_key(review: Review) -> bytes:
    """16 bytes that differ for reviews that differ in user, item, time or text (JSON keeps null apart from "")."""
    identity = orjson.dumps([review.user_id, review.item_id, review.timestamp, review.text])
    return hashlib.blake2b(identity, digest_size=16).digest()


def _review(record: dict[str, Any]) -> Review:
    return Review(
        user_id=get_id(record, "reviewerID"),
        item_id=get_id(record, "asin"),
        timestamp=get_int(record, "unixReviewTime", required=True),
        rating=get_float(record, "overall", required=True),
        text=get_str(record, "reviewText"),
    )


def _catalogue_row(record: dict[str, Any]) -> CatalogueRow:
    attributes = extra_fields(record, _MAPPED_META_FIELDS)
    if "image" in record:  # 2020 release: same thumbnails as the 2021 release's imageURL
        attributes["imageURL"] = get_str_list(record, "image")
    return CatalogueRow(
        item_id=get_id(record, "asin"),
        title=get_str(record, "title"),
        brand=get_str(record, "brand"),
        categories=get_str_list(record, "category"),
        paragraphs=get_str_list(record, "description") + get_str_list(record, "feature"),
        price=price_with_raw(record, "price", attributes),
        attributes=attributes,
    )


def extra_fields(record: dict[str, Any], mapped: frozenset[str]) -> dict[str, Any]:
    """The fields of ``record`` that have no column of their own: they go to ``attributes`` unchanged."""
    extra = dict(record)
    for key in mapped:
        extra.pop(key, None)
    return extra


def price_with_raw(record: dict[str, Any], field: str, attributes: dict[str, Any]) -> float | None:
    """`parse_price` of ``record[field]``; a value it cannot read is kept as ``price_raw`` in ``attributes``."""
    raw = record.get(field)
    price = parse_price(raw)
    if price is None and raw not in (None, ""):
        attributes["price_raw"] = raw
    return price


def read_catalogue(
    path: Path, rejects: RejectLog, parse: Callable[[dict[str, Any]], CatalogueRow], source: str
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Items from a JSON-lines catalogue: first record per item id, scraped text cleaned, and named counters.

    Read and cleaned chunk by chunk (`streaming.iter_json_chunks`): only the item ids seen so far and the cleaned
    items are held, never the whole file or its parsed records.
    """
    seen: set[str] = set()
    parts: list[pl.DataFrame] = []
    n_records, titles_without_text, prices_unparsed = 0, 0, 0
    for chunk in iter_json_chunks(path, rejects, parse):
        n_records += len(chunk)
        rows = []
        for row in chunk:
            if row.item_id not in seen:
                seen.add(row.item_id)
                rows.append(row)
        raw, items = _catalogue_frame(rows, source)
        parts.append(items)
        titles_without_text += ((raw["title"].str.strip_chars() != "") & items["title"].is_null()).sum()
        prices_unparsed += sum("price_raw" in row.attributes for row in rows)
    items = pl.concat(parts) if parts else _catalogue_frame([], source)[1]
    counters = {
        "duplicate_items_dropped": n_records - items.height,
        "titles_without_text": titles_without_text,
        "prices_unparsed": prices_unparsed,
    }
    return items, counters


def _catalogue_frame(rows: list[CatalogueRow], source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The raw and the cleaned items of some catalogue rows (the raw titles tell which cleaning emptied)."""
    texts, lists = pa.string(), pa.list_(pa.string())
    raw = pl.from_arrow(  # pyarrow builds nested columns from Python lists ~10x faster than the polars constructor
        pa.table(
            {
                "item_id": pa.array([row.item_id for row in rows], texts),
                "title": pa.array([row.title for row in rows], texts),
                "brand": pa.array([row.brand for row in rows], texts),
                "categories": pa.array([row.categories for row in rows], lists),
                "description": pa.array([row.paragraphs for row in rows], lists),
                "price": pa.array([row.price for row in rows], pa.float64()),
                "attributes": pa.array([attributes_json(row.attributes) for row in rows], texts),
            }
        )
    )
    items = strip_html(raw, ["title", "brand", "categories", "description"]).with_columns(
        description=pl.col("description").list.join("\n").replace("", None),
        source=pl.lit(source),
    )
    return raw, conform(items.with_columns(has_text=has_text_expr()), ITEMS, "items")
