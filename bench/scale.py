"""Beyond one machine, measured on this one: Ray and DDP overhead against the local path, and streaming ingestion.

    python -m bench.scale                  # every part at its full size (~15 min on 2 cores)
    python -m bench.scale --smoke          # tiny sizes, to check the script (< 1 min per part)
    python -m bench.scale --parts ingest ddp

Parts (each writes its figures under its name in ``bench/results/scale.json``):
- ``embed``: MiniLM items/s, one process with 2 threads vs Ray with 2 workers x 1 thread, vectors compared; the
  Ray time includes its workers' start (import torch, load the model), as a stage pays it.
- ``study``: study cells/hour, the cells one after another in one process vs 2 Ray workers (tables prebuilt);
  each cell trains long enough (~5 s) that the figure is about cells, not task dispatch.
- ``ddp``: CTR training samples/s on Beauty's labels, one process with 2 threads vs torchrun 2 processes x 1
  thread (gloo), at a small and a large global batch (the all-reduce per step is the same size at both).
- ``ingest``: rows/s and peak RSS of the 2023 reader on a generated reviews file, in a fresh process.
On a 2-core machine parallelism cannot gain: the point is the overhead (ratio to local) and identical results.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import write_result
from bench.synthetic_reviews import write_reviews_2023
from ops.caching import StageOutput
from ops.compute import ComputeConfig, ComputeMode
from ops.compute.ctr_ddp import ddp_train_ctr_stage
from ops.ctr.labels import LabelConfig
from ops.ctr.stage import HISTORY, CTRConfig, ctr_samples_stage, train_ctr_stage
from ops.ctr.study import StudyConfig, run_study, study_cells
from ops.ctr.train import CTRTrainConfig
from ops.embeddings.config import MINILM_CONFIG
from ops.embeddings.encoder import TransformerEmbedder
from ops.embeddings.sharded import ShardedEmbedder
from ops.embeddings.templates import TEMPLATES, render_texts
from ops.ingest.datasets import get_dataset
from ops.pipeline import Prepared, prepare
from ops.tables import read_parquet
from resources.storage import default_data_root, default_output_root

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASET = "amazon2018-gift-cards"  # small real data: the embed and study parts' inputs are ready in seconds
DDP_DATASET = "amazon2014-beauty"  # 198k interactions: steps long enough to weigh computation against all-reduce
DATA_ROOT = Path(default_data_root())
CACHE_ROOT = Path(default_output_root())  # Beauty's prepared stages, shared with the other benchmarks
RAY = ComputeConfig(mode=ComputeMode.RAY, workers=2, cpus_per_worker=1.0)
SIZES = {  # part -> (full, smoke)
    "embed": (20_000, 200),  # distinct item texts (~1 min locally: the workers' start is a small share of a stage)
    "study": (8, 4),  # grid cells
    "ddp": (3, 1),  # CTR epochs of DCNv2 on Beauty's samples, at each global batch
    "ingest": (5_000_000, 200_000),  # generated reviews
}
STUDY_EPOCHS = 200
DDP_BATCHES = (512, 4096)  # global batches of the ddp part


def embed_part(prepared: Prepared, n_texts: int) -> dict[str, Any]:
    """Distinct texts from Gift Cards' items (numbered copies), embedded locally and on Ray."""
    items = read_parquet(prepared.kcore.file("items.parquet"))
    base = [text for text in render_texts(items, TEMPLATES[get_dataset(DATASET).text_template]) if text]
    texts = [f"{base[i % len(base)]} #{i}" for i in range(n_texts)]
    torch.set_num_threads(2)
    local = TransformerEmbedder(MINILM_CONFIG)
    start = time.perf_counter()
    local_vectors = local.encode(texts)
    local_seconds = time.perf_counter() - start
    from ops.compute.ray_executor import RayExecutor

    start = time.perf_counter()
    executor = RayExecutor(RAY)
    try:
        sharded = ShardedEmbedder(MINILM_CONFIG, executor)
        warm = time.perf_counter()
        ray_vectors = sharded.encode(texts)
        ray_seconds = time.perf_counter() - warm
    finally:
        executor.close()
    with_startup = time.perf_counter() - start
    return {
        "texts": n_texts,
        "local_items_per_s": n_texts / local_seconds,
        "ray_items_per_s": n_texts / ray_seconds,
        "ray_items_per_s_with_cluster_start": n_texts / with_startup,
        "overhead": local_seconds and ray_seconds / local_seconds - 1,
        "max_abs_difference": float(np.abs(ray_vectors - local_vectors).max()),
        "identical": bool(np.array_equal(ray_vectors, local_vectors)),
    }


