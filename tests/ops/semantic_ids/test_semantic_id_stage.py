"""Stages end to end on synthetic embeddings: cached training, byte-identical tables, frozen append of new items."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from ops.caching import run_cached
from ops.embeddings.stage import TABLE as EMBEDDINGS_TABLE
from ops.embeddings.stage import embeddings_table
from ops.quantizers.rqvae import RQVAEConfig
from ops.quantizers.stage import train_tokenizer_stage
from ops.semantic_ids.stage import (
    TABLE,
    append_items_stage,
    next_table_version,
    read_retired,
    read_table,
    semantic_ids_stage,
)
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


def test_retired_items_keep_their_id_reserved_and_get_it_back_when_they_return(tmp_path):
    tokenizer, first = build_version(tmp_path, n_items=300)
    vectors = clustered_embeddings(300, 24)
    ids = [f"i{k:04d}" for k in range(300)]
    kept = [k for k in range(300) if k % 10]  # every tenth item leaves the catalogue
    shrunk = append_items_stage(tmp_path, first, embeddings_stage(tmp_path, [ids[k] for k in kept], vectors[kept]))
    assert shrunk.manifest["n_items"] == 270 and shrunk.manifest["n_retired_items"] == 30
    assert shrunk.manifest["n_new_items"] == 0 and shrunk.manifest["n_returned_items"] == 0
    original = read_table(first)
    assert read_table(shrunk).equals(original.filter(pl.col("item_id").is_in([ids[k] for k in kept])))
    assert read_retired(shrunk)["item_id"].to_list() == [ids[k] for k in range(0, 300, 10)]

    # they come back, with a new item whose codes are those of a retired one: it must not take the retired ID
    twin = vectors[:1]
    ids_back = [*ids, "new0"]
    restored = append_items_stage(
        tmp_path, shrunk, embeddings_stage(tmp_path, ids_back, np.concatenate([vectors, twin]))
    )
    assert restored.manifest["n_returned_items"] == 30 and restored.manifest["n_new_items"] == 1
    table = read_table(restored)
    assert table.filter(pl.col("item_id") != "new0").equals(original), "returning items got their old IDs back"
    assert read_retired(restored).is_empty()
    assert table.select(pl.col("codes").cast(pl.List(pl.String)).list.join(" "), "collision_suffix").is_unique().all()
    assert restored.manifest["tokenizer"]["fingerprint"] == tokenizer.fingerprint


def test_next_table_version_keeps_appends_or_starts_over(tmp_path):
    tokenizer, first = build_version(tmp_path, n_items=300)
    embeddings = embeddings_stage(tmp_path, [f"i{k:04d}" for k in range(300)], clustered_embeddings(300, 24))
    assert next_table_version(tmp_path, tokenizer, embeddings, None).fingerprint == first.fingerprint
    assert next_table_version(tmp_path, tokenizer, embeddings, first) is first  # nothing changed

    ids = [f"i{k:04d}" for k in range(300)] + ["new0"]
    grown = embeddings_stage(
        tmp_path, ids, np.concatenate([clustered_embeddings(300, 24), clustered_embeddings(1, 24)])
    )
    appended = next_table_version(tmp_path, tokenizer, grown, first)
    assert appended.manifest["parent"] == first.fingerprint and appended.manifest["n_new_items"] == 1

    config = RQVAEConfig.test()
    other = train_tokenizer_stage(tmp_path, replace(config, train=replace(config.train, seed=1)), grown)
    fresh = next_table_version(tmp_path, other, grown, appended)
    assert fresh.manifest["version"] == 1 and fresh.manifest["parent"] is None
    assert fresh.manifest["tokenizer"]["fingerprint"] == other.fingerprint
