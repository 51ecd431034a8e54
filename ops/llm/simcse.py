"""Unsupervised SimCSE, LLM2Vec's second training step: a text and itself under two dropout masks are positives,
the other texts of the batch negatives.

Each text is encoded twice in train mode (LLM2Vec raises the attention dropout to 0.3 for this, on top of LoRA's
0.05), mean-pooled over its real tokens, and the loss is the cross-entropy of picking its own second view among
all second views of the batch by cosine similarity / temperature (LLM2Vec: ``loss_scale`` 20, i.e. 0.05).
The negatives are the micro-batch's, so keep ``micro_batch_size == batch_size`` (`TrainerConfig`) for exact
SimCSE; accumulation trains on smaller in-batch contrasts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ops.embeddings.batching import pad_batch
from ops.embeddings.pooling import mean_pool
from ops.llm.language_modeling import final_states
from ops.llm.trainer import Batch, LossOutput


@dataclass(frozen=True)
class SimCSEConfig:
    temperature: float = 0.05  # LLM2Vec: loss_scale 20
    attention_dropout: float = 0.3  # LLM2Vec's simcse_dropout: what makes the two views differ
    max_length: int = 128  # tokens kept per item text (LLM2Vec: 128)

    def __post_init__(self) -> None:
        if self.temperature <= 0 or not 0 <= self.attention_dropout < 1:
            raise ValueError(f"invalid SimCSE config {self}")

    @classmethod
    def test(cls) -> SimCSEConfig:
        return cls(max_length=32)


def collate_texts(sequences: Sequence[Sequence[int]], pad_id: int) -> Batch:
    input_ids, mask = pad_batch(sequences, pad_id, "right")  # (batch, longest)
    return {"input_ids": input_ids, "attention_mask": mask}


def embed(model: nn.Module, batch: Batch) -> torch.Tensor:
    """(batch, dim) float32 mean of each text's final states over its real tokens."""
    states = final_states(model, batch["input_ids"], batch["attention_mask"])  # (batch, seq, dim)
    return mean_pool(states.float(), batch["attention_mask"])


def contrastive_loss(first: torch.Tensor, second: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE with in-batch negatives: row i of ``first`` (batch, dim) should pick row i of ``second``."""
    similarity = F.normalize(first, dim=-1) @ F.normalize(second, dim=-1).T / temperature  # (batch, batch)
    return F.cross_entropy(similarity, torch.arange(len(first), device=first.device))


def simcse_loss(temperature: float):
    """The loss function for `trainer.train`: two stochastic forward passes of the same batch."""

    def loss(model: nn.Module, batch: Batch) -> LossOutput:
        value = contrastive_loss(embed(model, batch), embed(model, batch), temperature)
        return LossOutput(value, float(len(batch["input_ids"])), {"simcse": value.item()})

    return loss
