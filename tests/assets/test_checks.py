"""Asset checks through Dagster: each fails on a deliberately broken version (and blocks what is downstream),
passes on a good one, and all pass on a real catalogue's tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, asset, materialize

from assets import checks, embeddings, ingest, semantic_ids, tokenizers
from assets.ingest import dataset_partitions
from ops.caching import StageOutput
from ops.embeddings.stage import TABLE as EMBEDDINGS_TABLE
from ops.embeddings.stage import embeddings_table
from ops.semantic_ids.stage import TABLE
from ops.semantic_ids.table import semantic_id_table
from resources import StorageResource
from tests.ops.reports.conftest import write_stage

PARTITION = "amazon2018-gift-cards"
ITEMS = [f"i{k}" for k in range(8)]
# 20 gentle epochs use most codes of both levels on Gift Cards; the asset tests' 5 epochs at lr 0.01 collapse to a few
HEALTHY_TOKENIZER = {"scale": 2, "codebook_size": 16, "epochs": 20, "batch_size": 64, "lr": 0.001}
GOOD_CODES = np.array([[0, 0], [0, 0], [1, 2], [2, 1], [3, 3], [1, 1], [2, 2], [0, 3]])  # 4 codes used per level


def stub(name: str, value: StageOutput):
    """An asset named like a real one that returns a given version, so a check can be pointed at anything."""

    @asset(name=name, partitions_def=dataset_partitions)
    def produce() -> StageOutput:
        return value

    return produce


def downstream_of(key: str):
    @asset(name="reads_it", partitions_def=dataset_partitions, deps=[AssetKey(key)])
    def reads_it() -> None:
        return None

    return reads_it


def embeddings_version(root, vectors: np.ndarray, item_ids=ITEMS) -> StageOutput:
    return write_stage(root, "embeddings", {EMBEDDINGS_TABLE: embeddings_table(list(item_ids), vectors)}, {"dim": 4})


def table_version(root, table: pl.DataFrame, embedded: StageOutput, codebook_size: int = 4) -> StageOutput:
    manifest = {"codebook_size": codebook_size, "embeddings": {"fingerprint": embedded.fingerprint}, "n": len(table)}
    return write_stage(root, "semantic_ids", {TABLE: table}, manifest)


def run_checks(tmp_path, target, check_defs, run_config=None):
    """Materialize ``target`` with its checks and a downstream asset; (evaluations by name, downstream ran?)."""
    storage = StorageResource(data_root=str(tmp_path), output_root=str(tmp_path))
    result = materialize(
        [target, downstream_of(target.key.path[-1]), *check_defs],
        resources={"storage": storage},
        partition_key=PARTITION,
        instance=DagsterInstance.ephemeral(),
        run_config=run_config,
        raise_on_error=False,
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    downstream = any(e.asset_key == AssetKey("reads_it") for e in result.get_asset_materialization_events())
    return evaluations, downstream


def vectors(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(len(ITEMS), 4)).astype(np.float32)


def test_semantic_id_checks_pass_on_a_good_table(tmp_path):
    table = table_version(tmp_path, semantic_id_table(ITEMS, GOOD_CODES), embeddings_version(tmp_path, vectors()))
    target = stub("semantic_ids_moc", table)
    evaluations, downstream = run_checks(tmp_path, target, checks.semantic_id_checks(target))
    assert {name: e.passed for name, e in evaluations.items()} == {
        "unique_semantic_ids": True,
        "code_usage": True,
        "rows_match_embeddings": True,
    }
    assert downstream


@pytest.mark.parametrize(
    ("broken", "check", "message"),
    [
        ("suffix", "unique_semantic_ids", "1 Semantic IDs (codes + collision_suffix) name more than one item"),
        ("usage", "code_usage", "level 2 uses 1 (25%)"),
        ("rows", "rows_match_embeddings", "1 embedded items have no Semantic ID (e.g. i7)"),
    ],
)
def test_each_semantic_id_check_fails_on_a_broken_table_and_blocks_downstream(tmp_path, broken, check, message):
    embedded = embeddings_version(tmp_path, vectors())
    table = semantic_id_table(ITEMS, GOOD_CODES)
    if broken == "suffix":
        table = table.with_columns(collision_suffix=pl.lit(0, pl.Int32))
    elif broken == "usage":
        table = semantic_id_table(ITEMS, np.column_stack([GOOD_CODES[:, 0], np.zeros(len(ITEMS), dtype=int)]))
    else:
        table = table.filter(pl.col("item_id") != "i7")
    target = stub("semantic_ids_moc", table_version(tmp_path, table, embedded))
    evaluations, downstream = run_checks(tmp_path, target, checks.semantic_id_checks(target))
    failed = {name for name, e in evaluations.items() if not e.passed}
    assert failed == {check}
    assert message in evaluations[check].description
    assert not downstream, "a blocking check that fails stops what reads the table"


def test_the_usage_threshold_is_configurable(tmp_path):
    half = np.column_stack([GOOD_CODES[:, 0] % 2, GOOD_CODES[:, 1]])  # level 1 uses 2 of 4 codes
    table = table_version(tmp_path, semantic_id_table(ITEMS, half), embeddings_version(tmp_path, vectors()))
    target = stub("semantic_ids_moc", table)
    usage = checks.semantic_id_checks(target)[1]
    strict = {"ops": {"semantic_ids_moc_code_usage": {"config": {"min_usage": 0.9}}}}
    assert run_checks(tmp_path, target, [usage])[0]["code_usage"].passed  # default 0.5: 2 of 4 is enough
    evaluation = run_checks(tmp_path, target, [usage], strict)[0]["code_usage"]
    assert not evaluation.passed and "fewer than 90%" in evaluation.description


def test_finite_embeddings_check(tmp_path):
    good = stub("item_embeddings", embeddings_version(tmp_path, vectors()))
    assert run_checks(tmp_path, good, [checks.finite_embeddings_check(good)])[0]["finite_embeddings"].passed
    bad = vectors(1)
    bad[3, 2] = np.nan
    broken = stub("item_embeddings", embeddings_version(tmp_path, bad))
    evaluations, downstream = run_checks(tmp_path, broken, [checks.finite_embeddings_check(broken)])
    assert not evaluations["finite_embeddings"].passed and not downstream
    assert (
        "1 of 8 item vectors contain NaN or inf (1 NaN, 0 inf), e.g. i3" in evaluations["finite_embeddings"].description
    )


@pytest.mark.parametrize(
    ("stage", "asset_name", "manifest"),
    [
        ("ctr_model", "ctr_model", {"test_auc": 1.3, "valid_auc": 0.7}),
        ("tiger_eval", "retrieval_eval", {"test": {"recall@10": 0.1, "ndcg@10": -0.01}}),
        ("decoder_eval", "decoder_eval", {"test": {"recall@10": 0.1, "ndcg@10": 2.0}}),
        ("sasrec", "sasrec_model", {"test": {"recall@10": float("nan")}}),
    ],
)
def test_metric_check_fails_outside_the_unit_interval(tmp_path, stage, asset_name, manifest):
    broken = stub(asset_name, write_stage(tmp_path, stage, {}, manifest))
    evaluations, downstream = run_checks(tmp_path, broken, [checks.metric_range_check(broken)])
    evaluation = evaluations["metrics_in_unit_interval"]
    assert not evaluation.passed and not downstream
    assert "1 of 2 metrics" in evaluation.description or "1 of 1 metrics" in evaluation.description
    good = {"test_auc": 0.8, "valid_auc": 0.7} if stage == "ctr_model" else {"test": {"recall@10": 0.1}}
    fine = stub(asset_name, write_stage(tmp_path, stage, {}, good))
    assert run_checks(tmp_path, fine, [checks.metric_range_check(fine)])[0]["metrics_in_unit_interval"].passed


def test_every_check_passes_on_a_real_catalogue(shared_data, tmp_resources):
    shared_data(PARTITION)
    table_checks = [
        c for c in checks.ALL_CHECKS if {k.asset_key for k in c.check_keys} & {AssetKey("semantic_ids_rqvae")}
    ]
    vector_checks = [
        c for c in checks.ALL_CHECKS if {k.asset_key for k in c.check_keys} & {AssetKey("item_embeddings")}
    ]
    result = materialize(
        [
            ingest.normalized_dataset,
            ingest.kcore_dataset,
            embeddings.item_embeddings,
            tokenizers.TOKENIZER_ASSETS["rqvae"],
            semantic_ids.TABLE_ASSETS["rqvae"],
            *table_checks,
            *vector_checks,
        ],
        resources=tmp_resources,
        partition_key=PARTITION,
        instance=DagsterInstance.ephemeral(),
        run_config={"ops": {"tokenizer_rqvae": {"config": HEALTHY_TOKENIZER}}},
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"unique_semantic_ids", "code_usage", "rows_match_embeddings", "finite_embeddings"}
    assert all(e.passed for e in evaluations.values()), {n: e.description for n, e in evaluations.items()}
    assert evaluations["rows_match_embeddings"].metadata["table_rows"].value == 147  # Gift Cards' 5-core
