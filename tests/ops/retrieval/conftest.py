"""Small inputs for the retrieval tests: Semantic-ID tables by hand and a real leave-one-out slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ops.caching import StageOutput, run_cached
from ops.ingest import stages
from ops.ingest.datasets import get_dataset
from ops.semantic_ids.stage import TABLE
from ops.semantic_ids.table import collision_report, semantic_id_table

SLICE_DATASET = "amazon2018-gift-cards"


def sid_table_stage(root: Path, item_ids: list[str], codes: np.ndarray, codebook_size: int) -> StageOutput:
    """A Semantic-ID table version written the way `semantic_ids_stage` writes it, from given codes."""

    def build(folder: Path) -> dict:
        table = semantic_id_table(item_ids, codes)
        table.write_parquet(folder / TABLE)
        collisions = collision_report(table)
        return {"codebook_size": codebook_size, "version": 1, "tokenizer": {"kind": "given"}, "collisions": collisions}

    return run_cached(root, "semantic_ids", f"given{len(item_ids):05d}{codebook_size:04d}", build)


@pytest.fixture
def real_slice(shared_data, tmp_path):
    """(splits stage of the first 24 users of Gift Cards' 5-core, a 3x8 Semantic-ID table of its items).

    Codes are random and drawn from 4 of the 8 ids per level, so some items share a tuple and get suffixes.
    """
    data_root = shared_data(SLICE_DATASET).parent
    spec = get_dataset(SLICE_DATASET)
    normalized = stages.normalize(spec, data_root, tmp_path, stages.NormalizeConfig())
    kcore = stages.kcore(normalized, tmp_path, stages.KCoreConfig())
    full = stages.splits(kcore, tmp_path, stages.SplitConfig())
    split = pl.read_parquet(full.file("leave_one_out.parquet"))
    users = split["user_id"].unique().sort()[:24]
    split = split.filter(pl.col("user_id").is_in(users.implode()))

    def build(folder: Path) -> dict:
        split.write_parquet(folder / "leave_one_out.parquet")
        return {"dataset": SLICE_DATASET, "users": len(users)}

    splits = run_cached(tmp_path, "splits", "slice24", build)
    items = split["item_id"].unique().sort().to_list()
    codes = np.random.default_rng(0).integers(0, 4, size=(len(items), 3))  # 64 tuples: some items collide
    return splits, sid_table_stage(tmp_path, items, codes, codebook_size=8)
