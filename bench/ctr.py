"""CTR on Amazon 2014 Beauty: the Mixture-of-Codes scaling study, and semid's DCNv2/DeepFM against FuxiCTR's.

(a) The study (`ops/ctr/study.py`): DCNv2 and DeepFM with ME / RQ-VAE / MoC Semantic-ID features at 1x, 2x,
3x, 7x, fusion off and on, 3 seeds; DeepIM and AutoInt+ at 1x and 7x; an ID-only row per backbone. Labels:
every interaction a positive plus one sampled negative (drawn once, stored), the ingestion stage's random 8/1/1
split, early stopping on validation AUC; test AUC mean ± std over seeds, shaped like the paper's Tables 1 and 2.
Tokenizers train with batch 512 for 30 epochs (bench/results/tokenizers.json: same usage and collisions as the
paper's batch 8012 x 300 epochs, at a tenth of the time).

(b) FuxiCTR 2.3.10's DCNv2 and DeepFM (assembled from its layers as its model zoo defines them,
`bench/fuxictr_baseline.py`, trained by its own `BaseModel.fit`) on the very same encoded rows (user, item,
brand, top category, price bucket; embedding dim 16; same MLP, cross layers, batch, lr, patience), runs
interleaved with ours: test AUC difference (goal: ours >= FuxiCTR's - 0.002) and training samples/s ratio
(goal >= 1.0).

    make bench-ctr                     # = python -m bench.ctr; writes bench/results/ctr.json
    python -m bench.ctr --quick        # one seed, DCNv2 only, 1x and 7x: a smoke run in a few minutes
"""

