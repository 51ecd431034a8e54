"""RQ-KMeans: recovers a mixture's clusters, residual levels shrink the error, and it runs as a cached stage
into a Semantic-ID table on a small real catalogue."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from ops.diagnostics.nmi import normalized_mutual_info
from ops.embeddings.stage import read_embeddings
from ops.pipeline import prepare, semantic_id_version
from ops.quantizers.kmeans import KMeansConfig
from ops.quantizers.rqkmeans import RQKMeansConfig
from ops.quantizers.stage import CHECKPOINT, load_tokenizer
from ops.quantizers.train import train_tokenizer
from ops.semantic_ids.stage import read_table
from ops.semantic_ids.table import table_codes
from tests.conftest import shared_data_root
from tests.ops.quantizers.test_kmeans import mixture


@pytest.mark.parametrize("pca_dim", [0, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_level_one_recovers_the_components_of_a_separated_mixture(pca_dim, seed):
    rng = np.random.default_rng(10)
    centres = rng.normal(size=(6, 16)) * 8  # 6 components in 16-d, their spread in 5 dims (PCA keeps all of it)
    data, labels = mixture(50, centres, spread=0.5, seed=seed)
    config = RQKMeansConfig(levels=2, kmeans=KMeansConfig(codebook_size=6), pca_dim=pca_dim, input_dim=16, seed=seed)
    codes = train_tokenizer(config, data).codes
    assert normalized_mutual_info(codes[:, 0], labels) == pytest.approx(1.0)
    assert adjusted_rand_score(labels, codes[:, 0]) == pytest.approx(1.0)  # the same partition, up to names


def test_each_residual_level_lowers_the_error_and_the_loss_is_the_last_levels(embeddings):
    config = RQKMeansConfig(levels=4, kmeans=KMeansConfig(codebook_size=8), pca_dim=0, input_dim=24)
    model = train_tokenizer(config, embeddings).model
    x = torch.from_numpy(embeddings)
    output = model.run(x)
    partial = model.codebook_vectors(output.codes).cumsum(1)  # (n, levels, dim): the first l levels' sum
    errors = [float((x - partial[:, level]).pow(2).sum(1).mean()) for level in range(4)]
    before = float((x - x.mean(0)).pow(2).sum(1).mean())  # no code at all: the catalogue's mean is the best guess
    assert before > errors[0] > errors[1] > errors[2] > errors[3]
    assert float(output.quantization_loss) == pytest.approx(errors[-1], rel=1e-5)
    assert torch.equal(output.reconstruction, output.quantized)  # no PCA: nothing to decode


def test_pca_reconstruction_error_adds_what_the_projection_drops(embeddings):
    config = dataclasses.replace(RQKMeansConfig.test(), pca_dim=8)
    model = train_tokenizer(config, embeddings).model
    x = torch.from_numpy(embeddings).double()
    output = model.run(x.float())
    projected = model.decoder(model.encoder(x.float())).double()  # x on the kept components
    dropped = float((x - projected).pow(2).sum(1).mean())
    total = float(output.quantization_loss) + dropped  # orthogonal parts: Pythagoras
    assert float(output.reconstruction_loss) == pytest.approx(total, rel=1e-4)
    assert dropped > 0


DATASET = "amazon2018-gift-cards"  # 147 items in its 5-core


@pytest.fixture(scope="module")
def gift_cards(tmp_path_factory: pytest.TempPathFactory):
    if not (shared_data_root() / DATASET).is_dir():
        pytest.skip(f"real data folder {shared_data_root() / DATASET} is absent (set SEMID_DATA_ROOT)")
    root = tmp_path_factory.mktemp("rqkmeans")
    return root, prepare(DATASET, shared_data_root(), root)


def test_cached_stage_and_semantic_id_table_on_a_real_catalogue(gift_cards):
    root, prepared = gift_cards
    config = RQKMeansConfig(levels=3, kmeans=KMeansConfig(codebook_size=16), pca_dim=32)
    tokenizer, table_version = semantic_id_version(root, prepared.embeddings, config)
    table, manifest = read_table(table_version), table_version.manifest

    assert table.height == prepared.embeddings.manifest["items_embedded"] == 147
    codes = table_codes(table)
    assert codes.shape == (147, 3) and codes.min() >= 0 and codes.max() < 16
    assert manifest["tokenizer"]["kind"] == "rqkmeans" and manifest["codebook_size"] == 16
    assert manifest["scaling_factor"] == 3 and len(manifest["code_usage"]["usage"]) == 3
    assert manifest["code_usage"]["usage"][0] == 1.0  # 147 items, 16 level-1 codes: k-means leaves none empty
    assert manifest["collisions"]["collision_rate_with_suffix"] == 0.0
    assert tokenizer.manifest["collision_rate"] == manifest["collisions"]["collision_rate"]

    payload = torch.load(tokenizer.file(CHECKPOINT), weights_only=True)  # config + centroids + PCA, no pickled code
    assert payload["kind"] == "rqkmeans" and payload["config"]["pca_dim"] == 32
    assert payload["state_dict"]["quantizer.layers.2.codebook"].shape == (16, 32)
    assert payload["state_dict"]["encoder.weight"].shape == (32, 384)
    item_ids, vectors = read_embeddings(prepared.embeddings)
    frozen = load_tokenizer(tokenizer).encode_codes(torch.tensor(vectors)).numpy()  # the checkpoint alone
    order = np.argsort(item_ids)  # the table is sorted by item id
    assert np.array_equal(frozen[order], codes)

    again_tokenizer, again_table = semantic_id_version(root, prepared.embeddings, config)
    assert again_tokenizer.cache_hit and again_table.cache_hit
    other = dataclasses.replace(config, seed=1)
    assert semantic_id_version(root, prepared.embeddings, other)[0].fingerprint != tokenizer.fingerprint
