"""Generative retrieval on Amazon 2014 Beauty (leave-one-out, all 22,363 test users): which Semantic-ID tokenizer
helps recommendation, next to the most-popular and SASRec baselines. Every trained model gets the same wall-clock
budget on the whole machine (all cores), one model after another.

The benchmark runs in parts, in any number of invocations; every trained model is a cached stage, so a part that
was interrupted resumes from scratch only for the model it was training, and a finished one returns at once:

    most_popular        train-set popularity, the same list for every user
    sasrec              SASRec (full-softmax cross-entropy, full ranking)
    decoder:<kind>      the decoder-only Semantic-ID model on the <kind> 3x256 table (rqvae, rqkmeans, moc, ...);
                        decoder:<kind>+level, +codes: with a level embedding, code tokens from the code vectors
    decoder:@<version>  ... on a stored table version (any kind and size: a LAMIA table of bench/lamia.py, an
                        RQ-VAE table on LLM2Vec embeddings of bench/llm2vec.py), found under --table-root
    tiger:<kind>        TIGER on the <kind> 3x256 table (or tiger:@<version>)
    speed:<kind>        training targets/s of the decoder-only model vs TIGER at the same width and depth,
                        interleaved in one process on the same batches, and both models' decoding users/s
    decoding:<kind>     semid's beam search vs `generate(prefix_allowed_tokens_fn=...)` on the TIGER of tiger:<kind>
    cornac              cornac's TIGER and SASRec on the same split and budget (`make bench-deps`)

Each invocation merges what it ran into bench/results/<name>.json under ``figures.parts`` (one record per part
and seed: budget, epochs, next-item targets seen and per second, metrics, invalid items, versions, command,
date), keeping every earlier part, and rebuilds ``figures.rows``: one row per model and table, mean and std over
its seeds.

    python -m bench.retrieval      # = make bench-retrieval: every part below but cornac, seed 0, 30 minutes each
    python -m bench.retrieval --parts decoder:moc sasrec --seeds 0 1 2    # the best Semantic-ID model, 3 seeds
    python -m bench.retrieval --parts speed:rqvae --speed-seconds 60      # the training-speed ratio alone
    python -m bench.retrieval --parts decoder:rqvae --budget-minutes 1 --users 2000 --name retrieval-smoke
    python -m bench.retrieval --parts decoder:@<version> --table-root data/bench     # a table of bench/lamia.py

On a Ray cluster the parts run as tasks, ``--workers`` at once, each reserving ``--cpus-per-worker`` CPUs (its
torch threads) and ``--gpus-per-worker`` GPUs; results are merged here in the parts' order, and a part whose
worker died runs again (its finished models are cache hits). Budgets only compare between parts that got the
same resources; on this 2-core machine run them locally, one after another.

    python -m bench.retrieval --compute ray --ray-address HEAD:6379 --cpus-per-worker 8 --gpus-per-worker 1
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see ops/__init__.py; set for cornac's side too

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from bench.common import RESULTS, command_line, print_table, write_result
from ops.caching import StageOutput, existing_version, fingerprint, run_cached
from ops.compute import ComputeConfig, ComputeMode, Executor, LocalExecutor, executor
from ops.device import placement
from ops.embeddings.stage import read_embeddings
from ops.pipeline import Prepared, prepare, semantic_id_version
from ops.quantizers.kinds import scaled_config
from ops.retrieval import decoder as decoder_model
from ops.retrieval import tiger as tiger_model
from ops.retrieval.beam_search import decode_users
from ops.retrieval.causal import next_item_task, training_windows
from ops.retrieval.cpu_training import prepare_for_cpu_training
from ops.retrieval.decoder import DecoderConfig, build_decoder
from ops.retrieval.metrics import recall_ndcg, target_ranks
from ops.retrieval.model import TIGERConfig, build_tiger, load_tiger
from ops.retrieval.sasrec import SASRecConfig
from ops.retrieval.sid_data import SIDData
from ops.retrieval.stage import (
    CHECKPOINT,
    HISTORY,
    SPLIT_TABLE,
    evaluate_decoder_stage,
    evaluate_tiger_stage,
    most_popular_stage,
    train_decoder_stage,
    train_sasrec_stage,
    train_tiger_stage,
)
from ops.retrieval.train import EpochLog, Task, TrainConfig, adamw, seeded
from ops.semantic_ids.stage import STAGE as SEMANTIC_IDS_STAGE
from ops.semantic_ids.stage import read_table
from ops.tables import read_parquet

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("SEMID_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))
OUTPUT_ROOT = Path(os.environ.get("SEMID_OUTPUT_ROOT", REPO_ROOT / "data"))  # cached stages: parts resume from here
DATASET = "amazon2014-beauty"
METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10", "recall@20", "ndcg@20")
SCALE = 3  # codes per item of every table compared (the paper's and TIGER's 3 levels of 256)
BEAMS = 20  # items returned per user: metrics at 5, 10 and 20
# cornac's own RQ-VAE takes 25-65 min on this CPU before TIGER's budget starts; its residual k-means, 74 s
CORNAC_TOKENIZER = "rkmeans"
# every cell of the table at one seed; the 3-seed cells are a second call with --seeds 1 2
DEFAULT_PARTS = (
    "most_popular",
    "sasrec",
    "decoder:rqvae",
    "decoder:rqkmeans",
    "decoder:moc",
    "tiger:moc",
    "speed:rqvae",
    "decoding:moc",
)
PART_NAMES = ("most_popular", "sasrec", "decoder", "tiger", "speed", "decoding", "cornac")
DECODER_OPTIONS = {"level": "level_embedding", "codes": "init_from_codes"}  # decoder:rqvae+level+codes
SUMMARY_KEYS = (*METRICS, "targets_per_s", "epochs_completed", "examples_seen", "train_s", "decode_users_per_s")


@dataclass(frozen=True)
class Setting:
    """What every part of one invocation shares."""

    prepared: Prepared
    splits: StageOutput  # the data set's split, or a seeded subset of its users (--users)
    budget: float  # training seconds of every trained model
    output_root: Path = OUTPUT_ROOT  # where every stage is cached
    table_root: Path | None = None  # where pinned tables ("@<version>") are stored; None: the output root

    @classmethod
    def on_beauty(cls, users: int, budget_minutes: float) -> Setting:
        """Beauty's cached stages, all its users or a seeded subset of ``users`` of them, and the budget."""
        return cls.on(DATASET, users, budget_minutes)

    @classmethod
    def on(
        cls,
        dataset: str,
        users: int,
        budget_minutes: float,
        output_root: Path = OUTPUT_ROOT,
        table_root: Path | None = None,
    ) -> Setting:
        """``dataset``'s cached stages under ``output_root``, all its users or a seeded subset, and the budget."""
        prepared = prepare(dataset, DATA_ROOT, output_root)
        splits = user_subset(prepared.splits, users, output_root) if users else prepared.splits
        return cls(prepared, splits, budget_minutes * 60, output_root, table_root)

    def table(self, kind: str) -> StageOutput:
        """The ``kind`` 3x256 Semantic-ID table of the data set's items (built and cached on first use), or, for
        "@<version>", that stored table version (of any kind and size) under the table root."""
        if kind.startswith("@"):
            return existing_version(self.table_root or self.output_root, SEMANTIC_IDS_STAGE, kind[1:])
        _, table = semantic_id_version(self.output_root, self.prepared.embeddings, scaled_config(kind, SCALE, {}))
        return table

    def data(self, kind: str, sequence: Any) -> SIDData:
        table = self.table(kind)
        split = read_parquet(self.splits.file(SPLIT_TABLE))
        return SIDData.build(split, read_table(table), table.manifest["codebook_size"], sequence)


