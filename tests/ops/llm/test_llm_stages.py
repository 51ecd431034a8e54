"""The LLM stages end to end on a tiny decoder: cached, and their outputs readable by the stages downstream."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ops.caching import StageOutput, run_cached
from ops.embeddings.config import llm2vec_config
from ops.embeddings.stage import embed, read_embeddings
from ops.embeddings.templates import MIND
from ops.llm import stage as stage_module
from ops.llm.lamia import LamiaConfig
from ops.llm.llm2vec import LLM2VecConfig
from ops.llm.stage import lamia_model_stage, lamia_palettes_stage, lamia_table_stages, llm2vec_stage
from ops.quantizers.kmeans import KMeansConfig
from ops.quantizers.lamia import LamiaQuantizerConfig
from ops.semantic_ids.stage import read_table
from ops.semantic_ids.table import table_codes
from tests.ops.embeddings.conftest import ITEM_TEXTS

N_ITEMS = 12


def catalogue(root: Path) -> StageOutput:
    """A k-core-like stage holding a 12-item MIND-shaped items table built from the tiny vocabulary's words."""
    titles = [text.split(";")[0] for text in ITEM_TEXTS]
    items = pl.DataFrame(
        {
            "item_id": [f"N{i:02d}" for i in range(N_ITEMS)],
            "title": [titles[i % 6] if i < 6 else f"{titles[i % 6]} {titles[(i + 1) % 6]}" for i in range(N_ITEMS)],
            "description": [ITEM_TEXTS[(i + 2) % 6].split(";")[2] for i in range(N_ITEMS)],
            "brand": [ITEM_TEXTS[i % 6].split(";")[1].strip() for i in range(N_ITEMS)],
            "categories": [["Beauty", ["Makeup", "Hair", "Fragrance"][i % 3]] for i in range(N_ITEMS)],
            "attributes": [None] * N_ITEMS,
            "has_text": [True] * N_ITEMS,
        }
    )

    def write(folder: Path) -> dict[str, str]:
        items.write_parquet(folder / "items.parquet")
        return {"dataset": "tiny"}

    return run_cached(root, "kcore", "0123456789abcdef", write)


def test_llm2vec_stage_is_cached_and_feeds_the_embeddings_stage(tiny_dirs, tmp_path: Path) -> None:
    kcore = catalogue(tmp_path)
    config = LLM2VecConfig.test(str(tiny_dirs["llama"]))
    stage = llm2vec_stage(kcore, tmp_path, config, MIND)
    assert not stage.cache_hit and stage.manifest["distinct_texts"] == N_ITEMS
    assert stage.manifest["mntp"]["steps"] == 6 and stage.manifest["simcse"]["stopped"] == "epochs"  # 3 steps x 2
    assert llm2vec_stage(kcore, tmp_path, config, MIND).cache_hit
    vectors = embed(kcore, tmp_path, llm2vec_config(str(stage.file("model")), max_length=32), MIND)
    item_ids, matrix = read_embeddings(vectors)
    assert len(item_ids) == N_ITEMS and matrix.shape[1] == 32 and np.isfinite(matrix).all()


def test_a_failed_simcse_keeps_the_mntp_stage_and_the_rerun_trains_simcse_only(tiny_dirs, tmp_path: Path) -> None:
    kcore = catalogue(tmp_path)
    config = LLM2VecConfig.test(str(tiny_dirs["llama"]))

    def crash_in_simcse(phase: str, _log) -> None:
        if phase == "simcse":
            raise RuntimeError("killed during SimCSE")

    with pytest.raises(RuntimeError, match="killed during SimCSE"):
        llm2vec_stage(kcore, tmp_path, config, MIND, crash_in_simcse)
    assert not (tmp_path / "llm2vec").exists() or not any((tmp_path / "llm2vec").glob("[0-9a-f]*"))
    phases: list[str] = []
    stage = llm2vec_stage(kcore, tmp_path, config, MIND, lambda phase, _log: phases.append(phase))
    assert set(phases) == {"simcse"} and stage.manifest["mntp"]["steps"] == 6
    longer_simcse = dataclasses.replace(config, simcse_training=dataclasses.replace(config.simcse_training, epochs=3))
    again = llm2vec_stage(kcore, tmp_path, longer_simcse, MIND)
    assert again.fingerprint != stage.fingerprint and again.manifest["mntp_stage"] == stage.manifest["mntp_stage"]
    assert len(list((tmp_path / "llm2vec_mntp").glob("[0-9a-f]*"))) == 1


def test_lamia_stages_write_palettes_and_a_semantic_id_table(tiny_dirs, tmp_path: Path) -> None:
    kcore = catalogue(tmp_path)
    config = LamiaConfig.test(str(tiny_dirs["opt"]))
    palettes = lamia_palettes_stage(kcore, lamia_model_stage(kcore, tmp_path, config), tmp_path, batch_size=5)
    manifest = palettes.manifest
    assert manifest["items_with_palettes"] == N_ITEMS and manifest["dim"] == 2 * 16 and manifest["nan_vectors"] == 0
    assert manifest["training"]["steps"] == 6 and set(manifest["training"]["final_parts"]) == {
        "generation",
        "intra",
        "inter",
    }
    quantizer = dataclasses.replace(
        LamiaQuantizerConfig.test(), aspect_dim=16, kmeans=KMeansConfig(codebook_size=4, niter=5)
    )
    tokenizer, table_stage = lamia_table_stages(palettes, tmp_path, quantizer)
    table = read_table(table_stage)
    assert table_codes(table).shape == (N_ITEMS, 2) and table_stage.manifest["tokenizer"]["kind"] == "lamia"
    assert (
        table_stage.manifest["scaling_factor"] == 2
        and table_stage.manifest["collisions"]["collision_rate_with_suffix"] == 0
    )
    trained_again = lamia_model_stage(kcore, tmp_path, config)
    again = lamia_table_stages(lamia_palettes_stage(kcore, trained_again, tmp_path, batch_size=5), tmp_path, quantizer)
    assert all(stage.cache_hit for stage in again) and tokenizer == again[0]


def test_a_failed_palette_pass_keeps_the_trained_lamia_model(tiny_dirs, tmp_path: Path, monkeypatch) -> None:
    kcore = catalogue(tmp_path)
    config = LamiaConfig.test(str(tiny_dirs["opt"]))
    trained = lamia_model_stage(kcore, tmp_path, config)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt("session ended during the palette pass")

    with monkeypatch.context() as patch:
        patch.setattr(stage_module, "palette_embeddings", interrupted)
        with pytest.raises(KeyboardInterrupt):
            lamia_palettes_stage(kcore, trained, tmp_path, batch_size=5)
    assert not any((tmp_path / "lamia_palettes").glob("[0-9a-f]*"))
    phases: list[str] = []
    again = lamia_model_stage(kcore, tmp_path, config, lambda phase, _log: phases.append(phase))
    assert again.cache_hit and phases == []
    palettes = lamia_palettes_stage(kcore, again, tmp_path, batch_size=5)
    assert palettes.manifest["model_stage"] == trained.fingerprint and palettes.manifest["training"]["steps"] == 6
