"""Collisions: items whose full code tuple is shared with another item, so codes alone cannot tell them apart."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def collision_rate(codes: ArrayLike) -> float:
    """Fraction of items whose code tuple (a row of codes (n, n_codes)) occurs more than once."""
    codes = np.asarray(codes)
    if len(codes) == 0:
        return 0.0
    _, inverse, counts = np.unique(codes.reshape(len(codes), -1), axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.ravel()] > 1).mean())
