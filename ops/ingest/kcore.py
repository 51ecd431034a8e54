"""Iterative k-core filtering: keep users and items with at least k interactions, until nothing changes."""

from __future__ import annotations

import polars as pl

from ops.ingest.normalize import Tables, users_of, with_positions


def kcore_interactions(interactions: pl.DataFrame, k: int) -> tuple[pl.DataFrame, int]:
    """Return the k-core of ``interactions`` and the number of filtering rounds it took.

    Dropping a user can push an item under k and vice versa, so both filters repeat until a fixed point.
    Every interaction row counts (a repeated purchase counts twice), as in the 5-core files of the sources.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    current = interactions
    rounds = 0
    while True:
        rounds += 1
        kept = current.filter((pl.len().over("user_id") >= k) & (pl.len().over("item_id") >= k))
        if kept.height == current.height:
            return kept, rounds
        current = kept


def kcore_tables(tables: Tables, k: int) -> tuple[Tables, int]:
    """Apply the k-core to every table of a data set, so the k-core folder holds the same tables after the filter.

    Positions are renumbered, users recomputed, items restricted to the survivors, and impression rows (MIND)
    kept only where both their user and their item survived; a kept row keeps its ``slot`` (its place in the list
    as shown), so an impression may lose some of its slots. A catalogue-only data set (no interactions, e.g. a
    meta file) keeps all its items.
    """
    interactions, rounds = kcore_interactions(tables.interactions, k)
    interactions = with_positions(interactions)
    users = users_of(interactions)
    items = tables.items
    if tables.interactions.height:
        items = items.filter(pl.col("item_id").is_in(interactions["item_id"].unique().implode()))
    impressions = tables.impressions
    if impressions is not None:
        impressions = impressions.filter(
            pl.col("user_id").is_in(users["user_id"].implode()) & pl.col("item_id").is_in(items["item_id"].implode())
        )
    filtered = Tables(
        items=items,
        users=users,
        interactions=interactions,
        rejects=tables.rejects,
        impressions=impressions,
    )
    return filtered, rounds
