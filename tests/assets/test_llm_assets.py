"""The LLM assets through Dagster on the real MIND sample (195 of its 5,907 items have text), with a tiny local decoder and one
training step per run: item text -> adapted LLM -> item vectors / palettes -> the lamia family's Semantic-ID table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dagster import DagsterInstance, materialize

from assets import ingest, llm
from ops.embeddings.stage import read_embeddings
from ops.semantic_ids.stage import read_table
from ops.semantic_ids.table import table_codes
from tests.ops.llm.conftest import tiny_dirs  # noqa: F401 (the fixture: tiny local decoders)

ASSETS = [ingest.normalized_dataset, ingest.kcore_dataset, llm.llm2vec_model, llm.llm2vec_embeddings]
LAMIA_ASSETS = [
    ingest.normalized_dataset,
    ingest.kcore_dataset,
    llm.lamia_model,
    llm.lamia_palettes,
    llm.semantic_ids_lamia,
]
ONE_STEP = 1e-9  # seconds: the budget stops training after its first step


def test_llm2vec_assets_make_an_embedding_table(shared_data, tiny_dirs: dict[str, Path], tmp_resources) -> None:  # noqa: F811
    shared_data("mind-small-sample")
    model = {"model": str(tiny_dirs["llama"]), "lora_rank": 4, "mntp_batch_size": 8, "simcse_batch_size": 8}
    result = materialize(
        ASSETS,
        resources=tmp_resources,
        partition_key="mind-small-sample",
        instance=DagsterInstance.ephemeral(),
        run_config={
            "ops": {
                "llm2vec_model": {"config": {**model, "mntp_budget_s": ONE_STEP, "simcse_budget_s": ONE_STEP}},
                "llm2vec_embeddings": {"config": {"batch_size": 64, "max_length": 32}},
            }
        },
    )
    adapted = result.output_for_node("llm2vec_model").manifest
    assert adapted["mntp"]["steps"] == adapted["simcse"]["steps"] == 1 and adapted["mntp"]["stopped"] == "budget"
    embeddings = result.output_for_node("llm2vec_embeddings")
    item_ids, vectors = read_embeddings(embeddings)
    items = result.output_for_node("kcore_dataset").manifest["rows"]["items"]
    assert len(item_ids) + embeddings.manifest["textless_items"] == items and len(item_ids) > 100
    assert vectors.shape[1] == 32 and np.isfinite(vectors).all()


def test_lamia_assets_make_a_semantic_id_table(shared_data, tiny_dirs: dict[str, Path], tmp_resources) -> None:  # noqa: F811
    shared_data("mind-small-sample")
    palettes_config = {"model": str(tiny_dirs["opt"]), "lora_rank": 4, "batch_size": 8, "micro_batch_size": 8}
    result = materialize(
        LAMIA_ASSETS,
        resources=tmp_resources,
        partition_key="mind-small-sample",
        instance=DagsterInstance.ephemeral(),
        run_config={
            "ops": {
                "lamia_model": {"config": {**palettes_config, "budget_s": ONE_STEP}},
                "lamia_palettes": {"config": {"inference_batch_size": 256}},
                "semantic_ids_lamia": {"config": {"pca_dim": 8, "codebook_size": 16}},
            }
        },
    )
    palettes = result.output_for_node("lamia_palettes").manifest
    assert palettes["training"]["steps"] == 1 and palettes["dim"] == 4 * 16  # L = 4 of the tiny OPT's 16 dims
    table_stage = result.output_for_node("semantic_ids_lamia")
    table = read_table(table_stage)
    assert table.height == palettes["items_with_palettes"] and table_codes(table).shape[1] == 4
    manifest = table_stage.manifest
    assert manifest["tokenizer"]["kind"] == "lamia" and manifest["run"]["mlflow_run_id"]
    assert manifest["collisions"]["collision_rate_with_suffix"] == 0 and min(manifest["code_usage"]["usage"]) > 0.5