def most_popular(setting: Setting) -> dict[str, Any]:
    stage = most_popular_stage(setting.output_root, setting.splits)
    return {
        "model": "most popular",
        **metric_values(stage.manifest["test"]),
        "eval_users": stage.manifest["n_test_users"],
    }


def sasrec(setting: Setting, seed: int) -> dict[str, Any]:
    defaults = SASRecConfig()
    config = replace(defaults, train=replace(defaults.train, max_train_seconds=setting.budget, seed=seed))
    stage = train_sasrec_stage(setting.output_root, setting.splits, config, epoch_printer(f"SASRec seed {seed}"))
    m = stage.manifest
    return {
        "model": "semid SASRec",
        **metric_values(m["test"]),
        **fitted_summary(stage),
        "eval_users": m["n_test_users"],
    }


def sid_model(setting: Setting, name: str, spec: str, seed: int) -> dict[str, Any]:
    """Train (cached) and evaluate the Semantic-ID model ``name`` ("decoder" or "tiger") on a table: ``spec`` is
    its kind, then the decoder's options to switch on, each after a "+" (see DECODER_OPTIONS)."""
    kind, *options = spec.split("+")
    table = setting.table(kind)
    defaults = DecoderConfig() if name == "decoder" else TIGERConfig()
    switches = {DECODER_OPTIONS[option]: True for option in options}  # KeyError: an unknown option
    config = replace(defaults, train=replace(defaults.train, max_train_seconds=setting.budget, seed=seed), **switches)
    train, evaluate = {
        "decoder": (train_decoder_stage, evaluate_decoder_stage),
        "tiger": (train_tiger_stage, evaluate_tiger_stage),
    }[name]
    shape = table_shape(table)
    print(f"{name} on {shape} table {table.fingerprint}, seed {seed}: at most {setting.budget:.0f} s", flush=True)
    model = train(setting.output_root, setting.splits, table, config, epoch_printer(f"{name} {shape} seed {seed}"))
    evaluation = evaluate(setting.output_root, model, setting.splits, table, beams=BEAMS)
    e = evaluation.manifest
    label = "decoder-only" if name == "decoder" else "TIGER"
    pinned = [f"table {table.fingerprint}"] if kind.startswith("@") else []
    return {
        "model": f"semid {label} ({', '.join([shape, *pinned, *switches])})",
        **metric_values(e["test"]),
        **fitted_summary(model),
        "invalid_items": e["invalid_items"],
        "users_short_of_20": e["users_short_of_k"],
        "eval_users": e["n_users"],
        "decode_users_per_s": e["decode_users_per_s"],
        "most_popular_recall@10": e["most_popular"]["recall@10"],
        "sid_table": table.fingerprint,
        "collision_rate": table.manifest["collisions"]["collision_rate"],
        "eval_version": evaluation.fingerprint,
    }


