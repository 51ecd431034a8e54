"""Multi-Embedding (ME) baseline: a VQ-VAE's single code per item, looked up in M embedding tables downstream.

ME scales the representation only in the recommendation model (Guo et al., 2023; MoC paper, section 5.3):
the tokenizer is a plain one-codebook VQ-VAE and the scaling factor M is recorded in the config so the CTR
stage creates M independent tables for that one code. Nothing about the codes depends on M.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ops.quantizers.autoencoder import AutoencoderConfig, Tokenizer, mlp_autoencoder
from ops.quantizers.config import TrainConfig
from ops.quantizers.vq import VectorQuantizer, VQConfig


@dataclass(frozen=True)
class MultiEmbeddingConfig:
    scaling_factor: int = 1  # M embedding tables per code downstream (paper: 1x, 2x, 3x, 7x)
    vq: VQConfig = field(default_factory=VQConfig)  # the single codebook
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)  # 512-256-128 MLP, latent 32
    train: TrainConfig = field(default_factory=TrainConfig)  # Adam 1e-3, batch 8012

    def __post_init__(self) -> None:
        if self.scaling_factor < 1:
            raise ValueError(f"scaling_factor must be >= 1, got {self.scaling_factor}")

    @classmethod
    def test(cls) -> MultiEmbeddingConfig:
        return cls(2, VQConfig.test(), AutoencoderConfig.test(), TrainConfig.test())


class MultiEmbedding(Tokenizer):
    kind = "me"

    def __init__(self, config: MultiEmbeddingConfig) -> None:
        quantizer = VectorQuantizer(config.autoencoder.latent_dim, config.vq, config.train.seed)
        super().__init__(config.autoencoder.input_dim, quantizer, *mlp_autoencoder(config.autoencoder))
        self.config = config
