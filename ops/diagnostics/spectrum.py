"""Dimension robustness (MoC paper, 5.2.3): the singular spectrum of a semantic representation.

The matrix is column-centered (a shared offset is one fake dominant direction, not information) and scaled to
unit Frobenius norm, so the squared singular values sum to 1: the spectrum says how the representation's
variance spreads over directions, comparable between tokenizers whose latents have different scales. A tail
that drops to ~0 before the rank is reached is dimensional collapse.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def singular_spectrum(representation: ArrayLike) -> np.ndarray:
    """Singular values, largest first, of the centered, unit-Frobenius-norm matrix (n, dim) -> (min(n, dim),)."""
    matrix = np.asarray(representation, dtype=np.float64)
    centered = matrix - matrix.mean(0)
    norm = np.linalg.norm(centered)
    if norm == 0.0:
        return np.zeros(min(centered.shape))
    return np.linalg.svd(centered / norm, compute_uv=False)