def table_shape(table: StageOutput) -> str:
    """A table version's tokenizer kind and size, "<kind> <levels>x<codes>": e.g. "lamia 4x256"."""
    m = table.manifest
    return f"{m['tokenizer']['kind']} {m['scaling_factor']}x{m['codebook_size']}"


def speed(setting: Setting, kind: str, seconds: float, n_users: int) -> dict[str, Any]:
    """Training targets/s of the default decoder-only model and TIGER (same width and depth) on the same data,
    alternating every ``seconds / 6`` so both see the same machine load; then both decoders' users/s."""
    tiger_config, decoder_config = TIGERConfig(), DecoderConfig()
    data = setting.data(kind, tiger_config.sequence)
    device = placement().device
    tiger = seeded(lambda: build_tiger(tiger_config, data.vocabulary), 0).to(device)
    decoder = seeded(lambda: build_decoder(decoder_config, data.vocabulary), 0).to(device)
    if device.type == "cpu":  # what train_tiger and train_decoder do
        prepare_for_cpu_training(tiger)
        decoder_model.prepare_for_cpu_training(decoder)
    no_validation: Callable[[], dict[str, float]] = dict
    tasks = {
        "tiger": (
            tiger,
            tiger_model.training_task(tiger, data, data.prefixes(), data.evaluation("valid"), 256),
            tiger_config,
        ),
        "decoder": (
            decoder,
            next_item_task(decoder, data, training_windows(data.sequences, 20), 64, no_validation),
            decoder_config,
        ),
    }
    steps = {name: _stepper(model, task, config.train) for name, (model, task, config) in tasks.items()}
    totals = {name: [0, 0.0] for name in tasks}  # targets, seconds
    for _ in range(6):
        for name, step in steps.items():
            start = time.perf_counter()
            while time.perf_counter() - start < seconds / 6:
                totals[name][0] += step()
            totals[name][1] += time.perf_counter() - start
    test = data.evaluation("test")
    sample = test.subset(np.sort(np.random.default_rng(0).choice(len(test), min(n_users, len(test)), False)))
    decoding = {}
    for name, evaluate in (("tiger", tiger_model.evaluate), ("decoder", decoder_model.evaluate)):
        model = tasks[name][0].eval()
        start = time.perf_counter()
        evaluate(model, data, sample, BEAMS)
        decoding[name] = len(sample) / (time.perf_counter() - start)
    rates = {name: targets / seconds for name, (targets, seconds) in totals.items()}
    return {
        "model": f"speed ({kind} {SCALE}x256)",
        "seconds_each": seconds,
        "tiger_targets_per_s": rates["tiger"],
        "decoder_targets_per_s": rates["decoder"],
        "targets_per_s_ratio": rates["decoder"] / rates["tiger"],
        "decode_users": len(sample),
        "tiger_decode_users_per_s": decoding["tiger"],
        "decoder_decode_users_per_s": decoding["decoder"],
        "threads": placement().threads,
    }