def study_part(prepared: Prepared, n_cells: int, root: Path, smoke: bool) -> dict[str, Any]:
    """The same grid in two fresh roots, tables prebuilt in both, so only the cells' training is timed.

    The full run trains the paper-size backbones for 200 epochs of Gift Cards' 4.7k rows, ~5 s a cell (on a
    real data set a cell is minutes; 0.2-second cells measured task dispatch, +250%); the smoke run the tiny
    test presets.
    """
    base = StudyConfig.test()
    if not smoke:
        train = CTRTrainConfig(batch_size=512, max_epochs=STUDY_EPOCHS, patience=STUDY_EPOCHS)
        base = replace(base, test_models=False, train=train)
    config = replace(base, seeds=tuple(range(max(1, n_cells // len(study_cells(base))))))
    cells = len(study_cells(config))
    inputs = (prepared.kcore, prepared.splits, prepared.embeddings)
    no_cells = replace(config, backbones=())
    from ops.compute.ray_executor import RayExecutor

    seconds, results = {}, {}
    for mode in ("local", "ray"):
        out = root / f"study-{mode}"
        run_study(out, *inputs, no_cells)  # samples and Semantic-ID tables, not timed
        executor = RayExecutor(RAY) if mode == "ray" else None
        try:
            start = time.perf_counter()
            results[mode] = run_study(out, *inputs, config, executor=executor)
            seconds[mode] = time.perf_counter() - start
        finally:
            if executor is not None:
                executor.close()
    same = ["test_auc", "valid_auc", "epochs"]
    return {
        "cells": cells,
        "local_cells_per_hour": cells / seconds["local"] * 3600,
        "ray_cells_per_hour": cells / seconds["ray"] * 3600,
        "overhead": seconds["ray"] / seconds["local"] - 1,
        "identical_results": results["ray"].select(same).equals(results["local"].select(same)),
    }


def ddp_part(epochs: int, root: Path) -> dict[str, Any]:
    """DCNv2 (paper config, ID features) on Beauty's sampled labels, at each global batch of DDP_BATCHES; the
    budget is epochs, patience off. Beauty's prepared stages come from the benchmarks' cache (CACHE_ROOT).

    Float summation order (one process vs an all-reduce) moves the loss by ~1e-4 within a few epochs, which can
    change the best validation epoch and so the test AUC by a few thousandths: both differences are reported.
    """
    prepared = prepare(DDP_DATASET, DATA_ROOT, CACHE_ROOT)
    samples = ctr_samples_stage(root, prepared.kcore, prepared.splits, LabelConfig(mode="sampled"))
    figures: dict[str, Any] = {"dataset": DDP_DATASET, "epochs": epochs, "samples": samples.manifest["counts"]}
    torch.set_num_threads(2)
    for batch in DDP_BATCHES:
        train = CTRTrainConfig(batch_size=batch, max_epochs=epochs, patience=epochs)
        config = CTRConfig("dcnv2", train=train)
        start = time.perf_counter()
        single = train_ctr_stage(root / "single", samples, prepared.kcore, None, config)
        single_wall = time.perf_counter() - start
        start = time.perf_counter()
        ddp = ddp_train_ctr_stage(root / "ddp", samples, prepared.kcore, None, config, nproc=2, threads=1)
        ddp_wall = time.perf_counter() - start
        figures[f"batch_{batch}"] = {
            "single_2_threads_samples_per_s": single.manifest["samples_per_second"],
            "ddp_2x1_samples_per_s": ddp.manifest["samples_per_second"],
            "single_wall_s": single_wall,
            "ddp_wall_s_with_launch": ddp_wall,
            "overhead": single.manifest["samples_per_second"] / ddp.manifest["samples_per_second"] - 1,
            "max_train_loss_difference": max(
                abs(a["train_loss"] - b["train_loss"]) for a, b in zip(_history(single), _history(ddp), strict=True)
            ),
            "test_auc_difference": abs(single.manifest["test_auc"] - ddp.manifest["test_auc"]),
        }
    return figures


def _history(stage: StageOutput) -> list[dict[str, Any]]:
    return json.loads(stage.file(HISTORY).read_text())


def ingest_part(n_reviews: int, root: Path) -> dict[str, Any]:
    path = root / "Synthetic_2023.jsonl"
    start = time.perf_counter()
    lines = write_reviews_2023(path, n_reviews, seed=16)
    generated = time.perf_counter() - start
    command = [sys.executable, "-m", "bench.synthetic_reviews", str(path)]
    child = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return {
        "reviews": n_reviews,
        "lines": lines,
        "file_mib": path.stat().st_size / 2**20,
        "generate_seconds": generated,
        **json.loads(child.stdout),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=sorted(SIZES), default=sorted(SIZES))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script, not the figures")
    args = parser.parse_args()
    size = {part: SIZES[part][1 if args.smoke else 0] for part in args.parts}
    figures: dict[str, Any] = {"smoke": args.smoke}
    with tempfile.TemporaryDirectory(prefix="semid-scale-") as folder:
        root = Path(folder)
        prepared = prepare(DATASET, DATA_ROOT, root) if set(args.parts) & {"embed", "study"} else None
        for part in args.parts:
            start = time.perf_counter()
            if part == "embed":
                figures[part] = embed_part(prepared, size[part])
            elif part == "study":
                figures[part] = study_part(prepared, size[part], root, args.smoke)
            elif part == "ddp":
                figures[part] = ddp_part(size[part], root)
            else:
                figures[part] = ingest_part(size[part], root)
            figures[part]["part_seconds"] = round(time.perf_counter() - start, 1)
            print(part, json.dumps(figures[part], indent=1), flush=True)
    notes = (
        "overhead = ray (or ddp) time / local time - 1 on the same 2 cores; local embed and the single-process "
        "CTR run use 2 torch threads, each Ray worker or DDP rank 1. Smoke runs check the script only."
    )
    write_result("scale", figures, notes=notes)


if __name__ == "__main__":
    main()