# ruff: noqa: E402  (the OpenMP setting must precede torch's import)
from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a 2-core machine shared with anything else, spinning
# threads starve the working ones (FuxiCTR measured 5x slower without this); set for both sides alike.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.common import print_table, write_result
from ops.caching import StageOutput
from ops.ctr.data import CTRData
from ops.ctr.features import FeatureConfig, encode_features
from ops.ctr.labels import LabelConfig
from ops.ctr.models import build_model, default_config
from ops.ctr.stage import CTRConfig, ctr_samples_stage, read_samples, train_ctr_stage
from ops.ctr.study import StudyConfig, run_study, table1, table2
from ops.ctr.train import CTRTrainConfig, fit
from ops.device import placement
from ops.pipeline import Prepared, prepare
from ops.tables import read_parquet

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("SEMID_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))
OUTPUT_ROOT = REPO_ROOT / "data"
DATASET = "amazon2014-beauty"
TOKENIZER_SETTINGS = {"train": {"epochs": 30, "batch_size": 512}}
FUXI_NAMES = {"dcnv2": "DCNv2", "deepfm": "DeepFM"}


def study(prepared: Prepared, seeds: tuple[int, ...], other_seeds: tuple[int, ...], quick: bool) -> dict[str, Any]:
    """Run the grid (cached cells are read back, not retrained) and summarise it."""
    full = StudyConfig(
        backbones=("dcnv2",) if quick else ("dcnv2", "deepfm"),
        scales=(1, 7) if quick else (1, 2, 3, 7),
        seeds=seeds,
        tokenizer_settings=TOKENIZER_SETTINGS,
    )
    others = replace(full, backbones=("deepim", "autoint"), scales=(1, 7), seeds=other_seeds)
    configs = [full] if quick or not other_seeds else [full, others]
    start = time.perf_counter()
    results = pl.concat(
        [run_study(OUTPUT_ROOT, prepared.kcore, prepared.splits, prepared.embeddings, c) for c in configs]
    )
    seconds = time.perf_counter() - start
    first, second = table1(results), table2(results)
    print("\nTable 1: test AUC, mean ± std over seeds (ME and RQ-VAE without fusion, MoC with it)")
    print_table(first.to_dicts())
    print("\nTable 2: fusion ablation, test AUC")
    print_table(second.to_dicts())
    return {
        "runs": results.to_dicts(),
        "table1": first.to_dicts(),
        "table2": second.to_dicts(),
        "findings": findings(results),
        "wall_seconds": round(seconds, 1),
    }


def table_auc(
    output_root: Path, prepared: Prepared, table: StageOutput | None, seeds: tuple[int, ...], backbone: str = "dcnv2"
) -> dict[str, Any]:
    """Test AUC of ``backbone`` (the study's model and training) with the Semantic-ID fields of ``table``, any kind
    and size (None: ID only), on the study's stored samples: how bench/llm2vec.py and bench/lamia.py put their
    tables through CTR. Each seed is a cached CTR model, so reruns are read back."""
    study_config = StudyConfig()
    samples = ctr_samples_stage(output_root, prepared.kcore, prepared.splits, study_config.labels)
    runs = [
        train_ctr_stage(
            output_root, samples, prepared.kcore, table, CTRConfig(backbone, train=replace(study_config.train, seed=s))
        ).manifest
        for s in seeds
    ]
    aucs = [run["test_auc"] for run in runs]
    return {
        "backbone": backbone,
        "seeds": list(seeds),
        "test_auc": aucs,
        "test_auc_mean": float(np.mean(aucs)),
        "test_auc_std": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else 0.0,
        "epochs": [run["epochs"] for run in runs],
    }


def findings(results: pl.DataFrame) -> dict[str, Any]:
    """The numbers the questions turn on: gain of each kind from 1x to its largest scale, MoC against the others
    at the largest scale, and what fusion does per kind -- averaged over seeds (differences of means)."""
    mean = results.group_by("backbone", "kind", "scale", "fusion").agg(pl.col("test_auc").mean())

    def auc(backbone: str, kind: str, scale: int, fusion: bool) -> float | None:
        row = mean.filter(
            (pl.col("backbone") == backbone)
            & (pl.col("kind") == kind)
            & (pl.col("scale") == scale)
            & (pl.col("fusion") == fusion)
        )
        return float(row["test_auc"][0]) if row.height else None

    out: dict[str, Any] = {}
    top = int(results["scale"].max())
    for backbone in sorted(set(results["backbone"])):
        base = auc(backbone, "rqvae", 1, False)
        per: dict[str, Any] = {"id_only": auc(backbone, "id", 0, False), "1x": base}
        for kind in ("me", "rqvae", "moc"):
            plain, fused = auc(backbone, kind, top, False), auc(backbone, kind, top, True)
            per[kind] = {
                f"{top}x_without_fusion": plain,
                f"{top}x_with_fusion": fused,
                "gain_1x_to_top_without_fusion": None if plain is None or base is None else plain - base,
                "fusion_effect_at_top": None if plain is None or fused is None else fused - plain,
            }
        out[backbone] = per
    return out


def fuxictr_comparison(prepared: Prepared, seeds: tuple[int, ...], models: tuple[str, ...]) -> list[dict[str, Any]]:
    """Ours and FuxiCTR's on the same encoded rows, interleaved per seed so machine load hits both alike."""
    from bench.fuxictr_baseline import run_fuxictr

    samples = read_samples(ctr_samples_stage(OUTPUT_ROOT, prepared.kcore, prepared.splits, LabelConfig()))
    items = read_parquet(prepared.kcore.file("items.parquet"))
    encoded = encode_features(samples, items, None, FeatureConfig())
    frames = {
        split: pl.DataFrame(
            encoded.matrix[(samples["split"] == split).to_numpy()], schema=[f.name for f in encoded.features]
        ).with_columns(label=samples.filter(pl.col("split") == split)["label"].cast(pl.Float64))
        for split in ("train", "valid", "test")
    }
    vocab_sizes = {f.name: f.vocab_size for f in encoded.features}
    data = CTRData.from_matrix(encoded.matrix, samples, placement().device)
    rows = []
    for seed in seeds:
        for backbone in models:
            model_config = default_config(backbone)
            train_config = CTRTrainConfig(seed=seed)
            _, ours = fit(lambda: build_model(backbone, model_config, encoded.features, False), data, train_config)
            with tempfile.TemporaryDirectory() as work_dir:
                theirs = run_fuxictr(
                    FUXI_NAMES[backbone],
                    frames["train"],
                    frames["valid"],
                    frames["test"],
                    vocab_sizes,
                    Path(work_dir),
                    embedding_dim=model_config.embedding.dim,
                    batch_size=train_config.batch_size,
                    lr=train_config.lr,
                    max_epochs=train_config.max_epochs,
                    patience=train_config.patience,
                    seed=seed,
                    hidden_units=tuple(model_config.dnn.hidden),
                    num_cross_layers=getattr(model_config, "cross_layers", 0),
                )
            row = {
                "model": backbone,
                "seed": seed,
                "semid_test_auc": ours.test_auc,
                "fuxictr_test_auc": theirs.test_auc,
                "auc_difference": ours.test_auc - theirs.test_auc,
                "semid_logloss": ours.test_logloss,
                "fuxictr_logloss": theirs.test_logloss,
                "semid_epochs": len(ours.history),
                "fuxictr_epochs": theirs.epochs,
                "semid_samples_per_s": ours.samples_per_second,
                "fuxictr_samples_per_s": theirs.samples_per_second,
                "speed_ratio": ours.samples_per_second / theirs.samples_per_second,
            }
            print_table([row])
            rows.append(row)
    return rows


def summarise_comparison(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    frame = pl.DataFrame(rows)
    summary = frame.group_by("model").agg(
        pl.col("semid_test_auc").mean(),
        pl.col("fuxictr_test_auc").mean(),
        pl.col("auc_difference").mean(),
        pl.col("semid_samples_per_s").mean(),
        pl.col("fuxictr_samples_per_s").mean(),
        pl.col("speed_ratio").mean(),
    )
    return summary.sort("model").to_dicts()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the DCNv2/DeepFM grid")
    parser.add_argument(
        "--other-seeds", type=int, nargs="*", default=None, help="seeds of DeepIM/AutoInt+ at 1x, 7x (default: --seeds)"
    )
    parser.add_argument("--comparison-seeds", type=int, nargs="+", default=[0], help="seeds of the FuxiCTR runs")
    parser.add_argument("--quick", action="store_true", help="DCNv2 only, 1x and 7x (with --seeds 0: minutes)")
    parser.add_argument("--skip-study", action="store_true")
    parser.add_argument("--skip-fuxictr", action="store_true")
    args = parser.parse_args()
    seeds = tuple(args.seeds)

    prepared = prepare(DATASET, DATA_ROOT, OUTPUT_ROOT)
    figures: dict[str, Any] = {
        "dataset": DATASET,
        "seeds": list(seeds),
        "tokenizer_settings": TOKENIZER_SETTINGS,
        "train": asdict(CTRTrainConfig()),
        "threads": placement().threads,
    }
    if not args.skip_fuxictr:
        models = ("dcnv2",) if args.quick else ("dcnv2", "deepfm")
        rows = fuxictr_comparison(prepared, tuple(args.comparison_seeds), models)
        figures["fuxictr"] = {"runs": rows, "summary": summarise_comparison(rows)}
        print("\nsemid vs FuxiCTR (means over seeds)")
        print_table(figures["fuxictr"]["summary"])
    if not args.skip_study:
        other_seeds = seeds if args.other_seeds is None else tuple(args.other_seeds)
        figures["other_seeds"] = list(other_seeds)
        figures["study"] = study(prepared, seeds, other_seeds, args.quick)
    write_result("ctr", figures)


if __name__ == "__main__":
    main()
