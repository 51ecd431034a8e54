"""The LLM stages, cached by the same contract as every other: item text -> adapted LLM -> vectors -> codes.

- ``llm2vec_mntp`` -> ``llm2vec``: an LLM2Vec-adapted decoder, one stage per training step (``mntp.pt``; then
  ``simcse.pt`` and the merged ``model/`` directory that `ops.embeddings.config.llm2vec_config` loads; the
  embeddings stage then runs unchanged on it);
- ``lamia_model`` -> ``lamia_palettes``: a LAMIA-tuned decoder (``lamia.pt``), then every item's palette,
  flattened to (L x D) vectors in the embeddings-table layout (``embeddings.parquet``), so tokenizers read it
  like any embedding;
- ``tokenizer`` / ``semantic_ids`` of kind ``lamia``: the per-aspect PCA + k-means fit and the table, in the
  folders and manifest format of the other tokenizers (`ops.semantic_ids.stage.table_manifest`).

Every version hashes its upstream versions, its config and the code of ``ops/llm`` (and what it calls).
Training stops at its wall-clock budget, so a version records what it ran: steps, items seen, stop reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from ops.caching import StageOutput, code_version, fingerprint, run_cached
from ops.device import placement
from ops.embeddings.stage import embeddings_table, read_embeddings
from ops.embeddings.templates import TextTemplate, render_texts
from ops.llm.lamia import LamiaConfig, PaletteCollate, item_examples, lamia_loss, palette_embeddings
from ops.llm.llm2vec import MNTP_CHECKPOINT, MODEL_DIR, LLM2VecConfig, distinct_texts, train_mntp, train_simcse
from ops.llm.lora import build, fold, load_base, read_checkpoint, save_checkpoint
from ops.llm.trainer import StepLog, TrainResult, train
from ops.quantizers.checkpoint import save_checkpoint as save_tokenizer
from ops.quantizers.config import config_from_dict, config_to_dict
from ops.quantizers.lamia import LamiaQuantizerConfig, LamiaTokenizer, quantize_palettes
from ops.quantizers.stage import CHECKPOINT as TOKENIZER_CHECKPOINT
from ops.quantizers.stage import STAGE as TOKENIZER_STAGE
from ops.semantic_ids.stage import STAGE as SEMANTIC_IDS_STAGE
from ops.semantic_ids.stage import TABLE as SEMANTIC_IDS_TABLE
from ops.semantic_ids.stage import encode, table_manifest
from ops.semantic_ids.table import collision_report, semantic_id_table
from ops.tables import read_parquet, write_parquet_atomic, write_text_atomic

OPS = Path(__file__).resolve().parents[1]
CODE = (OPS / "llm", OPS / "embeddings", OPS / "quantizers", OPS / "semantic_ids")  # what the stages run
LAMIA_CHECKPOINT = "lamia.pt"
PALETTES = "embeddings.parquet"  # the embeddings-table name: a palette stage reads like an embeddings stage
StepCallback = Callable[[str, StepLog], None]  # (phase, the step's log)


def llm2vec_stage(
    upstream: StageOutput,
    output_root: Path,
    config: LLM2VecConfig,
    template: TextTemplate,
    callback: StepCallback | None = None,
) -> StageOutput:
    """The decoder adapted by LLM2Vec on the rendered texts of ``upstream``'s items (a k-core stage).

    MNTP is a cached stage of its own (``llm2vec_mntp``), so an hour of MNTP survives a SimCSE run that fails or
    is interrupted, and SimCSE settings can change without repeating it."""
    mntp = _mntp_stage(upstream, output_root, config, template, callback)
    stage_fingerprint = fingerprint(
        {"mntp": mntp.fingerprint, "config": config_to_dict(config), "template": template.identity, "code": _code()}
    )

    def build_stage(folder: Path) -> dict[str, Any]:
        texts = render_texts(read_parquet(upstream.file("items.parquet")), template)
        _, result = train_simcse(texts, config, Path(mntp.file(MNTP_CHECKPOINT)), folder, callback)
        return {
            "dataset": upstream.manifest.get("dataset"),
            "model": config.model,
            "template": template.identity,
            "model_dir": MODEL_DIR,
            "distinct_texts": mntp.manifest["distinct_texts"],
            "mntp_stage": mntp.fingerprint,
            "mntp": mntp.manifest["mntp"],
            "simcse": _summary(result, folder / "simcse_history.json"),
        }

    return run_cached(output_root, "llm2vec", stage_fingerprint, build_stage)


def _mntp_stage(
    upstream: StageOutput,
    output_root: Path,
    config: LLM2VecConfig,
    template: TextTemplate,
    callback: StepCallback | None,
) -> StageOutput:
    """LLM2Vec's MNTP step on ``upstream``'s item texts: ``mntp.pt`` and its history; versioned by what it reads
    of ``config`` only (its model, MNTP settings, LoRA, training and seed)."""
    stage_fingerprint = fingerprint(
        {"upstream": upstream.fingerprint, "config": config.mntp_part(), "template": template.identity, "code": _code()}
    )

    def build_stage(folder: Path) -> dict[str, Any]:
        texts = render_texts(read_parquet(upstream.file("items.parquet")), template)
        result = train_mntp(texts, config, folder, callback)
        return {
            "dataset": upstream.manifest.get("dataset"),
            "model": config.model,
            "template": template.identity,
            "distinct_texts": len(distinct_texts(texts)),
            "mntp": _summary(result, folder / "mntp_history.json"),
        }

    return run_cached(output_root, "llm2vec_mntp", stage_fingerprint, build_stage)


def lamia_model_stage(
    upstream: StageOutput, output_root: Path, config: LamiaConfig, callback: StepCallback | None = None
) -> StageOutput:
    """LAMIA's LoRA training on ``upstream``'s items, as far as the budget goes (a seeded shuffle's first items):
    ``lamia.pt``, its history, and the config in the manifest (what `lamia_palettes_stage` runs the model with).
    A stage of its own, so an hour of training survives a palette pass that fails or is interrupted."""
    stage_fingerprint = fingerprint(
        {"upstream": upstream.fingerprint, "config": config_to_dict(config), "code": _code()}
    )

    def build_stage(folder: Path) -> dict[str, Any]:
        items = read_parquet(upstream.file("items.parquet"))
        result, trainable = _train_lamia(items, config, folder / LAMIA_CHECKPOINT, callback)
        return {
            "dataset": upstream.manifest.get("dataset"),
            "model": config.model,
            "config": config_to_dict(config),
            "items_trainable": trainable,
            "training": _summary(result, folder / "history.json"),
        }

    return run_cached(output_root, "lamia_model", stage_fingerprint, build_stage)


def lamia_palettes_stage(
    upstream: StageOutput, trained: StageOutput, output_root: Path, batch_size: int = 32
) -> StageOutput:
    """The palette of every item of ``upstream`` with text, from the merged model of a `lamia_model_stage`."""
    stage_fingerprint = fingerprint({"upstream": upstream.fingerprint, "model": trained.fingerprint, "code": _code()})
    config = config_from_dict(LamiaConfig, trained.manifest["config"])

    def build_stage(folder: Path) -> dict[str, Any]:
        items = read_parquet(upstream.file("items.parquet"))
        tokenizer, base = load_base(config.spec)  # inference on the merged model: no LoRA branch per layer
        merged = fold(
            base,
            [read_checkpoint(trained.file(LAMIA_CHECKPOINT))],
            tokenizer.convert_tokens_to_ids(list(config.spec.new_tokens)),
        )
        item_ids, examples = item_examples(items, tokenizer, config, empty_content=True)
        collate = PaletteCollate(tokenizer, config.palette_size)
        start = time.perf_counter()
        palettes = palette_embeddings(merged, collate, examples, batch_size, placement())  # (n, L, D)
        seconds = time.perf_counter() - start
        flat = palettes.reshape(len(palettes), -1)
        write_parquet_atomic(embeddings_table(item_ids, flat), folder / PALETTES)
        return {
            "dataset": upstream.manifest.get("dataset"),
            "model": config.model,
            "model_stage": trained.fingerprint,
            "template": f"lamia:{'+'.join(config.content_fields)}->{'+'.join(config.task_fields)}",
            "dim": int(flat.shape[1]),
            "palette_size": config.palette_size,
            "aspect_dim": int(palettes.shape[2]),
            "items_with_palettes": len(item_ids),
            "palette_items_per_s": round(len(item_ids) / max(seconds, 1e-9), 2),
            "items_trainable": trained.manifest["items_trainable"],
            "training": trained.manifest["training"],
            "nan_vectors": int(np.isnan(flat).any(axis=1).sum()),
        }

    return run_cached(output_root, "lamia_palettes", stage_fingerprint, build_stage)


def _train_lamia(
    items: pl.DataFrame, config: LamiaConfig, path: Path, callback: StepCallback | None
) -> tuple[TrainResult, int]:
    """Train on the items that have at least one task, checkpointing to ``path``: (the run, items trainable)."""
    lm = build(config.spec, seed=config.seed)
    _, examples = item_examples(items, lm.tokenizer, config)
    trainable = [example for example in examples if example.tasks]

    def checkpoint(step: int) -> None:
        save_checkpoint(lm, path, {"step": step, "lamia": config_to_dict(config)})

    def on_step(log: StepLog) -> None:
        if callback is not None:
            callback("lamia", log)

    collate = PaletteCollate(lm.tokenizer, config.palette_size)
    return train(lm.model, trainable, collate, lamia_loss(config), config.training, on_step, checkpoint), len(trainable)


def lamia_table_stages(
    palettes: StageOutput, output_root: Path, config: LamiaQuantizerConfig, run_info: dict[str, Any] | None = None
) -> tuple[StageOutput, StageOutput]:
    """(tokenizer stage, Semantic-ID table stage) of kind ``lamia`` fitted on every item's palette."""
    tokenizer_fingerprint = fingerprint(
        {"embeddings": palettes.fingerprint, "kind": "lamia", "config": config_to_dict(config), "code": _code()}
    )

    def build_tokenizer(folder: Path) -> dict[str, Any]:
        item_ids, vectors = read_embeddings(palettes)
        model, table = quantize_palettes(item_ids, vectors.reshape(len(vectors), config.palette_size, -1), config)
        save_tokenizer(model, folder / TOKENIZER_CHECKPOINT)
        return {
            "kind": model.kind,
            "config": config_to_dict(config),
            "scaling_factor": config.palette_size,
            "embeddings": {"stage": palettes.stage, "fingerprint": palettes.fingerprint},
            "n_items": len(item_ids),
            "collision_rate": collision_report(table)["collision_rate"],
        }

    tokenizer = run_cached(output_root, TOKENIZER_STAGE, tokenizer_fingerprint, build_tokenizer)

    def build_table(folder: Path) -> dict[str, Any]:
        item_ids, vectors = read_embeddings(palettes)
        model = load_lamia_tokenizer(tokenizer)
        table = semantic_id_table(item_ids, encode(model, vectors))
        write_parquet_atomic(table, folder / SEMANTIC_IDS_TABLE)
        return table_manifest(table, model, tokenizer, palettes, 1, None, run_info)

    table_fingerprint = fingerprint(
        {"tokenizer": tokenizer.fingerprint, "embeddings": palettes.fingerprint, "code": _code()}
    )
    return tokenizer, run_cached(output_root, SEMANTIC_IDS_STAGE, table_fingerprint, build_table)


def load_lamia_tokenizer(stage: StageOutput) -> LamiaTokenizer:
    """The fitted tokenizer of a ``lamia`` tokenizer stage (what `ops.quantizers.stage.load_tokenizer` does for
    the kinds `ops.quantizers.kinds` registers)."""
    payload = torch.load(stage.file(TOKENIZER_CHECKPOINT), map_location="cpu", weights_only=True)
    model = LamiaTokenizer(config_from_dict(LamiaQuantizerConfig, payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def _summary(result: TrainResult, history_file: Path) -> dict[str, Any]:
    """What a training run did, for the manifest; the per-step log goes to ``history_file``."""
    write_text_atomic(history_file, json.dumps([asdict(log) for log in result.history], indent=1))
    last = result.history[-1]
    return {
        "steps": len(result.history),
        "examples_seen": sum(log.examples for log in result.history),
        "stopped": result.stopped.value,
        "seconds": round(result.seconds, 1),
        "examples_per_s": round(result.examples_per_s, 3),
        "final_loss": last.loss,
        "final_parts": last.parts,
    }


def _code() -> str:
    return code_version(*CODE)
