"""The layers every CTR backbone is assembled from: one embedding gather, MoC fusion, MLP, FM, cross, attention.

Each backbone file (`deepfm.py`, `deepim.py`, `autoint.py`, `dcnv2.py`) composes these; a block used by one
model only stays in that model's file. Inputs are always the encoded field matrix (batch, n_fields) of int64
indices, each field indexing its own vocabulary (0 = unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ops.ctr.features import FeatureSpec


@dataclass(frozen=True)
class EmbeddingConfig:
    dim: int = 16  # BARS/FuxiCTR's usual embedding size, and the paper's: one small vector per field
    fusion_bottleneck: int = 64  # MoC fusion width: under the item concat (>= 5 x 16) at 1x; fixed across scales
    init_std: float = 1e-4  # FuxiCTR's normal(0, 1e-4) embedding init: near-zero starts keep early FM/cross terms tame

    def __post_init__(self) -> None:
        if self.dim < 1 or self.fusion_bottleneck < 1 or self.init_std <= 0:
            raise ValueError(f"embedding dim and bottleneck must be >= 1 and init_std > 0, got {self}")

    @classmethod
    def test(cls) -> EmbeddingConfig:
        return cls(dim=4, fusion_bottleneck=8)


@dataclass(frozen=True)
class MLPConfig:
    hidden: tuple[int, ...] = (256, 256)  # lean vs BARS' (400, 400, 400): ~200 study runs must fit on 2 CPU cores
    dropout: float = 0.0  # FuxiCTR default net_dropout; early stopping is the regulariser
    batch_norm: bool = False  # off: keeps per-step cost low and results batch-size independent

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))  # lists from a JSON round trip
        if any(width < 1 for width in self.hidden) or not 0 <= self.dropout < 1:
            raise ValueError(f"hidden widths must be >= 1 and 0 <= dropout < 1, got {self}")

    @classmethod
    def test(cls) -> MLPConfig:
        return cls(hidden=(16,))


def linear(input_dim: int, output_dim: int, bias: bool = True) -> nn.Linear:
    """A Linear layer with Xavier-normal weights and a zero bias, as FuxiCTR initialises every one.

    PyTorch's default (Kaiming-uniform weights, a uniform bias of up to 1/sqrt(fan_in)) starts a DCNv2 cross
    layer with biases ~1000x the 1e-4-scale embeddings it multiplies; on Beauty that cost DCNv2 0.008 test
    AUC against FuxiCTR's same network (bench/results/ctr.json).
    """
    layer = nn.Linear(input_dim, output_dim, bias=bias)
    nn.init.xavier_normal_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class FeatureEmbedding(nn.Module):
    """All fields' vocabularies in ONE table, addressed by per-field offsets: a single gather per batch.

    A Python loop over one ``nn.Embedding`` per field costs a kernel launch and an autograd node per field;
    with up to a dozen fields (7x Semantic IDs) that dominates the step time of these small models on a CPU.
    """

    def __init__(self, features: Sequence[FeatureSpec], dim: int, init_std: float = 1e-4) -> None:
        super().__init__()
        sizes = torch.tensor([feature.vocab_size for feature in features], dtype=torch.int64)
        offsets = torch.cumsum(sizes, 0) - sizes  # (n_fields,) start row of each field's vocabulary
        self.register_buffer("offsets", offsets, persistent=False)
        self.table = nn.Embedding(int(sizes.sum()), dim)
        nn.init.normal_(self.table.weight, std=init_std)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.table(batch + self.offsets)  # (batch, n_fields) -> (batch, n_fields, dim)


class MoCFusion(nn.Module):
    """MoC's implicit fusion (paper section 4.2.3, Fig. 6): e' = e + W_up(GELU(W_down(e))) over the item fields.

    The item-side field embeddings (item id, attributes, every Semantic-ID table) are concatenated, mixed
    through a bottleneck with a residual, and split back in place; user/context fields pass untouched. The
    up-projection starts at zero (as adapters do), so a fused model starts as exactly the plain one and fusion
    only adds what training finds useful: with PyTorch's default init its bias alone (~0.1) would drown the
    1e-4-scale embeddings under one constant vector shared by every item.
    """

    def __init__(self, item_fields: Sequence[int], dim: int, bottleneck: int) -> None:
        super().__init__()
        self.register_buffer("item_fields", torch.tensor(list(item_fields), dtype=torch.int64), persistent=False)
        width = len(item_fields) * dim
        self.down = linear(width, bottleneck)
        self.up = linear(bottleneck, width)
        nn.init.zeros_(self.up.weight)

    def forward(self, embedded: torch.Tensor) -> torch.Tensor:
        batch, _, dim = embedded.shape  # (batch, n_fields, dim)
        items = embedded[:, self.item_fields].reshape(batch, -1)  # (batch, n_item_fields * dim)
        fused = items + self.up(nn.functional.gelu(self.down(items)))  # (batch, n_item_fields * dim)
        return embedded.index_copy(1, self.item_fields, fused.view(batch, -1, dim))  # (batch, n_fields, dim)


class FieldEmbedding(nn.Module):
    """What every backbone starts with: the field embeddings, MoC-fused when ``fusion`` is on.

    With fusion off no fusion module exists at all (no parameters, no random draws at construction), so a
    model built with ``fusion=False`` is exactly the plain backbone.
    """

    def __init__(self, features: Sequence[FeatureSpec], config: EmbeddingConfig, fusion: bool) -> None:
        super().__init__()
        self.embedding = FeatureEmbedding(features, config.dim, config.init_std)
        item_fields = [i for i, feature in enumerate(features) if feature.side == "item"]
        if fusion and not item_fields:
            raise ValueError("MoC fusion needs at least one item-side field")
        self.fusion = MoCFusion(item_fields, config.dim, config.fusion_bottleneck) if fusion else None

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        embedded = self.embedding(batch)  # (batch, n_fields, dim)
        return embedded if self.fusion is None else self.fusion(embedded)


class MLP(nn.Module):
    """Linear -> [BatchNorm] -> ReLU -> [Dropout] per hidden width, then an optional linear output."""

    def __init__(self, input_dim: int, config: MLPConfig, output_dim: int | None = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in config.hidden:
            layers.append(linear(input_dim, width))
            if config.batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.ReLU())
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            input_dim = width
        if output_dim is not None:
            layers.append(linear(input_dim, output_dim))
            input_dim = output_dim
        self.net = nn.Sequential(*layers)
        self.output_dim = input_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (batch, input_dim) -> (batch, output_dim)


class LinearTerm(nn.Module):
    """First-order term: a learned weight per feature value plus a bias, gathered from one table."""

    def __init__(self, features: Sequence[FeatureSpec]) -> None:
        super().__init__()
        self.weights = FeatureEmbedding(features, 1, init_std=1e-4)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.weights(batch).sum(dim=(1, 2)) + self.bias  # (batch, n_fields) -> (batch,)


def fm_interaction(embedded: torch.Tensor) -> torch.Tensor:
    """Second-order FM term, sum_{i<j} <e_i, e_j>, as ((sum e)^2 - sum e^2) / 2 in O(n_fields * dim)."""
    square_of_sum = embedded.sum(dim=1).square()  # (batch, dim)
    sum_of_squares = embedded.square().sum(dim=1)  # (batch, dim)
    return 0.5 * (square_of_sum - sum_of_squares).sum(dim=1)  # (batch,)


class CrossLayer(nn.Module):
    """One full-rank DCNv2 cross layer: x_{l+1} = x_0 * (W x_l + b) + x_l."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = linear(dim, dim)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x  # (batch, dim)


