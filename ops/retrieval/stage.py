"""The cached retrieval stages: train TIGER on a (splits, Semantic-ID table) pair, evaluate it, train SASRec.

Each version hashes its upstream fingerprints, its config and the code of `ops/retrieval`; a hit trains and
decodes nothing. TIGER's folder holds ``tiger.pt`` (config + vocabulary + weights) and ``history.json``; its
manifest names the exact Semantic-ID table version it read. The evaluation stage decodes every test user
with the trie-constrained beam search and checks each returned code tuple against the table itself (not the
trie), so ``invalid_items`` is an independent count that must be 0.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ops.caching import StageOutput, code_version, fingerprint, run_cached
from ops.device import placement
from ops.quantizers.config import config_to_dict
from ops.retrieval.model import TIGERConfig, load_tiger, save_tiger
from ops.retrieval.sasrec import SASRecConfig, catalogue, evaluate_sasrec, train_sasrec, training_windows
from ops.retrieval.sequences import eval_examples, user_sequences
from ops.retrieval.tiger import TigerData, evaluate, train_tiger
from ops.retrieval.train import EpochCallback, FitResult
from ops.semantic_ids.stage import read_table
from ops.tables import read_parquet, write_atomic, write_text_atomic

RETRIEVAL_CODE = Path(__file__).resolve().parent
SPLIT_TABLE = "leave_one_out.parquet"
CHECKPOINT = "tiger.pt"
SASREC_CHECKPOINT = "sasrec.pt"
HISTORY = "history.json"


def train_tiger_stage(
    output_root: Path,
    splits: StageOutput,
    sid_table: StageOutput,
    config: TIGERConfig,
    callback: EpochCallback | None = None,
) -> StageOutput:
    """TIGER trained on the leave-one-out split, items tokenized by ``sid_table``."""
    version = fingerprint(
        {
            "splits": splits.fingerprint,
            "sid_table": sid_table.fingerprint,
            "config": config_to_dict(config),
            "code": _code(),
        }
    )

    def build(folder: Path) -> dict[str, Any]:
        data = _tiger_data(splits, sid_table, config)
        model, result = train_tiger(config, data, callback)
        save_tiger(model, config, data.vocabulary, folder / CHECKPOINT)
        fitted = _fit_manifest(folder, result, len(data.train()))
        return {**fitted, "config": config_to_dict(config), "splits": splits.fingerprint, **_sid_source(sid_table)}

    return run_cached(output_root, "tiger", version, build)


def evaluate_tiger_stage(
    output_root: Path, model_stage: StageOutput, splits: StageOutput, sid_table: StageOutput, beams: int = 20
) -> StageOutput:
    """Test Recall/NDCG@5/10/20 of a trained TIGER over all test users, top-``beams`` items each."""
    version = fingerprint(
        {
            "model": model_stage.fingerprint,
            "splits": splits.fingerprint,
            "sid_table": sid_table.fingerprint,
            "beams": beams,
            "code": _code(),
        }
    )

    def build(folder: Path) -> dict[str, Any]:
        trained_on = model_stage.manifest.get("splits")
        if trained_on != splits.fingerprint:  # a model tested on another split may have trained on its test items
            raise ValueError(
                f"TIGER {model_stage.fingerprint} was trained on splits {trained_on}, not {splits.fingerprint}"
            )
        model, config, vocabulary = load_tiger(model_stage.file(CHECKPOINT), placement().device)
        data = _tiger_data(splits, sid_table, config)
        if vocabulary != data.vocabulary:
            raise ValueError(
                f"TIGER {model_stage.fingerprint} was trained on another token layout than {sid_table.fingerprint}"
            )
        test = data.evaluation("test")
        start = time.perf_counter()
        result = evaluate(model, data, test, beams)
        seconds = time.perf_counter() - start
        return {
            "test": result.metrics,
            "n_users": len(test),
            "beams": beams,
            "invalid_items": invalid_items(result.beams.tokens, result.beams.items, data.tokens),
            "users_short_of_k": result.beams.users_short,
            "decode_seconds": round(seconds, 2),
            "decode_users_per_s": len(test) / max(seconds, 1e-9),
            "model": {"stage": model_stage.stage, "fingerprint": model_stage.fingerprint},
            **_sid_source(sid_table),
        }

    return run_cached(output_root, "tiger_eval", version, build)


def train_sasrec_stage(
    output_root: Path, splits: StageOutput, config: SASRecConfig, callback: EpochCallback | None = None
) -> StageOutput:
    """SASRec trained and tested (full ranking, all test users) on the same leave-one-out split."""
    version = fingerprint({"splits": splits.fingerprint, "config": config_to_dict(config), "code": _code()})

    def build(folder: Path) -> dict[str, Any]:
        split = read_parquet(splits.file(SPLIT_TABLE))
        items = catalogue(split)
        sequences = user_sequences(split, items)
        model, result = train_sasrec(config, sequences, len(items), callback)
        state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
        payload = {"config": config_to_dict(config), "n_items": len(items), "state_dict": state}
        write_atomic(folder / SASREC_CHECKPOINT, lambda temporary: torch.save(payload, temporary))
        test = eval_examples(sequences, "test", config.max_len)
        n_samples = int((training_windows(sequences, config.max_len).length - 1).sum())  # predicted positions
        return {
            **_fit_manifest(folder, result, n_samples),
            "config": config_to_dict(config),
            "n_items": len(items),
            "n_test_users": len(test),
            "test": evaluate_sasrec(model, sequences, test),
        }

    return run_cached(output_root, "sasrec", version, build)


def invalid_items(tokens: np.ndarray, items: np.ndarray, table_tokens: np.ndarray) -> int:
    """Returned items whose generated token tuple is not exactly their row of the table (or no row at all).

    tokens (n, K, levels) generated ids, items (n, K) item indices (-1 = empty slot, not counted),
    table_tokens (n_items, levels).
    """
    returned = items >= 0  # (n, K)
    known = {tuple(row) for row in table_tokens.tolist()}
    generated = tokens[returned]  # (n_returned, levels)
    unknown = sum(tuple(row) not in known for row in generated.tolist())
    mismatched = int((table_tokens[items[returned]] != generated).any(axis=1).sum())
    return max(unknown, mismatched)


def _tiger_data(splits: StageOutput, sid_table: StageOutput, config: TIGERConfig) -> TigerData:
    table = read_table(sid_table)
    split = read_parquet(splits.file(SPLIT_TABLE))
    return TigerData.build(split, table, sid_table.manifest["codebook_size"], config.sequence)


def _fit_manifest(folder: Path, result: FitResult, n_samples: int) -> dict[str, Any]:
    write_text_atomic(folder / HISTORY, json.dumps([asdict(log) for log in result.history], indent=1))
    return {
        "n_train_samples": n_samples,
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
        "train_seconds": round(result.seconds, 2),
        "train_samples_per_s": result.samples_per_s,
        "best_valid": result.best_valid,
        "best_valid_recall@10": result.best_valid.get("recall@10"),
    }


def _sid_source(sid_table: StageOutput) -> dict[str, Any]:
    tokenizer = sid_table.manifest.get("tokenizer", {})
    return {
        "sid_table": {
            "stage": sid_table.stage,
            "fingerprint": sid_table.fingerprint,
            "kind": tokenizer.get("kind"),
            "version": sid_table.manifest.get("version"),
        }
    }


def _code() -> str:
    return code_version(RETRIEVAL_CODE)
