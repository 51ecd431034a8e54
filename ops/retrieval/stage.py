"""The cached retrieval stages: train a Semantic-ID recommender (TIGER or the decoder-only model) on a (splits,
Semantic-ID table) pair, evaluate it, train SASRec.

Each version hashes its upstream fingerprints, its config and the code of `ops/retrieval`; a hit trains and
decodes nothing. A model's folder holds its checkpoint (``tiger.pt`` or ``decoder.pt``: config + vocabulary +
weights) and ``history.json``; its manifest names the exact Semantic-ID table version it read. The evaluation
stages decode every test user with the trie-constrained beam search and check each returned code tuple against
the table itself (not the trie), so ``invalid_items`` is an independent count that must be 0. Every evaluation
also reports the most-popular baseline on the same test users, so a reader sees at once whether the model
learned more than popularity.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ops.caching import StageOutput, code_version, existing_version, fingerprint, run_cached
from ops.device import placement
from ops.quantizers.config import config_to_dict
from ops.quantizers.stage import STAGE as TOKENIZER_STAGE
from ops.quantizers.stage import load_tokenizer
from ops.retrieval import decoder, llm_recommender, tiger
from ops.retrieval.checkpoint import save_model
from ops.retrieval.decoder import DecoderConfig, load_decoder, train_decoder
from ops.retrieval.llm_prompts import item_titles
from ops.retrieval.llm_recommender import LLMRecommenderConfig, load_recommender, model_digest, save_recommender
from ops.retrieval.llm_tokens import NewRows
from ops.retrieval.model import TIGERConfig, load_tiger
from ops.retrieval.popularity import evaluate_most_popular
from ops.retrieval.sasrec import SASRecConfig, catalogue, evaluate_sasrec, train_sasrec, training_windows
from ops.retrieval.sequences import SequenceConfig, eval_examples, user_sequences
from ops.retrieval.sid_data import Evaluation, SIDData
from ops.retrieval.train import EpochCallback, FitResult
from ops.retrieval.vocabulary import Vocabulary
from ops.semantic_ids.stage import read_table
from ops.tables import read_parquet, write_atomic, write_text_atomic

RETRIEVAL_CODE = Path(__file__).resolve().parent
LLM_CODE = RETRIEVAL_CODE.parent / "llm"  # the LoRA model builder and checkpoints the LLM recommender uses
SPLIT_TABLE = "leave_one_out.parquet"
CHECKPOINT = "tiger.pt"
DECODER_CHECKPOINT = "decoder.pt"
SASREC_CHECKPOINT = "sasrec.pt"
LLM_CHECKPOINT = "llm_recommender.pt"
ITEMS_TABLE = "items.parquet"  # the k-core stage's items (the titles)
HISTORY = "history.json"


def train_tiger_stage(
    output_root: Path,
    splits: StageOutput,
    sid_table: StageOutput,
    config: TIGERConfig,
    callback: EpochCallback | None = None,
) -> StageOutput:
    """TIGER trained on the leave-one-out split, items tokenized by ``sid_table``."""

    def train(data: SIDData) -> tuple[nn.Module, FitResult]:
        return tiger.train_tiger(config, data, callback)

    return _train_sid_stage(output_root, "tiger", splits, sid_table, config, config.sequence, train, CHECKPOINT)


def train_decoder_stage(
    output_root: Path,
    splits: StageOutput,
    sid_table: StageOutput,
    config: DecoderConfig,
    callback: EpochCallback | None = None,
) -> StageOutput:
    """The decoder-only recommender trained on the leave-one-out split, items tokenized by ``sid_table``."""

    def train(data: SIDData) -> tuple[nn.Module, FitResult]:
        vectors = tokenizer_code_vectors(output_root, sid_table) if config.init_from_codes else None
        return train_decoder(config, data, callback, vectors)

    return _train_sid_stage(
        output_root, "decoder", splits, sid_table, config, config.sequence, train, DECODER_CHECKPOINT
    )


def evaluate_tiger_stage(
    output_root: Path, model_stage: StageOutput, splits: StageOutput, sid_table: StageOutput, beams: int = 20
) -> StageOutput:
    """Test Recall/NDCG@5/10/20 of a trained TIGER over all test users, top-``beams`` items each."""
    return _evaluate_sid_stage(
        output_root, "tiger_eval", model_stage, splits, sid_table, beams, load_tiger, tiger.evaluate, CHECKPOINT
    )


def evaluate_decoder_stage(
    output_root: Path, model_stage: StageOutput, splits: StageOutput, sid_table: StageOutput, beams: int = 20
) -> StageOutput:
    """Test Recall/NDCG@5/10/20 of a trained decoder-only model over all test users, top-``beams`` items each."""
    return _evaluate_sid_stage(
        output_root,
        "decoder_eval",
        model_stage,
        splits,
        sid_table,
        beams,
        load_decoder,
        decoder.evaluate,
        DECODER_CHECKPOINT,
    )


def train_llm_recommender_stage(
    output_root: Path,
    splits: StageOutput,
    sid_table: StageOutput,
    config: LLMRecommenderConfig,
    items: StageOutput | None = None,
    callback: EpochCallback | None = None,
) -> StageOutput:
    """The LLM recommender (a pretrained causal LM with Semantic-ID tokens, adapted with LoRA) trained on the
    leave-one-out split, items tokenized by ``sid_table``. ``items`` (a k-core stage: its items table) gives the
    titles that titled prompts and the alignment task read; the version then names it. The version also hashes
    the base model's files and the LoRA code."""
    if config.needs_titles and items is None:
        raise ValueError("titled prompts and the alignment task need an items stage (the k-core) for the titles")
    used_items = items if config.needs_titles else None
    phases: list[dict[str, Any]] = []
    digest = model_digest(config.model)

    def train(data: SIDData) -> tuple[Any, FitResult]:
        vectors = tokenizer_code_vectors(output_root, sid_table) if config.new_rows == NewRows.CODES else None
        titles = _titles(used_items, sid_table)
        recommender, result, summary = llm_recommender.train_llm_recommender(config, data, titles, callback, vectors)
        phases.extend(summary)
        return recommender, result

    def save(recommender: Any, data: SIDData, path: Path) -> dict[str, Any]:
        save_recommender(recommender, path)
        trained = sum(p.numel() for p in recommender.lm.model.parameters() if p.requires_grad)
        return {
            "phases": phases,
            "base_model": {"name": config.model, "files_sha256": digest},
            "new_tokens": len(recommender.tokens.tokens),
            "trainable_parameters": trained,
            "items": None if used_items is None else used_items.fingerprint,
        }

    extra = {
        "base_model": digest,
        "llm_code": _llm_code(),
        "items": None if used_items is None else used_items.fingerprint,
    }
    return _train_sid_stage(
        output_root, "llm_recommender", splits, sid_table, config, config.sequence, train, LLM_CHECKPOINT, save, extra
    )


