"""The most-popular baseline: every user gets the same list, the catalogue ranked by train-set interaction counts.

It learns nothing about a user, so a model that does not beat it has learned popularity at best. Counts come
from the train items only (what the models train on; valid and test items stay held out), ties go to the lower
item index, and every item is a candidate (the same rule as the models: a history item may be recommended).
"""

from __future__ import annotations

import numpy as np

from ops.retrieval.metrics import KS, recall_ndcg, target_ranks
from ops.retrieval.sequences import Examples, UserSequences


def train_counts(sequences: UserSequences, n_items: int) -> np.ndarray:
    """(n_items,) int64 train interactions of each item."""
    position = np.arange(len(sequences.items)) - np.repeat(sequences.start[:-1], sequences.lengths)  # within user
    train = position < np.repeat(sequences.n_train, sequences.lengths)  # (n_interactions,)
    return np.bincount(sequences.items[train], minlength=n_items)


def most_popular(sequences: UserSequences, n_items: int, top: int = max(KS)) -> np.ndarray:
    """(min(top, n_items),) item indices, most train interactions first."""
    return np.argsort(-train_counts(sequences, n_items), kind="stable")[:top]


def evaluate_most_popular(sequences: UserSequences, n_items: int, examples: Examples) -> dict[str, float]:
    """Recall/NDCG@K of the most-popular list against each example's target."""
    ranked = most_popular(sequences, n_items)
    ranked = np.broadcast_to(ranked, (len(examples), len(ranked)))  # (n, K): the same list for every user
    return recall_ndcg(target_ranks(ranked, examples.target))
