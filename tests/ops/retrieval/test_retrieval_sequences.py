"""Leave-one-out examples and encoder tokens on a hand-made split whose answers are written out."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ops.retrieval.sequences import (
    PAD_ITEM,
    eval_examples,
    length_batches,
    padded_histories,
    train_examples,
    user_buckets,
    user_sequences,
)
from ops.retrieval.vocabulary import Vocabulary, history_inputs, item_tokens


def split_frame() -> pl.DataFrame:
    """u1: a b c d e (c d e... last two valid/test), u2: b c (too short: train only)."""
    rows = [("u1", "a"), ("u1", "b"), ("u1", "c"), ("u1", "d"), ("u1", "e"), ("u2", "b"), ("u2", "c")]
    splits = ["train", "train", "train", "valid", "test", "train", "train"]
    positions = [0, 1, 2, 3, 4, 0, 1]
    return pl.DataFrame(
        {"user_id": [u for u, _ in rows], "item_id": [i for _, i in rows], "position": positions, "split": splits}
    ).sample(fraction=1.0, shuffle=True, seed=1)  # row order must not matter


CATALOGUE = ["a", "b", "c", "d", "e", "f"]


def test_train_examples_are_every_prefix_truncated():
    sequences = user_sequences(split_frame(), CATALOGUE)
    train = train_examples(sequences, max_history=2)
    histories = padded_histories(sequences.items, train)
    # u1: a->b, ab->c ; u2: b->c (histories keep the last 2 items)
    assert histories.tolist() == [[0, PAD_ITEM], [0, 1], [1, PAD_ITEM]]
    assert train.target.tolist() == [1, 2, 2]
    assert train.user.tolist() == [0, 0, 1]


def test_valid_and_test_targets_follow_the_protocol():
    sequences = user_sequences(split_frame(), CATALOGUE)
    valid = eval_examples(sequences, "valid", max_history=2)
    test = eval_examples(sequences, "test", max_history=2)
    assert valid.user.tolist() == [0] and test.user.tolist() == [0]  # u2 has no valid/test item
    assert padded_histories(sequences.items, valid).tolist() == [[1, 2]] and valid.target.tolist() == [3]
    assert padded_histories(sequences.items, test).tolist() == [[2, 3]] and test.target.tolist() == [4]


def test_unknown_items_are_refused():
    with pytest.raises(ValueError, match="absent from the catalogue"):
        user_sequences(split_frame(), ["a", "b", "c"])


def test_encoder_tokens_use_one_offset_per_level_and_a_user_token():
    vocabulary = Vocabulary((4, 4, 2), user_buckets=3)  # two code levels of 4 ids, suffix of 2
    levels = np.array([[0, 1, 0], [3, 3, 1]])
    tokens = item_tokens(vocabulary, levels)
    assert tokens.tolist() == [[2, 7, 10], [5, 9, 11]] and vocabulary.size == 2 + 10 + 3
    ids, mask = history_inputs(vocabulary, tokens, np.array([[1, 0], [0, PAD_ITEM]]), np.array([2, 0]))
    assert ids.tolist() == [[14, 5, 9, 11, 2, 7, 10], [12, 2, 7, 10, 0, 0, 0]]
    assert mask.tolist() == [[1] * 7, [1, 1, 1, 1, 0, 0, 0]]


def test_user_buckets_are_stable_and_in_range():
    buckets = user_buckets([f"user{i}" for i in range(500)], 7)
    assert buckets.min() >= 0 and buckets.max() < 7 and len(set(buckets.tolist())) == 7
    assert np.array_equal(buckets, user_buckets([f"user{i}" for i in range(500)], 7))


def test_length_batches_cover_every_example_once_and_group_lengths():
    lengths = np.random.default_rng(0).integers(1, 21, size=1000)
    batches = length_batches(lengths, 32, np.random.default_rng(1), pool=10)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 6  # random batches of 32 would spread over ~18
