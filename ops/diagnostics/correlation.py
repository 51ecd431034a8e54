"""Redundancy between the several representations of one item (MoC paper, 5.2.4 and Figure 7).

Pearson correlation between codebook i's and codebook j's vectors over the n items, with the paper's dot
product for vector-valued samples:

    r_ij = sum_k <e_i^k - mean_i, e_j^k - mean_j> / sqrt(sum_k |e_i^k - mean_i|^2 * sum_k |e_j^k - mean_j|^2)

Every codebook of one tokenizer lives in the same latent space (residual levels and MoC's parallel codebooks
all quantize the encoder's latent), so dimension d of one codebook's vector is comparable with dimension d of
another's. For 1-d vectors this is exactly the scalar Pearson coefficient.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def codebook_correlation(vectors: ArrayLike) -> np.ndarray:
    """(n_items, n_codebooks, dim) per-codebook vectors -> (n_codebooks, n_codebooks) Pearson matrix."""
    values = np.asarray(vectors, dtype=np.float64)
    centered = values - values.mean(0)  # (n, N, dim)
    gram = np.einsum("kid,kjd->ij", centered, centered)  # (N, N) summed dot products
    scale = np.sqrt(np.diag(gram))
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant codebook has no correlation: nan
        return gram / np.outer(scale, scale)
