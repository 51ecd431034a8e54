"""Embeddings -> tokenizer -> Semantic-ID table through Dagster on a small real catalogue (Gift Cards, 147 items in its 5-core)."""

import polars as pl
from dagster import DagsterInstance, materialize

from assets import embeddings, ingest, semantic_ids, tokenizers
from ops.semantic_ids.stage import read_table

ASSETS = [
    ingest.normalized_dataset,
    ingest.kcore_dataset,
    embeddings.item_embeddings,
    tokenizers.tokenizer,
    semantic_ids.semantic_ids,
]
SMALL_TOKENIZER = {"kind": "moc", "scale": 2, "codebook_size": 16, "epochs": 5, "batch_size": 64, "lr": 0.01}


def run(tmp_resources, instance, tokenizer_config):
    return materialize(
        ASSETS,
        resources=tmp_resources,
        partition_key="amazon2018-gift-cards",
        instance=instance,
        run_config={"ops": {"tokenizer": {"config": tokenizer_config}}},
    )


def test_semantic_id_table_is_complete_unique_and_cached(shared_data, tmp_resources):
    shared_data("amazon2018-gift-cards")
    instance = DagsterInstance.ephemeral()
    first = run(tmp_resources, instance, SMALL_TOKENIZER)
    table_version = first.output_for_node("semantic_ids")
    table = read_table(table_version)
    embedded = first.output_for_node("item_embeddings").manifest["items_embedded"]
    assert table.height == embedded == first.output_for_node("kcore_dataset").manifest["rows"]["items"]
    assert table["codes"].list.len().unique().to_list() == [2]  # MoC 2x: two codes per item
    assert table.select(pl.col("codes").cast(pl.List(pl.String)).list.join(" "), "collision_suffix").is_unique().all()
    manifest = table_version.manifest
    assert manifest["tokenizer"]["kind"] == "moc"
    assert manifest["embeddings"]["fingerprint"] == first.output_for_node("item_embeddings").fingerprint
    assert manifest["run"]["mlflow_run_id"]

    second = run(tmp_resources, instance, SMALL_TOKENIZER)
    events = {e.asset_key.path[-1]: e.materialization.metadata for e in second.get_asset_materialization_events()}
    assert events["tokenizer"]["cache"].value == "cache hit"
    assert events["semantic_ids"]["cache"].value == "cache hit"

    other_seed = run(tmp_resources, instance, {**SMALL_TOKENIZER, "seed": 1}).output_for_node("semantic_ids")
    assert other_seed.fingerprint != table_version.fingerprint
    assert read_table(table_version).equals(table), "the first version is immutable"
