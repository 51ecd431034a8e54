"""The most-popular baseline on a hand-made split whose answers are written out."""

from __future__ import annotations

import math

import polars as pl
import pytest

from ops.retrieval.popularity import evaluate_most_popular, most_popular, train_counts
from ops.retrieval.sequences import eval_examples, user_sequences

CATALOGUE = ["a", "b", "c", "d", "e", "f", "g", "h"]


def split_frame() -> pl.DataFrame:
    """u1: a b | valid c | test a;  u2: b c | valid a | test b;  u3: c b | valid d | test g."""
    users = {"u1": "abca", "u2": "bcab", "u3": "cbdg"}
    rows = [(u, item, p) for u, items in users.items() for p, item in enumerate(items)]
    return pl.DataFrame(
        {
            "user_id": [u for u, _, _ in rows],
            "item_id": [i for _, i, _ in rows],
            "position": [p for _, _, p in rows],
            "split": [("train", "train", "valid", "test")[p] for _, _, p in rows],
        }
    ).reverse()  # row order must not matter


def test_ranks_items_by_train_counts_only():
    sequences = user_sequences(split_frame(), CATALOGUE)
    assert train_counts(sequences, len(CATALOGUE)).tolist() == [1, 3, 2, 0, 0, 0, 0, 0]  # valid/test not counted
    assert most_popular(sequences, len(CATALOGUE), top=8).tolist() == [1, 2, 0, 3, 4, 5, 6, 7]  # ties: lower index


def test_metrics_on_the_hand_made_case():
    sequences = user_sequences(split_frame(), CATALOGUE)
    metrics = evaluate_most_popular(sequences, len(CATALOGUE), eval_examples(sequences, "test", 20))
    # test targets a, b, g sit at ranks 2, 0, 6 of the list b c a d e f g h
    assert metrics["recall@5"] == pytest.approx(2 / 3) and metrics["recall@10"] == 1.0
    assert metrics["ndcg@5"] == pytest.approx((1 / math.log2(4) + 1) / 3)
    assert metrics["ndcg@10"] == pytest.approx((1 / math.log2(4) + 1 + 1 / math.log2(8)) / 3)
