"""The hub loading path (AutoTokenizer + AutoModel from a directory or hub id) on a tiny local OPT checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ops.embeddings.config import Pooling
from tests.ops.embeddings.conftest import ITEM_TEXTS


def test_tiny_opt_loads_through_the_hub_path(tiny_opt, tiny_opt_dir: Path) -> None:
    embedder = tiny_opt(Pooling.LAST, False)
    assert type(embedder.model).__name__ == "OPTModel" and embedder.dim == 16  # OPT-350M-like 32 -> 16 projection
    assert embedder.tokenize(["Ruby Red"])[0][0] == 2  # OPT-style BOS from the saved tokenizer
    vectors = embedder.encode(ITEM_TEXTS)
    assert vectors.shape == (len(ITEM_TEXTS), 16) and np.isfinite(vectors).all()
    assert embedder.identity != tiny_opt(Pooling.MEAN, True).identity


def test_tiny_opt_modes_differ(tiny_opt) -> None:
    """Pooling and attention choices reach the model: all four set-ups give different vectors."""
    results = [tiny_opt(p, b).encode(ITEM_TEXTS[:2]) for p in Pooling for b in (False, True)]
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            assert not np.allclose(results[i], results[j], atol=1e-4)
