"""Gift Cards (147 items, 2,960 interactions in its 5-core) prepared once per session, plus CTR stages on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from ops.caching import StageOutput
from ops.ctr.labels import LabelConfig
from ops.ctr.stage import ctr_samples_stage
from ops.device import placement
from ops.pipeline import Prepared, prepare, semantic_id_version
from ops.quantizers.autoencoder import AutoencoderConfig
from ops.quantizers.config import TrainConfig
from ops.quantizers.rqvae import RQVAEConfig
from ops.quantizers.vq import VQConfig
from tests.conftest import shared_data_root

DATASET = "amazon2018-gift-cards"
TINY_RQVAE = RQVAEConfig(
    levels=2,
    vq=VQConfig(codebook_size=16, kmeans_iters=5),
    autoencoder=AutoencoderConfig(hidden=(32,), latent_dim=8),
    train=TrainConfig(epochs=3, batch_size=64, lr=1e-2),
)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The tiny test models' ops are too small to split across threads; on a busy 2-core box the hand-off
    between two threads made each step ~10x slower than one thread does (4.7 s vs 0.4 s per test run)."""
    placement()  # its one-time thread setting happens now, not later over ours
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class GiftCards:
    root: Path
    prepared: Prepared
    samples: StageOutput  # sampled 1:1 negatives
    sid_table: StageOutput  # tiny 2-level RQ-VAE table


@pytest.fixture(scope="session")
def gift_cards(tmp_path_factory: pytest.TempPathFactory) -> GiftCards:
    data_root = shared_data_root()
    if not (data_root / DATASET).is_dir():
        pytest.skip(f"real data folder {data_root / DATASET} is absent (set SEMID_DATA_ROOT or place ../shared/data)")
    root = tmp_path_factory.mktemp("ctr")
    prepared = prepare(DATASET, data_root, root)
    samples = ctr_samples_stage(root, prepared.kcore, prepared.splits, LabelConfig(mode="sampled"))
    _, table = semantic_id_version(root, prepared.embeddings, TINY_RQVAE)
    return GiftCards(root, prepared, samples, table)
