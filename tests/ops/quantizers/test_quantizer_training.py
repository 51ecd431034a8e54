"""Training: deterministic, loss goes down, per-epoch logs; checkpoints and configs round-trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ops.quantizers.checkpoint import load_checkpoint, save_checkpoint
from ops.quantizers.config import TrainConfig, config_from_dict, config_to_dict
from ops.quantizers.kinds import TOKENIZERS, config_for, kind_of, train_schedule
from ops.quantizers.kmeans import KMeansConfig, KMeansInit
from ops.quantizers.moc import MoCConfig
from ops.quantizers.multi_embedding import MultiEmbeddingConfig
from ops.quantizers.rqkmeans import RQKMeans, RQKMeansConfig
from ops.quantizers.rqvae import RQVAE, RQVAEConfig
from ops.quantizers.train import train_tokenizer
from ops.quantizers.vq import CodebookUpdate, VQConfig
from ops.quantizers.vqvae import VQVAEConfig


def reseeded(config, seed: int):
    """``config`` with another seed: the training schedule's, or a training-free tokenizer's own."""
    if train_schedule(config) is None:
        return dataclasses.replace(config, seed=seed)
    return dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))


@pytest.mark.parametrize(
    "config", [RQVAEConfig.test(), MoCConfig.test(), RQKMeansConfig.test()], ids=["rqvae", "moc", "rqkmeans"]
)
def test_same_inputs_same_seed_identical_model_and_codes(config, embeddings):
    first, second = train_tokenizer(config, embeddings), train_tokenizer(config, embeddings)
    assert np.array_equal(first.codes, second.codes)
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert not np.array_equal(first.codes, train_tokenizer(reseeded(config, 1), embeddings).codes)


@pytest.mark.parametrize("config", [VQVAEConfig.test(), RQKMeansConfig.test()], ids=["vqvae", "rqkmeans"])
def test_training_leaves_the_callers_random_state_alone(config, embeddings):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_tokenizer(config, embeddings)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("update", list(CodebookUpdate))
def test_loss_decreases_and_every_epoch_is_reported(update, embeddings):
    base = RQVAEConfig.test()
    config = dataclasses.replace(
        base, vq=dataclasses.replace(base.vq, update=update), train=TrainConfig(epochs=15, batch_size=64, lr=3e-3)
    )
    logs = []
    trained = train_tokenizer(config, embeddings, callback=logs.append)
    assert [log.epoch for log in logs] == list(range(1, 16)) and trained.history == logs
    assert logs[-1].reconstruction_loss < 0.5 * logs[0].reconstruction_loss
    assert logs[-1].loss < logs[0].loss
    assert all(len(log.usage) == len(log.perplexity) == 3 for log in logs)
    assert all(0 < u <= 1 for u in logs[-1].usage) and all(1 <= p <= 16 for p in logs[-1].perplexity)
    assert not trained.model.training


def test_a_training_free_tokenizer_is_fitted_once_and_reported_as_epoch_zero(embeddings):
    logs = []
    trained = train_tokenizer(RQKMeansConfig.test(), embeddings, callback=logs.append)
    assert trained.history == logs and [log.epoch for log in logs] == [0]
    (log,) = logs
    output = trained.model.run(torch.from_numpy(embeddings))  # the catalogue's loss terms, frozen
    assert log.quantization_loss == pytest.approx(float(output.quantization_loss), rel=1e-5)
    assert log.reconstruction_loss == pytest.approx(float(output.reconstruction_loss), rel=1e-5)
    assert log.loss == pytest.approx(log.reconstruction_loss + log.quantization_loss, rel=1e-5)
    assert len(log.usage) == 3 and all(0 < u <= 1 for u in log.usage) and log.seconds > 0


@pytest.mark.parametrize("config", [VQVAEConfig.test(), RQKMeansConfig.test()], ids=["vqvae", "rqkmeans"])
def test_rejects_embeddings_of_the_wrong_width(config, embeddings):
    with pytest.raises(ValueError, match="config expects"):
        train_tokenizer(config, embeddings[:, :10])


@pytest.mark.parametrize(
    ("config", "model_class"),
    [(RQVAEConfig.test(), RQVAE), (RQKMeansConfig.test(), RQKMeans)],
    ids=["rqvae", "rqkmeans"],
)
def test_checkpoint_rebuilds_the_model_from_the_file_alone(config, model_class, tmp_path, embeddings):
    trained = train_tokenizer(config, embeddings)
    save_checkpoint(trained.model, tmp_path / "tok.pt")
    payload = torch.load(tmp_path / "tok.pt", weights_only=True)
    assert payload["kind"] == model_class.kind and payload["config"]["levels"] == 3
    loaded = load_checkpoint(tmp_path / "tok.pt")
    assert isinstance(loaded, model_class) and loaded.config == trained.model.config
    x = torch.from_numpy(embeddings)
    assert torch.equal(loaded.encode_codes(x), torch.from_numpy(trained.codes))
    assert torch.equal(loaded(x)[0], trained.model(x)[0])  # the same code vectors (and PCA), not only codes


@pytest.mark.parametrize(
    "config",
    [
        VQVAEConfig(),
        RQVAEConfig.test(),
        MoCConfig(n_codebooks=7),
        MultiEmbeddingConfig(scaling_factor=3, vq=VQConfig(update=CodebookUpdate.EMA)),
    ],
)
def test_config_dict_round_trip(config):
    data = config_to_dict(config)
    assert isinstance(data["autoencoder"]["hidden"], list) and isinstance(data["vq"]["update"], str)
    assert config_from_dict(type(config), data) == config


def test_rqkmeans_config_dict_round_trip():
    config = RQKMeansConfig(levels=4, kmeans=KMeansConfig(init=KMeansInit.RANDOM, nredo=3), pca_dim=64)
    data = config_to_dict(config)
    assert data["kmeans"]["init"] == "random"
    assert config_from_dict(RQKMeansConfig, data) == config
    with pytest.raises(ValueError, match="pca_dim"):
        RQKMeansConfig(pca_dim=500)


def test_unknown_config_keys_are_refused():
    with pytest.raises(ValueError, match="unknown RQVAEConfig fields"):
        config_for("rqvae", {"levls": 3})
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        config_for("rqkmeens", {})


def test_kind_names_are_the_short_ones_configs_and_checkpoints_use():
    assert sorted(TOKENIZERS) == ["lamia", "me", "moc", "rqkmeans", "rqvae", "vqvae"]
    assert kind_of(MultiEmbeddingConfig()) == "me" and config_for("me", {"scaling_factor": 7}).scaling_factor == 7
