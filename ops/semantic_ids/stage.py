"""Semantic-ID table versions: encode items with a frozen tokenizer and write immutable, versioned Parquet.

A first version encodes every embedded item (`semantic_ids_stage`). When the catalogue changes, the next version
keeps the same frozen checkpoint (`append_items_stage`): items still in the catalogue keep their Semantic ID, new
ones are encoded alone and appended, and items that left are moved to ``retired_items.parquet`` with their ID
reserved, so an item that comes back gets its old ID and no other item ever takes it. The manifest names the
parent version; the parent's folder is never touched. `next_table_version` picks what a run needs: the same
version, an appended one, or (under another tokenizer) a fresh first version. Versions are content-addressed by
the caching contract, so a downstream stage names the exact table it read.

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

from ops.caching import StageOutput, code_version, existing_version, fingerprint, run_cached
from ops.diagnostics.usage import level_usage
from ops.embeddings.stage import read_embeddings
from ops.quantizers.autoencoder import Tokenizer
from ops.quantizers.stage import STAGE as TOKENIZER_STAGE
from ops.quantizers.stage import load_tokenizer
from ops.semantic_ids.table import SCHEMA, collision_report, extend_table, semantic_id_table, table_codes
from ops.tables import read_parquet, write_parquet_atomic

SEMANTIC_IDS_CODE = Path(__file__).resolve().parent
STAGE = "semantic_ids"
TABLE = "semantic_ids.parquet"
RETIRED = "retired_items.parquet"  # items that left the catalogue: their Semantic IDs stay reserved
SOURCES = (SEMANTIC_IDS_CODE / "stage.py", SEMANTIC_IDS_CODE / "table.py")  # the code a table version depends on


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
    """The next version under ``previous``'s frozen tokenizer, for the items of ``embeddings``.

    Items of ``previous`` still embedded keep their row (even if their text changed since: an ID is stable);
    retired items that are embedded again get their reserved row back; only items never seen are encoded, and
    their suffixes continue after every ID used so far, retired ones included.
    """
    version_fingerprint = fingerprint(
        {"parent": previous.fingerprint, "embeddings": embeddings.fingerprint, "code": _code()}
    )
    tokenizer = _tokenizer_of(output_root, previous)

    def build(folder: Path) -> dict[str, Any]:
        reserved = read_retired(previous)
        known = pl.concat([read_table(previous), reserved])
        item_ids, vectors = read_embeddings(embeddings)
        known_ids = set(known["item_id"].to_list())
        new_rows = [i for i, item_id in enumerate(item_ids) if item_id not in known_ids]
        model = load_tokenizer(tokenizer)
        every = extend_table(known, [item_ids[i] for i in new_rows], encode(model, vectors[new_rows]))
        current = every.filter(pl.col("item_id").is_in(item_ids))
        retired = every.filter(~pl.col("item_id").is_in(item_ids))
        write_parquet_atomic(current, folder / TABLE)
        write_parquet_atomic(retired, folder / RETIRED)
        version = previous.manifest["version"] + 1
        manifest = table_manifest(current, model, tokenizer, embeddings, version, previous.fingerprint, run_info)
        returned = reserved["item_id"].is_in(item_ids).sum()
        return {
            **manifest,
            "n_new_items": len(new_rows),
            "n_returned_items": int(returned),
            "n_retired_items": len(retired),
        }

    return run_cached(output_root, STAGE, version_fingerprint, build)


def next_table_version(
    output_root: Path,
    tokenizer: StageOutput,
    embeddings: StageOutput,
    previous: StageOutput | None,
    run_info: Mapping[str, Any] | None = None,
) -> StageOutput:
    """The table a run should publish, given the version it published last (``previous``, None for the first).

    Same tokenizer and embeddings: ``previous`` itself (nothing to do). Same tokenizer, other embeddings (items
    added, removed or re-embedded): a version appended to ``previous``, so every kept item keeps its ID. Another
    tokenizer (retrained, or another config): a first version, since old codes mean nothing under new codebooks.
    """
    if previous is not None and previous.manifest["tokenizer"]["fingerprint"] == tokenizer.fingerprint:
        if previous.manifest["embeddings"]["fingerprint"] == embeddings.fingerprint:
            return previous
        return append_items_stage(output_root, previous, embeddings, run_info)
    return semantic_ids_stage(output_root, tokenizer, embeddings, run_info)


def read_table(stage: StageOutput) -> pl.DataFrame:
    return read_parquet(stage.file(TABLE))


def read_retired(stage: StageOutput) -> pl.DataFrame:
    """The retired items of a version (their reserved IDs); none for a first version."""
    path = stage.file(RETIRED)
    return read_parquet(path) if path.is_file() else pl.DataFrame(schema=SCHEMA)


def _tokenizer_of(output_root: Path, table: StageOutput) -> StageOutput:
    """The tokenizer stage version that encoded ``table``."""
    return existing_version(output_root, TOKENIZER_STAGE, table.manifest["tokenizer"]["fingerprint"])


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
    return code_version(*SOURCES)
