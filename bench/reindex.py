"""Re-indexing Amazon 2014 Beauty after 100 items join the catalogue: what is re-embedded, re-encoded, how long it
takes and how many Semantic IDs move, through Dagster as a scheduled or sensor-triggered run would do it.

On a fresh output root and Dagster instance (under ``data/bench-reindex``), four runs of ingestion -> embeddings
-> ``tokenizer_rqvae`` -> ``semantic_ids_rqvae`` (the `make run` preset's 100 tokenizer epochs):

1. ``base``: Beauty with 100 items (drawn with ``--seed``) removed from every user's sequence: everything built;
2. ``reindex``: the full Beauty: the new items only are embedded (the rest come from the per-text store), the
   tokenizer stays frozen, the table version appends them; 0 IDs may move;
3. ``noop``: the same again: every stage a cache hit;
4. ``retrain``: ``retrain: true``: a new tokenizer on every item and a fresh table; how many IDs moved.

    make bench-reindex                      # = python -m bench.reindex; writes bench/results/reindex.json
    python -m bench.reindex --items 100 --seed 0
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from dagster import DagsterInstance, materialize

from assets import embeddings, ingest, semantic_ids, tokenizers
from bench.common import print_table, write_result
from ops.ingest.datasets import get_dataset
from resources import MlflowTracking, StorageResource
from resources.compute import ComputeResource
from resources.stage_io import StageOutputIOManager

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("SEMID_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))
WORK = REPO_ROOT / "data" / "bench-reindex"
DATASET = "amazon2014-beauty"
TOKENIZER = {"epochs": 100}  # the quick preset's (`make run`)
ASSETS = [
    ingest.normalized_dataset,
    ingest.kcore_dataset,
    embeddings.item_embeddings,
    tokenizers.TOKENIZER_ASSETS["rqvae"],
    semantic_ids.TABLE_ASSETS["rqvae"],
]


def without_items(sequences: Path, target: Path, n_items: int, seed: int) -> list[str]:
    """Write ``sequences`` (P5 format: ``user item item ...`` per line) without ``n_items`` random items."""
    lines = sequences.read_text().splitlines()
    items = sorted({item for line in lines for item in line.split()[1:]}, key=int)
    removed = set(np.random.default_rng(seed).choice(items, size=n_items, replace=False).tolist())
    kept = []
    for line in lines:
        user, *history = line.split()
        kept.append(" ".join([user, *(item for item in history if item not in removed)]))
    target.write_text("\n".join(kept) + "\n")
    return sorted(removed, key=int)


def raw_copy(root: Path) -> dict[str, Path]:
    """A data root holding Beauty's files (links to the shared ones) that a run can change: its file paths."""
    spec = get_dataset(DATASET)
    files = spec.paths(root)
    next(iter(files.values())).parent.mkdir(parents=True)
    for path in files.values():
        path.symlink_to(DATA_ROOT / spec.folder / path.name)
    return files


def run_step(instance: DagsterInstance, resources: dict[str, Any], retrain: bool) -> dict[str, Any]:
    """One materialization of ``ASSETS``; what each stage did and the wall time."""
    start = time.perf_counter()
    result = materialize(
        ASSETS,
        instance=instance,
        resources=resources,
        partition_key=DATASET,
        run_config={"ops": {"tokenizer_rqvae": {"config": {**TOKENIZER, "retrain": retrain}}}},
    )
    seconds = time.perf_counter() - start
    events = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    embedded = result.output_for_node("item_embeddings").manifest
    table = result.output_for_node("semantic_ids_rqvae")
    meta = events["semantic_ids_rqvae"]

    def value(key: str) -> Any:
        return meta[key].value if key in meta else None

    return {
        "seconds": round(seconds, 1),
        "items": table.manifest["n_items"],
        "embedded_now": embedded["vectors_computed"] if not result.output_for_node("item_embeddings").cache_hit else 0,
        "stages_cached": sum(m["cache"].value == "cache hit" for m in events.values()),
        "stages": len(events),
        "tokenizer": events["tokenizer_rqvae"]["cache"].value,
        "table_version": table.manifest["version"],
        "encoded_now": table.manifest.get("n_new_items", table.manifest["n_items"]) if not table.cache_hit else 0,
        "items_added": value("items_added"),
        "ids_changed": value("items_changed_semantic_id"),
        "collision_rate": table.manifest["collisions"]["collision_rate"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100, help="items that join the catalogue")
    parser.add_argument("--seed", type=int, default=0, help="which items")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    home = WORK / "dagster_home"
    home.mkdir(parents=True)
    files = raw_copy(WORK / "raw")
    sequences = files["sequences"]
    sequences.unlink()
    removed = without_items(DATA_ROOT / get_dataset(DATASET).folder / sequences.name, sequences, args.items, args.seed)
    out = WORK / "out"
    resources = {
        "io_manager": StageOutputIOManager(output_root=str(out)),
        "compute": ComputeResource(),
        "storage": StorageResource(data_root=str(WORK / "raw"), output_root=str(out)),
        "mlflow": MlflowTracking(tracking_uri=f"sqlite:///{WORK / 'mlflow.db'}", artifact_root=str(WORK / "artifacts")),
    }
    rows = []
    with DagsterInstance.local_temp(str(home)) as instance:
        rows.append({"step": "base", **run_step(instance, resources, retrain=False)})
        sequences.unlink()
        sequences.symlink_to(DATA_ROOT / get_dataset(DATASET).folder / sequences.name)
        for step, retrain in (("reindex", False), ("noop", False), ("retrain", True)):
            rows.append({"step": step, **run_step(instance, resources, retrain=retrain)})
            print_table(rows[-1:])
    print_table(rows)
    figures = {"dataset": DATASET, "items_removed_then_added": removed, "tokenizer": TOKENIZER, "steps": rows}
    write_result("reindex", figures)


if __name__ == "__main__":
    main()
