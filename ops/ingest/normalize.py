"""Reader output -> the normalized tables: order interactions into positions, derive users, sort for stable bytes."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ops.ingest.result import ReaderResult
from ops.ingest.schema import IMPRESSIONS, INTERACTIONS, ITEMS, REJECTS, USERS, conform


@dataclass
class Tables:
    """The normalized tables of one data set (`schema` documents each)."""

    items: pl.DataFrame
    users: pl.DataFrame
    interactions: pl.DataFrame
    rejects: pl.DataFrame
    impressions: pl.DataFrame | None = None

    def frames(self) -> dict[str, pl.DataFrame]:
        """Name -> frame for every table present, as written to disk."""
        frames = {
            "items": self.items,
            "users": self.users,
            "interactions": self.interactions,
            "rejects": self.rejects,
        }
        if self.impressions is not None:
            frames["impressions"] = self.impressions
        return frames


def with_positions(interactions: pl.DataFrame) -> pl.DataFrame:
    """Sort by (user, time, source order) and number each user's interactions 0..n-1.

    Null timestamps sort first: for MIND the undated history precedes the dated clicks, and for sequence-only
    sources (all null) the source order is the order. The sort is stable, so ties keep file order.
    """
    ordered = (
        interactions.drop("position", strict=False)
        .with_row_index("_source_order")
        .sort(["user_id", "timestamp", "_source_order"], nulls_last=False, maintain_order=True)
    )
    ordered = ordered.with_columns(pl.int_range(pl.len()).over("user_id").cast(pl.Int32).alias("position"))
    return conform(ordered, INTERACTIONS, "interactions")


def users_of(interactions: pl.DataFrame) -> pl.DataFrame:
    users = (
        interactions.group_by("user_id")
        .agg(pl.len().cast(pl.UInt32).alias("n_interactions"))
        .sort("user_id")
    )
    return conform(users, USERS, "users")


def build_tables(result: ReaderResult) -> Tables:
    """Normalize one reader's output; every table is sorted so identical input gives identical bytes."""
    impressions = None
    if result.impressions is not None:
        impressions = conform(result.impressions.sort(["impression_id", "slot"]), IMPRESSIONS, "impressions")
    interactions = with_positions(result.interactions)
    return Tables(
        items=conform(result.items.sort("item_id"), ITEMS, "items"),
        users=users_of(interactions),
        interactions=interactions,
        rejects=conform(result.rejects.to_frame(), REJECTS, "rejects"),
        impressions=impressions,
    )
