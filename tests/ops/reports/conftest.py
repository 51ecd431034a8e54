"""Stage versions for the report tests: hand-made ones in the real on-disk formats (manifests + Parquet), whose
numbers a test sets, and a real Gift Cards slice with tiny tables and CTR runs."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from ops.caching import StageOutput, fingerprint, run_cached
from ops.ctr.labels import LabelConfig
from ops.ctr.stage import CTRConfig, ctr_samples_stage, train_ctr_stage
from ops.embeddings.stage import TABLE as EMBEDDINGS_TABLE
from ops.embeddings.stage import embeddings_table
from ops.pipeline import Prepared, prepare, semantic_id_version
from ops.quantizers.autoencoder import AutoencoderConfig
from ops.quantizers.config import TrainConfig
from ops.quantizers.moc import MoCConfig
from ops.quantizers.rqvae import RQVAEConfig
from ops.quantizers.vq import VQConfig
from ops.semantic_ids.stage import TABLE
from ops.semantic_ids.table import semantic_id_table
from tests.conftest import shared_data_root

ITEMS = [f"i{k:02d}" for k in range(12)]
USERS = [f"u{k}" for k in range(6)]
MISSING_TOKENIZER = "0123456789abcdef"  # a well-formed fingerprint of no stored tokenizer version
REAL_DATASET = "amazon2018-magazine-subscriptions"  # 134 items in its 5-core, 20+ categories
TINY = {
    "vq": VQConfig(codebook_size=16, kmeans_iters=5),
    "autoencoder": AutoencoderConfig(hidden=(32,), latent_dim=8),
    "train": TrainConfig(epochs=3, batch_size=64, lr=1e-2),
}


def write_stage(root: Path, stage: str, files: dict[str, pl.DataFrame], manifest: dict[str, Any]) -> StageOutput:
    """A published version of ``stage`` holding ``files``, fingerprinted by its manifest and the files' bytes."""
    contents = {}
    for name, frame in files.items():
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        contents[name] = buffer.getvalue()

    def build(folder: Path) -> dict[str, Any]:
        for name, data in contents.items():
            (folder / name).write_bytes(data)
        return manifest

    digests = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    return run_cached(root, stage, fingerprint({"stage": stage, "files": digests, **manifest}), build)


def metrics(recall10: float) -> dict[str, float]:
    """Recall/NDCG@5/10/20 around a Recall@10 (NDCG below recall, recall growing with K)."""
    return {
        "recall@5": recall10 * 0.6,
        "ndcg@5": recall10 * 0.4,
        "recall@10": recall10,
        "ndcg@10": recall10 * 0.5,
        "recall@20": min(1.0, recall10 * 1.4),
        "ndcg@20": recall10 * 0.6,
    }


@dataclass(frozen=True)
class HandMade:
    """A 12-item, 6-user data set written as k-core, splits and embeddings versions, plus builders of the
    downstream versions a report reads."""

    root: Path
    kcore: StageOutput
    splits: StageOutput
    embeddings: StageOutput

    def table(self, kind: str, scale: int, seed: int = 0, embeddings: StageOutput | None = None) -> StageOutput:
        codes = np.random.default_rng(seed).integers(0, 4, size=(len(ITEMS), scale))  # codebook of 4
        source = embeddings or self.embeddings
        manifest = {
            "version": 1,
            "tokenizer": {"stage": "tokenizer", "fingerprint": MISSING_TOKENIZER, "kind": kind, "config": {}},
            "scaling_factor": scale,
            "codebook_size": 4,
            "embeddings": {"stage": "embeddings", "fingerprint": source.fingerprint},
            "n_items": len(ITEMS),
            "seed": seed,
        }
        return write_stage(self.root, "semantic_ids", {TABLE: semantic_id_table(ITEMS, codes)}, manifest)

    def samples(self, kcore: StageOutput | None = None) -> StageOutput:
        manifest = {"kcore": (kcore or self.kcore).fingerprint, "splits": self.splits.fingerprint}
        return write_stage(self.root, "ctr_samples", {}, manifest)

    def ctr(
        self,
        table: StageOutput | None,
        auc: float,
        backbone: str = "deepfm",
        seed: int = 0,
        fusion: bool = False,
        samples: StageOutput | None = None,
    ) -> StageOutput:
        provenance = None
        if table is not None:
            kind = table.manifest["tokenizer"]["kind"]
            provenance = {
                "fingerprint": table.fingerprint,
                "kind": kind,
                "scaling_factor": table.manifest["scaling_factor"],
            }
        manifest = {
            "backbone": backbone,
            "config": {"fusion": fusion, "train": {"seed": seed}},
            "test_auc": auc,
            "test_logloss": 0.6,
            "valid_auc": auc,
            "samples": (samples or self.samples()).fingerprint,
            "semantic_ids": provenance,
        }
        return write_stage(self.root, "ctr_model", {}, manifest)

    def sid_model(
        self, table: StageOutput, recall10: float, splits: StageOutput | None = None, model: str = "tiger"
    ) -> StageOutput:
        """A trained Semantic-ID recommender version (``tiger`` or ``decoder``) that stopped at its budget, and
        its evaluation; returns the evaluation."""
        trained = write_stage(
            self.root,
            model,
            {},
            {
                "splits": (splits or self.splits).fingerprint,
                "epochs": 3,
                "stopped": "budget",
                "table": table.fingerprint,
            },
        )
        manifest = {
            "test": metrics(recall10),
            "n_users": len(USERS),
            "model": {"stage": model, "fingerprint": trained.fingerprint},
            "sid_table": {"stage": "semantic_ids", "fingerprint": table.fingerprint, "kind": "given"},
        }
        return write_stage(self.root, f"{model}_eval", {}, manifest)

    def sasrec(self, recall10: float, **identity: Any) -> StageOutput:
        """A SASRec version; ``identity`` is what names its split: ``splits=`` or ``n_items=``/``n_test_users=``."""
        manifest = {"test": metrics(recall10), "epochs": 5, "stopped": "patience", **identity}
        return write_stage(self.root, "sasrec", {}, manifest)


