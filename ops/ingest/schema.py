"""The normalized schema every reader produces: the one place where table layouts are defined.

| table          | one row per                      | key                          |
|----------------|----------------------------------|------------------------------|
| `items`        | catalogue item                   | `item_id`                    |
| `users`        | user with >= 1 interaction       | `user_id`                    |
| `interactions` | (user, item) event, in order     | (`user_id`, `position`)      |
| `impressions`  | shown item in an impression (MIND) | (`impression_id`, `slot`)  |
| `rejects`      | raw row a reader refused         | (`file`, `line`)             |

Ids are strings everywhere (raw ASINs, reviewerIDs, news ids, zero-padded H&M article ids), so tables from
different releases join without remapping. Timestamps are unix seconds (UTC) and nullable: sequence-only
derivatives (S3-Rec/P5 `Beauty.txt`) carry order but no time. `position` is the 0-based rank of an
interaction in its user's history (time, then file order), which is what leave-one-out splits use.
"""

from __future__ import annotations

import polars as pl

ITEMS = pl.Schema(
    {
        "item_id": pl.String,
        "title": pl.String,  # null when the source has none
        "description": pl.String,  # free text joined from the source's description fields
        "brand": pl.String,
        "categories": pl.List(pl.String),  # breadcrumb, most general first; [] when unknown
        "price": pl.Float64,
        "attributes": pl.String,  # JSON object of every other source field worth keeping (sorted keys)
        "has_text": pl.Boolean,  # False for items referenced by interactions but missing from the catalogue
        "source": pl.String,  # reader that produced the row, e.g. "amazon2018"
    }
)

# What a reader emits for interactions; `position` is added by `normalize.build_tables`.
RAW_INTERACTIONS = pl.Schema(
    {
        "user_id": pl.String,
        "item_id": pl.String,
        "timestamp": pl.Int64,  # unix seconds, null when the source has only order
        "rating": pl.Float32,  # null for implicit feedback
    }
)

INTERACTIONS = pl.Schema({**RAW_INTERACTIONS, "position": pl.Int32})

USERS = pl.Schema(
    {
        "user_id": pl.String,
        "n_interactions": pl.UInt32,
    }
)

IMPRESSIONS = pl.Schema(
    {
        "impression_id": pl.String,
        "user_id": pl.String,
        "timestamp": pl.Int64,
        "slot": pl.Int32,  # 0-based place of the item in the impression list
        "item_id": pl.String,
        "clicked": pl.Boolean,
    }
)

REJECTS = pl.Schema(
    {
        "file": pl.String,
        "line": pl.Int64,  # 1-based physical line (or record) number in the file
        "field": pl.String,
        "reason": pl.String,
        "raw": pl.String,  # the raw text of the row, decoded with errors replaced
    }
)

SPLIT = pl.Enum(["train", "valid", "test"])


def empty(schema: pl.Schema) -> pl.DataFrame:
    """An empty frame of ``schema`` (readers with no interactions, e.g. a meta-only file)."""
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: pl.Schema, table: str) -> pl.DataFrame:
    """Select and cast ``frame`` to ``schema`` exactly, failing loudly on a missing column."""
    missing = [name for name in schema if name not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing columns {missing}")
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
