"""Re-indexing: when the previous tokenizer may stay frozen, and how many Semantic IDs moved between versions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from ops.caching import run_cached
from ops.embeddings.stage import TABLE as EMBEDDINGS_TABLE
from ops.embeddings.stage import embeddings_table
from ops.quantizers.rqvae import RQVAEConfig
from ops.quantizers.stage import train_tokenizer_stage
from ops.semantic_ids.changes import CHANGED, compare_versions
from ops.semantic_ids.reindexing import frozen_tokenizer, same_vectors
from ops.semantic_ids.stage import append_items_stage, read_table, semantic_ids_stage
from ops.tables import read_parquet
from tests.ops.quantizers.conftest import clustered_embeddings

N_ITEMS = 300
IDS = [f"i{k:04d}" for k in range(N_ITEMS)]
VECTORS = clustered_embeddings(N_ITEMS, 24)


def embeddings_version(root, name: str, item_ids: list[str], vectors: np.ndarray, model: str = "synthetic"):
    """An embeddings stage version with the manifest fields the real stage writes."""

    def build(folder):
        embeddings_table(item_ids, vectors).write_parquet(folder / EMBEDDINGS_TABLE)
        return {"model": model, "template": "title", "dim": int(vectors.shape[1]), "items_embedded": len(item_ids)}

    return run_cached(root, "embeddings", name, build)


def grown(root):
    """The catalogue with 20 new items (the first version's vectors unchanged)."""
    ids = [*IDS, *(f"new{k:02d}" for k in range(20))]
    return embeddings_version(
        root, "0000000000000002", ids, np.concatenate([VECTORS, clustered_embeddings(20, 24, seed=7)])
    )


def test_the_previous_tokenizer_stays_frozen_only_when_it_is_the_same_tokenizer_on_the_same_embedder(tmp_path):
    config = RQVAEConfig.test()
    first = embeddings_version(tmp_path, "0000000000000001", IDS, VECTORS)
    previous = train_tokenizer_stage(tmp_path, config, first)
    second = grown(tmp_path)

    assert frozen_tokenizer(tmp_path, config, second, previous) is previous
    assert frozen_tokenizer(tmp_path, config, second, None) is None
    assert frozen_tokenizer(tmp_path, config, first, previous) is None, "same embeddings: training is a cache hit"
    reseeded = replace(config, train=replace(config.train, seed=5))
    assert frozen_tokenizer(tmp_path, reseeded, second, previous) is None, "another config trains its own"
    other_model = embeddings_version(tmp_path, "0000000000000003", IDS, VECTORS, model="another-encoder")
    assert frozen_tokenizer(tmp_path, config, other_model, previous) is None

    rng = np.random.default_rng(0)
    moved = embeddings_version(tmp_path, "0000000000000004", IDS, VECTORS + rng.normal(0, 1.0, VECTORS.shape))
    assert not same_vectors(first, moved), "an embedder that changed silently is caught by the vectors"
    assert frozen_tokenizer(tmp_path, config, moved, previous) is None


def test_a_frozen_append_changes_no_id_and_a_retrained_table_counts_what_moved(tmp_path):
    config = RQVAEConfig.test()
    first_embeddings = embeddings_version(tmp_path, "0000000000000001", IDS, VECTORS)
    tokenizer = train_tokenizer_stage(tmp_path, config, first_embeddings)
    first = semantic_ids_stage(tmp_path, tokenizer, first_embeddings)
    second_embeddings = grown(tmp_path)
    appended = append_items_stage(tmp_path, first, second_embeddings)

    frozen = compare_versions(tmp_path, first, appended).manifest
    assert frozen["tokenizer"] == "frozen"
    assert (frozen["items_kept"], frozen["items_added"], frozen["items_removed"]) == (N_ITEMS, 20, 0)
    assert frozen["items_changed_semantic_id"] == 0 and frozen["share_changed"] == 0.0

    retrained_tokenizer = train_tokenizer_stage(
        tmp_path, replace(config, train=replace(config.train, seed=3)), second_embeddings
    )
    retrained = semantic_ids_stage(tmp_path, retrained_tokenizer, second_embeddings)
    changes = compare_versions(tmp_path, appended, retrained)
    manifest = changes.manifest
    assert manifest["tokenizer"] == "retrained" and manifest["items_kept"] == N_ITEMS + 20

    before = read_table(appended).sort("item_id")
    after = read_table(retrained).sort("item_id")
    codes_moved = (before["codes"] != after["codes"]).sum()
    ids_moved = ((before["codes"] != after["codes"]) | (before["collision_suffix"] != after["collision_suffix"])).sum()
    assert codes_moved > 0, "another seed gives other codebooks"
    assert manifest["items_changed_codes"] == codes_moved
    assert manifest["items_changed_semantic_id"] == ids_moved
    assert manifest["share_changed"] == ids_moved / (N_ITEMS + 20)
    changed = read_parquet(changes.file(CHANGED))
    assert changed.height == ids_moved
    assert changed.columns == ["item_id", "codes_before", "suffix_before", "codes_after", "suffix_after"]
    assert changed.filter(pl.col("codes_before") == pl.col("codes_after")).height == ids_moved - codes_moved
    assert compare_versions(tmp_path, appended, retrained).cache_hit
