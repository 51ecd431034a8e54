"""A prefix trie of the valid Semantic IDs, stored as one dense lookup array per level.

Level l's array maps (prefix id, level-l id) to the id of the longer prefix, or -1 when no item continues
that way; the last level maps to the item's row in the Semantic-ID table. Beam search then masks invalid
continuations of a whole batch of beams with a single gather per step, with no Python per token. Prefix ids
are dense (level l has as many as there are distinct l-long prefixes, never more than the items), so the
arrays hold at most n_items x level_size entries each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ops.retrieval.vocabulary import PAD_TOKEN, Vocabulary


@dataclass(frozen=True)
class SIDTrie:
    transitions: tuple[torch.Tensor, ...]  # per level: (n_prefixes_l, level_size_l) int64, -1 = no such item
    vocabulary: Vocabulary

    @classmethod
    def build(cls, levels: np.ndarray, vocabulary: Vocabulary) -> SIDTrie:
        """levels (n_items, n_levels) level-local ids, row i = item i; every row must be distinct."""
        if levels.shape[1] != vocabulary.levels or (levels >= np.asarray(vocabulary.level_sizes)).any():
            raise ValueError(f"item ids of shape {levels.shape} do not fit the vocabulary {vocabulary.level_sizes}")
        parent = np.zeros(len(levels), dtype=np.int64)  # (n_items,) prefix id of each item at the current depth
        transitions = []
        for level, size in enumerate(vocabulary.level_sizes):
            key = parent * size + levels[:, level]  # (n_items,) one key per (prefix, id) edge
            edges, child = np.unique(key, return_inverse=True)
            if level == vocabulary.levels - 1:
                if len(edges) != len(levels):
                    raise ValueError("two items share the same Semantic ID (codes and suffix)")
                child = np.arange(len(levels))
            table = np.full((int(parent.max(initial=0)) + 1, size), -1, dtype=np.int64)
            table[parent, levels[:, level]] = child
            transitions.append(torch.from_numpy(table))
            parent = child.ravel()
        return cls(tuple(transitions), vocabulary)

    def to(self, device: torch.device) -> SIDTrie:
        return SIDTrie(tuple(t.to(device) for t in self.transitions), self.vocabulary)

    def lookup(self, ids: Sequence[int]) -> int:
        """Item index of a full tuple of level-local ids, or -1 when it names no item."""
        node = 0
        for level, local in enumerate(ids):
            if not 0 <= local < self.vocabulary.level_sizes[level] or node < 0:
                return -1
            node = int(self.transitions[level][node, local])
        return node if len(ids) == self.vocabulary.levels else -1

    def allowed_tokens(self, decoder_prefix: Sequence[int]) -> list[int]:
        """Vocabulary ids that may follow ``decoder_prefix`` (decoder start token first, as `generate` passes
        it): the shape ``prefix_allowed_tokens_fn`` of `transformers` expects. Empty for a complete or invalid
        prefix."""
        tokens = [int(t) for t in decoder_prefix]
        if tokens[:1] == [PAD_TOKEN]:
            tokens = tokens[1:]
        if len(tokens) >= self.vocabulary.levels:
            return []
        offsets = self.vocabulary.offsets
        node = 0
        for level, token in enumerate(tokens):
            local = token - int(offsets[level])
            if not 0 <= local < self.vocabulary.level_sizes[level]:
                return []
            node = int(self.transitions[level][node, local])
            if node < 0:
                return []
        level = len(tokens)
        return (torch.nonzero(self.transitions[level][node] >= 0).ravel() + int(offsets[level])).tolist()