def decoding(setting: Setting, kind: str, n_users: int) -> dict[str, Any]:
    """Users/s of semid's beam search and of `generate(prefix_allowed_tokens_fn=...)`, same TIGER, users, beams."""
    defaults = TIGERConfig()
    config = replace(defaults, train=replace(defaults.train, max_train_seconds=setting.budget))
    model_stage = train_tiger_stage(setting.output_root, setting.splits, setting.table(kind), config)
    model, config, _ = load_tiger(model_stage.file(CHECKPOINT))
    data = setting.data(kind, config.sequence)
    test = data.evaluation("test")
    n_users = min(n_users, len(test))
    examples = test.subset(np.sort(np.random.default_rng(0).choice(len(test), n_users, replace=False)))
    input_ids, mask = data.inputs(examples)
    levels = data.vocabulary.levels

    start = time.perf_counter()
    ours = decode_users(model, data.trie, input_ids, mask, BEAMS)
    ours_seconds = time.perf_counter() - start

    theirs = np.full((n_users, BEAMS), -1, dtype=np.int64)
    start = time.perf_counter()
    with torch.no_grad():
        for begin in range(0, n_users, 32):  # generate pads to the batch's longest input: keep batches small
            rows = slice(begin, begin + 32)
            width = max(int(mask[rows].sum(axis=1).max()), 1)
            output = model.generate(
                input_ids=torch.from_numpy(input_ids[rows, :width]),
                attention_mask=torch.from_numpy(mask[rows, :width]),
                num_beams=BEAMS,
                num_return_sequences=BEAMS,
                max_new_tokens=levels,
                do_sample=False,
                prefix_allowed_tokens_fn=lambda _, prefix: data.trie.allowed_tokens(prefix.tolist()),
            )
            tokens = output[:, 1 : levels + 1].reshape(-1, BEAMS, levels).numpy()
            local = tokens - data.vocabulary.offsets  # (b, beams, levels) level-local ids
            theirs[rows] = [[data.trie.lookup(path) for path in user] for user in local.tolist()]
    theirs_seconds = time.perf_counter() - start
    targets = examples.target
    return {
        "model": f"decoding (TIGER {kind} {SCALE}x256)",
        "users": n_users,
        "beams": BEAMS,
        "semid_users_per_s": n_users / ours_seconds,
        "generate_users_per_s": n_users / theirs_seconds,
        "speedup": theirs_seconds / ours_seconds,
        "same_top20_lists": float((ours.items == theirs).all(axis=1).mean()),
        "same_top1": float((ours.items[:, 0] == theirs[:, 0]).mean()),
        "semid_recall@10_on_these_users": recall_ndcg(target_ranks(ours.items, targets))["recall@10"],
        "generate_recall@10_on_these_users": recall_ndcg(target_ranks(theirs, targets))["recall@10"],
        "model_version": model_stage.fingerprint,
    }


