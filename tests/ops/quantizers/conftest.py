"""Small synthetic embeddings for the tokenizer tests: unit vectors around a few centres, like text embeddings."""

from __future__ import annotations

import numpy as np
import pytest


def clustered_embeddings(n: int, dim: int, n_clusters: int = 8, seed: int = 0) -> np.ndarray:
    """float32 (n, dim) unit vectors scattered around ``n_clusters`` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    points = centres[rng.integers(n_clusters, size=n)] + 0.3 * rng.normal(size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def embeddings() -> np.ndarray:
    return clustered_embeddings(400, 24)
