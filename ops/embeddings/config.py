"""Typed configuration of an embedder, with the presets the pipeline and the tests use."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Pooling(StrEnum):
    MEAN = "mean"  # average over real tokens (LLM2Vec's choice, and sentence-transformers')
    LAST = "last"  # hidden state of the last real token (the only one that saw the whole text in a causal decoder)


# Names `ops.embeddings.models.resolve_model` maps to local files; anything else is a directory or a hub id.
MINILM = "all-MiniLM-L6-v2"
SMOLLM2 = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class EmbedderConfig:
    model: str = SMOLLM2  # a name above, a local model directory, or a hub id (MoC: LLaMA3 via LLM2Vec)
    pooling: Pooling = Pooling.MEAN  # LLM2Vec mean-pools the bidirectional decoder's states
    bidirectional: bool = True  # LLM2Vec: a causal decoder also attends to later tokens; False = causal (decoders only)
    batch_size: int = 32  # texts per forward pass, after length sorting
    max_length: int = 128  # tokens kept per text; Amazon `title; brand; categories` is ~40
    normalize: bool = True  # L2-normalize, so cosine similarity is a dot product downstream

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_length < 2:
            raise ValueError(f"batch_size must be >= 1 and max_length >= 2, got {self}")
        object.__setattr__(self, "pooling", Pooling(self.pooling))  # accept "mean"/"last" from Dagster config


# The sentence-encoder baseline: what `SentenceTransformer("all-MiniLM-L6-v2")` computes.
MINILM_CONFIG = EmbedderConfig(model=MINILM, pooling=Pooling.MEAN, bidirectional=True, batch_size=64, max_length=256)

# Tiny preset for tests and smoke runs: the small always-installed encoder, short inputs, small batches.
TEST_CONFIG = EmbedderConfig(model=MINILM, pooling=Pooling.MEAN, bidirectional=True, batch_size=4, max_length=32)


def llm2vec_config(model_dir: str, batch_size: int = 32, max_length: int = 128) -> EmbedderConfig:
    """The ``llm2vec`` embedder setting: a decoder adapted by `ops.llm.llm2vec.adapt` (its merged model
    directory), read bidirectionally and mean-pooled, as LLM2Vec encodes."""
    return EmbedderConfig(
        str(model_dir), Pooling.MEAN, bidirectional=True, batch_size=batch_size, max_length=max_length
    )
