"""The one vector-quantization layer every tokenizer is built from.

A codebook of K vectors; each latent is replaced by its nearest code (squared Euclidean distance). The layer
is split in two so that composers can fuse codes before the loss: `lookup` finds codes (and, in training,
initialises, EMA-updates and restarts the codebook), while `quantization_loss` and `straight_through` turn a
looked-up (possibly fused) vector into the VQ-VAE loss and the decoder input. `VectorQuantizer.forward` is
the three together for a single codebook.

Loss, van den Oord et al. (2017) and TIGER: ``||sg[z] - zq||^2 + beta * ||z - sg[zq]||^2``: the first term
moves the codebook, the second (weighted by beta = 0.25) commits the encoder. The MoC paper writes both with
weight 1 and no beta; beta = 0.25 on the commitment term is the VQ-VAE value the MoC baselines inherit.
With EMA updates the codebook is moved by moving averages instead and only the commitment term remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import nn

from ops.quantizers.kmeans import KMeansConfig, KMeansInit, fit_kmeans, nearest_code


class CodebookUpdate(StrEnum):
    LOSS = "loss"  # gradient of ||sg[z] - zq||^2 through Adam (the loss of the MoC paper)
    EMA = "ema"  # exponential moving averages of assigned latents (van den Oord et al., appendix A.1)


@dataclass(frozen=True)
class VQConfig:
    codebook_size: int = 256  # K, MoC appendix: 256 codes per codebook
    beta: float = 0.25  # commitment weight (VQ-VAE)
    update: CodebookUpdate = CodebookUpdate.LOSS  # how codes move; EMA is the paper's "in practice" alternative
    ema_decay: float = 0.99  # EMA only: VQ-VAE's gamma
    kmeans_init: bool = True  # seed the codebook with k-means of the initial latents (faiss), as TIGER does
    kmeans_iters: int = 20  # Lloyd iterations of that k-means (from K random latents; training moves codes after)
    dead_code_steps: int = 5  # re-seed codes idle this many training steps from current latents (0 = never);
    # 5 keeps >= 96% of codes used at all 7 levels of a Beauty RQ-VAE, batch 512 (20: 85% at level 7, 60: 45%)

    def __post_init__(self) -> None:
        object.__setattr__(self, "update", CodebookUpdate(self.update))  # accept "ema"/"loss" from dict configs
        if self.codebook_size < 2 or self.beta < 0 or not 0 < self.ema_decay < 1 or self.dead_code_steps < 0:
            raise ValueError(f"invalid VQ config {self}")

    @classmethod
    def test(cls) -> VQConfig:
        return cls(codebook_size=16, kmeans_iters=5, dead_code_steps=4)


EMA_EPSILON = 1e-5  # Laplace smoothing of EMA cluster sizes, so an empty code never divides by zero


class VectorQuantizer(nn.Module):
    """One codebook (K, dim). ``forward(z) -> (quantized, codes (batch, 1), loss)``."""

    def __init__(self, dim: int, config: VQConfig, seed: int) -> None:
        super().__init__()
        self.config = config
        self.seed = seed  # k-means seed: layers of one model get distinct seeds, so their codebooks differ
        size = config.codebook_size
        codebook = torch.empty(size, dim).uniform_(-1 / size, 1 / size)  # VQ-VAE's init when k-means is off
        self.codebook = nn.Parameter(codebook, requires_grad=config.update is CodebookUpdate.LOSS)
        self.register_buffer("idle_steps", torch.zeros(size, dtype=torch.long))  # training steps since last use
        if config.update is CodebookUpdate.EMA:
            self.register_buffer("ema_count", torch.ones(size))  # (K,) smoothed number of latents per code
            self.register_buffer("ema_sum", codebook.clone())  # (K, dim) smoothed sum of those latents

    @property
    def codebook_size(self) -> int:
        return self.codebook.shape[0]

    @property
    def layers(self) -> list[VectorQuantizer]:
        """The quantizer contract's list of codebooks: a single layer is its own only level."""
        return [self]

    @torch.no_grad()
    def initialize(self, z: torch.Tensor) -> None:
        """Set the codebook to the k-means centroids of ``z`` (batch, dim) (no-op when k-means init is off)."""
        if not self.config.kmeans_init:
            return
        kmeans = KMeansConfig(self.codebook_size, niter=self.config.kmeans_iters, init=KMeansInit.RANDOM)
        centroids = torch.from_numpy(fit_kmeans(z.detach().cpu().numpy(), kmeans, self.seed)).to(self.codebook)
        self._set_codes(torch.arange(self.codebook_size, device=centroids.device), centroids)

    def lookup(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codes of ``z`` (batch, dim): (zq (batch, dim), codes (batch,)).

        ``zq`` carries the codebook's gradient (LOSS update) but none towards ``z``. In training mode this also
        restarts dead codes (before the search, so a restarted code is used at once) and applies EMA updates.
        """
        if self.training and self.config.dead_code_steps:
            self._restart_dead_codes(z)
        codes = self.nearest(z)  # (batch,)
        zq = self.codebook[codes]  # (batch, dim)
        if self.training:
            self._record_use(codes)
            if self.config.update is CodebookUpdate.EMA:
                self._ema_update(z, codes)
        return zq, codes

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the closest code to each row of ``z`` (batch, dim) -> (batch,)."""
        return nearest_code(z.detach(), self.codebook.detach())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        zq, codes = self.lookup(z)
        loss = quantization_loss(z, zq, self.config)
        return straight_through(z, zq), codes[:, None], loss

    def codebook_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, 1) codes -> (batch, 1, dim) code vectors."""
        return self.codebook.detach()[codes]

    def codes_to_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """(batch, 1) codes -> (batch, dim): exactly the ``quantized`` value `forward` returned for them."""
        return self.codebook_vectors(codes)[:, 0]

    @torch.no_grad()
    def _record_use(self, codes: torch.Tensor) -> None:
        self.idle_steps += 1
        self.idle_steps[codes] = 0

    @torch.no_grad()
    def _restart_dead_codes(self, z: torch.Tensor) -> None:
        """Re-seed codes idle for ``dead_code_steps`` steps with random latents of this batch (Dhariwal et al.)."""
        dead = (self.idle_steps >= self.config.dead_code_steps).nonzero()[:, 0]  # (n_dead,)
        if dead.numel() == 0:
            return
        picks = torch.randint(z.shape[0], (dead.numel(),), device=z.device)  # seeded by the training loop
        self._set_codes(dead, z.detach()[picks])
        self.idle_steps[dead] = 0

    @torch.no_grad()
    def _set_codes(self, indices: torch.Tensor, vectors: torch.Tensor) -> None:
        self.codebook.data[indices] = vectors
        if self.config.update is CodebookUpdate.EMA:
            self.ema_count[indices] = 1.0
            self.ema_sum[indices] = vectors

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        """Moving averages of the count and sum of latents assigned to each code; code = sum / count."""
        decay = self.config.ema_decay
        one_hot = torch.nn.functional.one_hot(codes, self.codebook_size).type_as(z)  # (batch, K)
        self.ema_count.mul_(decay).add_(one_hot.sum(0), alpha=1 - decay)  # (K,)
        self.ema_sum.mul_(decay).add_(one_hot.T @ z.detach(), alpha=1 - decay)  # (K, dim); matmul: deterministic
        total = self.ema_count.sum()
        smoothed = (self.ema_count + EMA_EPSILON) / (total + self.codebook_size * EMA_EPSILON) * total  # (K,)
        self.codebook.data.copy_(self.ema_sum / smoothed[:, None])


def quantization_loss(z: torch.Tensor, zq: torch.Tensor, config: VQConfig) -> torch.Tensor:
    """``||sg[z] - zq||^2 + beta ||z - sg[zq]||^2`` (squared L2 per row, averaged over the batch).

    The codebook term is left out under EMA updates, where the codebook is not trained by gradients.
    """
    commitment = (z - zq.detach()).pow(2).sum(1).mean()
    if config.update is CodebookUpdate.EMA:
        return config.beta * commitment
    return (z.detach() - zq).pow(2).sum(1).mean() + config.beta * commitment


def straight_through(z: torch.Tensor, zq: torch.Tensor) -> torch.Tensor:
    """Value exactly ``zq``; gradient passes to ``z`` unchanged (VQ-VAE's straight-through estimator).

    Written as ``sg[zq] + (z - sg[z])`` rather than ``z + sg[zq - z]``: the latter rounds, and then
    ``codes_to_vectors(codes)`` would no longer reproduce the quantized latent bit for bit.
    """
    return zq.detach() + (z - z.detach())


def stack_codebook_vectors(layers: nn.ModuleList, codes: torch.Tensor) -> torch.Tensor:
    """Per-layer code vectors: codes (batch, n_layers) -> (batch, n_layers, dim)."""
    return torch.stack([layer.codebook.detach()[codes[:, i]] for i, layer in enumerate(layers)], dim=1)
