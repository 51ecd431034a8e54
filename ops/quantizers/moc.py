"""Mixture-of-Codes tokenizer: N independent codebooks quantize the same latent; the decoder reads their
average (MoC paper, section 4.2.2). Each item gets N codes, one per codebook."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ops.quantizers.autoencoder import AutoencoderConfig, Tokenizer, mlp_autoencoder
from ops.quantizers.config import TrainConfig
from ops.quantizers.vq import VectorQuantizer, VQConfig, quantization_loss, stack_codebook_vectors, straight_through


@dataclass(frozen=True)
class MoCConfig:
    n_codebooks: int = 3  # N parallel codebooks = codes per item (paper scales 1x..7x)
    vq: VQConfig = field(default_factory=VQConfig)  # every codebook: 256 codes
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)  # 512-256-128 MLP, latent 32
    train: TrainConfig = field(default_factory=TrainConfig)  # Adam 1e-3, batch 8012

    def __post_init__(self) -> None:
        if self.n_codebooks < 1:
            raise ValueError(f"n_codebooks must be >= 1, got {self.n_codebooks}")

    @classmethod
    def test(cls) -> MoCConfig:
        return cls(3, VQConfig.test(), AutoencoderConfig.test(), TrainConfig.test())


class MixtureQuantizer(nn.Module):
    """``forward(z) -> (quantized (batch, dim), codes (batch, N), loss)``: each codebook picks its nearest code
    to ``z``; quantized = AVG of the N code vectors, and the VQ loss is taken on that average (paper's L_MoC)."""

    def __init__(self, dim: int, n_codebooks: int, config: VQConfig, seed: int) -> None:
        super().__init__()
        # distinct k-means seeds: identical codebooks would get identical gradients and never diverge
        self.layers = nn.ModuleList([VectorQuantizer(dim, config, seed + i) for i in range(n_codebooks)])

    @torch.no_grad()
    def initialize(self, z: torch.Tensor) -> None:
        for layer in self.layers:
            layer.initialize(z)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        looked_up = [layer.lookup(z) for layer in self.layers]  # N x ((batch, dim), (batch,))
        zq = torch.stack([vectors for vectors, _ in looked_up], dim=1).mean(1)  # (batch, dim)
        codes = torch.stack([indices for _, indices in looked_up], dim=1)  # (batch, N)
        return straight_through(z, zq), codes, quantization_loss(z, zq, self.layers[0].config)

    def codebook_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        return stack_codebook_vectors(self.layers, codes)  # (batch, N, dim)

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook_vectors(codes).mean(1)  # (batch, dim)


class MoC(Tokenizer):
    kind = "moc"

    def __init__(self, config: MoCConfig) -> None:
        quantizer = MixtureQuantizer(config.autoencoder.latent_dim, config.n_codebooks, config.vq, config.train.seed)
        super().__init__(config.autoencoder.input_dim, quantizer, *mlp_autoencoder(config.autoencoder))
        self.config = config
