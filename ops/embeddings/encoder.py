"""The embedding interface, and its one implementation for any transformers model.

A sentence encoder (MiniLM), a causal decoder (SmolLM2, OPT, LLaMA) and an LLM2Vec-style bidirectional decoder
differ only in configuration: the same ``AutoTokenizer`` + ``AutoModel`` load from a local directory or a hub id,
the same length-sorted batching, the same pooling. Keeping one code path means what the tests prove on a tiny
local OPT and on SmolLM2 holds for a hub LLaMA too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from ops.device import Placement, placement
from ops.embeddings.attention import attends_to_future, make_bidirectional
from ops.embeddings.batching import length_sorted_batches, pad_batch
from ops.embeddings.config import EmbedderConfig
from ops.embeddings.forward import hidden_states
from ops.embeddings.models import resolve_model
from ops.embeddings.pooling import pool

ProgressFn = Callable[[int, int], None]  # (texts done, texts in total), called after every batch


class Embedder(Protocol):
    dim: int

    @property
    def identity(self) -> str:
        """Everything that determines the vectors (not how fast they are made): caches are keyed by it."""
        ...

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        """float32 (len(texts), dim), row i embedding texts[i]."""
        ...


def embedder_identity(config: EmbedderConfig) -> str:
    """Everything in ``config`` that determines the vectors (batch size only changes speed)."""
    settings = {k: v for k, v in asdict(config).items() if k != "batch_size"}
    return json.dumps(settings, sort_keys=True)


def load_tokenizer(config: EmbedderConfig) -> PreTrainedTokenizerBase:
    """The model's tokenizer, with a pad token (LLaMA tokenizers have none; pads are masked, any id will do)."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.model))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length``; one call lets the fast tokenizer use every core."""
    if not texts:  # the fast tokenizer fails on an empty batch
        return []
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


class TransformerEmbedder:
    """Mean or last-token pooled states of a transformers model, optionally made bidirectional (LLM2Vec)."""

    def __init__(self, config: EmbedderConfig, where: Placement | None = None) -> None:
        self.config = config
        self.where = where or placement()
        source = resolve_model(config.model)
        self.tokenizer = load_tokenizer(config)
        self.model = AutoModel.from_pretrained(source, dtype=self.where.dtype).to(self.where.device).eval()
        self.model.config.use_cache = False  # one forward per text: a KV cache would only cost memory
        if attends_to_future(self.model) != config.bidirectional:
            if not config.bidirectional:
                raise ValueError(f"{config.model} is an encoder; it cannot be made causal (set bidirectional=True)")
            make_bidirectional(self.model)
        self.dim = self.embed_batch([[self.tokenizer.pad_token_id]]).shape[1]

    @property
    def identity(self) -> str:
        return embedder_identity(self.config)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return tokenize(self.tokenizer, texts, self.config.max_length)

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        token_ids = self.tokenize(texts)
        vectors = np.empty((len(token_ids), self.dim), dtype=np.float32)  # (n, dim)
        done = 0
        with tqdm(total=len(token_ids), desc=f"embed {self.config.model}", unit="text", disable=None) as bar:
            for batch in length_sorted_batches([len(ids) for ids in token_ids], self.config.batch_size):
                vectors[batch] = self.embed_batch([token_ids[i] for i in batch])
                done += len(batch)
                bar.update(len(batch))
                if progress is not None:
                    progress(done, len(token_ids))
        return vectors

    def embed_batches(self, batches: Sequence[Sequence[Sequence[int]]]) -> list[np.ndarray]:
        """`embed_batch` of each batch: the unit of work a remote worker receives (`sharded.ShardedEmbedder`)."""
        return [self.embed_batch(batch) for batch in batches]

    @torch.inference_mode()
    def embed_batch(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """float32 (batch, dim) for one batch of token id lists."""
        input_ids, mask = pad_batch(token_ids, self.tokenizer.pad_token_id, self.tokenizer.padding_side)
        input_ids, mask = input_ids.to(self.where.device), mask.to(self.where.device)  # (batch, seq)
        states = hidden_states(self.model, input_ids, mask).float()  # (batch, seq, dim); pool in float32
        pooled = pool(states, mask, self.config.pooling)  # (batch, dim)
        if self.config.normalize:
            pooled = F.normalize(pooled, dim=-1)
        return pooled.cpu().numpy()
