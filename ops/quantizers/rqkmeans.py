"""RQ-KMeans tokenizer: residual k-means on the item embeddings, training-free (GRID's and OneRec's default).

Level 1 clusters the embeddings (optionally projected on their top principal components) into K codes; level l
clusters what levels 1..l-1 leave (the residuals), so an item's Semantic ID is L codes whose code vectors sum
to its quantized embedding, as in RQ-VAE but with no encoder, decoder or gradient step: the k-means fit in
`initialize` is the whole training, and the same embeddings and seed give the same codes.

PCA first, by default to 32 components (RQ-VAE's code width, so code vectors are interchangeable downstream):
k-means on the raw 384-d MiniLM embeddings of Beauty (12,101 items, 3x256) reconstructs best (0.236 vs 0.337)
but its deeper levels pile items into a few codes (perplexity 104 and 91 of 256 at levels 2-3, against >= 217
at 32 components), so 23% of the items share their code tuple (9.5% at 32 components, 4.7% at 16, 15% at 64;
RQ-VAE 3x256: 2.7-3.5%). Level-1 NMI against categories (0.47) and joint NMI (0.41) hardly move with the width.

It is a `Tokenizer` like the others (``forward(x) -> (quantized, codes, loss)``, ``codes_to_vectors``, frozen
``encode_codes``), so checkpoints, the tokenizer stage, Semantic-ID tables and every downstream model take it
unchanged. Its loss terms measure, they train nothing: the quantization loss is k-means' objective (mean squared
distance of the projected embedding to its quantized vector), the reconstruction loss the same error back in the
embedding space (plus what PCA dropped), comparable with an RQ-VAE's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ops.quantizers.autoencoder import Tokenizer
from ops.quantizers.kmeans import KMeansCodebook, KMeansConfig
from ops.quantizers.pca import fit_pca, pca_layers
from ops.quantizers.rqvae import initialize_residual_levels
from ops.quantizers.vq import stack_codebook_vectors


@dataclass(frozen=True)
class RQKMeansConfig:
    levels: int = 3  # L residual codebooks = codes per item (TIGER, GRID: 3)
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)  # every level: 256 codes, k-means++, 50 iterations
    pca_dim: int = 32  # cluster this many top principal components (0 = the raw embeddings); RQ-VAE's code width
    input_dim: int = 384  # embedding width; all-MiniLM-L6-v2's here, the asset sets it from the embedding table
    seed: int = 0  # level l's k-means uses seed + l

    def __post_init__(self) -> None:
        if self.levels < 1 or not 0 <= self.pca_dim <= self.input_dim:
            raise ValueError(f"need levels >= 1 and 0 <= pca_dim <= input_dim, got {self}")

    @classmethod
    def test(cls) -> RQKMeansConfig:
        return cls(levels=3, kmeans=KMeansConfig.test(), pca_dim=8, input_dim=24)


class ResidualKMeans(nn.Module):
    """``forward(z) -> (quantized (batch, dim), codes (batch, levels), loss)``: each level's nearest code to the
    residual the levels before it leave; quantized = the sum of the code vectors; loss = mean ||z - quantized||^2."""

    def __init__(self, dim: int, levels: int, config: KMeansConfig, seed: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([KMeansCodebook(dim, config, seed + level) for level in range(levels)])

    def initialize(self, z: torch.Tensor) -> None:
        initialize_residual_levels(self.layers, z)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        residual = z  # (batch, dim)
        codes = []
        for layer in self.layers:
            level_codes = layer.nearest(residual)  # (batch,)
            residual = residual - layer.codebook[level_codes]
            codes.append(level_codes)
        stacked = torch.stack(codes, dim=1)  # (batch, levels)
        quantized = self.codes_to_vectors(stacked)  # (batch, dim); the very reduction codes_to_vectors does
        return quantized, stacked, (z - quantized).pow(2).sum(1).mean()

    def codebook_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        return stack_codebook_vectors(self.layers, codes)  # (batch, levels, dim)

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook_vectors(codes).sum(1)  # (batch, dim)


class RQKMeans(Tokenizer):
    kind = "rqkmeans"

    def __init__(self, config: RQKMeansConfig) -> None:
        quantizer = ResidualKMeans(config.pca_dim or config.input_dim, config.levels, config.kmeans, config.seed)
        encoder, decoder = (
            pca_layers(config.input_dim, config.pca_dim) if config.pca_dim else (nn.Identity(), nn.Identity())
        )
        super().__init__(config.input_dim, quantizer, encoder, decoder)
        self.config = config

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """The whole fit: PCA of ``x`` (n, input_dim) when configured, then k-means level by level."""
        if self.config.pca_dim:
            fit_pca(self.encoder, self.decoder, x)
        super().initialize(x)
