"""The most-popular baseline on the leave-one-out split: the floor every retrieval model must clear.

Every test user gets the same list: the catalogue's items by their number of train interactions, most first
(ties by item id, so the list is deterministic). Users, targets and the ranking rule are TIGER's and SASRec's
(`ops.retrieval.sequences`: one test target per user with a valid and a test item; items already in the
history stay candidates), and the metrics are `ops.retrieval.metrics.recall_ndcg`, so its row is comparable
with theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ops.retrieval.metrics import KS, recall_ndcg, target_ranks
from ops.retrieval.sequences import eval_examples, user_sequences


@dataclass(frozen=True)
class PopularityResult:
    metrics: dict[str, float]  # recall@K and ndcg@K for K in KS; empty when no user has a test item
    n_items: int  # the split's catalogue
    n_test_users: int  # users scored


def most_popular(split: pl.DataFrame, ks: tuple[int, ...] = KS) -> PopularityResult:
    """Test Recall/NDCG@K of ranking every item by its train-interaction count (a leave-one-out split table)."""
    catalogue = split["item_id"].unique().sort()
    counts = (
        split.filter(pl.col("split").cast(pl.String) == "train")
        .group_by("item_id")
        .len()
        .join(pl.DataFrame({"item_id": catalogue}), on="item_id", how="right")
        .with_columns(pl.col("len").fill_null(0))
        .sort(["len", "item_id"], descending=[True, False])
    )
    index = {item: i for i, item in enumerate(catalogue.to_list())}
    top = np.array([index[item] for item in counts["item_id"][: max(ks)].to_list()], dtype=np.int64)  # (K,)
    sequences = user_sequences(split, catalogue.to_list())
    test = eval_examples(sequences, "test", max_history=1)  # the history is not used, only the targets
    ranked = np.broadcast_to(top, (len(test), len(top)))  # (n_users, K): the same list for everyone
    metrics = recall_ndcg(target_ranks(ranked, test.target), ks) if len(test) else {}
    return PopularityResult(metrics, len(catalogue), len(test))
