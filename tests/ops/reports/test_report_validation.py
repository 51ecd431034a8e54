"""Each table and metric check fails on a deliberately broken input, with a message that says what to change."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ops.reports.validation import (
    code_usage,
    finite_embeddings,
    metrics_in_unit_interval,
    rows_match_embeddings,
    study_metrics,
    unique_semantic_ids,
)
from ops.semantic_ids.table import semantic_id_table

ITEMS = [f"i{k}" for k in range(8)]


def good_table() -> pl.DataFrame:
    codes = np.array([[0, 0], [0, 0], [1, 2], [2, 1], [3, 3], [1, 1], [2, 2], [0, 3]])  # i0, i1 share a tuple
    return semantic_id_table(ITEMS, codes)


def test_unique_semantic_ids():
    table = good_table()
    assert table["collision_suffix"].to_list()[:2] == [0, 1]
    assert unique_semantic_ids(table).passed
    broken = table.with_columns(collision_suffix=pl.lit(0, pl.Int32))  # the suffix no longer separates i0 and i1
    outcome = unique_semantic_ids(broken)
    assert not outcome.passed and outcome.metadata["ambiguous_ids"] == 1 and outcome.metadata["ambiguous_rows"] == 2
    assert "codes [0 0] suffix 0 -> i0, i1" in outcome.message and "re-materializing" in outcome.message


def test_code_usage_against_the_attainable_codes():
    table = good_table()  # 8 items, levels use 4 and 4 of a 4-code book
    assert code_usage(table, codebook_size=4, min_usage=0.9).passed
    # a 256-code book can hold at most 8 of these items' codes: usage is judged against 8, not 256
    assert code_usage(table, codebook_size=256, min_usage=0.5).passed
    collapsed = semantic_id_table(ITEMS, np.column_stack([np.arange(8) % 4, np.zeros(8, dtype=int)]))
    outcome = code_usage(collapsed, codebook_size=4, min_usage=0.5)
    assert not outcome.passed and outcome.metadata["level_2_codes_used"] == 1
    assert "1 of 2 levels use fewer than 50%" in outcome.message and "level 2 uses 1 (25%)" in outcome.message
    assert "min_usage" in outcome.message


def test_rows_match_embeddings():
    table = good_table()
    assert rows_match_embeddings(table, ITEMS).passed
    outcome = rows_match_embeddings(table.filter(pl.col("item_id") != "i3"), [*ITEMS, "new"])
    assert not outcome.passed and outcome.metadata["missing"] == 2 and outcome.metadata["extra"] == 0
    assert "7 rows for 9 embedded items: 2 embedded items have no Semantic ID (e.g. i3, new)" in outcome.message
    extra = rows_match_embeddings(table, ITEMS[:-1])
    assert not extra.passed and "1 rows name items that were not embedded (e.g. i7)" in extra.message
    repeated = rows_match_embeddings(pl.concat([table, table.head(1)]), ITEMS)
    assert not repeated.passed and repeated.metadata["repeated"] == 1


def test_finite_embeddings():
    vectors = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    assert finite_embeddings(ITEMS, vectors).passed
    vectors[2, 1], vectors[5, 0] = np.nan, np.inf
    outcome = finite_embeddings(ITEMS, vectors)
    assert not outcome.passed and (outcome.metadata["nan_vectors"], outcome.metadata["inf_vectors"]) == (1, 1)
    assert "2 of 8 item vectors contain NaN or inf (1 NaN, 1 inf), e.g. i2, i5" in outcome.message


@pytest.mark.parametrize("bad", [1.2, -0.1, float("nan"), None])
def test_metrics_in_unit_interval(bad):
    assert metrics_in_unit_interval({"test_auc": 0.8, "recall@10": 0.0}, "ctr_model x").passed
    outcome = metrics_in_unit_interval({"test_auc": 0.8, "ndcg@10": bad}, "tiger_eval y")
    assert not outcome.passed and outcome.metadata["out_of_range"] == 1
    assert f"1 of 2 metrics of tiger_eval y are missing or outside [0, 1]: ndcg@10 = {bad}" in outcome.message
    assert not metrics_in_unit_interval({}, "sasrec z").passed


def test_study_metrics_name_each_run():
    results = pl.DataFrame(
        {"backbone": ["deepfm"], "kind": ["moc"], "scale": [2], "fusion": [True], "seed": [0]}
    ).with_columns(test_auc=pl.lit(0.7), valid_auc=pl.lit(1.5))
    metrics = study_metrics(results)
    assert metrics == {"deepfm-moc-2x-fusion-seed0/test_auc": 0.7, "deepfm-moc-2x-fusion-seed0/valid_auc": 1.5}
    assert not metrics_in_unit_interval(metrics, "ctr_study s").passed
