"""Semantic-ID table versions: encode items with a frozen tokenizer and write immutable, versioned Parquet.

A first version encodes every embedded item (`semantic_ids_stage`). Items added to the catalogue later are
encoded with the same frozen checkpoint and appended as a NEW version whose manifest names its parent
(`append_items_stage`); the parent's folder is never touched, and old items keep their IDs. Versions are
content-addressed by the caching contract, so a downstream stage names the exact table it read.

Codes are computed on the CPU whatever device trained the tokenizer: the CPU is the reference for frozen
assignment, so a version's codes never depend on which machine appended it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from ops.caching import StageOutput, code_version, fingerprint, read_manifest, run_cached
from ops.diagnostics.usage import level_usage
from ops.embeddings.stage import read_embeddings
from ops.quantizers.autoencoder import Tokenizer
from ops.quantizers.stage import STAGE as TOKENIZER_STAGE
from ops.quantizers.stage import load_tokenizer
from ops.semantic_ids.table import collision_report, extend_table, semantic_id_table, table_codes
from ops.tables import read_parquet, write_parquet_atomic

SEMANTIC_IDS_CODE = Path(__file__).resolve().parent
STAGE = "semantic_ids"
TABLE = "semantic_ids.parquet"


def semantic_ids_stage(
    output_root: Path,
    tokenizer: StageOutput,
    embeddings: StageOutput,
    run_info: Mapping[str, Any] | None = None,
) -> StageOutput:
    """Version 1 of the table: every item of ``embeddings`` encoded by the ``tokenizer`` stage's checkpoint.

    ``run_info`` (e.g. the MLflow run id) is stored in the manifest but not fingerprinted: it describes the
    run that made the version, not its content.
    """
    version_fingerprint = fingerprint(
        {"tokenizer": tokenizer.fingerprint, "embeddings": embeddings.fingerprint, "code": _code()}
    )

    def build(folder: Path) -> dict[str, Any]:
        item_ids, vectors = read_embeddings(embeddings)
        model = load_tokenizer(tokenizer)
        table = semantic_id_table(item_ids, encode(model, vectors))
        write_parquet_atomic(table, folder / TABLE)
        return table_manifest(table, model, tokenizer, embeddings, version=1, parent=None, run_info=run_info)

    return run_cached(output_root, STAGE, version_fingerprint, build)


def append_items_stage(
    output_root: Path,
    previous: StageOutput,
    embeddings: StageOutput,
    run_info: Mapping[str, Any] | None = None,
) -> StageOutput:
    """A new version: ``previous`` plus the items of ``embeddings`` it lacks, encoded by the same frozen
    tokenizer (items already in ``previous`` keep their row, even if their embedding changed since)."""
    version_fingerprint = fingerprint(
        {"parent": previous.fingerprint, "embeddings": embeddings.fingerprint, "code": _code()}
    )
    tokenizer_fingerprint = previous.manifest["tokenizer"]["fingerprint"]
    tokenizer_folder = Path(output_root) / TOKENIZER_STAGE / tokenizer_fingerprint
    tokenizer = StageOutput(
        TOKENIZER_STAGE, tokenizer_fingerprint, str(tokenizer_folder), read_manifest(tokenizer_folder)
    )

    def build(folder: Path) -> dict[str, Any]:
        old = read_table(previous)
        item_ids, vectors = read_embeddings(embeddings)
        known = set(old["item_id"].to_list())
        new_rows = [i for i, item_id in enumerate(item_ids) if item_id not in known]
        model = load_tokenizer(tokenizer)
        codes = encode(model, vectors[new_rows])
        table = extend_table(old, [item_ids[i] for i in new_rows], codes)
        write_parquet_atomic(table, folder / TABLE)
        version = previous.manifest["version"] + 1
        manifest = table_manifest(table, model, tokenizer, embeddings, version, previous.fingerprint, run_info)
        return {**manifest, "n_new_items": len(new_rows)}

    return run_cached(output_root, STAGE, version_fingerprint, build)


def read_table(stage: StageOutput) -> pl.DataFrame:
    return read_parquet(stage.file(TABLE))


def encode(model: Tokenizer, vectors: np.ndarray) -> np.ndarray:
    """Frozen assignment on the CPU: vectors (n, input_dim) -> int64 codes (n, n_codes)."""
    model = model.cpu()
    if len(vectors) == 0:
        return np.zeros((0, model.n_codes), dtype=np.int64)
    return model.encode_codes(torch.tensor(vectors, dtype=torch.float32)).numpy()  # a copy: inputs may be read-only


def table_manifest(
    table: pl.DataFrame,
    model: Tokenizer,
    tokenizer: StageOutput,
    embeddings: StageOutput,
    version: int,
    parent: str | None,
    run_info: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """What a downstream stage or a reader needs to trust a table: provenance, usage and collisions.

    The codebook size is the frozen ``model``'s: every tokenizer kind has one, whatever its config calls it.
    """
    codebook_size = model.codebook_size
    return {
        "version": version,
        "parent": parent,
        "tokenizer": {
            "stage": tokenizer.stage,
            "fingerprint": tokenizer.fingerprint,
            "kind": tokenizer.manifest["kind"],
            "config": tokenizer.manifest["config"],
        },
        "scaling_factor": tokenizer.manifest["scaling_factor"],
        "embeddings": {
            "stage": embeddings.stage,
            "fingerprint": embeddings.fingerprint,
            **{key: embeddings.manifest.get(key) for key in ("dataset", "model", "template", "dim")},
        },
        "n_items": len(table),
        "codebook_size": codebook_size,
        "code_usage": level_usage(table_codes(table), codebook_size) if len(table) else {},
        "collisions": collision_report(table),
        "run": dict(run_info or {}),
    }


def _code() -> str:
    return code_version(SEMANTIC_IDS_CODE)
