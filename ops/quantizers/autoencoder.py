"""The shape every tokenizer shares: encoder -> quantizer -> decoder.

A tokenizer differs from another only by its quantizer (one codebook, residual levels, parallel codebooks) and
by what encodes and decodes around it, so the loss and the frozen-assignment path live here once.
`vqvae.py`, `rqvae.py`, `moc.py` and `multi_embedding.py` choose a quantizer and put the trained MLP autoencoder
around it (`mlp_autoencoder`); the training-free `rqkmeans.py` puts a frozen PCA (or nothing) around k-means
codebooks. A quantizer is any module with ``forward(z) -> (quantized, codes, loss)``, ``codes_to_vectors(codes)``,
``codebook_vectors(codes)``, ``initialize(z)`` and a ``layers`` ModuleList of codebooks (`VectorQuantizer` or
`KMeansCodebook`: a ``codebook`` (K, dim) and ``nearest(z)``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

ENCODE_CHUNK = 65536  # rows per forward pass when encoding a whole catalogue (bounds memory, not results)


@dataclass(frozen=True)
class AutoencoderConfig:
    input_dim: int = 384  # embedding width; all-MiniLM-L6-v2's here, the asset sets it from the embedding table
    hidden: tuple[int, ...] = (512, 256, 128)  # MoC appendix: three hidden layers, ReLU between layers
    latent_dim: int = 32  # MoC appendix: latent = code vector dimension

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))  # lists from JSON/checkpoints become tuples
        if self.input_dim < 1 or self.latent_dim < 1 or any(width < 1 for width in self.hidden):
            raise ValueError(f"invalid autoencoder config {self}")

    @classmethod
    def test(cls) -> AutoencoderConfig:
        return cls(input_dim=24, hidden=(32, 16), latent_dim=8)


def mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers through ``widths`` with ReLU between them (none after the last: latents and
    reconstructions are signed)."""
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(itertools.pairwise(widths)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(width_in, width_out))
    return nn.Sequential(*layers)


def mlp_autoencoder(config: AutoencoderConfig) -> tuple[nn.Sequential, nn.Sequential]:
    """The MLP encoder (input -> hidden -> latent) and its mirrored decoder, built in that order."""
    encoder = mlp([config.input_dim, *config.hidden, config.latent_dim])
    decoder = mlp([config.latent_dim, *reversed(config.hidden), config.input_dim])
    return encoder, decoder


class TokenizerOutput(NamedTuple):
    quantized: torch.Tensor  # (batch, code_dim) decoder input
    codes: torch.Tensor  # (batch, n_codes) long
    loss: torch.Tensor  # () reconstruction + quantization
    reconstruction: torch.Tensor  # (batch, input_dim)
    reconstruction_loss: torch.Tensor  # () ||x - x_hat||^2, summed over dims, averaged over the batch
    quantization_loss: torch.Tensor  # () the quantizer's VQ loss


class Tokenizer(nn.Module):
    """Encoder, quantizer, decoder. ``forward(x) -> (quantized, codes, loss)``; `run` gives every term."""

    kind = "tokenizer"  # checkpoint tag; each tokenizer class names its own

    def __init__(self, input_dim: int, quantizer: nn.Module, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.input_dim = input_dim  # embedding width the tokenizer reads
        self.encoder = encoder
        self.quantizer = quantizer
        self.decoder = decoder

    @property
    def n_codes(self) -> int:
        """Codes per item: residual levels or parallel codebooks, 1 for a single codebook."""
        return len(self.quantizer.layers)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.layers[0].codebook_size

    @property
    def code_dim(self) -> int:
        """Width of a code vector: the quantized latent's."""
        return self.quantizer.layers[0].codebook.shape[1]

    def run(self, x: torch.Tensor) -> TokenizerOutput:
        """x (batch, input_dim) -> every output and loss term (training logs them separately)."""
        z = self.encoder(x)  # (batch, code_dim)
        quantized, codes, quantization_loss = self.quantizer(z)  # (batch, code_dim), (batch, n_codes), ()
        reconstruction = self.decoder(quantized)  # (batch, input_dim)
        reconstruction_loss = (x - reconstruction).pow(2).sum(1).mean()
        loss = reconstruction_loss + quantization_loss
        return TokenizerOutput(quantized, codes, loss, reconstruction, reconstruction_loss, quantization_loss)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        output = self.run(x)
        return output.quantized, output.codes, output.loss

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, n_codes) -> (batch, code_dim): the quantized latent those codes stand for."""
        return self.quantizer.codes_to_vectors(codes)

    def codebook_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, n_codes) -> (batch, n_codes, code_dim): each code's own vector (per-codebook representation)."""
        return self.quantizer.codebook_vectors(codes)

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """k-means-initialise the codebooks from the latents of ``x`` (batch, input_dim) at the current weights
        (for a training-free tokenizer, its whole fit)."""
        self.quantizer.initialize(self.encoder(x))

    @torch.no_grad()
    def encode_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen assignment: x (n, input_dim) -> codes (n, n_codes), without touching any codebook."""
        was_training = self.training
        self.eval()
        try:
            return torch.cat([self.quantizer(self.encoder(chunk))[1] for chunk in x.split(ENCODE_CHUNK)])
        finally:
            self.train(was_training)
