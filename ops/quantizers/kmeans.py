"""The k-means building block of every codebook: faiss Lloyd iterations from a seeded start, and nearest-code search.

`fit_kmeans` is the one place semid calls faiss to cluster a codebook: RQ-VAE's and MoC's k-means
initialisation (`vq.VectorQuantizer.initialize`) and the training-free tokenizers, whose codebooks are k-means
centroids and nothing else (`rqkmeans.RQKMeans`; LAMIA's per-aspect quantization composes `KMeansCodebook`
the same way). Everything random is drawn from the seed, so the same data and seed give the same centroids.

Empty clusters: faiss re-seeds every cluster left empty by an iteration by splitting a large one (chosen with
probability proportional to its size; the two centroids become its centroid scaled by 1 +- 1/1024), so no
centroid ends an iteration with no points; a code can stay unused by the final assignment only when the data
has fewer distinct points than codes. Codebook usage reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import faiss
import numpy as np
import torch
from torch import nn

NEAREST_CHUNK = 65536  # rows per distance matrix in `nearest_code`: (65536, 256) float32 is 64 MiB


class KMeansInit(StrEnum):
    PLUS_PLUS = "k-means++"  # D^2-weighted seeding (Arthur & Vassilvitskii, 2007): one centre per separated cluster
    RANDOM = "random"  # K distinct random points, faiss's own start (what RQ-VAE's initialisation always used)


@dataclass(frozen=True)
class KMeansConfig:
    codebook_size: int = 256  # K codes (TIGER, GRID, OneRec: 256 per level)
    niter: int = 50  # Lloyd iterations per run; Beauty 3x256: error within 0.1% of 100's (20: up to 3.8% above)
    nredo: int = 1  # runs from different seeds, the lowest objective kept (each costs a full run)
    init: KMeansInit = KMeansInit.PLUS_PLUS  # a random start can put two centres in one cluster and none in another
    max_points_per_centroid: int = 256  # larger data is subsampled (seeded) to K x this first: faiss's default

    def __post_init__(self) -> None:
        object.__setattr__(self, "init", KMeansInit(self.init))  # accept "k-means++"/"random" from dict configs
        if self.codebook_size < 2 or self.niter < 1 or self.nredo < 1 or self.max_points_per_centroid < 1:
            raise ValueError(f"invalid k-means config {self}")

    @classmethod
    def test(cls) -> KMeansConfig:
        return cls(codebook_size=16, niter=10)


def fit_kmeans(data: np.ndarray, config: KMeansConfig, seed: int) -> np.ndarray:
    """K-means centroids (K, dim) float32 of ``data`` (n, dim), n >= K; deterministic for a seed.

    Run r of the ``nredo`` runs starts from seed ``seed + r`` and runs ``niter`` faiss Lloyd iterations; the run
    with the lowest final objective (sum of squared distances to the nearest centroid) wins. With a random start
    and one run this is exactly ``faiss.Kmeans(niter=..., seed=seed).train(data)`` on data of <= K x 256 points.
    """
    data = np.ascontiguousarray(data, dtype=np.float32)  # (n, dim)
    k = config.codebook_size
    if len(data) < k:
        raise ValueError(f"k-means with {k} codes needs >= {k} points, got {len(data)}")
    if len(data) > k * config.max_points_per_centroid:
        keep = np.random.default_rng(seed).choice(len(data), k * config.max_points_per_centroid, replace=False)
        data = data[np.sort(keep)]
    best, best_objective = None, np.inf
    for run_seed in range(seed, seed + config.nredo):
        start = kmeans_plus_plus(data, k, run_seed) if config.init is KMeansInit.PLUS_PLUS else None
        kmeans = faiss.Kmeans(
            data.shape[1],
            k,
            niter=config.niter,
            seed=run_seed,
            min_points_per_centroid=1,
            max_points_per_centroid=len(data),
        )  # the data is subsampled above, so faiss sees all of it (and warns about nothing)
        objective = kmeans.train(data, init_centroids=start)
        if best is None or objective < best_objective:
            best, best_objective = kmeans.centroids, objective
    return np.ascontiguousarray(best, dtype=np.float32)


def kmeans_plus_plus(data: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means++ seeding: each next centre is a point drawn with probability proportional to its squared distance
    to the nearest centre so far. data (n, dim) float32 -> (k, dim) float32 rows of ``data``."""
    rng = np.random.default_rng(seed)
    n = len(data)
    squared_norms = np.einsum("ij,ij->i", data, data, dtype=np.float64)  # (n,)
    picks = [int(rng.integers(n))]
    nearest = _squared_distances(data, squared_norms, picks[0])  # (n,) to the nearest centre so far
    for _ in range(1, k):
        total = nearest.sum()
        # all points on the centres already (duplicates): any point will do
        pick = int(np.searchsorted(np.cumsum(nearest), rng.random() * total)) if total > 0 else int(rng.integers(n))
        picks.append(min(pick, n - 1))
        np.minimum(nearest, _squared_distances(data, squared_norms, picks[-1]), out=nearest)
    return data[picks]


def _squared_distances(data: np.ndarray, squared_norms: np.ndarray, row: int) -> np.ndarray:
    """||data_i - data_row||^2 for every i (n,), float64, clipped at 0 against rounding."""
    return np.maximum(squared_norms - 2.0 * (data @ data[row]) + squared_norms[row], 0.0)


@torch.no_grad()
def nearest_code(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the closest code of ``codebook`` (K, dim) to each row of ``z`` (batch, dim) -> (batch,).

    ``|z - c|^2 = |z|^2 - 2 z.c + |c|^2``; the ``|z|^2`` term is the same for every code of a row, so the
    argmin is taken without it. Rows go in chunks, so a whole catalogue never builds one (n, K) matrix.
    """
    squared_norms = codebook.pow(2).sum(1)  # (K,)
    # (chunk, K) distances up to a per-row constant
    return torch.cat([(squared_norms - 2 * chunk @ codebook.T).argmin(1) for chunk in z.split(NEAREST_CHUNK)])


class KMeansCodebook(nn.Module):
    """A frozen codebook (K, dim): the k-means centroids of the latents it was fitted on, never trained by
    gradient. The unit training-free quantizers compose (a residual stack in RQ-KMeans, one per aspect in LAMIA)."""

    def __init__(self, dim: int, config: KMeansConfig, seed: int) -> None:
        super().__init__()
        self.config = config
        self.seed = seed  # k-means seed: codebooks of one model get distinct seeds
        self.register_buffer("codebook", torch.zeros(config.codebook_size, dim))  # (K, dim), set by `initialize`

    @property
    def codebook_size(self) -> int:
        return self.codebook.shape[0]

    @torch.no_grad()
    def initialize(self, z: torch.Tensor) -> None:
        """Set the codebook to the k-means centroids of ``z`` (n, dim): the codebook's whole fit."""
        centroids = fit_kmeans(z.detach().cpu().numpy(), self.config, self.seed)  # (K, dim)
        self.codebook.copy_(torch.from_numpy(centroids))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(batch, dim) -> (batch,) index of each row's closest code."""
        return nearest_code(z, self.codebook)
