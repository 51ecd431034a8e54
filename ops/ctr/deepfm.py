"""DeepFM (Guo et al., 2017): first-order weights + FM pairwise term + a DNN, all on shared field embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ops.ctr.features import FeatureSpec
from ops.ctr.layers import MLP, EmbeddingConfig, FieldEmbedding, LinearTerm, MLPConfig, fm_interaction


@dataclass(frozen=True)
class DeepFMConfig:
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)  # dim 16, fusion bottleneck 64
    dnn: MLPConfig = field(default_factory=MLPConfig)  # (256, 256) ReLU

    @classmethod
    def test(cls) -> DeepFMConfig:
        return cls(EmbeddingConfig.test(), MLPConfig.test())


class DeepFM(nn.Module):
    def __init__(self, config: DeepFMConfig, features: Sequence[FeatureSpec], fusion: bool = False) -> None:
        super().__init__()
        self.config = config
        self.embed = FieldEmbedding(features, config.embedding, fusion)
        self.linear = LinearTerm(features)
        self.dnn = MLP(len(features) * config.embedding.dim, config.dnn)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        embedded = self.embed(batch)  # (batch, n_fields, dim)
        deep = self.dnn(embedded.flatten(1)).squeeze(-1)  # (batch,)
        return self.linear(batch) + fm_interaction(embedded) + deep  # (batch,) logits
