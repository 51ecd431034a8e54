"""Pooling finds real tokens from the mask on either padding side; batching restores the input order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ops.embeddings.batching import length_sorted_batches, pad_batch
from ops.embeddings.config import EmbedderConfig, Pooling
from ops.embeddings.pooling import last_token_pool, mean_pool, pool

SEQUENCES = [[5, 6, 7], [8], [9, 10]]


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_batch_and_pooling_agree_on_either_side(side: str) -> None:
    input_ids, mask = pad_batch(SEQUENCES, pad_id=0, side=side)
    assert input_ids.shape == mask.shape == (3, 3)
    for row, ids in enumerate(SEQUENCES):
        assert input_ids[row][mask[row].bool()].tolist() == ids  # real tokens in order, pads elsewhere
    hidden = input_ids.float().unsqueeze(-1).repeat(1, 1, 2)  # (3, 3, 2): each state is its token id
    assert last_token_pool(hidden, mask)[:, 0].tolist() == [7.0, 8.0, 10.0]
    assert mean_pool(hidden, mask)[:, 0].tolist() == [6.0, 8.0, 9.5]
    torch.testing.assert_close(pool(hidden, mask, Pooling.LAST), last_token_pool(hidden, mask))


def test_length_sorted_batches_cover_every_index_once_longest_first() -> None:
    lengths = [3, 9, 1, 9, 5, 2, 7]
    batches = length_sorted_batches(lengths, batch_size=3)
    assert [len(b) for b in batches] == [3, 3, 1]
    order = np.concatenate(batches)
    assert sorted(order.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)
    restored = np.empty(len(lengths), dtype=np.int64)  # what encode does with each batch's output
    for batch in batches:
        restored[batch] = np.asarray(lengths)[batch]
    assert restored.tolist() == lengths


def test_config_validates_and_accepts_pooling_strings() -> None:
    assert EmbedderConfig(pooling="last").pooling is Pooling.LAST  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EmbedderConfig(pooling="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EmbedderConfig(batch_size=0)
