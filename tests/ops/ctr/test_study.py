"""The study grid on Gift Cards with tiny tokenizers and models: one row per cell, the paper's two tables."""

import contextlib

import polars as pl

from ops.ctr.study import (
    RESULT_COLUMNS,
    StudyConfig,
    run_study,
    scaling_study_stage,
    study_cells,
    study_results,
    study_tables,
    table1,
    table2,
)


def test_cells_of_the_default_study():
    cells = study_cells(StudyConfig())
    # per backbone and seed: ID only, 1x RQ-VAE, 3 kinds x 3 scales x 2 fusion settings
    assert len(cells) == 4 * 3 * (1 + 1 + 18)
    once = [c for c in cells if c.scale == 1]
    assert len(once) == 12 and all(c.kind == "rqvae" and not c.fusion for c in once)


def test_study_runs_every_cell_once_and_tabulates(gift_cards):
    opened, epochs = [], []

    @contextlib.contextmanager
    def hook(cell):
        opened.append(cell)
        yield epochs.append

    config = StudyConfig.test()
    prepared = gift_cards.prepared
    results = run_study(gift_cards.root, prepared.kcore, prepared.splits, prepared.embeddings, config, hook)
    assert results.columns == list(RESULT_COLUMNS)
    assert opened == study_cells(config) and results.height == len(opened) == 4
    assert epochs and results["test_auc"].is_between(0, 1).all()
    assert results.filter(pl.col("kind") == "id")["scale"].to_list() == [0]

    first = table1(results)
    assert first.columns == ["backbone", "kind", "1x", "2x"]
    assert first["kind"].to_list() == ["id", "rqvae", "moc"]
    moc_fused = results.filter((pl.col("kind") == "moc") & pl.col("fusion"))["test_auc"].item()
    assert first.filter(pl.col("kind") == "moc")["2x"].item() == f"{moc_fused:.4f}"  # one seed: no ± part
    second = table2(results)
    assert second.columns == ["backbone", "kind", "2x w/o", "2x w/"] and second.height == 1

    again = run_study(gift_cards.root, prepared.kcore, prepared.splits, prepared.embeddings, config)
    assert again.equals(results)  # every stage a cache hit


def test_study_stage_stores_results_and_tables(gift_cards):
    prepared = gift_cards.prepared
    args = (gift_cards.root, prepared.kcore, prepared.splits, prepared.embeddings, StudyConfig.test())
    stage = scaling_study_stage(*args)
    results = study_results(stage)
    assert results.height == stage.manifest["runs"] == 4
    first, second = study_tables(stage)
    assert first.equals(table1(results)) and stage.manifest["table2"] == second.to_dicts()
    assert scaling_study_stage(*args).cache_hit
