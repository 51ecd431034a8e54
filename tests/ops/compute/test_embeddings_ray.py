"""The embeddings stage on Ray (2 workers, one model each) gives the local stage's table on real Gift Cards items."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ops.embeddings.config import TEST_CONFIG
from ops.embeddings.stage import TABLE, embed, read_embeddings
from ops.embeddings.templates import TEMPLATES
from ops.ingest import stages
from ops.ingest.datasets import get_dataset
from tests.conftest import shared_data_root

DATASET = "amazon2018-gift-cards"


def test_ray_embeddings_equal_local_embeddings(shared_data, ray_executor, tmp_path: Path):
    shared_data(DATASET)
    spec = get_dataset(DATASET)
    normalized = stages.normalize(spec, shared_data_root(), tmp_path / "ingest", stages.NormalizeConfig())
    kcore = stages.kcore(normalized, tmp_path / "ingest", stages.KCoreConfig())
    template = TEMPLATES[spec.text_template]
    # separate output roots: the per-text vector store must not let one mode read the other's vectors
    local = embed(kcore, tmp_path / "local", TEST_CONFIG, template)
    progress: list[tuple[int, int]] = []
    remote = embed(kcore, tmp_path / "ray", TEST_CONFIG, template, lambda *p: progress.append(p), ray_executor)
    assert local.fingerprint == remote.fingerprint and not remote.cache_hit
    assert remote.manifest["vectors_computed"] == local.manifest["vectors_computed"] == 147
    assert len(progress) > 1 and progress[-1][0] == progress[-1][1]  # one report per shard, the last one complete
    local_ids, local_vectors = read_embeddings(local)
    remote_ids, remote_vectors = read_embeddings(remote)
    assert remote_ids == local_ids
    np.testing.assert_allclose(remote_vectors, local_vectors, atol=1e-5, rtol=0)
    assert remote.file(TABLE).read_bytes() == local.file(TABLE).read_bytes()
