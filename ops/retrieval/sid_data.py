"""One split tied to one Semantic-ID table: what every Semantic-ID recommender (TIGER, the decoder-only model)
reads, built once per (split, table).

`SIDData` holds the item token matrix, the users' hashed buckets and the trie of valid IDs. Model inputs are
built from `Examples` views by fancy indexing (no Python per token): ``inputs`` gives a history as tokens
(the optional user token, then each item's Semantic-ID tokens, padding after), the encoder input of TIGER and
the prompt of a decoder-only model alike. `evaluate_search` scores any model's trie-constrained beam search
against the targets, the same way for every model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import polars as pl
from transformers import PreTrainedModel

from ops.retrieval.beam_search import BeamResult, Search, decode_users
from ops.retrieval.metrics import recall_ndcg, target_ranks
from ops.retrieval.sequences import (
    Examples,
    SequenceConfig,
    UserSequences,
    eval_examples,
    padded_histories,
    train_examples,
    user_buckets,
    user_sequences,
)
from ops.retrieval.train import TrainConfig, sample_users
from ops.retrieval.trie import SIDTrie
from ops.retrieval.vocabulary import Vocabulary, history_inputs, item_tokens, table_levels


@dataclass(frozen=True)
class SIDData:
    sequences: UserSequences
    vocabulary: Vocabulary
    tokens: np.ndarray  # (n_items, levels) vocabulary ids of each table row
    buckets: np.ndarray  # (n_users,) user token bucket
    trie: SIDTrie
    config: SequenceConfig

    @classmethod
    def build(cls, split: pl.DataFrame, table: pl.DataFrame, codebook_size: int, config: SequenceConfig) -> SIDData:
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

    def prefixes(self) -> Examples:
        """Every training prefix (target = each train item after the first), up to max_history items each."""
        return train_examples(self.sequences, self.config.max_history)

    def evaluation(self, split: str) -> Examples:
        return eval_examples(self.sequences, split, self.config.max_history)  # type: ignore[arg-type]

    def validation_sample(self, train: TrainConfig) -> Examples:
        """The seeded sample of ``train.eval_users`` validation users scored after every epoch."""
        valid = self.evaluation("valid")
        return valid.subset(sample_users(len(valid), train.eval_users, train.seed))

    def inputs(self, examples: Examples) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask), each (n, T): the examples' histories as tokens, padding after them."""
        histories = padded_histories(self.sequences.items, examples)
        return history_inputs(self.vocabulary, self.tokens, histories, self.buckets[examples.user])

    def with_vocabulary(self, vocabulary: Vocabulary) -> SIDData:
        """The same data in another placement of the same token layout (``first_token``: an LLM's new tokens).

        Tokens move level by level, the trie's level-local transitions stay, so ``inputs``, the trie and the
        beam search speak the new ids; any other layout is refused."""
        if replace(vocabulary, first_token=self.vocabulary.first_token) != self.vocabulary:
            raise ValueError(f"{vocabulary} is not a placement of {self.vocabulary}")
        tokens = self.tokens - self.vocabulary.offsets + vocabulary.offsets  # (n_items, levels)
        trie = SIDTrie(self.trie.transitions, vocabulary)
        return replace(self, vocabulary=vocabulary, tokens=tokens, trie=trie)


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]  # recall@K / ndcg@K over the examples' users
    beams: BeamResult


def evaluate_search(
    model: PreTrainedModel,
    data: SIDData,
    examples: Examples,
    beams: int,
    search: Search,
    batch_size: int,
    inputs: Callable[[Examples], tuple[np.ndarray, np.ndarray]] | None = None,
) -> Evaluation:
    """Top-``beams`` items per example by ``search`` over ``data``'s trie, scored against the targets.

    ``inputs`` makes the prompts (input_ids, attention_mask), each (n, T), padding after; default `SIDData.inputs`
    (the LLM recommender adds its instruction and titles)."""
    input_ids, mask = (inputs or data.inputs)(examples)
    found = decode_users(model, data.trie, input_ids, mask, beams, batch_size, search)
    return Evaluation(recall_ndcg(target_ranks(found.items, examples.target)), found)
