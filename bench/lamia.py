"""LAMIA item palettes as a tokenizer, next to RQ-VAE and MoC on the same items, with the gamma = 0 ablation.

For each data set (Amazon 2014 Beauty; the MIND sample), through the cached stages the assets use:

1. LAMIA palettes: SmolLM2-135M with LoRA trained under a wall-clock budget on a seeded shuffle of the items
   (the manifest says how many it reached), then palettes of every item with text from the merged model; once per
   ``--gammas``, by default the paper's 0.1 and 0 (its Table 4: contrastive losses off);
2. the lamia Semantic-ID table (per-aspect PCA to 64 + k-means), and RQ-VAE / MoC tables with as many codes on
   MiniLM embeddings of the same items;
3. per table: codebook usage per level, collision rate, NMI against categories (per level and joint), and, for
   LAMIA, the Pearson correlation between aspects (raw palettes: one hidden space) and the NMI between aspects'
   codes (how independent the aspects are); time per training step, palette items/s; loss curves as a PNG;
4. per table, DCNv2's test AUC with its Semantic-ID fields, and ID only (the CTR study's model, labels and
   training; ``--ctr-seeds``, none to skip).

Codebooks have 256 codes, fewer where a catalogue is too small (the MIND sample has 195 items with text): the
largest power of two <= items / 2, recorded per data set. Retrieval on these tables: `bench/retrieval.py` pinned
to the table versions recorded here (not run by this script):
``python -m bench.retrieval --parts decoder:@<version> --table-root data/bench``.

    make bench-lamia   # = python -m bench.lamia: both data sets, both gammas, an hour of training per run
    python -m bench.lamia --datasets amazon2014-beauty --budget 1200 --gammas 0.1 0   # what lamia.json holds
    python -m bench.lamia --datasets mind-small-sample

Each run replaces its data sets' entries in bench/results/lamia.json (with its command, date and seconds) and keeps
the others', so the data sets can run in separate sessions.

Sizing on this machine (2 cores): palette inference of Beauty items (25 content tokens) 56 items/s under bf16
autocast on a quiet AMD EPYC with AVX512-BF16 (22 items/s in float32), so Beauty's 12,101 palettes take ~4 min;
under a load of 8-17 from other jobs it fell to ~3.5 items/s. Training steps (LoRA rank 16, 32 items): Beauty 12 s, MIND 19 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)  # run as a script, bench/tokenizers.py would shadow Hugging Face's `tokenizers` package

import argparse
import datetime as dt
import json
import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from bench.common import RESULTS, command_line, print_table, write_result
from bench.ctr import table_auc
from bench.llm2vec import DATA_ROOT, OUTPUT_ROOT, step_printer, table_figures
from ops.caching import StageOutput
from ops.diagnostics.correlation import codebook_correlation
from ops.diagnostics.nmi import normalized_mutual_info
from ops.embeddings.stage import read_embeddings
from ops.ingest.datasets import DATASETS as KNOWN_DATASETS
from ops.ingest.datasets import get_dataset
from ops.llm.lamia import LamiaConfig
from ops.llm.lora import LoraSettings
from ops.llm.stage import lamia_model_stage, lamia_palettes_stage, lamia_table_stages
from ops.pipeline import Prepared, prepare, semantic_id_version
from ops.quantizers.config import config_to_dict
from ops.quantizers.kinds import scaled_config
from ops.quantizers.kmeans import KMeansConfig
from ops.quantizers.lamia import LamiaQuantizerConfig
from ops.quantizers.moc import MoCConfig
from ops.quantizers.rqvae import RQVAEConfig
from ops.quantizers.vq import VQConfig
from ops.semantic_ids.stage import read_table
from ops.semantic_ids.table import table_codes

DATASETS = ("amazon2014-beauty", "mind-small-sample")


def codebook_size(n_items: int, wanted: int) -> int:
    """``wanted`` codes, or the largest power of two <= n_items / 2 for a catalogue too small for it."""
    return min(wanted, 2 ** int(math.log2(max(n_items // 2, 2))))


def lamia_config(dataset: str, args: argparse.Namespace, gamma: float) -> LamiaConfig:
    base = LamiaConfig.for_template(get_dataset(dataset).text_template)
    training = replace(
        base.training,
        batch_size=args.batch_size,
        micro_batch_size=args.micro_batch_size,
        budget_s=args.budget,
        epochs=args.epochs,
    )
    lora = LoraSettings(rank=args.lora_rank, alpha=2 * args.lora_rank, dropout=base.lora.dropout)
    return replace(base, gamma=gamma, lora=lora, training=training)


def aspect_figures(palettes: StageOutput, table: StageOutput) -> dict[str, Any]:
    """How independent the aspects are: Pearson correlation of the raw palettes, NMI between aspects' codes."""
    _, vectors = read_embeddings(palettes)
    size = palettes.manifest["palette_size"]
    correlation = codebook_correlation(vectors.reshape(len(vectors), size, -1))  # (L, L)
    codes = table_codes(read_table(table))
    pairs = [(i, j) for i in range(size) for j in range(i + 1, size)]
    return {
        "aspect_correlation": correlation.tolist(),
        "aspect_correlation_mean_abs_off_diagonal": float(np.abs(correlation[~np.eye(size, dtype=bool)]).mean()),
        "aspect_code_nmi": {f"{i}-{j}": normalized_mutual_info(codes[:, i], codes[:, j]) for i, j in pairs},
    }


LOSS_PARTS = ("generation", "intra", "inter")


