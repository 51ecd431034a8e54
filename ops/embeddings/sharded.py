"""An `Embedder` whose forward passes run on an executor's workers, each loading the model once.

The driver tokenizes and cuts the texts into the same length-sorted batches `TransformerEmbedder.encode` makes;
workers receive whole batches and return their vectors, which land at the batches' indices. A batch is computed
exactly as in-process, so the vectors match the local path (to float rounding of the worker's thread count).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from ops.compute import Executor
from ops.embeddings.batching import length_sorted_batches
from ops.embeddings.config import EmbedderConfig
from ops.embeddings.encoder import ProgressFn, TransformerEmbedder, embedder_identity, load_tokenizer, tokenize

SHARDS_PER_WORKER = 4  # shards per worker: small enough to even out slow workers, large enough to amortize a call


class ShardedEmbedder:
    def __init__(self, config: EmbedderConfig, executor: Executor) -> None:
        self.config = config
        self.executor = executor
        self.tokenizer = load_tokenizer(config)
        self._dim: int | None = None

    @property
    def identity(self) -> str:
        return embedder_identity(self.config)

    @property
    def dim(self) -> int:
        """The vector size: known after the first `encode`; before it, one worker loads the model to tell."""
        if self._dim is None:
            (self._dim,) = self.executor.map(_model_dim, [self.config])
        return self._dim

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        token_ids = tokenize(self.tokenizer, texts, self.config.max_length)
        batches = length_sorted_batches([len(ids) for ids in token_ids], self.config.batch_size)
        shards = _contiguous(batches, self.executor.workers * SHARDS_PER_WORKER)
        work = [[[token_ids[i] for i in batch] for batch in shard] for shard in shards]
        make = partial(TransformerEmbedder, self.config)
        vectors: np.ndarray | None = None
        done = 0
        for shard, results in zip(shards, self.executor.map_with_state(make, _embed_shard, work), strict=True):
            for batch, batch_vectors in zip(shard, results, strict=True):
                if vectors is None:
                    vectors = np.empty((len(token_ids), batch_vectors.shape[1]), dtype=np.float32)  # (n, dim)
                vectors[batch] = batch_vectors
                done += len(batch)
            if progress is not None:
                progress(done, len(token_ids))
        if vectors is None:
            return np.empty((0, self.dim), dtype=np.float32)
        self._dim = vectors.shape[1]
        return vectors


def _contiguous(batches: list[np.ndarray], n_shards: int) -> list[list[np.ndarray]]:
    """``batches`` cut into at most ``n_shards`` runs of neighbouring batches (similar lengths stay together)."""
    size = -(-len(batches) // max(1, n_shards))
    return [batches[start : start + size] for start in range(0, len(batches), size)]


def _embed_shard(embedder: TransformerEmbedder, shard: list[list[list[int]]]) -> list[np.ndarray]:
    return embedder.embed_batches(shard)


def _model_dim(config: EmbedderConfig) -> int:
    return TransformerEmbedder(config).dim
