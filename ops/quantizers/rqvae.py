"""RQ-VAE tokenizer: M residual levels, each quantizing what the levels before it left (Lee et al., 2022;
TIGER; MoC paper, section 5.3). The quantized latent is the sum of the levels' code vectors."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ops.quantizers.autoencoder import AutoencoderConfig, Tokenizer, mlp_autoencoder
from ops.quantizers.config import TrainConfig
from ops.quantizers.vq import VectorQuantizer, VQConfig, quantization_loss, stack_codebook_vectors, straight_through


@dataclass(frozen=True)
class RQVAEConfig:
    levels: int = 3  # M residual codebooks = codes per item (TIGER: 3; MoC scales 1x..7x)
    vq: VQConfig = field(default_factory=VQConfig)  # every level: 256 codes
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)  # 512-256-128 MLP, latent 32
    train: TrainConfig = field(default_factory=TrainConfig)  # Adam 1e-3, batch 8012

    def __post_init__(self) -> None:
        if self.levels < 1:
            raise ValueError(f"levels must be >= 1, got {self.levels}")

    @classmethod
    def test(cls) -> RQVAEConfig:
        return cls(3, VQConfig.test(), AutoencoderConfig.test(), TrainConfig.test())


class ResidualQuantizer(nn.Module):
    """``forward(z) -> (quantized (batch, dim), codes (batch, levels), loss)``; loss = sum of the levels'
    VQ losses on their residuals, as in TIGER."""

    def __init__(self, dim: int, levels: int, config: VQConfig, seed: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([VectorQuantizer(dim, config, seed + level) for level in range(levels)])

    def initialize(self, z: torch.Tensor) -> None:
        initialize_residual_levels(self.layers, z)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        residual = z  # (batch, dim)
        vectors, codes, loss = [], [], z.new_zeros(())
        for layer in self.layers:
            zq, level_codes = layer.lookup(residual)  # (batch, dim), (batch,)
            loss = loss + quantization_loss(residual, zq, layer.config)
            residual = residual - zq.detach()
            vectors.append(zq)
            codes.append(level_codes)
        zq_total = torch.stack(vectors, dim=1).sum(1)  # (batch, dim); same reduction as codes_to_vectors
        return straight_through(z, zq_total), torch.stack(codes, dim=1), loss

    def codebook_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        return stack_codebook_vectors(self.layers, codes)  # (batch, levels, dim)

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook_vectors(codes).sum(1)  # (batch, dim)


@torch.no_grad()
def initialize_residual_levels(layers: nn.ModuleList, z: torch.Tensor) -> None:
    """k-means each codebook of ``layers`` on the residuals of ``z`` (n, dim) the initialised levels before it
    leave (any codebook with ``initialize``, ``nearest`` and ``codebook``: RQ-VAE's and RQ-KMeans' levels)."""
    residual = z
    for layer in layers:
        layer.initialize(residual)
        residual = residual - layer.codebook[layer.nearest(residual)]


class RQVAE(Tokenizer):
    kind = "rqvae"

    def __init__(self, config: RQVAEConfig) -> None:
        quantizer = ResidualQuantizer(config.autoencoder.latent_dim, config.levels, config.vq, config.train.seed)
        super().__init__(config.autoencoder.input_dim, quantizer, *mlp_autoencoder(config.autoencoder))
        self.config = config