def handmade_dataset(root: Path, name: str = "handmade") -> HandMade:
    """Each user: two train items, then a valid and a test item; item i belongs to category "c<i % 3>"."""
    rows = [(user, ITEMS[(3 * u + p) % len(ITEMS)], p) for u, user in enumerate(USERS) for p in range(4)]
    split = pl.DataFrame(
        {
            "user_id": [user for user, _, _ in rows],
            "item_id": [item for _, item, _ in rows],
            "position": [p for _, _, p in rows],
            "split": [("train", "train", "valid", "test")[p] for _, _, p in rows],
        }
    )
    items = pl.DataFrame({"item_id": ITEMS, "categories": [["Shop", f"c{k % 3}"] for k in range(len(ITEMS))]})
    kcore = write_stage(root, "kcore", {"items.parquet": items}, {"dataset": name})
    splits = write_stage(root, "splits", {"leave_one_out.parquet": split}, {"dataset": name})
    vectors = np.random.default_rng(0).normal(size=(len(ITEMS), 8)).astype(np.float32)
    embeddings = write_stage(
        root,
        "embeddings",
        {EMBEDDINGS_TABLE: embeddings_table(ITEMS, vectors)},
        {"dataset": name, "model": "synthetic", "dim": 8, "items_embedded": len(ITEMS)},
    )
    return HandMade(root, kcore, splits, embeddings)


@pytest.fixture
def handmade(tmp_path) -> HandMade:
    return handmade_dataset(tmp_path)


@dataclass(frozen=True)
class RealSlice:
    root: Path
    prepared: Prepared
    tables: dict[str, StageOutput]  # kind -> tiny 2x16 table
    ctr: dict[str, StageOutput]  # "id" / kind -> a tiny DeepFM trained on it


@pytest.fixture(scope="session")
def real_slice(tmp_path_factory: pytest.TempPathFactory) -> RealSlice:
    """Magazine Subscriptions (134 items in its 5-core, with categories for NMI): MiniLM embeddings, RQ-VAE and MoC 2x16 tables, DeepFM (test preset)
    trained ID-only and on each table."""
    data_root = shared_data_root()
    if not (data_root / REAL_DATASET).is_dir():
        pytest.skip(
            f"real data folder {data_root / REAL_DATASET} is absent (set SEMID_DATA_ROOT or place ../shared/data)"
        )
    root = tmp_path_factory.mktemp("report")
    prepared = prepare(REAL_DATASET, data_root, root)
    configs = {"rqvae": RQVAEConfig(levels=2, **TINY), "moc": MoCConfig(n_codebooks=2, **TINY)}
    tables = {kind: semantic_id_version(root, prepared.embeddings, config)[1] for kind, config in configs.items()}
    samples = ctr_samples_stage(root, prepared.kcore, prepared.splits, LabelConfig(mode="sampled"))
    model = CTRConfig.test("deepfm")
    ctr = {
        name: train_ctr_stage(root, samples, prepared.kcore, table, model)
        for name, table in {"id": None, **tables}.items()
    }
    return RealSlice(root, prepared, tables, ctr)
