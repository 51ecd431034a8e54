"""Training on a real slice (Gift Cards): losses drop, runs reproduce, stages cache and checkpoints reload."""

import json

import pytest
import torch

from ops.ctr.data import CTRData
from ops.ctr.features import FeatureConfig, SemanticIds, encode_features
from ops.ctr.models import MODELS, build_model, default_config
from ops.ctr.stage import CHECKPOINT, HISTORY, CTRConfig, load_checkpoint, read_samples, train_ctr_stage
from ops.ctr.train import CTRTrainConfig, fit, predict
from ops.semantic_ids.stage import read_table
from ops.tables import read_parquet


@pytest.fixture(scope="module")
def encoded(gift_cards):
    samples = read_samples(gift_cards.samples)
    table = gift_cards.sid_table
    semantic_ids = SemanticIds.from_table(read_table(table), table.manifest)
    items = read_parquet(gift_cards.prepared.kcore.file("items.parquet"))
    return samples, encode_features(samples, items, semantic_ids, FeatureConfig())


def test_features_describe_the_matrix(encoded):
    samples, features = encoded
    names = [spec.name for spec in features.features]
    assert names == ["user_id", "item_id", "brand", "category", "price", "sid0_0", "sid1_0"]
    assert features.matrix.shape == (samples.height, 7)
    assert (features.matrix >= 0).all() and (features.matrix < [s.vocab_size for s in features.features]).all()
    assert [spec.side for spec in features.features] == ["user"] + ["item"] * 6


@pytest.mark.parametrize("backbone", sorted(MODELS))
def test_each_backbone_loss_drops_on_real_data(encoded, backbone):
    """With fusion on, so the fused path is trained too (fusion off is the same model minus the module)."""
    samples, features = encoded
    data = CTRData.from_matrix(features.matrix, samples, torch.device("cpu"))
    config = CTRTrainConfig(batch_size=512, lr=1e-2, max_epochs=3, patience=3)
    _, result = fit(
        lambda: build_model(backbone, default_config(backbone, test=True), features.features, True), data, config
    )
    losses = [epoch["train_loss"] for epoch in result.history]
    assert len(losses) == 3 and losses[-1] < losses[0] - 0.02, losses
    assert 0 <= result.test_auc <= 1 and result.test_logloss > 0


def test_id_only_stage_reproduces_caches_and_reloads(gift_cards, tmp_path):
    config = CTRConfig.test("dcnv2")
    kcore, samples = gift_cards.prepared.kcore, gift_cards.samples
    epochs = []
    first = train_ctr_stage(tmp_path / "a", samples, kcore, None, config, callback=epochs.append)
    second = train_ctr_stage(tmp_path / "b", samples, kcore, None, config)
    assert first.fingerprint == second.fingerprint and not second.cache_hit
    assert first.manifest["test_auc"] == second.manifest["test_auc"]
    assert first.manifest["valid_auc"] == second.manifest["valid_auc"]
    assert train_ctr_stage(tmp_path / "a", samples, kcore, None, config).cache_hit
    assert [e["epoch"] for e in epochs] == list(range(1, first.manifest["epochs"] + 1))
    assert json.loads(first.file(HISTORY).read_text()) == epochs
    assert [f["name"] for f in first.manifest["features"]] == ["user_id", "item_id", "brand", "category", "price"]
    assert first.manifest["semantic_ids"] is None

    model, loaded_config, features = load_checkpoint(first.file(CHECKPOINT))
    assert loaded_config == config and len(features) == 5
    assert torch.isfinite(torch.tensor(predict(model, torch.zeros(3, 5, dtype=torch.int64)))).all()


def test_sid_stage_records_the_table_it_read(gift_cards, tmp_path):
    table = gift_cards.sid_table
    config = CTRConfig.test("deepfm", use_item_id=False, fusion=True)
    run = train_ctr_stage(tmp_path, gift_cards.samples, gift_cards.prepared.kcore, table, config)
    provenance = run.manifest["semantic_ids"]
    assert provenance == {
        "fingerprint": table.fingerprint,
        "kind": "rqvae",
        "scaling_factor": 2,
        "version": 1,
        "codebook_size": 16,
    }
    names = [f["name"] for f in run.manifest["features"]]
    assert names == ["user_id", "brand", "category", "price", "sid0_0", "sid1_0"]
    assert run.manifest["n_parameters"] > 0 and run.manifest["samples_per_second"] > 0
