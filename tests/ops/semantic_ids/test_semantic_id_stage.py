"""Stages end to end on synthetic embeddings: cached training, byte-identical tables, frozen append of new items."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl

from ops.caching import run_cached
from ops.embeddings.stage import TABLE as EMBEDDINGS_TABLE
from ops.embeddings.stage import embeddings_table
from ops.quantizers.rqvae import RQVAEConfig
from ops.quantizers.stage import train_tokenizer_stage
from ops.semantic_ids.stage import TABLE, append_items_stage, read_table, semantic_ids_stage
from tests.ops.quantizers.conftest import clustered_embeddings


def embeddings_stage(root: Path, item_ids: list[str], vectors: np.ndarray):
    def build(folder: Path) -> dict:
        embeddings_table(item_ids, vectors).write_parquet(folder / EMBEDDINGS_TABLE)
        return {"model": "synthetic", "dim": int(vectors.shape[1]), "items_embedded": len(item_ids)}

    digest = hashlib.sha256(vectors.tobytes() + "|".join(item_ids).encode()).hexdigest()[:16]
    return run_cached(root, "embeddings", digest, build)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_version(root: Path, n_items: int = 300):
    vectors = clustered_embeddings(n_items, 24)
    embeddings = embeddings_stage(root, [f"i{k:04d}" for k in range(n_items)], vectors)
    tokenizer = train_tokenizer_stage(root, RQVAEConfig.test(), embeddings)
    return tokenizer, semantic_ids_stage(root, tokenizer, embeddings, run_info={"mlflow_run_id": "abc"})


def test_identical_inputs_give_identical_table_bytes_and_cache_hits(tmp_path):
    tokenizer, first = build_version(tmp_path / "one")
    _, second = build_version(tmp_path / "two")
    assert first.fingerprint == second.fingerprint
    assert digest(first.file(TABLE)) == digest(second.file(TABLE))
    tokenizer_again, again = build_version(tmp_path / "one")
    assert tokenizer_again.cache_hit and again.cache_hit
    manifest = first.manifest
    assert manifest["version"] == 1 and manifest["parent"] is None and manifest["run"] == {"mlflow_run_id": "abc"}
    assert manifest["tokenizer"]["kind"] == "rqvae" and manifest["scaling_factor"] == 3
    assert manifest["embeddings"]["model"] == "synthetic" and manifest["n_items"] == 300
    assert len(manifest["code_usage"]["usage"]) == 3
    assert manifest["collisions"]["collision_rate_with_suffix"] == 0.0
    assert tokenizer.file("tokenizer.pt").is_file() and tokenizer.file("history.json").is_file()


def test_new_items_are_appended_as_a_new_version_with_the_frozen_tokenizer(tmp_path):
    tokenizer, first = build_version(tmp_path, n_items=300)
    before = digest(first.file(TABLE))
    vectors = clustered_embeddings(300, 24)  # the same items ...
    extra = clustered_embeddings(40, 24, seed=7)  # ... plus 40 new ones
    ids = [f"i{k:04d}" for k in range(300)] + [f"new{k:02d}" for k in range(40)]
    grown_embeddings = embeddings_stage(tmp_path, ids, np.concatenate([vectors, extra]))
    second = append_items_stage(tmp_path, first, grown_embeddings)

    assert digest(first.file(TABLE)) == before  # the old version is untouched
    assert second.path != first.path and second.manifest["version"] == 2
    assert second.manifest["parent"] == first.fingerprint and second.manifest["n_new_items"] == 40
    assert second.manifest["tokenizer"]["fingerprint"] == tokenizer.fingerprint
    old, new = read_table(first), read_table(second)
    assert new.filter(pl.col("item_id").is_in(old["item_id"].to_list())).equals(old)
    assert new["item_id"].str.starts_with("new").sum() == 40
    assert second.manifest["collisions"]["collision_rate_with_suffix"] == 0.0
    # frozen assignment: new items get the codes the frozen tokenizer gives them on their own
    from ops.quantizers.stage import load_tokenizer
    from ops.semantic_ids.stage import encode

    expected = encode(load_tokenizer(tokenizer), extra)
    got = np.asarray(new.filter(pl.col("item_id").str.starts_with("new")).sort("item_id")["codes"].to_list())
    assert np.array_equal(got, expected)
