"""DCNv2 (Wang et al., 2021): a cross network (full-rank or low-rank mixture) with a DNN, stacked or parallel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ops.ctr.features import FeatureSpec
from ops.ctr.layers import MLP, CrossLayer, EmbeddingConfig, FieldEmbedding, LowRankCrossLayer, MLPConfig, linear


@dataclass(frozen=True)
class DCNv2Config:
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)  # dim 16, fusion bottleneck 64
    dnn: MLPConfig = field(default_factory=MLPConfig)  # (256, 256) ReLU
    cross_layers: int = 3  # BARS DCNv2 tunes 2-5; 3 is a common middle
    structure: Literal["parallel", "stacked"] = "parallel"  # parallel: cross || DNN -> concat -> logit
    low_rank: int | None = None  # None: full-rank CrossNetV2; an int: mixture of low-rank experts of that rank
    experts: int = 4  # experts of the low-rank mixture (paper's default)

    def __post_init__(self) -> None:
        if self.structure not in ("parallel", "stacked") or self.cross_layers < 1 or self.experts < 1:
            raise ValueError(f"structure must be parallel|stacked, cross_layers and experts >= 1, got {self}")

    @classmethod
    def test(cls) -> DCNv2Config:
        return cls(EmbeddingConfig.test(), MLPConfig.test(), cross_layers=2)


class DCNv2(nn.Module):
    def __init__(self, config: DCNv2Config, features: Sequence[FeatureSpec], fusion: bool = False) -> None:
        super().__init__()
        self.config = config
        width = len(features) * config.embedding.dim
        self.embed = FieldEmbedding(features, config.embedding, fusion)
        self.cross = nn.ModuleList(
            CrossLayer(width) if config.low_rank is None else LowRankCrossLayer(width, config.low_rank, config.experts)
            for _ in range(config.cross_layers)
        )
        self.dnn = MLP(width, config.dnn, output_dim=None)
        head_width = self.dnn.output_dim + (width if config.structure == "parallel" else 0)
        self.head = linear(head_width, 1)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        x0 = self.embed(batch).flatten(1)  # (batch, n_fields * dim)
        crossed = x0
        for layer in self.cross:
            crossed = layer(x0, crossed)  # (batch, n_fields * dim)
        if self.config.structure == "stacked":
            return self.head(self.dnn(crossed)).squeeze(-1)  # (batch,)
        return self.head(torch.cat([crossed, self.dnn(x0)], dim=1)).squeeze(-1)  # (batch,)
