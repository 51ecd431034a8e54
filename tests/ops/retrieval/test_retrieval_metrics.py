"""Recall@K and NDCG@K against a hand-computed example, from ranked lists with and without the target."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ops.retrieval.metrics import recall_ndcg, target_ranks


def test_hand_computed_example():
    ranked = np.array(
        [
            [7, 3, 9, -1],  # target 7 first: rank 0
            [1, 2, 3, 4],  # target 3: rank 2
            [5, 6, -1, -1],  # target 8 absent (beam search ran short): no hit
            [0, 1, 2, 3],  # target 3: rank 3
        ]
    )
    ranks = target_ranks(ranked, np.array([7, 3, 8, 3]))
    assert ranks.tolist() == [0, 2, -1, 3]
    metrics = recall_ndcg(ranks, ks=(1, 3, 4))
    assert metrics["recall@1"] == pytest.approx(1 / 4)
    assert metrics["ndcg@1"] == pytest.approx(1 / 4)
    assert metrics["recall@3"] == pytest.approx(2 / 4)
    assert metrics["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / 4)  # rank 2 -> 1/log2(2 + 2) = 0.5
    assert metrics["recall@4"] == pytest.approx(3 / 4)
    assert metrics["ndcg@4"] == pytest.approx((1 + 0.5 + 1 / math.log2(5)) / 4)


def test_padding_never_matches():
    assert target_ranks(np.array([[-1, -1]]), np.array([0])).tolist() == [-1]
