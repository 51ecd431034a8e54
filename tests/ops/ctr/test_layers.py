"""Shared layers: one-gather embedding, Newton-identity IM, MoC fusion on/off, every backbone's contract."""

import itertools
import math

import numpy as np
import polars as pl
import pytest
import torch

from ops.ctr.deepim import interaction_orders
from ops.ctr.features import FeatureSpec, SemanticIds, _semantic_id_fields
from ops.ctr.layers import FeatureEmbedding
from ops.ctr.models import MODELS, build_model, default_config

FEATURES = [
    FeatureSpec("user_id", 11, "user"),
    FeatureSpec("item_id", 9, "item"),
    FeatureSpec("brand", 4, "item"),
    FeatureSpec("sid0_0", 17, "item"),
    FeatureSpec("sid1_0", 17, "item"),
]


def random_batch(n: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(f.vocab_size, (n,), generator=generator) for f in FEATURES], dim=1)


def test_one_table_with_offsets_is_a_table_per_field():
    embedding = FeatureEmbedding(FEATURES, 4)
    batch = random_batch()
    rows = torch.split(embedding.table.weight, [f.vocab_size for f in FEATURES])
    expected = torch.stack([rows[j][batch[:, j]] for j in range(len(FEATURES))], dim=1)
    assert torch.equal(embedding(batch), expected)


@pytest.mark.parametrize("order", range(1, 6))
def test_interaction_machine_power_sums_equal_subset_products(order):
    embedded = torch.randn(3, 6, 4, dtype=torch.float64)  # (batch, fields, dim)
    got = interaction_orders(embedded, order)
    for k in range(1, order + 1):
        brute = sum(math.prod(embedded[:, i] for i in subset) for subset in itertools.combinations(range(6), k))
        assert torch.allclose(got[:, k - 1], brute, atol=1e-9)


@pytest.mark.parametrize("backbone", sorted(MODELS))
def test_fusion_changes_outputs_only_when_on(backbone):
    config = default_config(backbone, test=True)
    batch = random_batch()
    torch.manual_seed(0)
    plain = build_model(backbone, config, FEATURES, fusion=False).eval()
    assert not any("fusion" in name for name in plain.state_dict())  # off = no fusion module at all
    torch.manual_seed(0)
    fused = build_model(backbone, config, FEATURES, fusion=True).eval()
    missing = fused.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(".fusion." in key for key in missing)
    logits = plain(batch)
    assert logits.shape == (32,)
    assert torch.equal(fused(batch), logits)  # the up-projection starts at zero: fused starts as the plain model
    with torch.no_grad():
        fused.embed.fusion.up.weight.normal_(std=0.1)  # what training does to it
    assert not torch.allclose(fused(batch), logits)
    with torch.no_grad():  # a zero up-projection makes the residual fusion the identity
        fused.embed.fusion.up.weight.zero_()
        fused.embed.fusion.up.bias.zero_()
    assert torch.equal(fused(batch), logits)


def test_fusion_leaves_user_fields_alone():
    torch.manual_seed(0)
    model = build_model("deepfm", default_config("deepfm", test=True), FEATURES, fusion=True)
    with torch.no_grad():
        model.embed.fusion.up.weight.normal_(std=0.1)
    batch = random_batch()
    raw = model.embed.embedding(batch)
    fused = model.embed(batch)
    assert torch.equal(fused[:, 0], raw[:, 0]) and not torch.allclose(fused[:, 1:], raw[:, 1:])


def test_me_fields_are_m_lookups_of_the_same_code():
    table = SemanticIds(["a", "b"], np.array([[5], [9]]), codebook_size=16, copies=3)
    fields = _semantic_id_fields(pl.Series("item_id", ["b", "a", "zzz"]), table)
    assert [spec.name for spec, _ in fields] == ["sid0_0", "sid0_1", "sid0_2"]
    for _, values in fields:
        assert values.tolist() == [10, 6, 0]  # code + 1; an item missing from the table -> 0
    specs = [spec for spec, _ in fields]
    embedding = FeatureEmbedding(specs, 4)
    batch = torch.tensor(np.stack([values for _, values in fields], axis=1))
    looked_up = embedding(batch)  # (3, 3 tables, 4)
    assert torch.equal(looked_up[0, 1], embedding.table.weight[17 + 10])  # same code, its own table per copy
    assert not torch.allclose(looked_up[0, 0], looked_up[0, 1])
