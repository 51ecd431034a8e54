"""Training on a real slice: a tiny TIGER and a tiny SASRec memorize their training users, the cached stages
write what they promise, and everything runs on the CPU with the device chosen in one place."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import torch

from ops.device import placement
from ops.retrieval.metrics import target_ranks
from ops.retrieval.model import TIGERConfig, build_tiger
from ops.retrieval.sasrec import SASRec, SASRecConfig, catalogue, rank_items
from ops.retrieval.sasrec import training_task as sasrec_task
from ops.retrieval.sequences import Examples, UserSequences, train_examples, user_sequences
from ops.retrieval.sid_data import SIDData
from ops.retrieval.stage import CHECKPOINT, HISTORY, evaluate_tiger_stage, train_sasrec_stage, train_tiger_stage
from ops.retrieval.tiger import evaluate
from ops.retrieval.tiger import training_task as tiger_task
from ops.retrieval.train import SELECTION_METRIC, Task, TrainConfig, fit
from ops.semantic_ids.stage import read_table

OVERFIT = TrainConfig(batch_size=64, lr=2e-2, max_epochs=120, max_train_seconds=40.0, patience=120)
MEMORIZED_USERS = 8  # users whose every training prefix the tiny models must learn


def memorization_slice(examples: Examples) -> tuple[Examples, Examples]:
    """(the first users' training examples, each such user's longest prefix -> last train item)."""
    train = examples.subset(np.flatnonzero(examples.user < MEMORIZED_USERS))
    last = np.flatnonzero(np.append(train.user[1:] != train.user[:-1], True))
    return train, train.subset(last)


def select_on_recall_at_1(task: Task, rank: Callable[[Examples], np.ndarray], examples: Examples) -> Task:
    """The same task, with model selection on training Recall@1 (reported under the selection metric's name)."""
    return replace(task, validate=lambda: {SELECTION_METRIC: float((rank(examples) == 0).mean())})


def test_tiny_tiger_memorizes_its_training_users(real_slice):
    splits, sid_table = real_slice
    config = replace(TIGERConfig.test(), d_model=64, d_ff=128, train=OVERFIT)
    table = read_table(sid_table)
    assert table["collision_suffix"].max() > 0  # the slice exercises the suffix level
    data = SIDData.build(pl.read_parquet(splits.file("leave_one_out.parquet")), table, 8, config.sequence)
    train, memorize = memorization_slice(data.prefixes())
    torch.manual_seed(0)
    model = build_tiger(config, data.vocabulary).to(placement().device)

    def rank(examples: Examples) -> np.ndarray:
        return target_ranks(evaluate(model, data, examples, beams=5).beams.items, examples.target)

    result = fit(model, select_on_recall_at_1(tiger_task(model, data, train, memorize, 64), rank, memorize), OVERFIT)
    assert result.best_valid[SELECTION_METRIC] == 1.0 and (rank(memorize) == 0).all()  # Recall@1 = 1


def test_tiny_sasrec_memorizes_its_training_users(real_slice):
    splits, _ = real_slice
    split = pl.read_parquet(splits.file("leave_one_out.parquet"))
    sequences = user_sequences(split, catalogue(split))
    config = replace(SASRecConfig.test(), train=OVERFIT)
    _, memorize = memorization_slice(train_examples(sequences, config.max_len))
    torch.manual_seed(0)
    model = SASRec(config, len(catalogue(split))).to(placement().device)
    first = sequences.start[MEMORIZED_USERS]
    sequences = UserSequences(
        sequences.items[:first],
        sequences.start[: MEMORIZED_USERS + 1],
        sequences.n_train[:MEMORIZED_USERS],
        sequences.user_ids[:MEMORIZED_USERS],
    )  # the memorized users only: SASRec trains on whole users

    def rank(examples: Examples) -> np.ndarray:
        return target_ranks(rank_items(model, sequences, examples), examples.target)

    task = sasrec_task(model, sequences, memorize, 64)
    result = fit(model, select_on_recall_at_1(task, rank, memorize), OVERFIT)
    assert result.best_valid[SELECTION_METRIC] == 1.0 and (rank(memorize) == 0).all()


def test_stages_are_cached_and_report_their_numbers(real_slice, tmp_path):
    splits, sid_table = real_slice
    short = replace(TrainConfig.test(), max_epochs=2, eval_users=5)
    config = replace(TIGERConfig.test(), train=short)
    logs = []
    trained = train_tiger_stage(tmp_path, splits, sid_table, config, callback=logs.append)
    manifest = trained.manifest
    assert len(logs) == manifest["epochs"] == 2 and manifest["sid_table"]["fingerprint"] == sid_table.fingerprint
    assert manifest["n_train_samples"] > 0 and manifest["train_samples_per_s"] > 0
    assert 0 <= manifest["best_valid_recall@10"] <= 1 and manifest["best_epoch"] in (1, 2)
    assert len(json.loads(trained.file(HISTORY).read_text())) == 2
    assert torch.load(trained.file(CHECKPOINT), weights_only=True)["config"]["train"]["max_epochs"] == 2
    again = train_tiger_stage(tmp_path, splits, sid_table, config)
    assert again.cache_hit and again.fingerprint == trained.fingerprint

    evaluated = evaluate_tiger_stage(tmp_path, trained, splits, sid_table, beams=20)
    report = evaluated.manifest
    assert report["invalid_items"] == 0 and report["n_users"] == 24
    assert report["users_short_of_k"] == (24 if report["sid_table"] and len(read_table(sid_table)) < 20 else 0)
    assert set(report["test"]) == {f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20)}

    sasrec = train_sasrec_stage(tmp_path, splits, replace(SASRecConfig.test(), train=short))
    assert sasrec.manifest["epochs"] == 2 and sasrec.manifest["n_test_users"] == 24
    assert 0 <= sasrec.manifest["test"]["recall@20"] <= 1


def test_the_device_is_chosen_only_in_ops_device():
    sources = Path(__file__).resolve().parents[3] / "ops" / "retrieval"
    for source in sources.glob("*.py"):
        text = source.read_text()
        assert not re.search(r"cuda\.is_available|\.cuda\(|device\(\"(cpu|cuda)\"\)|set_num_threads", text), source
