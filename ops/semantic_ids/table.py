"""The Semantic-ID table: ``item_id``, ``codes`` (list of ints), ``collision_suffix`` (int).

Items whose whole code tuple is shared get a suffix 0, 1, 2, ... in item-id order (TIGER appends such an
index as an extra ID token), so (codes, suffix) names exactly one item; an item with a unique tuple gets 0.
Rows are sorted by item id, so the same ids and codes always give the same bytes.

A table is extended, never rewritten: items added later get suffixes after the largest one already used by
their tuple, so every existing item keeps its Semantic ID.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from ops.diagnostics.collisions import collision_rate

SCHEMA = pl.Schema({"item_id": pl.String, "codes": pl.List(pl.Int32), "collision_suffix": pl.Int32})


def semantic_id_table(item_ids: Sequence[str], codes: np.ndarray) -> pl.DataFrame:
    """One row per item, sorted by item id; codes (n_items, n_codes), row i for item_ids[i]."""
    return extend_table(pl.DataFrame(schema=SCHEMA), item_ids, codes)


def extend_table(table: pl.DataFrame, item_ids: Sequence[str], codes: np.ndarray) -> pl.DataFrame:
    """``table`` unchanged plus the new items, whose suffixes continue after their tuple's largest one."""
    new = _frame(item_ids, codes)
    if len(table) and len(new) and len(table["codes"][0]) != codes.shape[1]:
        raise ValueError(f"new items have {codes.shape[1]} codes, the table {len(table['codes'][0])}")
    overlap = set(new["item_id"].to_list()) & set(table["item_id"].to_list())
    if overlap or new["item_id"].n_unique() != len(new):
        raise ValueError(f"item ids must be new and unique; already present or repeated: {sorted(overlap)[:5]}")
    groups = _tuple_ids(pl.concat([table["codes"], new["codes"]]))  # (n_old + n_new,) id of each row's code tuple
    old_groups, new_groups = groups[: len(table)], groups[len(table) :]
    next_suffix = np.zeros(groups.max(initial=-1) + 1, dtype=np.int64)  # per tuple: first free suffix
    np.maximum.at(next_suffix, old_groups, table["collision_suffix"].to_numpy().astype(np.int64) + 1)
    ordered = new.with_columns(pl.Series("group", new_groups)).sort("item_id")
    rank = ordered.select(pl.int_range(pl.len()).over("group"))[:, 0].to_numpy()  # (n_new,) 0.. per tuple
    suffix = next_suffix[ordered["group"].to_numpy()] + rank
    added = ordered.with_columns(pl.Series("collision_suffix", suffix, dtype=pl.Int32)).select(SCHEMA.names())
    return pl.concat([table.select(SCHEMA.names()), added]).sort("item_id")


def table_codes(table: pl.DataFrame) -> np.ndarray:
    """The ``codes`` column as an int64 (n_items, n_codes) matrix."""
    if len(table) == 0:
        return np.zeros((0, 0), dtype=np.int64)
    return np.asarray(table["codes"].to_list(), dtype=np.int64)


def collision_report(table: pl.DataFrame) -> dict[str, float | int]:
    """Collision rate of the codes alone and of (codes, suffix) -- the latter is 0 for a valid table."""
    codes = table_codes(table)
    with_suffix = np.column_stack([codes, table["collision_suffix"].to_numpy()]) if len(table) else codes
    return {
        "collision_rate": collision_rate(codes),
        "collision_rate_with_suffix": collision_rate(with_suffix),
        "max_collision_suffix": int(table["collision_suffix"].max() or 0) if len(table) else 0,
        "distinct_code_tuples": int(len(np.unique(codes, axis=0))) if len(table) else 0,
    }


def _frame(item_ids: Sequence[str], codes: np.ndarray) -> pl.DataFrame:
    codes = np.asarray(codes)
    if codes.ndim != 2 or len(codes) != len(item_ids):
        raise ValueError(f"codes must be (n_items, n_codes) with n_items={len(item_ids)}, got {codes.shape}")
    return pl.DataFrame(
        {"item_id": list(item_ids), "codes": codes.astype(np.int32).tolist()},
        schema={"item_id": pl.String, "codes": pl.List(pl.Int32)},
    )


def _tuple_ids(codes: pl.Series) -> np.ndarray:
    """Dense id per distinct code tuple of a list column."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    matrix = np.asarray(codes.to_list(), dtype=np.int64).reshape(len(codes), -1)
    return np.unique(matrix, axis=0, return_inverse=True)[1].ravel()
