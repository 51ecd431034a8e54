"""Train/valid/test splits written as tables: leave-one-out by sequence order, and a seeded random 8/1/1."""

from __future__ import annotations

import numpy as np
import polars as pl

from ops.ingest.schema import SPLIT

LOO_MIN_HISTORY = 3  # a user needs train + valid + test items to be split leave-one-out


def leave_one_out(interactions: pl.DataFrame) -> pl.DataFrame:
    """Each user's last interaction -> test, second-to-last -> valid, the rest -> train.

    Users with fewer than 3 interactions keep everything in train (they cannot be evaluated without leakage).
    """
    n = pl.len().over("user_id")
    from_end = n - 1 - pl.col("position")
    split = (
        pl.when(n < LOO_MIN_HISTORY)
        .then(pl.lit("train"))
        .when(from_end == 0)
        .then(pl.lit("test"))
        .when(from_end == 1)
        .then(pl.lit("valid"))
        .otherwise(pl.lit("train"))
    )
    return interactions.sort(["user_id", "position"]).with_columns(split.cast(SPLIT).alias("split"))


def random_split(
    interactions: pl.DataFrame, seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> pl.DataFrame:
    """Shuffle interactions with ``seed`` and cut them into train/valid/test by ``fractions``.

    Rows are first put in a canonical order (user, position), so the split depends only on the data and the
    seed, never on how the input happened to be ordered.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    ordered = interactions.sort(["user_id", "position"])
    n = ordered.height
    n_train = int(round(fractions[0] * n))
    n_valid = int(round(fractions[1] * n))
    rank = np.empty(n, dtype=np.int64)
    rank[np.random.default_rng(seed).permutation(n)] = np.arange(n)
    labels = np.where(rank < n_train, "train", np.where(rank < n_train + n_valid, "valid", "test"))
    return ordered.with_columns(pl.Series("split", labels, dtype=SPLIT))
