"""DeepIM (Yu et al., 2020): the Interaction Machine's all-order feature interactions + a DNN.

The order-k term is the elementary symmetric polynomial of the field embeddings, element-wise over the
embedding dimension: sum over all k-subsets of fields of their Hadamard product. Enumerating subsets costs
C(n_fields, k); Newton's identities give it from the power sums p_j = sum_i e_i^j in O(n_fields * k):
k * s_k = sum_{j=1..k} (-1)^(j-1) * s_{k-j} * p_j, with s_0 = 1. The IM concatenates s_1..s_order and maps
them to a logit; the DNN logit is added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ops.ctr.features import FeatureSpec
from ops.ctr.layers import MLP, EmbeddingConfig, FieldEmbedding, MLPConfig, linear

MAX_ORDER = 5  # the paper's IM goes to order 5; beyond that the power sums lose too much precision


@dataclass(frozen=True)
class DeepIMConfig:
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)  # dim 16, fusion bottleneck 64
    dnn: MLPConfig = field(default_factory=MLPConfig)  # (256, 256) ReLU
    order: int = 2  # FuxiCTR's default im_order; up to 5 is supported
    im_batch_norm: bool = True  # normalise s_1..s_order before their linear map: their scales differ by magnitudes

    def __post_init__(self) -> None:
        if not 1 <= self.order <= MAX_ORDER:
            raise ValueError(f"order must be in 1..{MAX_ORDER}, got {self.order}")

    @classmethod
    def test(cls) -> DeepIMConfig:
        return cls(EmbeddingConfig.test(), MLPConfig.test(), order=3)


def interaction_orders(embedded: torch.Tensor, order: int) -> torch.Tensor:
    """(batch, n_fields, dim) -> (batch, order, dim): s_1..s_order, the all-subset Hadamard sums per order."""
    powers = [embedded.pow(j).sum(dim=1) for j in range(1, order + 1)]  # p_1..p_order, each (batch, dim)
    symmetric = [torch.ones_like(powers[0])]  # s_0
    for k in range(1, order + 1):
        terms = [(-1) ** (j - 1) * symmetric[k - j] * powers[j - 1] for j in range(1, k + 1)]
        symmetric.append(torch.stack(terms).sum(dim=0) / k)  # (batch, dim)
    return torch.stack(symmetric[1:], dim=1)


class DeepIM(nn.Module):
    def __init__(self, config: DeepIMConfig, features: Sequence[FeatureSpec], fusion: bool = False) -> None:
        super().__init__()
        self.config = config
        dim = config.embedding.dim
        self.embed = FieldEmbedding(features, config.embedding, fusion)
        self.im_norm = nn.BatchNorm1d(config.order * dim) if config.im_batch_norm else nn.Identity()
        self.im_out = linear(config.order * dim, 1)
        self.dnn = MLP(len(features) * dim, config.dnn)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        embedded = self.embed(batch)  # (batch, n_fields, dim)
        orders = interaction_orders(embedded, self.config.order).flatten(1)  # (batch, order * dim)
        im = self.im_out(self.im_norm(orders)).squeeze(-1)  # (batch,)
        return im + self.dnn(embedded.flatten(1)).squeeze(-1)  # (batch,) logits