def evaluate_llm_recommender_stage(
    output_root: Path,
    model_stage: StageOutput,
    splits: StageOutput,
    sid_table: StageOutput,
    items: StageOutput | None = None,
    beams: int = 20,
) -> StageOutput:
    """Test Recall/NDCG@5/10/20 of a trained LLM recommender over all test users, top-``beams`` items each;
    ``items`` must be the items stage it was trained with, when it read titles."""
    trained_items = model_stage.manifest.get("items")
    if trained_items is not None and (items is None or items.fingerprint != trained_items):
        raise ValueError(f"{model_stage.fingerprint} read the titles of items stage {trained_items}: pass that one")
    titles = _titles(items if trained_items else None, sid_table)

    def load(path: Path, device: torch.device) -> tuple[Any, Any, Vocabulary]:
        recommender = load_recommender(path, titles, device)
        return recommender, recommender.config, recommender.tokens.layout

    return _evaluate_sid_stage(
        output_root,
        "llm_recommender_eval",
        model_stage,
        splits,
        sid_table,
        beams,
        load,
        llm_recommender.evaluate,
        LLM_CHECKPOINT,
        {"llm_code": _llm_code()},
    )


def most_popular_stage(output_root: Path, splits: StageOutput) -> StageOutput:
    """The most-popular baseline's test Recall/NDCG@5/10/20 over all test users (nothing to train)."""
    version = fingerprint({"splits": splits.fingerprint, "code": _code()})

    def build(folder: Path) -> dict[str, Any]:
        split = read_parquet(splits.file(SPLIT_TABLE))
        items = catalogue(split)
        sequences = user_sequences(split, items)
        test = eval_examples(sequences, "test", 1)
        return {
            "n_items": len(items),
            "n_test_users": len(test),
            "test": evaluate_most_popular(sequences, len(items), test),
            "splits": splits.fingerprint,
        }

    return run_cached(output_root, "most_popular", version, build)


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
            "most_popular": evaluate_most_popular(sequences, len(items), test),
        }

    return run_cached(output_root, "sasrec", version, build)


def tokenizer_code_vectors(output_root: Path, sid_table: StageOutput) -> list[np.ndarray]:
    """Per code level, the (codebook_size, dim) code vectors of the tokenizer that made ``sid_table``.

    Every tokenizer built on the shared autoencoder keeps one codebook per level (``quantizer.layers``); a table
    made otherwise (a hand-written one, a tokenizer without codebooks) has none to offer, and this says so.
    """
    tokenizer = sid_table.manifest.get("tokenizer", {})
    if "fingerprint" not in tokenizer:
        raise ValueError(f"Semantic-ID table {sid_table.fingerprint} names no tokenizer version to take codes from")
    model = load_tokenizer(existing_version(output_root, TOKENIZER_STAGE, tokenizer["fingerprint"]))
    layers = getattr(getattr(model, "quantizer", None), "layers", None)
    if layers is None or not all(hasattr(layer, "codebook") for layer in layers):
        raise ValueError(f"the {tokenizer.get('kind')} tokenizer keeps no per-level codebooks (quantizer.layers)")
    return [layer.codebook.detach().cpu().numpy() for layer in layers]


