"""Semantic-ID tokens inside a pretrained LLM's vocabulary: their names, where their ids land, their first rows.

One new token per (level, code), per collision-suffix value and per user bucket, named as LC-Rec names them:
``<a_12>`` is code 12 at level 0, ``<b_3>`` code 3 at level 1, the last level's letter names the collision
suffix, ``<u_7>`` is user bucket 7. They are added to the tokenizer as special tokens: never split into
sub-words, and no text is ever tokenized into them.

`SIDTokenMap` is the one mapping between the Semantic-ID layout (`ops.retrieval.vocabulary`, level 0 at
FIRST_TOKEN) and the LLM's ids. The tokenizer appends the new tokens in layout order, so they take consecutive
ids from its first free one (``first_id``) and the map is a shift: layout id ``t`` is LLM id
``t - FIRST_TOKEN + first_id``. ``SIDTokenMap.vocabulary`` is the same layout placed at ``first_id``;
`SIDData.with_vocabulary` moves the data there, and the trie, the cached beam search and ``causal.py`` then read
and write the LLM's own ids with no translation step.

New rows (`initialise_rows`), the default ``mean``: every new row is the mean of the pretrained rows plus ``spread``
x their RMS deviation from that mean x standard Gaussian noise (Hewitt, "Initializing New Word Embeddings for
Pretrained Language Models", 2021). The mean gives each new token the average token's logit under a tied head, so
the pretrained next-token distribution is barely moved and no new token starts out dominating the softmax; the noise
only breaks ties between tokens of one level. The option ``codes`` replaces that noise on the code levels by the
tokenizer's code vectors (their principal coordinates turned into the LLM's width by a seeded random rotation,
`ops.retrieval.decoder.init_from_code_vectors`), at the same spread: distances between codes are kept up to one
scale, so codes close in the tokenizer's space start close in the LLM's. ``mean`` is the default because it needs
nothing but the LLM (any table works, a hand-written one or one whose tokenizer keeps no codebooks); the
decoder-only model's same option (``init_from_codes``) is off too, no gain having been shown. ``bench/llm_rec.py``
measures both (``+codes``).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ops.retrieval.decoder import INIT_STD, init_from_code_vectors
from ops.retrieval.vocabulary import FIRST_TOKEN, Vocabulary

USER_LETTER = "u"  # user-bucket tokens: <u_0>, <u_1>, ...


class NewRows(StrEnum):
    """How the new tokens' embedding rows start (see the module docstring)."""

    MEAN = "mean"  # mean of the pretrained rows + spread x their RMS deviation x noise
    CODES = "codes"  # code levels: the tokenizer's code vectors in place of the noise


def level_letter(level: int) -> str:
    """a, b, c, ... for levels 0, 1, 2, ...; ``u`` is kept for user buckets."""
    letters = [letter for letter in string.ascii_lowercase if letter != USER_LETTER]
    if level >= len(letters):
        raise ValueError(f"no token letter for level {level} (at most {len(letters)} levels)")
    return letters[level]


def token_strings(layout: Vocabulary) -> tuple[str, ...]:
    """Every new token in layout order: each level's codes, then the user buckets."""
    items = tuple(
        f"<{level_letter(level)}_{code}>" for level, size in enumerate(layout.level_sizes) for code in range(size)
    )
    return items + tuple(f"<{USER_LETTER}_{bucket}>" for bucket in range(layout.user_buckets))


@dataclass(frozen=True)
class SIDTokenMap:
    """The Semantic-ID layout and the LLM id of its first token: every other id follows from them."""

    layout: Vocabulary  # the Semantic-ID layout at FIRST_TOKEN (what `SIDData.build` makes)
    first_id: int  # the LLM's id of the first new token (``<a_0>``)

    def __post_init__(self) -> None:
        if self.layout.first_token != FIRST_TOKEN:
            raise ValueError(f"the layout must start at FIRST_TOKEN, got {self.layout}")

    @classmethod
    def from_tokenizer(cls, layout: Vocabulary, tokenizer: PreTrainedTokenizerBase) -> SIDTokenMap:
        """The map of a tokenizer that holds ``layout``'s tokens; refused unless they are consecutive in layout
        order (the shift above would be wrong) and all special (a text could otherwise be split into them)."""
        names = token_strings(layout)
        ids = tokenizer.convert_tokens_to_ids(list(names))
        if ids != list(range(ids[0], ids[0] + len(names))):
            raise ValueError(f"the tokenizer's Semantic-ID tokens are missing or not consecutive: {ids[:5]} ...")
        if not set(names) <= set(tokenizer.all_special_tokens):
            raise ValueError("the Semantic-ID tokens must be special tokens of the tokenizer (never split)")
        return cls(layout, ids[0])

    @property
    def tokens(self) -> tuple[str, ...]:
        return token_strings(self.layout)

    @property
    def vocabulary(self) -> Vocabulary:
        """The layout placed at the LLM's ids: what the trie, the beam search and the data use."""
        return replace(self.layout, first_token=self.first_id)

    @property
    def ids(self) -> range:
        """The LLM ids of every new token."""
        return range(self.first_id, self.vocabulary.size)

    def to_layout(self, ids: np.ndarray) -> np.ndarray:
        """LLM ids -> the layout's ids (any shape); an id that is no new token becomes -1, which no layout has."""
        new = (ids >= self.ids.start) & (ids < self.ids.stop)
        return np.where(new, ids - self.first_id + FIRST_TOKEN, -1)


def initialise_rows(
    model: PreTrainedModel,
    tokens: SIDTokenMap,
    spread: float,
    seed: int,
    code_vectors: list[np.ndarray] | None = None,
) -> None:
    """Set the new tokens' rows of the input embedding (and of an untied output head) in place: the mean of the
    rows below them + ``spread`` x their RMS deviation from it x a direction per token (standard Gaussian noise;
    with ``code_vectors``, per code level (codebook_size, dim), the code levels' directions come from them). One
    scale for every dimension, so directions keep their distances up to scale."""
    embedding = model.get_input_embeddings().weight  # (rows, dim)
    head = model.get_output_embeddings()
    matrices = [embedding] if head is None or head.weight is embedding else [embedding, head.weight]
    ids = tokens.ids
    directions = torch.randn(len(ids), embedding.shape[1], generator=torch.Generator().manual_seed(seed))
    if code_vectors is not None:
        vocabulary = tokens.vocabulary
        init_from_code_vectors(model, vocabulary, code_vectors, seed)  # code rows: std INIT_STD per level
        codes = int(vocabulary.offsets[-1]) - ids.start  # rows of the code levels (the suffix level follows)
        directions[:codes] = embedding.detach()[ids.start : ids.start + codes].float() / INIT_STD
    with torch.no_grad():
        for weight in matrices:
            old = weight[: ids.start].float()  # (n_old, dim) the pretrained rows
            mean = old.mean(dim=0)  # (dim,)
            deviation = (old - mean).square().mean().sqrt()  # () RMS distance of a coordinate from the mean
            rows = mean + spread * deviation * directions  # (n_new, dim)
            weight[ids.start : ids.stop] = rows.to(weight.dtype)
