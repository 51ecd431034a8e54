"""TIGER end to end on numpy sequences: batches of token ids, the training task, and top-K recommendation.

`TigerData` ties one split to one Semantic-ID table: the item token matrix, the users' hashed buckets, and
the trie of valid IDs. Batches are built from `Examples` views by fancy indexing (no Python per token), in
length-sorted pools so padding stays small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from transformers import T5ForConditionalGeneration

from ops.device import placement
from ops.retrieval.beam_search import BeamResult, decode_users
from ops.retrieval.cpu_training import prepare_for_cpu_training
from ops.retrieval.metrics import recall_ndcg, target_ranks
from ops.retrieval.model import TIGERConfig, build_tiger
from ops.retrieval.sequences import (
    Examples,
    SequenceConfig,
    UserSequences,
    eval_examples,
    length_batches,
    padded_histories,
    train_examples,
    user_buckets,
    user_sequences,
)
from ops.retrieval.train import EpochCallback, FitResult, Task, fit, sample_users
from ops.retrieval.trie import SIDTrie
from ops.retrieval.vocabulary import Vocabulary, encoder_inputs, item_tokens, table_levels

# users per beam-search batch: x beams rows whose copied cross-attention cache stays in CPU cache (2x faster than 256)
DECODE_BATCH = 32
VALID_BEAMS = 20  # beams of the per-epoch validation (Recall@10 needs at least 10)


@dataclass(frozen=True)
class TigerData:
    sequences: UserSequences
    vocabulary: Vocabulary
    tokens: np.ndarray  # (n_items, levels) vocabulary ids of each table row
    buckets: np.ndarray  # (n_users,) user token bucket
    trie: SIDTrie
    config: SequenceConfig

    @classmethod
    def build(cls, split: pl.DataFrame, table: pl.DataFrame, codebook_size: int, config: SequenceConfig) -> TigerData:
        """Items are indexed by their row in ``table`` (the Semantic-ID table, sorted by item id)."""
        vocabulary = Vocabulary.for_table(table, codebook_size, config.user_buckets)
        levels = table_levels(table)
        sequences = user_sequences(split, table["item_id"].to_list())
        return cls(
            sequences,
            vocabulary,
            item_tokens(vocabulary, levels),
            user_buckets(sequences.user_ids, config.user_buckets),
            SIDTrie.build(levels, vocabulary),
            config,
        )

    def train(self) -> Examples:
        return train_examples(self.sequences, self.config.max_history)

    def evaluation(self, split: str) -> Examples:
        return eval_examples(self.sequences, split, self.config.max_history)  # type: ignore[arg-type]

    def inputs(self, examples: Examples) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask), each (n, T): the examples' histories as encoder tokens."""
        histories = padded_histories(self.sequences.items, examples)
        return encoder_inputs(self.vocabulary, self.tokens, histories, self.buckets[examples.user])


def training_task(
    model: T5ForConditionalGeneration, data: TigerData, train: Examples, valid: Examples, batch_size: int
) -> Task[Examples]:
    """Teacher-forced cross-entropy on the target's tokens; validation = beam-search Recall/NDCG."""
    device = next(model.parameters()).device

    def loss(batch: Examples) -> tuple[torch.Tensor, int]:
        input_ids, mask = data.inputs(batch)
        labels = torch.from_numpy(data.tokens[batch.target]).to(device)  # (b, levels)
        output = model(
            input_ids=torch.from_numpy(input_ids).to(device),
            attention_mask=torch.from_numpy(mask).to(device),
            labels=labels,
            use_cache=False,  # teacher forcing needs no key/value cache; building one costs a concatenation per layer
        )
        return output.loss, len(batch)

    return Task(
        batches=lambda rng: (train.subset(rows) for rows in length_batches(train.length, batch_size, rng)),
        loss=loss,
        validate=lambda: evaluate(model, data, valid, beams=VALID_BEAMS).metrics,
    )


def train_tiger(
    config: TIGERConfig, data: TigerData, callback: EpochCallback | None = None
) -> tuple[T5ForConditionalGeneration, FitResult]:
    """Build TIGER for ``data``'s vocabulary and fit it; validation on a seeded sample of validation users."""
    device = placement().device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.train.seed)
        model = build_tiger(config, data.vocabulary).to(device)
    if device.type == "cpu":  # GPUs fuse dropout, attention and casts already (see ops/retrieval/cpu_training.py)
        prepare_for_cpu_training(model)
    valid = data.evaluation("valid")
    valid = valid.subset(sample_users(len(valid), config.train.eval_users, config.train.seed))
    task = training_task(model, data, data.train(), valid, config.train.batch_size)
    return model, fit(model, task, config.train, callback)


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]  # recall@K / ndcg@K over the examples' users
    beams: BeamResult


def evaluate(model: T5ForConditionalGeneration, data: TigerData, examples: Examples, beams: int) -> Evaluation:
    """Top-``beams`` items per example by trie-constrained beam search, scored against the targets."""
    input_ids, mask = data.inputs(examples)
    found = decode_users(model, data.trie, input_ids, mask, beams, DECODE_BATCH)
    return Evaluation(recall_ndcg(target_ranks(found.items, examples.target)), found)
