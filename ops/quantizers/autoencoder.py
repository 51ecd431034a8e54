"""The autoencoder every tokenizer shares: MLP encoder -> quantizer -> mirrored MLP decoder.

A tokenizer differs from another only by its quantizer (one codebook, residual levels, parallel codebooks),
so the encoder, decoder, loss and the frozen-assignment path live here once, and `vqvae.py`, `rqvae.py`,
`moc.py` and `multi_embedding.py` only choose the quantizer. A quantizer is any module with
``forward(z) -> (quantized, codes, loss)``, ``codes_to_vectors(codes)``, ``codebook_vectors(codes)``,
``initialize(z)`` and a ``layers`` ModuleList of `VectorQuantizer`s.
"""

from __future__ import annotations

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
    for i, (width_in, width_out) in enumerate(zip(widths, widths[1:], strict=False)):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(width_in, width_out))
    return nn.Sequential(*layers)


class TokenizerOutput(NamedTuple):
    quantized: torch.Tensor  # (batch, latent_dim) decoder input
    codes: torch.Tensor  # (batch, n_codes) long
    loss: torch.Tensor  # () reconstruction + quantization
    reconstruction: torch.Tensor  # (batch, input_dim)
    reconstruction_loss: torch.Tensor  # () ||x - x_hat||^2, summed over dims, averaged over the batch
    quantization_loss: torch.Tensor  # () the quantizer's VQ loss


class Tokenizer(nn.Module):
    """Encoder, quantizer, decoder. ``forward(x) -> (quantized, codes, loss)``; `run` gives every term."""

    kind = "tokenizer"  # checkpoint tag; each tokenizer class names its own

    def __init__(self, autoencoder: AutoencoderConfig, quantizer: nn.Module) -> None:
        super().__init__()
        self.encoder = mlp([autoencoder.input_dim, *autoencoder.hidden, autoencoder.latent_dim])
        self.quantizer = quantizer
        self.decoder = mlp([autoencoder.latent_dim, *reversed(autoencoder.hidden), autoencoder.input_dim])

    @property
    def n_codes(self) -> int:
        """Codes per item: residual levels or parallel codebooks, 1 for a single codebook."""
        return len(self.quantizer.layers)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.layers[0].codebook_size

    def run(self, x: torch.Tensor) -> TokenizerOutput:
        """x (batch, input_dim) -> every output and loss term (training logs them separately)."""
        z = self.encoder(x)  # (batch, latent_dim)
        quantized, codes, quantization_loss = self.quantizer(z)  # (batch, latent_dim), (batch, n_codes), ()
        reconstruction = self.decoder(quantized)  # (batch, input_dim)
        reconstruction_loss = (x - reconstruction).pow(2).sum(1).mean()
        loss = reconstruction_loss + quantization_loss
        return TokenizerOutput(quantized, codes, loss, reconstruction, reconstruction_loss, quantization_loss)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        output = self.run(x)
        return output.quantized, output.codes, output.loss

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, n_codes) -> (batch, latent_dim): the quantized latent those codes stand for."""
        return self.quantizer.codes_to_vectors(codes)

    def codebook_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, n_codes) -> (batch, n_codes, latent_dim): each code's own vector (per-codebook representation)."""
        return self.quantizer.codebook_vectors(codes)

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """k-means-initialise the codebooks from the latents of ``x`` (batch, input_dim) at the current weights."""
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
