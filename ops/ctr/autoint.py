"""AutoInt+ (Song et al., 2019): stacked self-attentive interacting layers over the fields, plus a DNN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ops.ctr.features import FeatureSpec
from ops.ctr.layers import MLP, EmbeddingConfig, FieldEmbedding, InteractingLayer, MLPConfig, linear


@dataclass(frozen=True)
class AutoIntConfig:
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)  # dim 16, fusion bottleneck 64
    dnn: MLPConfig = field(default_factory=MLPConfig)  # (256, 256) ReLU: the "+" of AutoInt+
    attention_layers: int = 2  # FuxiCTR AutoInt default
    heads: int = 2  # FuxiCTR AutoInt default
    head_dim: int = 16  # per-head width; 2 x 16 = 32 per field after attention
    layer_norm: bool = False  # FuxiCTR default

    def __post_init__(self) -> None:
        if min(self.attention_layers, self.heads, self.head_dim) < 1:
            raise ValueError(f"attention_layers, heads and head_dim must be >= 1, got {self}")

    @classmethod
    def test(cls) -> AutoIntConfig:
        return cls(EmbeddingConfig.test(), MLPConfig.test(), attention_layers=1, heads=2, head_dim=4)


class AutoIntPlus(nn.Module):
    def __init__(self, config: AutoIntConfig, features: Sequence[FeatureSpec], fusion: bool = False) -> None:
        super().__init__()
        self.config = config
        dim = config.embedding.dim
        self.embed = FieldEmbedding(features, config.embedding, fusion)
        layers = []
        for _ in range(config.attention_layers):
            layers.append(InteractingLayer(dim, config.head_dim, config.heads, config.layer_norm))
            dim = layers[-1].output_dim
        self.attention = nn.Sequential(*layers)
        self.attention_out = linear(len(features) * dim, 1)
        self.dnn = MLP(len(features) * config.embedding.dim, config.dnn)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        embedded = self.embed(batch)  # (batch, n_fields, dim)
        attended = self.attention(embedded).flatten(1)  # (batch, n_fields * heads * head_dim)
        return self.attention_out(attended).squeeze(-1) + self.dnn(embedded.flatten(1)).squeeze(-1)  # (batch,)