class LowRankCrossLayer(nn.Module):
    """DCNv2's low-rank mixture cross layer: gated experts x_0 * U_k g(C_k g(V_k^T x_l)) + b, plus x_l."""

    def __init__(self, dim: int, rank: int, n_experts: int) -> None:
        super().__init__()
        self.v = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_experts, dim, rank)))
        self.c = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_experts, rank, rank)))
        self.u = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_experts, rank, dim)))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.gate = linear(dim, n_experts, bias=False)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        low = torch.tanh(torch.einsum("bd,edr->ber", x, self.v))  # (batch, n_experts, rank)
        low = torch.tanh(torch.einsum("ber,ers->bes", low, self.c))  # (batch, n_experts, rank)
        experts = x0.unsqueeze(1) * (torch.einsum("ber,erd->bed", low, self.u) + self.bias)  # (batch, n_experts, dim)
        weights = torch.softmax(self.gate(x), dim=-1).unsqueeze(-1)  # (batch, n_experts, 1)
        return (experts * weights).sum(dim=1) + x  # (batch, dim)


class InteractingLayer(nn.Module):
    """AutoInt's interacting layer: multi-head self-attention over fields, a projected residual, ReLU."""

    def __init__(self, input_dim: int, head_dim: int, n_heads: int, layer_norm: bool = False) -> None:
        super().__init__()
        width = head_dim * n_heads
        self.n_heads = n_heads
        self.qkv = linear(input_dim, 3 * width, bias=False)
        self.residual = linear(input_dim, width, bias=False)
        self.norm = nn.LayerNorm(width) if layer_norm else None
        self.output_dim = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, n_fields, _ = x.shape  # (batch, n_fields, input_dim)
        qkv = self.qkv(x).view(batch, n_fields, 3, self.n_heads, -1)  # (batch, fields, 3, heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # 3 x (batch, heads, fields, head_dim)
        attended = nn.functional.scaled_dot_product_attention(q, k, v)  # (batch, heads, fields, head_dim)
        out = attended.transpose(1, 2).reshape(batch, n_fields, -1) + self.residual(x)  # (batch, fields, width)
        out = torch.relu(out)
        return out if self.norm is None else self.norm(out)
