"""LAMIA's training-free quantization (arXiv 2409.07276, section 4.2.3): per aspect, PCA then K-Means.

Aspect j of every item's palette is reduced by its own PCA (paper: 64 components) and clustered by its own
k-means (256 codes), independently of the other aspects: an item's Semantic ID is its L cluster indices. It is
a `Tokenizer` (``forward(x) -> (quantized, codes, loss)``, ``codes_to_vectors``, frozen ``encode_codes``) over
the flattened palette (n, L x D), composed from the same frozen PCA layers and k-means codebooks as RQ-KMeans,
so checkpoints, Semantic-ID tables and every downstream model take it unchanged. Registered as kind ``lamia``
in `ops.quantizers.kinds`, the generic tokenizer and Semantic-ID stages would fit and apply it as they do
RQ-KMeans (a palette table is an embedding table whose vectors are flattened palettes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import torch
from torch import nn

from ops.quantizers.autoencoder import Tokenizer
from ops.quantizers.kmeans import KMeansCodebook, KMeansConfig
from ops.quantizers.pca import fit_pca, pca_layers
from ops.quantizers.vq import stack_codebook_vectors
from ops.semantic_ids.table import semantic_id_table


@dataclass(frozen=True)
class LamiaQuantizerConfig:
    palette_size: int = 4  # L aspects = codes per item (paper: 4)
    aspect_dim: int = 576  # width of one palette embedding (SmolLM2: 576; OPT-350M: 512); set from the palettes
    pca_dim: int = 64  # components kept per aspect (paper: 64); 0 = cluster the palette as it is
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)  # per aspect: 256 codes (paper), k-means++
    seed: int = 0  # aspect j's k-means uses seed + j

    def __post_init__(self) -> None:
        if self.palette_size < 1 or not 0 <= self.pca_dim <= self.aspect_dim:
            raise ValueError(f"need palette_size >= 1 and 0 <= pca_dim <= aspect_dim, got {self}")

    @property
    def input_dim(self) -> int:
        return self.palette_size * self.aspect_dim

    @classmethod
    def test(cls) -> LamiaQuantizerConfig:
        return cls(palette_size=2, aspect_dim=12, pca_dim=4, kmeans=KMeansConfig.test())


class AspectMap(nn.Module):
    """One module per aspect, applied to its own slice: (n, L x d_in) -> (n, L x d_out)."""

    def __init__(self, maps: list[nn.Module], aspect_dim: int) -> None:
        super().__init__()
        self.maps = nn.ModuleList(maps)
        self.aspect_dim = aspect_dim  # d_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        aspects = x.view(len(x), len(self.maps), self.aspect_dim)  # (n, L, d_in)
        return torch.cat([m(aspects[:, j]) for j, m in enumerate(self.maps)], dim=1)  # (n, L x d_out)


class AspectKMeans(nn.Module):
    """``forward(z) -> (quantized (n, L x d), codes (n, L), loss)``: aspect j's nearest code of codebook j;
    quantized = the L code vectors side by side; loss = mean ||z - quantized||^2 (k-means' objective)."""

    def __init__(self, dim: int, aspects: int, config: KMeansConfig, seed: int) -> None:
        super().__init__()
        self.dim = dim  # d, one aspect's width
        self.layers = nn.ModuleList([KMeansCodebook(dim, config, seed + j) for j in range(aspects)])

    def _aspects(self, z: torch.Tensor) -> torch.Tensor:
        return z.view(len(z), len(self.layers), self.dim)  # (n, L, d)

    @torch.no_grad()
    def initialize(self, z: torch.Tensor) -> None:
        for j, layer in enumerate(self.layers):
            layer.initialize(self._aspects(z)[:, j])

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        aspects = self._aspects(z)
        codes = torch.stack([layer.nearest(aspects[:, j]) for j, layer in enumerate(self.layers)], dim=1)  # (n, L)
        quantized = self.codes_to_vectors(codes)  # (n, L x d)
        return quantized, codes, (z - quantized).pow(2).sum(1).mean()

    def codebook_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        return stack_codebook_vectors(self.layers, codes)  # (n, L, d)

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook_vectors(codes).flatten(1)  # (n, L x d)


class LamiaTokenizer(Tokenizer):
    kind = "lamia"

    def __init__(self, config: LamiaQuantizerConfig) -> None:
        aspects, width = config.palette_size, config.aspect_dim
        if config.pca_dim:
            pairs = [pca_layers(width, config.pca_dim) for _ in range(aspects)]
            encoder = AspectMap([project for project, _ in pairs], width)
            decoder = AspectMap([reconstruct for _, reconstruct in pairs], config.pca_dim)
        else:
            encoder, decoder = nn.Identity(), nn.Identity()
        quantizer = AspectKMeans(config.pca_dim or width, aspects, config.kmeans, config.seed)
        super().__init__(config.input_dim, quantizer, encoder, decoder)
        self.config = config

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """The whole fit: each aspect's PCA (when configured), then each aspect's k-means. x (n, L x D)."""
        if self.config.pca_dim:
            aspects = x.view(len(x), self.config.palette_size, self.config.aspect_dim)  # (n, L, D)
            for j, project in enumerate(self.encoder.maps):
                fit_pca(project, self.decoder.maps[j], aspects[:, j])
        super().initialize(x)


def quantize_palettes(
    item_ids: Sequence[str], palettes: np.ndarray, config: LamiaQuantizerConfig
) -> tuple[LamiaTokenizer, pl.DataFrame]:
    """Fit on every item's palette (n, L, D) and encode them: the fitted tokenizer and its Semantic-ID table
    (``kind: lamia`` codes in the shared table format, collision suffixes included)."""
    if palettes.shape[1:] != (config.palette_size, config.aspect_dim):
        raise ValueError(f"palettes {palettes.shape} do not match {config.palette_size} x {config.aspect_dim}")
    x = torch.tensor(palettes.reshape(len(palettes), -1), dtype=torch.float32)  # (n, L x D), a copy
    model = LamiaTokenizer(config)
    model.initialize(x)
    model.eval()
    return model, semantic_id_table(item_ids, model.encode_codes(x).numpy())
