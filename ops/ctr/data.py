"""The encoded samples held whole in memory as tensors, and seeded shuffled batches over them.

A CTR epoch here is a few hundred thousand rows of a dozen int64 fields (tens of MB), so a DataLoader with
workers would only add process start-up and pickling; slicing one tensor with a permutation is all it takes,
and torch's intra-op threads keep both cores busy on the model itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (n_rows, n_fields) int64 field indices
    y: torch.Tensor  # (n_rows,) float32 labels in {0, 1}

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class CTRData:
    train: Split
    valid: Split
    test: Split

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, samples: pl.DataFrame, device: torch.device) -> CTRData:
        """Split the encoded ``matrix`` (row i = samples row i) by the samples' ``split`` column."""
        split = samples["split"].cast(pl.String).to_numpy()
        labels = samples["label"].to_numpy().astype(np.float32)
        parts = {
            name: Split(
                torch.from_numpy(np.ascontiguousarray(matrix[split == name])).to(device),
                torch.from_numpy(labels[split == name]).to(device),
            )
            for name in SPLITS
        }
        return cls(**parts)


def shuffled_batches(
    split: Split, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(x, y) batches of a fresh permutation drawn from ``generator`` (on the CPU, so any device reproduces it)."""
    order = torch.randperm(len(split), generator=generator).to(split.x.device)
    for batch in order.split(batch_size):
        yield split.x[batch], split.y[batch]  # (batch, n_fields), (batch,)
