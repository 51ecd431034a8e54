"""Length-sorted batching: texts of similar token length share a batch, so almost no compute goes to padding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices into ``lengths``, longest texts first (peak memory is hit at once, not after an hour), cut into
    batches. Callers write each batch's output back at these indices, which restores the input order."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")  # (n,)
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> (input_ids, attention_mask), both (batch, longest), padded on ``side`` ("left"/"right")."""
    longest = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)  # (batch, longest)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)  # (batch, longest)
    for row, ids in enumerate(sequences):
        span = slice(longest - len(ids), longest) if side == "left" else slice(0, len(ids))
        input_ids[row, span] = torch.as_tensor(ids, dtype=torch.long)
        mask[row, span] = 1
    return input_ids, mask