def cornac(setting: Setting, eval_users: int) -> list[dict[str, Any]]:
    """cornac's TIGER and SASRec under the same budget (side by side with nothing: one after the other)."""
    from bench.cornac_baseline import run_cornac_sasrec, run_cornac_tiger

    split = read_parquet(setting.splits.file(SPLIT_TABLE))
    runs = (
        run_cornac_tiger(
            split,
            read_embeddings(setting.prepared.embeddings),
            setting.budget,
            max_eval_users=eval_users,
            tokenizer=CORNAC_TOKENIZER,
            threads=placement().threads,  # the threads semid's models get: same CPU for both sides
        ),
        run_cornac_sasrec(split, setting.budget, threads=placement().threads),
    )
    return [
        {
            "model": run.model,
            **metric_values(run.metrics),
            "train_s": run.train_seconds,
            "epochs_completed": run.epochs_completed,
            "targets_per_s": run.samples_per_second,
            "invalid_items": run.invalid_items,
            "notes": run.notes,
        }
        for run in runs
    ]


def user_subset(splits: StageOutput, users: int, output_root: Path, seed: int = 0) -> StageOutput:
    """A cached splits version holding a seeded sample of ``users`` users of ``splits`` (every row of each)."""

    def build(folder: Path) -> dict[str, Any]:
        split = read_parquet(splits.file(SPLIT_TABLE))
        ids = split["user_id"].unique().sort()
        chosen = ids.gather(np.sort(np.random.default_rng(seed).choice(len(ids), min(users, len(ids)), False)))
        split.filter(pl.col("user_id").is_in(chosen.implode())).write_parquet(folder / SPLIT_TABLE)
        return {"parent": splits.fingerprint, "users": len(chosen), "seed": seed}

    version = fingerprint({"parent": splits.fingerprint, "users": users, "seed": seed})
    return run_cached(output_root, "bench_splits", version, build)


@dataclass(frozen=True)
class PartOptions:
    """The settings of the speed, decoding and cornac parts."""

    speed_seconds: float = 60.0
    decode_users: int = 300
    cornac_eval_users: int = 500


@dataclass(frozen=True)
class Job:
    """One part at one seed: what one worker runs."""

    part: str
    seed: int


def jobs(parts: list[str], seeds: list[int]) -> list[Job]:
    """Every (part, seed) to run, in order; parts that train nothing run once, at seed 0."""
    unknown = [part for part in parts if part.partition(":")[0] not in PART_NAMES]
    if unknown:
        raise ValueError(f"unknown parts {unknown}: each is one of {', '.join(PART_NAMES)} (see --help)")
    return [
        Job(part, seed)
        for part in parts
        for seed in (seeds if part.partition(":")[0] in ("sasrec", "decoder", "tiger") else [0])
    ]


