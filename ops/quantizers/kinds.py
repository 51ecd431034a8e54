"""The tokenizers by name: what checkpoints, manifests and the Dagster config use to pick one."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from ops.quantizers.autoencoder import Tokenizer
from ops.quantizers.config import TrainConfig, config_from_dict
from ops.quantizers.lamia import LamiaQuantizerConfig, LamiaTokenizer
from ops.quantizers.moc import MoC, MoCConfig
from ops.quantizers.multi_embedding import MultiEmbedding, MultiEmbeddingConfig
from ops.quantizers.rqkmeans import RQKMeans, RQKMeansConfig
from ops.quantizers.rqvae import RQVAE, RQVAEConfig
from ops.quantizers.vqvae import VQVAE, VQVAEConfig

TokenizerConfig = VQVAEConfig | RQVAEConfig | MoCConfig | MultiEmbeddingConfig | RQKMeansConfig | LamiaQuantizerConfig

TOKENIZERS: MappingProxyType[str, tuple[type[Tokenizer], type]] = MappingProxyType(
    {
        VQVAE.kind: (VQVAE, VQVAEConfig),
        RQVAE.kind: (RQVAE, RQVAEConfig),
        MoC.kind: (MoC, MoCConfig),
        MultiEmbedding.kind: (MultiEmbedding, MultiEmbeddingConfig),
        RQKMeans.kind: (RQKMeans, RQKMeansConfig),
        LamiaTokenizer.kind: (LamiaTokenizer, LamiaQuantizerConfig),
    }
)

TRAINING_FREE = (RQKMeansConfig, LamiaQuantizerConfig)  # tokenizers fitted by their k-means `initialize` alone


def kind_of(config: TokenizerConfig) -> str:
    for kind, (_, config_class) in TOKENIZERS.items():
        if type(config) is config_class:
            return kind
    raise TypeError(f"not a tokenizer config: {type(config).__name__}")


def build_tokenizer(config: TokenizerConfig) -> Tokenizer:
    """The tokenizer a config describes, with freshly initialised weights (seed them before calling)."""
    model_class, _ = TOKENIZERS[kind_of(config)]
    return model_class(config)


def config_for(kind: str, data: dict[str, Any]) -> TokenizerConfig:
    """Rebuild a tokenizer config from its kind and `config_to_dict` form."""
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; known: {sorted(TOKENIZERS)}")
    return config_from_dict(TOKENIZERS[kind][1], data)


def train_schedule(config: TokenizerConfig) -> TrainConfig | None:
    """The gradient-training schedule of ``config``, or None for a training-free tokenizer (RQ-KMeans)."""
    return None if isinstance(config, TRAINING_FREE) else config.train


# the config field that says how many codes (or, for ME, downstream tables) an item gets, per kind
SCALE_FIELD = MappingProxyType(
    {"rqvae": "levels", "moc": "n_codebooks", "me": "scaling_factor", "rqkmeans": "levels", "lamia": "palette_size"}
)


def scaled_config(kind: str, scale: int, settings: dict[str, Any]) -> TokenizerConfig:
    """The config of ``kind`` at scaling factor ``scale`` (ignored by VQ-VAE, which has one code)."""
    return config_for(kind, {**settings, SCALE_FIELD[kind]: scale} if kind in SCALE_FIELD else settings)


def scaling_factor(config: TokenizerConfig) -> int:
    """Semantic representations per item downstream: codes per item, or ME's M tables for its one code."""
    kind = kind_of(config)
    return getattr(config, SCALE_FIELD[kind]) if kind in SCALE_FIELD else 1
