"""Build normalized frames from the plain Python rows that readers collect."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import polars as pl

from ops.ingest.schema import IMPRESSIONS, ITEMS, RAW_INTERACTIONS


def first_of_each(frame: pl.DataFrame, key: Sequence[str]) -> tuple[pl.DataFrame, int]:
    """The first row of each distinct ``key`` (file order kept), and how many later rows were dropped.

    The one way readers drop repeats (exact duplicate rows, reviews copied onto product variants, repeated
    catalogue records); the count goes to the reader's counters, and from there to the manifest.
    """
    kept = frame.unique(list(key), keep="first", maintain_order=True)
    return kept, frame.height - kept.height


def attributes_json(attributes: Mapping[str, Any]) -> str:
    """Canonical JSON (sorted keys, no empty values) so identical input gives identical bytes.

    orjson writes the same bytes as ``json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))``
    for strings, lists, dicts, ints and bools, three times faster: on Amazon meta (long ``also_buy`` lists) the
    stdlib encoder cost more than parsing the file. Floats use the shortest round-trip form (as `attributes_expr`).
    """
    kept = {key: value for key, value in attributes.items() if value not in (None, "", [], {})}
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def items_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Items from dict rows with the keys of `schema.ITEMS`; missing keys become nulls ([] for categories)."""
    columns: dict[str, list[Any]] = {name: [] for name in ITEMS}
    for row in rows:
        for name in ITEMS:
            value = row.get(name)
            if name == "categories" and value is None:
                value = []
            columns[name].append(value)
    return pl.DataFrame(columns, schema=ITEMS)


def missing_items_frame(item_ids: Sequence[str], source: str) -> pl.DataFrame:
    """Placeholder rows for items that interactions reference but the catalogue lacks: kept, flagged text-less.

    Built column-wise: MIND references ~20 times more news than its news.tsv holds, and a row loop over them cost
    more than reading both files.
    """
    placeholder = {"categories": [], "attributes": "{}", "has_text": False, "source": source}
    ids = pl.DataFrame({"item_id": item_ids}, schema={"item_id": pl.String})
    return ids.select(
        pl.col("item_id"),
        *(pl.lit(placeholder.get(name), dtype).alias(name) for name, dtype in ITEMS.items() if name != "item_id"),
    )


def interactions_frame(
    user_ids: Sequence[str],
    item_ids: Sequence[str],
    timestamps: Sequence[int | None] | None = None,
    ratings: Sequence[float | None] | None = None,
) -> pl.DataFrame:
    """Raw interactions from parallel columns; absent timestamps/ratings are all-null."""
    n = len(user_ids)
    return pl.DataFrame(
        {
            "user_id": user_ids,
            "item_id": item_ids,
            "timestamp": timestamps if timestamps is not None else [None] * n,
            "rating": ratings if ratings is not None else [None] * n,
        },
        schema=RAW_INTERACTIONS,
    )


def impressions_frame(columns: Mapping[str, Sequence[Any]]) -> pl.DataFrame:
    return pl.DataFrame(dict(columns), schema=IMPRESSIONS)


def attributes_expr(schema: pl.Schema) -> pl.Expr:
    """Vectorized `attributes_json` over the columns of ``schema`` (same keys, same empty-value rule).

    Readers that hold the extra fields as typed columns use this instead of one `json.dumps` per row, which costs
    more than parsing the file. Strings and lists encode byte-for-byte as `attributes_json` does; floats use
    the shortest round-trip form, which differs only in exponent spelling (``1e-7`` vs ``1e-07``).
    """
    pieces = []
    for name in sorted(schema):
        column = pl.col(name)
        present = column.is_not_null()
        if schema[name] == pl.String:
            present &= column != ""
        elif isinstance(schema[name], pl.List):
            present &= column.list.len() > 0
        encoded = pl.struct(column).struct.json_encode().str.strip_prefix("{").str.strip_suffix("}")
        pieces.append(pl.when(present).then(encoded))
    if not pieces:
        return pl.lit("{}")
    body = pl.concat_str(pieces, separator=",", ignore_nulls=True)
    return pl.concat_str([pl.lit("{"), body, pl.lit("}")])


def has_text_expr() -> pl.Expr:
    """True when an item has any text to embed: a title, description, brand or category."""
    return (
        pl.col("title").str.contains(r"\S").fill_null(False)
        | pl.col("description").str.contains(r"\S").fill_null(False)
        | pl.col("brand").str.contains(r"\S").fill_null(False)
        | pl.col("categories").list.len().fill_null(0).gt(0)
    )


def with_missing_items(items: pl.DataFrame, interactions: pl.DataFrame, source: str) -> tuple[pl.DataFrame, int]:
    """Append text-less placeholders for items the interactions reference but ``items`` lacks (first-seen order).

    Returns the items and the number of placeholders, which readers report as the ``textless_items`` counter.
    """
    referenced = interactions["item_id"].unique(maintain_order=True)
    missing = referenced.filter(~referenced.is_in(items["item_id"].implode()))
    if missing.is_empty():
        return items, 0
    return pl.concat([items, missing_items_frame(missing, source)], how="vertical_relaxed"), len(missing)