def run_job(setting: Setting, options: PartOptions, job: Job) -> tuple[list[dict[str, Any]], float]:
    """The records of one part at one seed, and its wall seconds (where it ran: here or on a Ray worker)."""
    start = time.perf_counter()
    name, _, kind = job.part.partition(":")
    if name == "most_popular":
        records = [most_popular(setting)]
    elif name == "sasrec":
        records = [sasrec(setting, job.seed)]
    elif name in ("decoder", "tiger"):
        records = [sid_model(setting, name, kind, job.seed)]
    elif name == "speed":
        records = [speed(setting, kind, options.speed_seconds, options.decode_users)]
    elif name == "decoding":
        records = [decoding(setting, kind, options.decode_users)]
    else:  # "cornac", the last of PART_NAMES
        records = cornac(setting, options.cornac_eval_users)
    return records, time.perf_counter() - start


def run_jobs(
    setting: Setting, options: PartOptions, todo: list[Job], executor: Executor
) -> Iterator[tuple[Job, list[dict[str, Any]], float]]:
    """Each job's records and wall seconds, in order, computed where ``executor`` runs work: one after another
    in this process (local), or as Ray tasks that each reserve the executor's CPUs (and GPUs) per worker. Every
    trained model is a cached stage, so a job whose worker died is simply run again, and a re-run is cache hits."""
    if not isinstance(executor, LocalExecutor):  # workers import the installed packages, not this folder
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__package__])
    for job, (records, seconds) in zip(todo, executor.map(partial(run_job, setting, options), todo), strict=True):
        yield job, records, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=list(DEFAULT_PARTS), help="most_popular, sasrec, decoder:<kind>")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds of every trained part")
    parser.add_argument("--budget-minutes", type=float, default=30.0, help="training budget of every model")
    parser.add_argument("--users", type=int, default=0, help="a seeded sample of this many users (0 = all)")
    parser.add_argument("--speed-seconds", type=float, default=60.0, help="training seconds of each model (speed)")
    parser.add_argument("--decode-users", type=int, default=300, help="test users of the speed/decoding parts")
    parser.add_argument("--cornac-eval-users", type=int, default=500, help="cornac TIGER decodes one user at a time")
    parser.add_argument("--dataset", default=DATASET, help="any registered data set (the figures above: Beauty)")
    parser.add_argument("--compute", choices=[m.value for m in ComputeMode], default="local", help="where parts run")
    parser.add_argument("--ray-address", default="", help="Ray cluster to join (host:port); empty: a private one")
    parser.add_argument("--workers", type=int, default=2, help="ray: parts running at once (private cluster's CPUs)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="ray: CPUs (torch threads) of each part")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0, help="ray: GPUs of each part")
    parser.add_argument("--name", default="retrieval", help="results file bench/results/<name>.json")
    parser.add_argument("--table-root", type=Path, help="output root of pinned tables (@<version>); default: ours")
    args = parser.parse_args()

    try:
        todo = jobs(args.parts, args.seeds)
    except ValueError as error:
        parser.error(str(error))
    setting = Setting.on(args.dataset, args.users, args.budget_minutes, table_root=args.table_root)
    options = PartOptions(args.speed_seconds, args.decode_users, args.cornac_eval_users)
    compute = ComputeConfig(
        mode=args.compute,
        address=args.ray_address,
        workers=args.workers,
        cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker,
    )
    figures = previous_figures(args.name, args.dataset)
    command = command_line()
    running = executor(compute)
    try:
        for job, records, seconds in run_jobs(setting, options, todo, running):
            for record in records:
                figures["parts"].update(part_entry(record, job.part, job.seed, setting, args.users, seconds, command))
                print_table([{k: v for k, v in record.items() if k != "notes"}])
            figures["rows"] = summary(figures["parts"])
            write_result(args.name, figures)  # after every part: an interrupted run keeps what it finished
    finally:
        running.close()
    print("\nall parts")
    print_table(
        [{k: row.get(k) for k in ("model", "seeds", "budget_seconds", *METRICS[2:4])} for row in figures["rows"]]
    )


def summary(parts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, budget, users): every numeric key of SUMMARY_KEYS as the mean over seeds, with its std."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for record in parts.values():
        groups.setdefault((record["model"], record.get("budget_seconds"), record.get("users")), []).append(record)
    rows = []
    for (model, budget, users), records in groups.items():
        row: dict[str, Any] = {"model": model, "budget_seconds": budget, "users": users, "seeds": len(records)}
        for key in SUMMARY_KEYS:
            values = [r[key] for r in records if isinstance(r.get(key), int | float)]
            if values:
                row[key] = float(np.mean(values))
                if len(values) > 1:
                    row[f"{key}_std"] = float(np.std(values, ddof=1))
        if any("invalid_items" in r for r in records):
            row["invalid_items"] = sum(r.get("invalid_items") or 0 for r in records)
        rows.append(row)
    return rows


def part_entry(
    record: dict[str, Any], part: str, seed: int, setting: Setting, users: int, seconds: float, command: str
) -> dict[str, dict[str, Any]]:
    """``{key: entry}`` for ``figures["parts"]``: the part's record with what it ran under (budget, users, split,
    threads, its wall ``seconds``, command, date); the key names model, budget, users and seed."""
    key = f"{record['model']} | budget {setting.budget:.0f}s | users {users or 'all'} | seed {seed}"
    entry = {
        **record,
        "part": part,
        "seed": seed,
        "budget_seconds": setting.budget,
        "users": users or "all",
        "splits": setting.splits.fingerprint,
        "threads": placement().threads,
        "wall_seconds": round(seconds, 1),
        "command": command,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return {key: entry}


def previous_figures(name: str, dataset: str = DATASET) -> dict[str, Any]:
    """The figures of bench/results/<name>.json to merge into; a file from before parts existed is kept whole
    under ``superseded``. A file of another data set is an error: name the run (--name) for its data set."""
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return {"dataset": dataset, "parts": {}}
    previous = json.loads(path.read_text())
    if previous["figures"].get("dataset", dataset) != dataset:
        raise SystemExit(f"{path} holds {previous['figures']['dataset']}, not {dataset}: pass another --name")
    if "parts" in previous["figures"]:
        return previous["figures"]
    return {"dataset": dataset, "parts": {}, "superseded": previous}


def metric_values(values: dict[str, float]) -> dict[str, float]:
    return {key: values[key] for key in METRICS}


def fitted_summary(stage: StageOutput) -> dict[str, Any]:
    """What a training stage's budget bought: epochs, next-item targets seen, targets/s, why it stopped."""
    m = stage.manifest
    history = json.loads(stage.file(HISTORY).read_text())
    seen = sum(epoch["samples"] for epoch in history)
    return {
        "train_s": m["train_seconds"],
        "epochs": m["epochs"],
        "best_epoch": m["best_epoch"],
        "epochs_completed": seen / m["n_train_samples"],
        "examples_seen": seen,
        "targets_per_s": m["train_samples_per_s"],
        "stopped": m["stopped"],
        "model_version": stage.fingerprint,
    }


def _stepper(model: torch.nn.Module, task: Task, train: TrainConfig) -> Callable[[], int]:
    """One AdamW step per call on the task's batches (cycling through epochs); returns the targets it trained."""
    optimizer = adamw(model, train)
    rng = np.random.default_rng(0)
    batches = iter(())

    def step() -> int:
        nonlocal batches
        batch = next(batches, None)
        if batch is None:
            batches = iter(task.batches(rng))
            batch = next(batches)
        model.train()
        with placement().autocast(train.precision):
            loss, n = task.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return n

    return step


def epoch_printer(name: str) -> Callable[[EpochLog], None]:
    def log(entry: EpochLog) -> None:
        valid = ", ".join(f"{k} {v:.4f}" for k, v in entry.valid.items() if k in ("recall@10", "ndcg@10"))
        print(
            f"{name} epoch {entry.epoch}: loss {entry.train_loss:.4f}, {entry.samples_per_s:.0f} targets/s, "
            f"lr {entry.lr:.2e}, {valid}",
            flush=True,
        )

    return log


if __name__ == "__main__":
    main()
