"""Top-K retrieval metrics with one held-out target per user (leave-one-out), from the target's rank.

A user's rank is the 0-based place of their target in the model's ranking, or -1 when the target is not in
the returned list at all (beam search returns only K items). With a single relevant item, the ideal DCG is 1,
so NDCG@K = 1 / log2(rank + 2) when rank < K, else 0; Recall@K = 1 when rank < K (= HitRate@K).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (5, 10, 20)  # cut-offs reported everywhere (TIGER reports 5 and 10)


def target_ranks(ranked_items: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """ranked_items (n_users, K) item indices best first (-1 = nothing), targets (n_users,) -> ranks (n_users,)."""
    hits = ranked_items == targets[:, None]  # (n_users, K)
    return np.where(hits.any(axis=1), hits.argmax(axis=1), -1)


def recall_ndcg(ranks: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """{"recall@5": ..., "ndcg@5": ..., ...} averaged over users; ranks as `target_ranks` returns them."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise ValueError("no users to evaluate")
    found = ranks >= 0
    metrics: dict[str, float] = {}
    for k in ks:
        hit = found & (ranks < k)
        metrics[f"recall@{k}"] = float(hit.mean())
        metrics[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0).mean())
    return metrics