def loss_curve(history: list[dict[str, Any]]) -> dict[str, list[float]]:
    """A run's per-step loss parts, column-wise (kept in lamia.json, so the PNG shows every data set's runs)."""
    curve = {"step": [log["step"] for log in history]}
    return curve | {part: [round(log["parts"][part], 5) for log in history] for part in LOSS_PARTS}


def loss_curves(curves: dict[str, dict[str, list[float]]], path: Path) -> None:
    """Per-step loss parts of every LAMIA run, one panel per part."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4 * len(LOSS_PARTS), 3.2))
    axes = figure.subplots(1, len(LOSS_PARTS))
    for name, curve in curves.items():
        for axis, part in zip(axes, LOSS_PARTS, strict=True):
            axis.plot(curve["step"], curve[part], label=name)
            axis.set_title(part)
            axis.set_xlabel("optimizer step")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def run_dataset(dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    prepared: Prepared = prepare(dataset, DATA_ROOT, args.output_root)
    n_items = prepared.embeddings.manifest["items_embedded"]
    size = codebook_size(n_items, args.codebook_size)
    print(f"{dataset}: {n_items} items with text, {size} codes per codebook")
    tables: dict[str, StageOutput] = {}
    runs = {}
    for gamma in args.gammas:
        config = lamia_config(dataset, args, gamma)
        trained = lamia_model_stage(prepared.kcore, args.output_root, config, step_printer())
        palettes = lamia_palettes_stage(prepared.kcore, trained, args.output_root)
        quantizer = LamiaQuantizerConfig(
            palette_size=config.palette_size,
            aspect_dim=palettes.manifest["aspect_dim"],
            pca_dim=min(args.pca_dim, n_items - 1),
            kmeans=KMeansConfig(codebook_size=size),
        )
        _, table = lamia_table_stages(palettes, args.output_root, quantizer)
        name = f"LAMIA gamma={gamma}"
        history = json.loads(Path(trained.path, "history.json").read_text())
        training = palettes.manifest["training"]
        runs[name] = {
            "palettes": palettes.fingerprint,
            "config": {"content": config.content_fields, "tasks": config.task_fields, "lora_rank": config.lora.rank},
            "training": training,
            "s_per_step": float(np.median([log["seconds"] for log in history])),
            "palette_items_per_s": palettes.manifest["palette_items_per_s"],
            **aspect_figures(palettes, table),
            "loss_curve": loss_curve(history),
        }
        tables[name] = table
    for kind, config_class in (("rqvae", RQVAEConfig), ("moc", MoCConfig)):
        base = config_class()
        settings = {
            "vq": {**config_to_dict(VQConfig()), "codebook_size": size},
            "autoencoder": {**config_to_dict(base.autoencoder), "input_dim": prepared.embeddings.manifest["dim"]},
            "train": config_to_dict(base.train),
        }
        _, table = semantic_id_version(args.output_root, prepared.embeddings, scaled_config(kind, 4, settings))
        tables[f"{kind} 4x{size} (MiniLM)"] = table
    seeds = tuple(args.ctr_seeds)
    rows = [
        {"tokenizer": name, **table_figures(table, prepared.kcore)}
        | ({"dcnv2": table_auc(args.output_root, prepared, table, seeds)} if seeds else {})
        for name, table in tables.items()
    ]
    figures = {"items": n_items, "codebook_size": size, "lamia_runs": runs, "tables": rows}
    if seeds:
        figures["dcnv2_id_only"] = table_auc(args.output_root, prepared, None, seeds)
    return figures


def previous_figures() -> dict[str, Any]:
    """The data sets already in bench/results/lamia.json: a run of some data sets keeps the others' figures."""
    path = RESULTS / "lamia.json"
    figures = json.loads(path.read_text())["figures"] if path.is_file() else {}
    return figures if "datasets" in figures else {"datasets": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=sorted(KNOWN_DATASETS), metavar="NAME")
    parser.add_argument("--output-root", type=Path, default=OUTPUT_ROOT)
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds of LAMIA training per run")
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.1, 0.0], help="contrastive weights to run")
    parser.add_argument("--lora-rank", type=int, default=16, help="paper: 128 (~1.6x slower steps here)")
    parser.add_argument("--batch-size", type=int, default=32, help="items per optimizer step (paper: 128)")
    parser.add_argument("--micro-batch-size", type=int, default=16, help="items per forward = inter negatives + 1")
    parser.add_argument("--epochs", type=int, default=5, help="passes over the items (Beauty: the budget ends the 1st)")
    parser.add_argument("--pca-dim", type=int, default=64)
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--ctr-seeds", type=int, nargs="*", default=[0, 1, 2], help="DCNv2 seeds per table; none: skip")
    args = parser.parse_args()

    notes = "Each data set's figures carry the command, date and seconds of the run that made them."
    for dataset in args.datasets:
        start = time.perf_counter()
        result = run_dataset(dataset, args)
        print_table(
            [
                {k: r.get(k) for k in ("tokenizer", "collision_rate", "nmi_joint")}
                | {"dcnv2_auc": r.get("dcnv2", {}).get("test_auc_mean")}
                for r in result["tables"]
            ]
        )
        run = {"command": command_line(), "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        figures = previous_figures()  # read now: another data set's run may have written since this one started
        figures["datasets"][dataset] = result | run | {"seconds": round(time.perf_counter() - start, 1)}
        curves = {
            f"{name} {run_name}": run_figures["loss_curve"]
            for name, entry in figures["datasets"].items()
            for run_name, run_figures in entry["lamia_runs"].items()
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        loss_curves(curves, RESULTS / "lamia_losses.png")
        write_result("lamia", figures, notes=notes)  # after every data set: an interrupted run keeps what it finished


if __name__ == "__main__":
    main()
