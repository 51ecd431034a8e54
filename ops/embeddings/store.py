"""Incremental vector cache: each vector is stored under the hash of the exact text it embeds.

One directory per embedding set-up (model, pooling, attention, max length, normalization, template), named by a
fingerprint of it, holding ``vectors.parquet`` (``text_hash``, ``vector``) and a readable ``manifest.json``.
Keying vectors by text rather than by item id means an edited item misses the cache (its text changed), an
added one misses it, and everything else hits it, with no bookkeeping; identical texts share one vector.
Files are replaced atomically (temp file + ``os.replace``), so a crash never leaves a half-written cache, and
additions are merged under the set-up's lock file with whatever other runs added meanwhile (`add_vectors`), so
parallel runs never drop one another's vectors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from ops.locks import file_lock
from ops.tables import write_parquet_atomic, write_text_atomic

STORE_VERSION = 1  # bump when pooling/normalization code changes what a given set-up produces
VECTORS = "vectors.parquet"
MANIFEST = "manifest.json"
LOCK = ".lock"


def text_hash(text: str) -> str:
    """Content key of one rendered text (128 bits of SHA-256: no collision in any catalogue)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def store_dir(cache_dir: Path, embedder_identity: str, template_identity: str) -> Path:
    """The directory of one set-up: a fingerprint of what determines the vectors."""
    setup = {"embedder": embedder_identity, "template": template_identity, "store_version": STORE_VERSION}
    fingerprint = hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / fingerprint


def load_vectors(directory: Path) -> dict[str, np.ndarray]:
    """text hash -> float32 vector (dim,); empty when nothing is cached yet."""
    path = directory / VECTORS
    if not path.is_file():
        return {}
    table = pl.read_parquet(path)
    vectors = table["vector"].to_numpy().astype(np.float32, copy=False)  # (n, dim)
    return dict(zip(table["text_hash"].to_list(), vectors, strict=True))


def save_vectors(directory: Path, hashes: Sequence[str], vectors: np.ndarray, manifest: dict[str, object]) -> None:
    """Replace the set-up's cache with these rows (callers pass old and new rows together)."""
    table = pl.DataFrame({"text_hash": list(hashes), "vector": np.ascontiguousarray(vectors, dtype=np.float32)})
    write_parquet_atomic(table, directory / VECTORS)
    text = json.dumps({**manifest, "n_vectors": len(hashes), "dim": int(vectors.shape[1])}, indent=2) + "\n"
    write_text_atomic(directory / MANIFEST, text)


def add_vectors(directory: Path, new: dict[str, np.ndarray], manifest: dict[str, object]) -> None:
    """Add ``new`` (text hash -> vector) to the store: read, merge and replace under the store's lock.

    The read happens inside the lock, so vectors another run saved after this run first loaded the store are
    kept; the slow part (encoding) stays outside it.
    """
    with file_lock(directory / LOCK):
        known = load_vectors(directory)
        known.update(new)
        save_vectors(directory, list(known), np.stack(list(known.values())), manifest)
