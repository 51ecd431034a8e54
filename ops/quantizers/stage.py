"""The tokenizer stage: an embeddings stage version -> a fitted tokenizer checkpoint, cached by fingerprint.

The version hashes (embeddings version, tokenizer kind and config, code of `ops/quantizers`); a hit loads
nothing and trains nothing. The folder holds ``tokenizer.pt`` (config + weights: for RQ-KMeans its PCA layers
and k-means centroids), ``history.json`` (the per-epoch log; one epoch-0 entry for a training-free tokenizer)
and the manifest with the final losses, per-level usage and the collision rate.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ops.caching import StageOutput, code_version, fingerprint, run_cached
from ops.diagnostics.collisions import collision_rate
from ops.embeddings.stage import read_embeddings
from ops.quantizers.autoencoder import Tokenizer
from ops.quantizers.checkpoint import load_checkpoint, save_checkpoint
from ops.quantizers.config import config_to_dict
from ops.quantizers.kinds import TokenizerConfig, kind_of, scaling_factor
from ops.quantizers.train import EpochCallback, train_tokenizer
from ops.tables import write_text_atomic

QUANTIZERS_CODE = Path(__file__).resolve().parent
STAGE = "tokenizer"
CHECKPOINT = "tokenizer.pt"
HISTORY = "history.json"


def tokenizer_fingerprint(config: TokenizerConfig, embeddings: StageOutput) -> str:
    return fingerprint(
        {
            "embeddings": embeddings.fingerprint,
            "kind": kind_of(config),
            "config": config_to_dict(config),
            "code": code_version(QUANTIZERS_CODE),
        }
    )


def train_tokenizer_stage(
    output_root: Path,
    config: TokenizerConfig,
    embeddings: StageOutput,
    callback: EpochCallback | None = None,
) -> StageOutput:
    """Train or fit (or find cached) the tokenizer ``config`` describes on an embeddings stage version."""

    def build(folder: Path) -> dict[str, Any]:
        item_ids, vectors = read_embeddings(embeddings)
        trained = train_tokenizer(config, vectors, callback)
        save_checkpoint(trained.model, folder / CHECKPOINT)
        write_text_atomic(folder / HISTORY, json.dumps([asdict(log) for log in trained.history], indent=1))
        last = trained.history[-1]
        return {
            "kind": kind_of(config),
            "config": config_to_dict(config),
            "scaling_factor": scaling_factor(config),
            "embeddings": {"stage": embeddings.stage, "fingerprint": embeddings.fingerprint},
            "n_items": len(item_ids),
            "train_seconds": round(trained.seconds, 2),
            "loss": last.loss,
            "reconstruction_loss": last.reconstruction_loss,
            "quantization_loss": last.quantization_loss,
            "usage": last.usage,
            "perplexity": last.perplexity,
            "collision_rate": collision_rate(trained.codes),
        }

    return run_cached(output_root, STAGE, tokenizer_fingerprint(config, embeddings), build)


def load_tokenizer(stage: StageOutput) -> Tokenizer:
    """The frozen tokenizer of a tokenizer stage version (eval mode, CPU)."""
    return load_checkpoint(stage.file(CHECKPOINT))
