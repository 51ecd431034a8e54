"""VQ-VAE tokenizer: one codebook, one code per item (MoC paper, section 4.2.1)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ops.quantizers.autoencoder import AutoencoderConfig, Tokenizer, mlp_autoencoder
from ops.quantizers.config import TrainConfig
from ops.quantizers.vq import VectorQuantizer, VQConfig


@dataclass(frozen=True)
class VQVAEConfig:
    vq: VQConfig = field(default_factory=VQConfig)  # the single codebook
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)  # 512-256-128 MLP, latent 32
    train: TrainConfig = field(default_factory=TrainConfig)  # Adam 1e-3, batch 8012

    @classmethod
    def test(cls) -> VQVAEConfig:
        return cls(VQConfig.test(), AutoencoderConfig.test(), TrainConfig.test())


class VQVAE(Tokenizer):
    kind = "vqvae"

    def __init__(self, config: VQVAEConfig) -> None:
        quantizer = VectorQuantizer(config.autoencoder.latent_dim, config.vq, config.train.seed)
        super().__init__(config.autoencoder.input_dim, quantizer, *mlp_autoencoder(config.autoencoder))
        self.config = config
