"""How much of each codebook a tokenizer uses: a codebook whose codes go unused wastes ID space and crowds
items into fewer codes (more collisions)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def code_counts(codes: ArrayLike, codebook_size: int) -> np.ndarray:
    """Items per code: codes (n,) -> (codebook_size,) int."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError(f"codes outside [0, {codebook_size})")
    return np.bincount(codes, minlength=codebook_size)


def codebook_usage(codes: ArrayLike, codebook_size: int) -> float:
    """Fraction of the codebook's codes used by at least one item."""
    return float((code_counts(codes, codebook_size) > 0).mean())


def perplexity(codes: ArrayLike, codebook_size: int) -> float:
    """exp(entropy) of the code distribution: the number of equally used codes it is worth (K when uniform)."""
    counts = code_counts(codes, codebook_size)
    if counts.sum() == 0:
        return 0.0
    p = counts[counts > 0] / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def level_usage(codes: ArrayLike, codebook_size: int) -> dict[str, list[float]]:
    """Usage and perplexity of every level (or parallel codebook): codes (n, levels)."""
    codes = np.asarray(codes)
    return {
        "usage": [codebook_usage(codes[:, level], codebook_size) for level in range(codes.shape[1])],
        "perplexity": [perplexity(codes[:, level], codebook_size) for level in range(codes.shape[1])],
    }
