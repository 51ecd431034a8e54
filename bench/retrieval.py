"""Generative retrieval on Amazon 2014 Beauty (leave-one-out, all 22,363 users), against cornac 3.0.1.

Each model gets the same wall-clock training budget on this CPU; the table says what it bought (epochs,
training examples/s) and what it scored (Recall/NDCG@5/10/20 over every test user):

- semid TIGER on the RQ-VAE 3x256 table and on the MoC 3x256 table (the main job's tokenizer settings),
  evaluated with the trie-constrained beam search (20 beams), every returned item checked against the table;
- semid SASRec (full-softmax cross-entropy, full ranking);
- cornac's TIGER (its own Semantic IDs from the same MiniLM vectors, its own beam search) and SASRec, through
  `bench/cornac_baseline.py`, on the same split and budget.

It also decodes the same test users with semid's beam search and with `transformers`' `generate(num_beams=20,
prefix_allowed_tokens_fn=...)` on the same trained TIGER, and reports users/s of both and whether they agree.

    make bench-retrieval                                  # = python -m bench.retrieval; bench/results/retrieval.json
    python -m bench.retrieval --budget-minutes 5 --skip-cornac     # a quicker look
"""

# ruff: noqa: E402  (the OpenMP setting must precede torch's import)
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see ops/__init__.py; set for cornac's side too

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import RESULTS, print_table, write_result
from ops.caching import StageOutput, existing_version
from ops.device import placement
from ops.embeddings.stage import read_embeddings
from ops.pipeline import Prepared, prepare, semantic_id_version
from ops.quantizers.kinds import scaled_config
from ops.retrieval.beam_search import decode_users
from ops.retrieval.metrics import recall_ndcg, target_ranks
from ops.retrieval.model import TIGERConfig, load_tiger
from ops.retrieval.sasrec import SASRecConfig
from ops.retrieval.stage import (
    CHECKPOINT,
    HISTORY,
    SPLIT_TABLE,
    evaluate_tiger_stage,
    train_sasrec_stage,
    train_tiger_stage,
)
from ops.retrieval.tiger import TigerData
from ops.retrieval.train import EpochLog
from ops.semantic_ids.stage import read_table
from ops.tables import read_parquet

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("SEMID_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))
OUTPUT_ROOT = REPO_ROOT / "data"
DATASET = "amazon2014-beauty"
METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10", "recall@20", "ndcg@20")
# cornac's own RQ-VAE takes 25-65 min on this CPU before TIGER's budget starts; its residual k-means, 74 s
CORNAC_TOKENIZER = "rkmeans"
WARMUP_STEPS = 100  # a CPU budget buys a few hundred steps: TrainConfig's 1000-step warm-up would never end


def tiger(prepared: Prepared, kind: str, budget: float) -> tuple[dict[str, Any], StageOutput, StageOutput]:
    """Train (cached) and evaluate TIGER on the ``kind`` 3x256 table: (result row, model stage, table stage)."""
    _, table = semantic_id_version(OUTPUT_ROOT, prepared.embeddings, scaled_config(kind, 3, {}))
    defaults = TIGERConfig()
    config = replace(defaults, train=replace(defaults.train, max_train_seconds=budget, warmup_steps=WARMUP_STEPS))
    print(f"TIGER on {kind} table {table.fingerprint}: training for at most {budget:.0f} s", flush=True)
    model = train_tiger_stage(OUTPUT_ROOT, prepared.splits, table, config, _progress(f"TIGER {kind}"))
    evaluation = evaluate_tiger_stage(OUTPUT_ROOT, model, prepared.splits, table, beams=20)
    m, e = model.manifest, evaluation.manifest
    row = {
        "model": f"semid TIGER ({kind} 3x256)",
        **{key: e["test"][key] for key in METRICS},
        "train_s": m["train_seconds"],
        "epochs": m["epochs"],
        "epochs_completed": _epochs_completed(model),
        "samples_per_s": m["train_samples_per_s"],
        "stopped": m["stopped"],
        "invalid_items": e["invalid_items"],
        "users_short_of_20": e["users_short_of_k"],
        "eval_users": e["n_users"],
        "decode_users_per_s": e["decode_users_per_s"],
        "sid_table": table.fingerprint,
        "collision_rate": table.manifest["collisions"]["collision_rate"],
        "model_version": model.fingerprint,
    }
    return row, model, table


def sasrec(prepared: Prepared, budget: float) -> dict[str, Any]:
    defaults = SASRecConfig()
    config = replace(defaults, train=replace(defaults.train, max_train_seconds=budget))
    print(f"SASRec: training for at most {budget:.0f} s", flush=True)
    stage = train_sasrec_stage(OUTPUT_ROOT, prepared.splits, config, _progress("SASRec"))
    m = stage.manifest
    return {
        "model": "semid SASRec",
        **{key: m["test"][key] for key in METRICS},
        "train_s": m["train_seconds"],
        "epochs": m["epochs"],
        "epochs_completed": _epochs_completed(stage),
        "samples_per_s": m["train_samples_per_s"],
        "stopped": m["stopped"],
        "eval_users": m["n_test_users"],
    }


def decoding(prepared: Prepared, model_stage: StageOutput, table: StageOutput, n_users: int) -> dict[str, Any]:
    """Users/s of semid's beam search and of `generate(prefix_allowed_tokens_fn=...)`, same model, users, beams."""
    model, config, _ = load_tiger(model_stage.file(CHECKPOINT))
    data = TigerData.build(
        read_parquet(prepared.splits.file(SPLIT_TABLE)),
        read_table(table),
        table.manifest["codebook_size"],
        config.sequence,
    )
    test = data.evaluation("test")
    examples = test.subset(np.sort(np.random.default_rng(0).choice(len(test), n_users, replace=False)))
    input_ids, mask = data.inputs(examples)
    beams, levels = 20, data.vocabulary.levels

    start = time.perf_counter()
    ours = decode_users(model, data.trie, input_ids, mask, beams)
    ours_seconds = time.perf_counter() - start

    theirs = np.full((n_users, beams), -1, dtype=np.int64)
    start = time.perf_counter()
    with torch.no_grad():
        for begin in range(0, n_users, 32):  # generate pads to the batch's longest input: keep batches small
            rows = slice(begin, begin + 32)
            width = max(int(mask[rows].sum(axis=1).max()), 1)
            output = model.generate(
                input_ids=torch.from_numpy(input_ids[rows, :width]),
                attention_mask=torch.from_numpy(mask[rows, :width]),
                num_beams=beams,
                num_return_sequences=beams,
                max_new_tokens=levels,
                do_sample=False,
                prefix_allowed_tokens_fn=lambda _, prefix: data.trie.allowed_tokens(prefix.tolist()),
            )
            tokens = output[:, 1 : levels + 1].reshape(-1, beams, levels).numpy()
            local = tokens - data.vocabulary.offsets  # (b, beams, levels) level-local ids
            theirs[rows] = [[data.trie.lookup(path) for path in user] for user in local.tolist()]
    theirs_seconds = time.perf_counter() - start
    targets = examples.target
    return {
        "users": n_users,
        "beams": beams,
        "semid_users_per_s": n_users / ours_seconds,
        "generate_users_per_s": n_users / theirs_seconds,
        "speedup": theirs_seconds / ours_seconds,
        "same_top20_lists": float((ours.items == theirs).all(axis=1).mean()),
        "same_top1": float((ours.items[:, 0] == theirs[:, 0]).mean()),
        "semid_recall@10_on_these_users": recall_ndcg(target_ranks(ours.items, targets))["recall@10"],
        "generate_recall@10_on_these_users": recall_ndcg(target_ranks(theirs, targets))["recall@10"],
    }


def cornac_rows(prepared: Prepared, tiger_budget: float, sasrec_budget: float, eval_users: int) -> list[dict[str, Any]]:
    from bench.cornac_baseline import run_cornac_sasrec, run_cornac_tiger

    split = read_parquet(prepared.splits.file(SPLIT_TABLE))
    rows = []
    for run in (
        run_cornac_tiger(
            split,
            read_embeddings(prepared.embeddings),
            tiger_budget,
            max_eval_users=eval_users,
            tokenizer=CORNAC_TOKENIZER,
            threads=placement().threads,  # the threads semid's models get: same CPU for both sides
        ),
        run_cornac_sasrec(split, sasrec_budget, threads=placement().threads),
    ):
        rows.append(
            {
                "model": run.model,
                **{key: run.metrics[key] for key in METRICS},
                "train_s": run.train_seconds,
                "epochs_completed": run.epochs_completed,
                "samples_per_s": run.samples_per_second,
                "invalid_items": run.invalid_items,
                "notes": run.notes,
            }
        )
        print_table([{k: v for k, v in rows[-1].items() if k != "notes"}])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-minutes", type=float, default=20.0, help="training budget of each TIGER")
    parser.add_argument("--sasrec-budget-minutes", type=float, default=5.0)
    parser.add_argument("--kinds", nargs="+", default=["rqvae", "moc"], help="Semantic-ID tables TIGER trains on")
    parser.add_argument("--decode-users", type=int, default=300, help="test users decoded by both decoders")
    parser.add_argument("--cornac-eval-users", type=int, default=500, help="cornac TIGER decodes one user at a time")
    parser.add_argument("--skip-cornac", action="store_true")
    parser.add_argument("--skip-semid", action="store_true", help="only the cornac side")
    parser.add_argument(
        "--carry-over",
        nargs="*",
        choices=("tiger", "cornac"),
        default=[],
        help="take these rows from the existing bench/results/retrieval.json instead of re-running them (hours); "
        "decoding then uses the stored TIGER version named there. The JSON records what was carried over.",
    )
    args = parser.parse_args()
    budget, sasrec_budget = args.budget_minutes * 60, args.sasrec_budget_minutes * 60

    prepared = prepare(DATASET, DATA_ROOT, OUTPUT_ROOT)
    figures: dict[str, Any] = {"dataset": DATASET, "budget_seconds": budget, "sasrec_budget_seconds": sasrec_budget}
    rows: list[dict[str, Any]] = []
    if not args.skip_semid:
        if "tiger" in args.carry_over:
            rows += _carried("semid TIGER", figures)
            first = rows[0]
            model = existing_version(OUTPUT_ROOT, "tiger", first["model_version"])
            table = existing_version(OUTPUT_ROOT, "semantic_ids", first["sid_table"])
        else:
            trained = [tiger(prepared, kind, budget) for kind in args.kinds]
            rows += [row for row, _, _ in trained]
            _, model, table = trained[0]
        print_table(rows)
        rows.append(sasrec(prepared, sasrec_budget))
        print_table(rows[-1:])
        figures["decoding"] = decoding(prepared, model, table, args.decode_users)
        print_table([figures["decoding"]])
    if "cornac" in args.carry_over:
        rows += _carried("cornac", figures)
    elif not args.skip_cornac:
        rows += cornac_rows(prepared, budget, sasrec_budget, args.cornac_eval_users)
    figures["rows"] = rows
    ours = next((r for r in rows if r["model"].startswith("semid TIGER")), None)
    theirs = next((r for r in rows if r["model"] == "cornac TIGER"), None)
    if ours and theirs:
        figures["tiger_training_speed_ratio"] = ours["samples_per_s"] / theirs["samples_per_s"]
    print("\nall models")
    print_table([{k: v for k, v in r.items() if k in ("model", *METRICS, "train_s", "samples_per_s")} for r in rows])
    write_result("retrieval", figures)


def _carried(prefix: str, figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the stored retrieval.json whose model starts with ``prefix``, noted in ``figures["carried_over"]``.

    Read when needed, not at start-up: a cornac-only run finishing while this one trains can be carried over.
    """
    previous = json.loads((RESULTS / "retrieval.json").read_text())
    rows = [row for row in previous["figures"]["rows"] if row["model"].startswith(prefix)]
    figures.setdefault("carried_over", []).append(
        {"rows": [row["model"] for row in rows], "date": previous["date"], "command": previous["command"]}
    )
    return rows


def _epochs_completed(stage: StageOutput) -> float:
    """Training examples seen / examples per epoch (the last epoch may be cut by the budget)."""
    history = json.loads(stage.file(HISTORY).read_text())
    return sum(epoch["samples"] for epoch in history) / stage.manifest["n_train_samples"]


def _progress(name: str) -> Callable[[EpochLog], None]:
    def log(entry: EpochLog) -> None:
        valid = ", ".join(f"{k} {v:.4f}" for k, v in entry.valid.items() if k in ("recall@10", "ndcg@10"))
        print(
            f"{name} epoch {entry.epoch}: loss {entry.train_loss:.4f}, {entry.samples_per_s:.0f} samples/s, {valid}",
            flush=True,
        )

    return log


if __name__ == "__main__":
    main()
