"""LAMIA's per-aspect PCA + k-means: independent aspects, the tokenizer contract, the Semantic-ID table."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ops.diagnostics.nmi import normalized_mutual_info
from ops.quantizers.kmeans import KMeansConfig
from ops.quantizers.lamia import LamiaQuantizerConfig, LamiaTokenizer, quantize_palettes
from ops.semantic_ids.table import SCHEMA, table_codes


def two_aspect_palettes(n_per: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 2, 12) palettes whose aspect 0 clusters by one label and aspect 1 by another, independent one."""
    rng = np.random.default_rng(seed)
    first = np.repeat(np.arange(6), n_per)  # (n,) aspect-0 label
    second = rng.permutation(first)  # (n,) aspect-1 label, shuffled: independent of the first
    centres = rng.normal(size=(2, 6, 12)) * 8
    palettes = np.stack([centres[0][first], centres[1][second]], axis=1) + 0.3 * rng.normal(size=(len(first), 2, 12))
    return palettes.astype(np.float32), first, second


@pytest.mark.parametrize("pca_dim", [0, 5])
def test_each_aspect_is_clustered_on_its_own(pca_dim: int) -> None:
    palettes, first, second = two_aspect_palettes()
    config = LamiaQuantizerConfig(2, 12, pca_dim, KMeansConfig(codebook_size=6))
    ids = [f"i{k:03d}" for k in range(len(palettes))]
    model, table = quantize_palettes(ids, palettes, config)
    codes = table_codes(table)  # rows sorted by item id = input order here
    assert normalized_mutual_info(codes[:, 0], first) == pytest.approx(1.0)
    assert normalized_mutual_info(codes[:, 1], second) == pytest.approx(1.0)
    assert normalized_mutual_info(codes[:, 0], codes[:, 1]) < 0.2  # no hierarchy between aspects
    moved = palettes.copy()
    moved[:, 1] = moved[::-1, 1]  # another aspect 1 for every item: aspect-0 codes must not move
    x = torch.from_numpy(moved.reshape(len(moved), -1))
    assert torch.equal(model.encode_codes(x)[:, 0], torch.from_numpy(codes[:, 0]))


def test_the_tokenizer_contract_holds_and_survives_a_state_dict_round_trip() -> None:
    palettes, _, _ = two_aspect_palettes(n_per=10)
    config = dataclasses.replace(LamiaQuantizerConfig.test(), kmeans=KMeansConfig(codebook_size=6))
    model, _ = quantize_palettes([str(k) for k in range(len(palettes))], palettes, config)
    x = torch.from_numpy(palettes.reshape(len(palettes), -1))
    quantized, codes, loss = model(x)
    assert quantized.shape == (len(x), 2 * 4) and codes.shape == (len(x), 2) and model.n_codes == 2
    assert torch.equal(model.codes_to_vectors(codes), quantized)
    assert model.codebook_vectors(codes).shape == (len(x), 2, 4) and model.codebook_size == 6
    output = model.run(x)  # k-means' objective in the PCA space; the reconstruction adds what PCA drops
    assert float(output.quantization_loss) == pytest.approx(
        float((model.encoder(x) - quantized).pow(2).sum(1).mean()), rel=1e-5
    )
    assert float(loss) == pytest.approx(float(output.quantization_loss + output.reconstruction_loss), rel=1e-5)
    assert float(output.reconstruction_loss) > float(output.quantization_loss)
    rebuilt = LamiaTokenizer(config)
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt.encode_codes(x), codes)


def test_the_table_has_the_shared_format_with_collision_suffixes() -> None:
    palettes, _, _ = two_aspect_palettes(n_per=10)
    palettes = np.concatenate([palettes, palettes[:3]])  # three exact duplicates: same codes
    ids = [f"item{k:02d}" for k in range(len(palettes))]
    config = dataclasses.replace(LamiaQuantizerConfig.test(), kmeans=KMeansConfig(codebook_size=6))
    _, table = quantize_palettes(ids, palettes, config)
    assert table.schema == SCHEMA and table["item_id"].to_list() == sorted(ids)
    suffixes = dict(zip(table["item_id"], table["collision_suffix"], strict=True))
    assert all(suffixes[f"item{60 + k:02d}"] >= 1 for k in range(3))
    with pytest.raises(ValueError, match="do not match"):
        quantize_palettes(ids, palettes[:, :1], config)
