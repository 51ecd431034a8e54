"""The embeddings stage: items of an ingested data set -> one versioned table of item vectors.

The stage version hashes (upstream version, embedder config, template, code). A cache hit loads no model at
all. A miss still reuses every vector whose exact text was embedded before by the same set-up (the per-text
store under ``<output_root>/embedding_store``), so re-indexing after adding or editing items embeds only those.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ops.caching import StageOutput, code_version, fingerprint, run_cached
from ops.compute import Executor, LocalExecutor
from ops.embeddings.config import EmbedderConfig
from ops.embeddings.encoder import Embedder, ProgressFn, TransformerEmbedder
from ops.embeddings.items import embed_items
from ops.embeddings.sharded import ShardedEmbedder
from ops.embeddings.templates import TextTemplate
from ops.tables import read_parquet, write_parquet_atomic

EMBEDDINGS_CODE = Path(__file__).resolve().parent
STORE = "embedding_store"
TABLE = "embeddings.parquet"


def embeddings_table(item_ids: list[str], vectors: np.ndarray) -> pl.DataFrame:
    """``item_id`` + ``vector`` (fixed-size float32 array), the layout every tokenizer reads."""
    return pl.DataFrame({"item_id": item_ids, "vector": np.ascontiguousarray(vectors, dtype=np.float32)})


def read_embeddings(stage: StageOutput) -> tuple[list[str], np.ndarray]:
    """Item ids and their float32 (n, dim) matrix from an embeddings stage version."""
    table = read_parquet(stage.file(TABLE))
    return table["item_id"].to_list(), table["vector"].to_numpy().astype(np.float32, copy=False)


def embed(
    upstream: StageOutput,
    output_root: Path,
    config: EmbedderConfig,
    template: TextTemplate,
    progress: ProgressFn | None = None,
    executor: Executor | None = None,
) -> StageOutput:
    """Embed the items of an ingested data set (its k-core or normalized tables).

    ``executor`` says where the forward passes run (in process by default); it is not part of the fingerprint,
    since every executor gives the same table.
    """
    stage_fingerprint = fingerprint(
        {
            "upstream": upstream.fingerprint,
            "config": asdict(config),
            "template": template.identity,
            "code": code_version(EMBEDDINGS_CODE),
        }
    )

    def build(folder: Path) -> dict[str, Any]:
        items = read_parquet(upstream.file("items.parquet"))
        embedder = _embedder(config, executor or LocalExecutor())
        result = embed_items(items, embedder, template, cache_dir=output_root / STORE, progress=progress)
        write_parquet_atomic(embeddings_table(result.item_ids, result.vectors), folder / TABLE)
        write_parquet_atomic(
            pl.DataFrame({"item_id": result.textless_ids}, schema={"item_id": pl.String}),
            folder / "textless_items.parquet",
        )
        norms = np.linalg.norm(result.vectors, axis=1) if len(result.vectors) else np.zeros(0)
        return {
            "dataset": upstream.manifest.get("dataset"),
            "model": config.model,
            "template": template.identity,
            "dim": int(embedder.dim),
            "items_embedded": len(result.item_ids),
            "textless_items": len(result.textless_ids),
            "vectors_from_store": result.n_cached,
            "vectors_computed": result.n_computed,
            "distinct_texts_computed": result.n_texts_computed,
            "items_per_s": round(result.items_per_s, 1) if result.items_per_s else 0.0,
            "nan_vectors": int(np.isnan(result.vectors).any(axis=1).sum()),
            "norm_min": float(norms.min()) if len(norms) else 0.0,
            "norm_max": float(norms.max()) if len(norms) else 0.0,
        }

    return run_cached(output_root, "embeddings", stage_fingerprint, build)


def _embedder(config: EmbedderConfig, executor: Executor) -> Embedder:
    """The model in this process for the local executor; otherwise one copy per worker of ``executor``."""
    return TransformerEmbedder(config) if isinstance(executor, LocalExecutor) else ShardedEmbedder(config, executor)
