"""Labels: sampled negatives never hit a user's interactions, take their positive's split, are drawn once."""

import dataclasses

import polars as pl
import pytest

from ops.ctr.labels import LabelConfig, build_samples, sampled_samples
from ops.ctr.stage import SAMPLES, ctr_samples_stage, read_samples
from ops.tables import read_parquet


def test_sampled_negatives_are_never_interactions_and_keep_the_split(gift_cards):
    interactions = read_parquet(gift_cards.prepared.splits.file("random.parquet"))
    samples = read_samples(gift_cards.samples)
    assert gift_cards.samples.manifest["label_mode"] == "sampled"
    positives, negatives = samples.filter(pl.col("label") == 1), samples.filter(pl.col("label") == 0)
    assert positives.height == negatives.height == interactions.height
    clashes = negatives.join(interactions, on=["user_id", "item_id"], how="inner")
    assert clashes.height == 0
    # rows alternate positive, negative: each negative sits after its positive, with the same user and split
    assert samples["label"].to_list() == [1, 0] * interactions.height
    assert positives.select("user_id", "split").equals(negatives.select("user_id", "split"))
    counts = gift_cards.samples.manifest["counts"]
    assert counts["train/1"] == counts["train/0"] == interactions.filter(pl.col("split") == "train").height


def test_negatives_are_stored_once_and_deterministic(gift_cards, tmp_path):
    prepared = gift_cards.prepared
    again = ctr_samples_stage(gift_cards.root, prepared.kcore, prepared.splits, LabelConfig(mode="sampled"))
    assert again.cache_hit and again.path == gift_cards.samples.path
    elsewhere = ctr_samples_stage(tmp_path, prepared.kcore, prepared.splits, LabelConfig(mode="sampled"))
    assert not elsewhere.cache_hit
    assert elsewhere.file(SAMPLES).read_bytes() == gift_cards.samples.file(SAMPLES).read_bytes()
    other_seed = ctr_samples_stage(tmp_path, prepared.kcore, prepared.splits, LabelConfig(mode="sampled", seed=1))
    assert not read_samples(other_seed).equals(read_samples(elsewhere))


def test_an_edit_of_item_text_keeps_the_samples(gift_cards):
    """Samples read the split (and MIND's impressions), not the item text: a k-core version that differs only in
    its items (a new fingerprint, the same interactions) is a cache hit."""
    prepared = gift_cards.prepared
    edited_kcore = dataclasses.replace(prepared.kcore, fingerprint="0" * 16)
    again = ctr_samples_stage(gift_cards.root, edited_kcore, prepared.splits, LabelConfig(mode="sampled"))
    assert again.cache_hit and again.path == gift_cards.samples.path


def test_several_negatives_per_positive_on_a_small_table():
    interactions = pl.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u3"],
            "item_id": ["a", "b", "c", "a"],
            "split": ["train", "test", "train", "valid"],
        }
    ).with_columns(pl.col("split").cast(pl.Enum(["train", "valid", "test"])))
    samples = sampled_samples(interactions, negatives_per_positive=3, seed=4)
    negatives = samples.filter(~pl.col("label"))
    assert negatives.height == 12
    assert negatives.filter(pl.col("user_id") == "u1")["item_id"].unique().to_list() == ["c"]  # u1 saw a and b
    assert negatives.filter(pl.col("user_id") == "u1")["split"].to_list() == ["train"] * 3 + ["test"] * 3
    assert sampled_samples(interactions, 3, seed=4).equals(samples)


def test_auto_mode_uses_ratings_when_every_interaction_has_one(gift_cards):
    interactions = read_parquet(gift_cards.prepared.splits.file("random.parquet"))
    samples, mode = build_samples(LabelConfig(), interactions)
    assert mode == "rating" and samples.height == interactions.height
    expected = (interactions["rating"] >= 4.0).cast(pl.Int8)
    assert samples["label"].to_list() == expected.to_list()


def test_impressions_give_click_labels_split_by_impression():
    impressions = pl.DataFrame(
        {
            "impression_id": [str(i // 3) for i in range(60)],
            "user_id": [f"u{i // 3}" for i in range(60)],
            "timestamp": [0] * 60,
            "slot": [i % 3 for i in range(60)],
            "item_id": [f"n{i % 7}" for i in range(60)],
            "clicked": [i % 3 == 0 for i in range(60)],
        }
    )
    samples, mode = build_samples(LabelConfig(), pl.DataFrame({"rating": [None]}), impressions)
    assert mode == "impressions" and samples["label"].sum() == 20
    per_impression = samples.with_columns(impression=pl.Series([i // 3 for i in range(60)]))
    assert per_impression.group_by("impression").agg(pl.col("split").n_unique())["split"].max() == 1
    rows_per_split = samples["split"].value_counts().sort("split")["count"].to_list()
    assert rows_per_split == [48, 6, 6]  # 16 / 2 / 2 impressions of 3 rows


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        LabelConfig(mode="clicks")
