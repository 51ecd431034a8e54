"""Items table -> one vector per item with text, embedding only texts the cache has not seen."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ops.embeddings.encoder import Embedder, ProgressFn
from ops.embeddings.store import add_vectors, load_vectors, store_dir, text_hash
from ops.embeddings.templates import TextTemplate, render_texts


@dataclass(frozen=True)
class EmbeddingResult:
    item_ids: list[str]  # items with text, in the input order
    vectors: np.ndarray  # float32 (len(item_ids), dim), row i for item_ids[i]
    n_cached: int  # items whose vector came from the cache
    n_computed: int  # items whose vector was computed by this call
    n_texts_computed: int  # distinct texts encoded by this call (items may share a text, hence one vector)
    textless_ids: list[str]  # items with no text (has_text False, or every template field empty): not embedded
    items_per_s: float | None  # n_computed / encoding seconds; None when nothing was computed
    store: Path | None  # the cache directory used, None without a cache


def embed_items(
    items: pl.DataFrame,
    embedder: Embedder,
    template: TextTemplate,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> EmbeddingResult:
    """Embed the rendered text of every item. With ``cache_dir``, texts embedded before (by the same embedder
    set-up and template) are read back instead of recomputed, and new vectors are added to the cache."""
    texts = render_texts(items, template)
    ids = items["item_id"].to_list()
    textless_ids = [item_id for item_id, text in zip(ids, texts, strict=True) if not text]
    kept = [(item_id, text, text_hash(text)) for item_id, text in zip(ids, texts, strict=True) if text]

    directory = store_dir(cache_dir, embedder.identity, template.identity) if cache_dir is not None else None
    known = load_vectors(directory) if directory is not None else {}
    missing = {h: text for _, text, h in kept if h not in known}  # unique new texts, first-seen order

    seconds = 0.0
    if missing:
        start = time.perf_counter()
        new_vectors = embedder.encode(list(missing.values()), progress=progress)  # (len(missing), dim)
        seconds = time.perf_counter() - start
        known.update(zip(missing, new_vectors, strict=True))
        if directory is not None:
            manifest = {"embedder": embedder.identity, "template": template.identity}
            add_vectors(directory, dict(zip(missing, new_vectors, strict=True)), manifest)

    n_computed = sum(1 for _, _, h in kept if h in missing)
    vectors = np.stack([known[h] for _, _, h in kept]) if kept else np.empty((0, embedder.dim), np.float32)
    return EmbeddingResult(
        item_ids=[item_id for item_id, _, _ in kept],
        vectors=vectors,
        n_cached=len(kept) - n_computed,
        n_computed=n_computed,
        n_texts_computed=len(missing),
        textless_ids=textless_ids,
        items_per_s=n_computed / seconds if n_computed else None,
        store=directory,
    )
