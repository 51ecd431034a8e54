"""SASRec, the ID-based baseline: causal self-attention over item ids, full-softmax cross-entropy over all
items, full-ranking evaluation, on the same leave-one-out examples and the same training loop as TIGER.

Ranking rule (the same as TIGER's beam search): every catalogue item is a candidate, items already in the
user's history included; only padding is excluded. Beauty's test items are rarely repeats, but excluding
history for one model and not the other would make the numbers incomparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import torch
from torch import nn

from ops.device import Precision, placement
from ops.retrieval.metrics import KS, recall_ndcg, target_ranks
from ops.retrieval.sequences import PAD_ITEM, Examples, UserSequences, eval_examples, length_batches, padded_histories
from ops.retrieval.train import EpochCallback, FitResult, Task, TrainConfig, fit, sample_users, seeded

EVAL_BATCH = 512  # users scored against the whole catalogue at once


@dataclass(frozen=True)
class SASRecConfig:
    max_len: int = 50  # SASRec paper: the last 50 items on the Amazon data sets
    hidden: int = 64  # item/position embedding and block width
    n_blocks: int = 2  # SASRec paper: 2 self-attention blocks
    n_heads: int = 1  # SASRec paper: a single head
    dropout: float = 0.2  # 0.5 (the paper's Amazon value) kept a 64-wide model at R@10 0.016; 0.2: 0.054 (cornac too)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            batch_size=128,
            warmup=0.01,  # a short ramp (about an epoch in 30 minutes), then the paper's constant rate
            weight_decay=0.0,
            decay=False,
            patience=10,
            eval_users=0,
            precision=Precision.FLOAT32,  # already ~9x cornac's samples/s, and its figures were measured so
        )
    )  # SASRec paper: Adam at a constant 1e-3, batch 128; validation on every user (full ranking is cheap)

    @classmethod
    def test(cls) -> SASRecConfig:
        return cls(max_len=10, hidden=32, n_blocks=1, n_heads=1, dropout=0.0, train=TrainConfig.test())


class SASRec(nn.Module):
    """Item histories (batch, width) of item indices (PAD_ITEM = padding, after the items) -> next-item logits."""

    def __init__(self, config: SASRecConfig, n_items: int) -> None:
        super().__init__()
        self.config = config
        self.items = nn.Embedding(n_items + 1, config.hidden, padding_idx=0)  # row 0 = padding, item i -> row i + 1
        # unit-norm item vectors: inputs (x sqrt(hidden)) start at unit scale per dimension, logits near 0
        nn.init.normal_(self.items.weight, std=config.hidden**-0.5)
        self.items.weight.data[0] = 0.0
        self.positions = nn.Embedding(config.max_len, config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        block = nn.TransformerEncoderLayer(
            config.hidden,
            config.n_heads,
            dim_feedforward=config.hidden,  # SASRec's point-wise feed-forward keeps the width
            dropout=config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(
            block, config.n_blocks, norm=nn.LayerNorm(config.hidden), enable_nested_tensor=False
        )

    def forward(self, histories: torch.Tensor) -> torch.Tensor:
        """(batch, width) -> (batch, width, hidden): position t has seen items 0..t only."""
        ids = histories + 1  # (batch, width), padding -> 0
        width = ids.shape[1]
        x = self.items(ids) * math.sqrt(self.config.hidden) + self.positions.weight[:width]  # (batch, width, hidden)
        causal = torch.triu(torch.ones(width, width, dtype=torch.bool, device=ids.device), diagonal=1)
        return self.blocks(self.dropout(x), mask=causal, src_key_padding_mask=ids == 0, is_causal=True)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., hidden) -> (..., n_items): dot product with every item embedding (padding row left out)."""
        return hidden @ self.items.weight[1:].T


def training_windows(sequences: UserSequences, max_len: int) -> Examples:
    """One example per user with >= 2 train items: the last max_len + 1 of them (inputs, then shifted targets)."""
    users = np.flatnonzero(sequences.n_train >= 2)
    end = sequences.start[users] + sequences.n_train[users]
    return Examples(end, np.minimum(sequences.n_train[users], max_len + 1), sequences.items[end - 1], users)


def training_task(model: SASRec, sequences: UserSequences, valid: Examples, batch_size: int) -> Task[Examples]:
    """Every position predicts the next train item (all prefixes at once), full softmax over the catalogue."""
    device = next(model.parameters()).device
    windows = training_windows(sequences, model.config.max_len)

    def loss(batch: Examples) -> tuple[torch.Tensor, int]:
        window = torch.from_numpy(padded_histories(sequences.items, batch)).to(device)  # (b, w + 1)
        targets = window[:, 1:]  # (b, w)
        hidden = model(window[:, :-1])[targets != PAD_ITEM]  # (n_positions, hidden)
        return nn.functional.cross_entropy(model.logits(hidden), targets[targets != PAD_ITEM]), len(hidden)

    return Task(
        batches=lambda rng: (windows.subset(rows) for rows in length_batches(windows.length, batch_size, rng)),
        loss=loss,
        validate=lambda: evaluate_sasrec(model, sequences, valid),
    )


def train_sasrec(
    config: SASRecConfig, sequences: UserSequences, n_items: int, callback: EpochCallback | None = None
) -> tuple[SASRec, FitResult]:
    model = seeded(lambda: SASRec(config, n_items), config.train.seed).to(placement().device)
    valid = eval_examples(sequences, "valid", config.max_len)
    valid = valid.subset(sample_users(len(valid), config.train.eval_users, config.train.seed))
    return model, fit(model, training_task(model, sequences, valid, config.train.batch_size), config.train, callback)


@torch.no_grad()
def rank_items(model: SASRec, sequences: UserSequences, examples: Examples, top: int = max(KS)) -> np.ndarray:
    """(n, top) item indices best first, scoring every catalogue item after each example's history."""
    model.eval()
    device = next(model.parameters()).device
    ranked = []
    for begin in range(0, len(examples), EVAL_BATCH):
        batch = examples.subset(np.arange(begin, min(begin + EVAL_BATCH, len(examples))))
        histories = torch.from_numpy(padded_histories(sequences.items, batch)).to(device)  # (b, w)
        hidden = model(histories)  # (b, w, hidden)
        last = hidden[torch.arange(len(batch)), torch.from_numpy(batch.length - 1).to(device)]  # (b, hidden)
        ranked.append(model.logits(last).topk(top, dim=1).indices.cpu().numpy())
    return np.concatenate(ranked) if ranked else np.zeros((0, top), dtype=np.int64)


def evaluate_sasrec(model: SASRec, sequences: UserSequences, examples: Examples) -> dict[str, float]:
    return recall_ndcg(target_ranks(rank_items(model, sequences, examples), examples.target))


def catalogue(split: pl.DataFrame) -> list[str]:
    """SASRec's item universe: every item of the split, sorted by id (the Semantic-ID tables' order too)."""
    return split["item_id"].unique().sort().to_list()
