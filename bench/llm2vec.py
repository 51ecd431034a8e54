"""Does LLM2Vec training pay? RQ-VAE 3x256 tables from four embedders of the same item texts.

On Amazon 2014 Beauty (12,101 items, Amazon template) it builds, through the cached stages the assets use:

1. the LLM2Vec-adapted SmolLM2-135M (MNTP, then SimCSE, each under a wall-clock budget; the manifest records
   steps, texts seen and the stop reason);
2. item embeddings from all-MiniLM-L6-v2, causal SmolLM2, bidirectional SmolLM2 untrained, and the LLM2Vec model
   (the three SmolLM2 ones mean-pooled, so only the attention and the training differ);
3. an RQ-VAE 3x256 table (default TrainConfig) from each, with per-level usage, collision rate and NMI against
   the category below "Beauty" (per level and joint);
4. DCNv2's test AUC with each table's Semantic-ID fields, and ID only (the CTR study's model, samples and
   training; ``--ctr-seeds``).

Each stage is cached, so the benchmark may run in parts (``--parts``); the JSON records what each part ran and
the table versions (fingerprints), which `bench/retrieval.py` takes for retrieval (not run here):
``python -m bench.retrieval --parts decoder:@<version> --table-root data/bench``.

    HF_HUB_OFFLINE=1 PYTHONPATH=. python bench/llm2vec.py --mntp-budget 3600 --simcse-budget 1800

Sizing (2026-12-07, AMD EPYC, 2 cores, nothing else running): ~11 s per MNTP optimizer step of 32 texts (median
35 tokens), so one hour of MNTP is ~310 steps, ~10,000 of Beauty's texts; a SimCSE step of 32 texts ~33 s on
average with activation checkpointing (56 steps in 30 minutes); each SmolLM2 embedding pass ~17.5 items/s (11.5
minutes); RQ-VAE tables and the 15 DCNv2 runs ~15 minutes. MNTP is its own cached stage: a later invocation
resumes at SimCSE. The whole run from scratch: about 2.5 hours.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # run as a script, bench/tokenizers.py would shadow Hugging Face's `tokenizers` package

import argparse
import os
import time
from dataclasses import replace
from typing import Any

import numpy as np

from bench.common import print_table, write_result
from bench.ctr import table_auc
from ops.caching import StageOutput
from ops.diagnostics.nmi import code_nmi
from ops.embeddings.config import SMOLLM2, EmbedderConfig, Pooling, llm2vec_config
from ops.embeddings.stage import embed
from ops.embeddings.templates import TEMPLATES
from ops.ingest.datasets import get_dataset
from ops.llm.llm2vec import LLM2VecConfig
from ops.llm.stage import llm2vec_stage
from ops.llm.trainer import StepLog
from ops.pipeline import Prepared, prepare, semantic_id_version
from ops.quantizers.rqvae import RQVAEConfig
from ops.semantic_ids.stage import read_table
from ops.semantic_ids.table import table_codes
from ops.tables import read_parquet

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("SEMID_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))
OUTPUT_ROOT = REPO_ROOT / "data" / "bench"
PARTS = ("llm2vec", "embeddings", "tables", "ctr")


def category_labels(kcore: StageOutput, item_ids: list[str]) -> np.ndarray:
    """Per item: the first category level that is not shared by every item ("Beauty" is; its child is not)."""
    items = read_parquet(kcore.file("items.parquet")).select("item_id", "categories")
    first = items["categories"].list.first()
    level = 1 if first.n_unique() == 1 else 0
    names = dict(zip(items["item_id"], items["categories"].list.get(level, null_on_oob=True), strict=True))
    return np.array([names.get(item_id) or "(none)" for item_id in item_ids])


def table_figures(table_stage: StageOutput, kcore: StageOutput) -> dict[str, Any]:
    """Usage, collisions and category NMI of one Semantic-ID table version."""
    table = read_table(table_stage)
    codes = table_codes(table)
    nmi = code_nmi(codes, category_labels(kcore, table["item_id"].to_list()))
    manifest = table_stage.manifest
    return {
        "table": table_stage.fingerprint,
        "kind": manifest["tokenizer"]["kind"],
        "items": len(table),
        "usage": manifest["code_usage"]["usage"],
        "collision_rate": manifest["collisions"]["collision_rate"],
        "nmi_per_level": nmi["per_level"],
        "nmi_joint": nmi["joint"],
    }


def step_printer(every: int = 10):
    def log(phase: str, step: StepLog) -> None:
        if step.step == 1 or step.step % every == 0:
            print(f"  {phase} step {step.step} ({step.elapsed_s:.0f} s, {step.seconds:.1f} s/step): {step.loss:.4f}")

    return log


def adapted_model(prepared: Prepared, args: argparse.Namespace) -> StageOutput:
    defaults = LLM2VecConfig()
    config = replace(
        defaults,
        mntp_training=replace(defaults.mntp_training, budget_s=args.mntp_budget),
        simcse_training=replace(defaults.simcse_training, budget_s=args.simcse_budget),
    )
    template = TEMPLATES[get_dataset(prepared.dataset).text_template]
    return llm2vec_stage(prepared.kcore, args.output_root, config, template, step_printer())


def embedders(model: StageOutput) -> dict[str, EmbedderConfig]:
    return {
        "causal SmolLM2": EmbedderConfig(SMOLLM2, Pooling.MEAN, bidirectional=False),
        "bidirectional SmolLM2 (untrained)": EmbedderConfig(SMOLLM2, Pooling.MEAN, bidirectional=True),
        "LLM2Vec SmolLM2": llm2vec_config(str(model.file(model.manifest["model_dir"]))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="amazon2014-beauty")
    parser.add_argument("--output-root", type=Path, default=OUTPUT_ROOT)
    parser.add_argument("--mntp-budget", type=float, default=3600.0, help="seconds of MNTP training")
    parser.add_argument("--simcse-budget", type=float, default=1800.0, help="seconds of SimCSE training")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="run only these parts")
    parser.add_argument("--ctr-seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of each DCNv2 run")
    args = parser.parse_args()

    prepared = prepare(args.dataset, DATA_ROOT, args.output_root)  # MiniLM embeddings by default
    figures: dict[str, Any] = {"dataset": args.dataset, "parts": args.parts}
    start = time.perf_counter()
    model = adapted_model(prepared, args)  # every later part needs it: trained here when no version exists yet
    figures["llm2vec"] = {"stage": model.fingerprint, "cache_hit": model.cache_hit, **model.manifest}
    if not {"embeddings", "tables", "ctr"} & set(args.parts):
        return write_result("llm2vec", figures)

    template = TEMPLATES[get_dataset(args.dataset).text_template]
    sources = {"MiniLM": prepared.embeddings}
    for name, config in embedders(model).items():
        sources[name] = embed(prepared.kcore, args.output_root, config, template)
        print(f"{name}: {sources[name].manifest['items_per_s']} items/s, cache hit {sources[name].cache_hit}")
    figures["embeddings"] = {name: {"stage": s.fingerprint, **s.manifest} for name, s in sources.items()}

    if {"tables", "ctr"} & set(args.parts):
        rows = []
        for name, embeddings in sources.items():
            config = replace(
                RQVAEConfig(), autoencoder=replace(RQVAEConfig().autoencoder, input_dim=embeddings.manifest["dim"])
            )
            _, table = semantic_id_version(args.output_root, embeddings, config)
            row = {"embedder": name, **table_figures(table, prepared.kcore)}
            if "ctr" in args.parts:
                row["dcnv2"] = table_auc(args.output_root, prepared, table, tuple(args.ctr_seeds))
            rows.append(row)
        figures["rqvae_3x256"] = rows
        if "ctr" in args.parts:
            figures["dcnv2_id_only"] = table_auc(args.output_root, prepared, None, tuple(args.ctr_seeds))
        print_table(
            [
                {
                    **{k: r[k] for k in ("embedder", "collision_rate", "nmi_joint")},
                    "dcnv2_auc": r.get("dcnv2", {}).get("test_auc_mean"),
                }
                for r in rows
            ]
        )
    figures["seconds"] = round(time.perf_counter() - start, 1)
    notes = "DCNv2 AUC and retrieval on these tables: bench/ctr.py and bench/retrieval.py pinned to their fingerprints."
    write_result("llm2vec", figures, notes=notes)


if __name__ == "__main__":
    main()
