"""CTR samples (user_id, item_id, label, split) from a k-core and its random 8/1/1 split.

Three sources of labels, picked by `LabelConfig.mode` ("auto" picks the first that applies):

- "impressions": MIND-style impression logs give real clicks and real non-clicks; impressions are split 8/1/1
  by impression id (shown items of one impression never straddle splits).
- "rating": explicit feedback; positive when rating >= threshold, the interaction's split is kept.
- "sampled": implicit feedback only (the Beauty P5 derivative has no ratings): every interaction is a positive,
  and each gets ``negatives_per_positive`` items its user never interacted with, drawn uniformly with a seed,
  each negative taking its positive's split. They are drawn once, when the samples stage is built, and stored:
  every model of a study is trained and tested on the very same negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from ops.ingest.schema import SPLIT

LabelMode = Literal["auto", "rating", "sampled", "impressions"]
MODES = ("auto", "rating", "sampled", "impressions")
IMPRESSION_FRACTIONS = (0.8, 0.1)  # train, valid share of impressions; the rest is test (the paper's 8/1/1)
SAMPLES_SCHEMA = pl.Schema({"user_id": pl.String, "item_id": pl.String, "label": pl.Int8, "split": SPLIT})


@dataclass(frozen=True)
class LabelConfig:
    mode: LabelMode = "auto"  # impressions if present, else ratings if every interaction has one, else sampled
    rating_threshold: float = 4.0  # explicit feedback: positive iff rating >= 4 (of 5), the common CTR cut
    negatives_per_positive: int = 1  # sampled negatives per implicit positive (1:1 as in the MoC setting)
    seed: int = 0  # negative sampling and the impression split

    def __post_init__(self) -> None:
        if self.mode not in MODES or self.negatives_per_positive < 1:
            raise ValueError(f"mode must be one of {MODES} and negatives_per_positive >= 1, got {self}")


def resolve_mode(config: LabelConfig, interactions: pl.DataFrame, impressions: pl.DataFrame | None) -> str:
    """The concrete mode "auto" stands for on this data."""
    if config.mode != "auto":
        return config.mode
    if impressions is not None and impressions.height > 0:
        return "impressions"
    if interactions.height > 0 and interactions["rating"].null_count() == 0:
        return "rating"
    return "sampled"


def build_samples(
    config: LabelConfig,
    split_interactions: pl.DataFrame,
    impressions: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, str]:
    """(samples, mode used); ``split_interactions`` is the splits stage's table (with ``split`` and ``rating``)."""
    mode = resolve_mode(config, split_interactions, impressions)
    if mode == "impressions":
        if impressions is None or impressions.height == 0:
            raise ValueError("label mode 'impressions' needs a non-empty impressions table")
        samples = impression_samples(impressions, config.seed)
    elif mode == "rating":
        rated = split_interactions.filter(pl.col("rating").is_not_null())
        samples = rated.select("user_id", "item_id", label=pl.col("rating") >= config.rating_threshold, split="split")
    else:
        samples = sampled_samples(split_interactions, config.negatives_per_positive, config.seed)
    return samples.select([pl.col(name).cast(dtype) for name, dtype in SAMPLES_SCHEMA.items()]), mode


def sampled_samples(split_interactions: pl.DataFrame, negatives_per_positive: int, seed: int) -> pl.DataFrame:
    """Positives in the split table's order, each followed by its negatives (same user, same split).

    Negatives are drawn uniformly from the items seen in any interaction, rejecting (and redrawing) any item the
    user interacted with in ANY split -- a held-out positive must never reappear as a training negative.
    """
    positives = split_interactions.select("user_id", "item_id", "split")
    items = positives["item_id"].unique().sort()
    users = positives["user_id"].unique().sort()
    user_index = users.search_sorted(positives["user_id"]).to_numpy().astype(np.int64)  # row of each in users
    item_index = items.search_sorted(positives["item_id"]).to_numpy().astype(np.int64)
    n_items = len(items)
    seen = np.unique(user_index * n_items + item_index)  # sorted keys of every (user, item) interaction
    owner = np.repeat(user_index, negatives_per_positive)  # (n_positives * k,) user of each negative
    rng = np.random.default_rng(seed)
    drawn = rng.integers(n_items, size=len(owner))
    clash = np.isin(owner * n_items + drawn, seen)
    while clash.any():  # redraw only the clashes, so the result depends on the seed alone
        drawn[clash] = rng.integers(n_items, size=int(clash.sum()))
        clash = np.isin(owner * n_items + drawn, seen)
    negatives = pl.DataFrame(
        {
            "user_id": np.repeat(positives["user_id"].to_numpy(), negatives_per_positive),
            "item_id": items.to_numpy()[drawn],
            "split": np.repeat(positives["split"].cast(pl.String).to_numpy(), negatives_per_positive),
        }
    )
    order = pl.Series(np.arange(positives.height, dtype=np.int64))
    return (
        pl.concat(
            [
                positives.with_columns(label=pl.lit(True), __order=order, __slot=pl.lit(-1, pl.Int64)),
                negatives.with_columns(
                    pl.col("split").cast(SPLIT),
                    label=pl.lit(False),
                    __order=pl.Series(np.repeat(order.to_numpy(), negatives_per_positive)),
                    __slot=pl.Series(np.tile(np.arange(negatives_per_positive), positives.height)),
                ),
            ]
        )
        .sort("__order", "__slot")
        .drop("__order", "__slot")
    )


def impression_samples(impressions: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Every shown item labelled by its click; impressions (not rows) are split 8/1/1 with ``seed``."""
    ids = impressions["impression_id"].unique().sort()
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.random.default_rng(seed).permutation(len(ids))] = np.arange(len(ids))
    n_train, n_valid = (int(round(f * len(ids))) for f in IMPRESSION_FRACTIONS)
    split = np.where(rank < n_train, "train", np.where(rank < n_train + n_valid, "valid", "test"))
    splits = pl.DataFrame({"impression_id": ids, "split": pl.Series(split, dtype=SPLIT)})
    ordered = impressions.sort("impression_id", "slot").join(splits, on="impression_id", maintain_order="left")
    return ordered.select("user_id", "item_id", label="clicked", split="split")