def _train_sid_stage(
    output_root: Path,
    stage: str,
    splits: StageOutput,
    sid_table: StageOutput,
    config: Any,
    sequence: SequenceConfig,
    train: Callable[[SIDData], tuple[Any, FitResult]],
    checkpoint: str,
    save: Callable[[Any, SIDData, Path], dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> StageOutput:
    """What every Semantic-ID model's training stage does: build the data, ``train``, save, report.

    ``save`` writes a model that `save_model` cannot (the LLM recommender's adapters) and returns what it adds to
    the manifest; ``extra`` adds inputs to the version (the LLM's files, its code, the item texts)."""
    version = fingerprint(
        {
            "splits": splits.fingerprint,
            "sid_table": sid_table.fingerprint,
            "config": config_to_dict(config),
            "code": _code(),
            **(extra or {}),
        }
    )

    def build(folder: Path) -> dict[str, Any]:
        data = _sid_data(splits, sid_table, sequence)
        model, result = train(data)
        if save is None:
            save_model(model, config, data.vocabulary, folder / checkpoint)
            saved = {}
        else:
            saved = save(model, data, folder / checkpoint)
        fitted = _fit_manifest(folder, result, len(data.prefixes()))  # next-item targets per epoch, for every model
        return {
            **fitted,
            "config": config_to_dict(config),
            "splits": splits.fingerprint,
            **_sid_source(sid_table),
            **saved,
        }

    return run_cached(output_root, stage, version, build)


def _evaluate_sid_stage(
    output_root: Path,
    stage: str,
    model_stage: StageOutput,
    splits: StageOutput,
    sid_table: StageOutput,
    beams: int,
    load: Callable[[Path, torch.device], tuple[Any, Any, Vocabulary]],
    evaluate: Callable[[Any, SIDData, Any, int], Evaluation],
    checkpoint: str,
    extra: dict[str, Any] | None = None,
) -> StageOutput:
    """Decode every test user of ``splits`` with a trained model; the most-popular baseline on the same users.
    ``extra`` adds inputs to the version, as in `_train_sid_stage`."""
    version = fingerprint(
        {
            "model": model_stage.fingerprint,
            "splits": splits.fingerprint,
            "sid_table": sid_table.fingerprint,
            "beams": beams,
            "code": _code(),
            **(extra or {}),
        }
    )

    def build(folder: Path) -> dict[str, Any]:
        trained_on = model_stage.manifest.get("splits")
        if trained_on != splits.fingerprint:  # a model tested on another split may have trained on its test items
            raise ValueError(
                f"{model_stage.stage} {model_stage.fingerprint} was trained on splits {trained_on}, "
                f"not {splits.fingerprint}"
            )
        model, config, vocabulary = load(model_stage.file(checkpoint), placement().device)
        data = _sid_data(splits, sid_table, config.sequence)
        if vocabulary != data.vocabulary:
            raise ValueError(
                f"{model_stage.stage} {model_stage.fingerprint} was trained on another token layout than "
                f"{sid_table.fingerprint}"
            )
        test = data.evaluation("test")
        start = time.perf_counter()
        result = evaluate(model, data, test, beams)
        seconds = time.perf_counter() - start
        return {
            "test": result.metrics,
            "most_popular": evaluate_most_popular(data.sequences, len(data.tokens), test),
            "n_users": len(test),
            "beams": beams,
            "invalid_items": invalid_items(result.beams.tokens, result.beams.items, data.tokens),
            "users_short_of_k": result.beams.users_short,
            "decode_seconds": round(seconds, 2),
            "decode_users_per_s": len(test) / max(seconds, 1e-9),
            "model": {"stage": model_stage.stage, "fingerprint": model_stage.fingerprint},
            **_sid_source(sid_table),
        }

    return run_cached(output_root, stage, version, build)


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


def _sid_data(splits: StageOutput, sid_table: StageOutput, sequence: SequenceConfig) -> SIDData:
    table = read_table(sid_table)
    split = read_parquet(splits.file(SPLIT_TABLE))
    return SIDData.build(split, table, sid_table.manifest["codebook_size"], sequence)


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


def _llm_code() -> str:
    return code_version(LLM_CODE)


def _titles(items: StageOutput | None, sid_table: StageOutput) -> list[str] | None:
    """Each Semantic-ID table row's title from an items stage (a k-core), or None without one."""
    if items is None:
        return None
    return item_titles(read_parquet(items.file(ITEMS_TABLE)), read_table(sid_table)["item_id"].to_list())
