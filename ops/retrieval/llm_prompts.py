"""The LLM recommender's prompts, as token ids built by fancy indexing and as the text they stand for.

Next-item rows, for training and decoding alike (LAMIA section 4.2.4, Figure 5's upper template):

    <opener>\\n [<u_k>] <a_3><b_41><c_7><d_0>[ title\\n] <a_9><b_2><c_250><d_1>[ title\\n] ...

the history flattened as in ``causal.py`` (one causal pass trains every target of a window; the loss is on the
Semantic-ID tokens of every item after the window's first, never on the opener or a title), each item's title
optional. A title comes *after* its item's Semantic-ID tokens: before them it would hand the model the very item
it is trained to predict. Decoding continues a history prompt with the next item's tokens, as training does.

Alignment rows (LC-Rec's text-to-item task; Figure 5's lower template), two per item with a title:

    <text_to_item> title\\n <a_3><b_41><c_7><d_0>      loss on the Semantic-ID tokens
    <item_to_text><a_3><b_41><c_7><d_0> title\\n      loss on the title's tokens

Each piece is tokenized once (the openers, every item's title segment, cut at ``max_title_tokens``) and rows are
gathered from them, padding squeezed out, so a row's ids are exactly the tokenizer's ids of its text
(`Prompter.render`; the tokenizer splits text at special tokens and tokenizes each piece alone). The ids of the
Semantic-ID tokens come from `SIDData` placed at the LLM's ids (`ops.retrieval.llm_tokens.SIDTokenMap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from transformers import PreTrainedTokenizerBase

from ops.retrieval.causal import IGNORE, window_batch
from ops.retrieval.llm_tokens import SIDTokenMap
from ops.retrieval.sequences import PAD_ITEM, Examples, padded_histories
from ops.retrieval.sid_data import SIDData
from ops.retrieval.vocabulary import PAD_TOKEN

Rows = tuple[np.ndarray, np.ndarray, np.ndarray]  # (input_ids, attention_mask, labels), each (n, T), padding after


@dataclass(frozen=True)
class PromptConfig:
    opener: str = "A user's purchases, oldest first; the next one follows."  # the next-item instruction
    titles: bool = False  # each history item's title after its Semantic-ID tokens (LAMIA: optional text)
    max_title_tokens: int = 16  # title tokens kept per item (Beauty titles: ~15 SmolLM2 tokens at the median)
    text_to_item: str = "The item titled"  # alignment instruction: title -> Semantic ID
    item_to_text: str = "The title of item"  # alignment instruction: Semantic ID -> title

    def __post_init__(self) -> None:
        if self.max_title_tokens < 1 or not self.opener:
            raise ValueError(f"max_title_tokens must be >= 1 and the opener non-empty, got {self}")


def item_titles(items: pl.DataFrame, item_ids: Sequence[str]) -> list[str]:
    """The title of each of ``item_ids`` (the Semantic-ID table's rows) from an items table, whitespace collapsed;
    "" where an item has none."""
    titles = dict(zip(items["item_id"].to_list(), items["title"].to_list()))
    return [" ".join((titles.get(item) or "").split()) for item in item_ids]


def title_segment(title: str) -> str:
    """The text a title stands for in a prompt (none for an untitled item)."""
    return f" {title}\n" if title else ""


@dataclass(frozen=True)
class Prompter:
    """Every prompt piece tokenized once, for one `SIDData` placed at the LLM's ids."""

    config: PromptConfig
    tokens: SIDTokenMap
    data: SIDData  # in the LLM's ids (`SIDData.with_vocabulary`)
    titles: tuple[str, ...]  # (n_items,) raw titles, "" = none; empty when no titles were given
    opener: np.ndarray  # (P,) ids of the next-item opener and its newline (the tokenizer's BOS included if it adds one)
    text_to_item: np.ndarray  # (P1,) ids of the title -> Semantic-ID opener
    item_to_text: np.ndarray  # (P2,) ids of the Semantic-ID -> title opener
    title_ids: np.ndarray  # (n_items, max_title_tokens) ids of each title segment, PAD_TOKEN after its end
    title_mask: np.ndarray  # (n_items, max_title_tokens) int64 1 = a title token

    @classmethod
    def build(
        cls,
        tokenizer: PreTrainedTokenizerBase,
        tokens: SIDTokenMap,
        data: SIDData,
        config: PromptConfig,
        titles: Sequence[str] | None,
    ) -> Prompter:
        """``data`` in the LLM's ids; ``titles`` per table row (`item_titles`), needed for titled histories."""
        if data.vocabulary != tokens.vocabulary:
            raise ValueError("place the data at the LLM's ids first (SIDData.with_vocabulary)")
        if config.titles and titles is None:
            raise ValueError("titled prompts need the items' titles")
        titles = tuple(titles or ())
        if titles and len(titles) != len(data.tokens):
            raise ValueError(f"{len(titles)} titles for {len(data.tokens)} items")
        width = config.max_title_tokens
        title_ids = np.full((len(titles), width), PAD_TOKEN, dtype=np.int64)
        title_mask = np.zeros((len(titles), width), dtype=np.int64)
        encoded = tokenizer([title_segment(t) for t in titles], add_special_tokens=False).input_ids if titles else []
        for row, ids in enumerate(encoded):
            kept = ids[:width]
            title_ids[row, : len(kept)], title_mask[row, : len(kept)] = kept, 1

        def opener(text: str) -> np.ndarray:
            return np.asarray(tokenizer(text, add_special_tokens=True).input_ids, dtype=np.int64)

        return cls(
            config,
            tokens,
            data,
            titles,
            opener(f"{config.opener}\n"),
            opener(config.text_to_item),
            opener(config.item_to_text),
            title_ids,
            title_mask,
        )

    def next_item_rows(self, windows: Examples) -> Rows:
        """Training rows of `causal.training_windows`: labels on every target's Semantic-ID tokens only."""
        input_ids, mask, labels = window_batch(self.data, windows)  # (n, [1 +] W * levels)
        return self._history_rows(windows, input_ids, mask, labels)

    def prompts(self, examples: Examples) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask), each (n, T): the examples' histories as prompts, padding after them."""
        input_ids, mask = self.data.inputs(examples)
        ids, mask, _ = self._history_rows(examples, input_ids, mask, np.full_like(input_ids, IGNORE))
        return ids, mask

    def alignment_items(self) -> np.ndarray:
        """Items the alignment task can use: those with a title that some user's sequence holds."""
        if not self.titles:
            return np.zeros(0, dtype=np.int64)
        seen = np.unique(self.data.sequences.items)
        return seen[self.title_mask[seen].any(axis=1)]

    def alignment_rows(self, items: np.ndarray) -> Rows:
        """Rows 0..n-1: title -> Semantic ID of each of ``items``, then rows n..2n-1: Semantic ID -> title."""
        sid = self.data.tokens[items]  # (n, levels)
        title, title_mask = self.title_ids[items], self.title_mask[items]  # (n, max_title_tokens)
        if not title_mask.any(axis=1).all():
            raise ValueError("alignment rows need items with a title (see alignment_items)")
        n = len(items)
        sid_block = (sid, np.ones_like(sid), sid)
        text_to_item = _compact(self._constant(self.text_to_item, n), (title, title_mask, _ignored(title)), sid_block)
        item_to_text = _compact(
            self._constant(self.item_to_text, n),
            (sid, np.ones_like(sid), _ignored(sid)),
            (title, title_mask, np.where(title_mask == 1, title, IGNORE)),
        )
        return _stacked(text_to_item, item_to_text)

    def render(self, examples: Examples) -> list[str]:
        """The text of each example's history prompt: what `prompts` holds, as the tokenizer would read it."""
        names = self.tokens.tokens
        histories = padded_histories(self.data.sequences.items, examples)  # (n, W)
        texts = []
        for user, history in zip(examples.user, histories):
            parts = [f"{self.config.opener}\n"]
            if self.data.vocabulary.user_buckets:
                parts.append(names[self.data.vocabulary.user_offset + self.data.buckets[user] - self.tokens.first_id])
            for item in history[history != PAD_ITEM]:
                parts.extend(names[token - self.tokens.first_id] for token in self.data.tokens[item])
                if self.config.titles:
                    parts.append(title_segment(self.titles[item]))
            texts.append("".join(parts))
        return texts

    def _history_rows(self, examples: Examples, input_ids: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> Rows:
        """Flat history tokens (n, [1 +] W * levels) -> the opener, then (titles on) each item's tokens and title."""
        n, levels = len(input_ids), self.data.vocabulary.levels
        first = 1 if self.data.vocabulary.user_buckets else 0  # the user token's column
        user = (input_ids[:, :first], mask[:, :first], labels[:, :first])
        items = (input_ids[:, first:], mask[:, first:], labels[:, first:])  # (n, W * levels)
        if self.config.titles:
            histories = padded_histories(self.data.sequences.items, examples)  # (n, W)
            rows = np.where(histories != PAD_ITEM, histories, 0)
            title_mask = self.title_mask[rows] * (histories != PAD_ITEM)[..., None]  # (n, W, max_title_tokens)
            title = (self.title_ids[rows], title_mask, _ignored(title_mask))
            per_item = [a.reshape(n, -1, levels) for a in items]  # (n, W, levels) each
            items = tuple(np.concatenate([a, b], axis=2).reshape(n, -1) for a, b in zip(per_item, title))
        return _compact(self._constant(self.opener, n), user, items)

    @staticmethod
    def _constant(ids: np.ndarray, n: int) -> Rows:
        """The same unlabelled ids (P,) at the start of n rows."""
        block = np.broadcast_to(ids, (n, len(ids)))
        return block, np.ones_like(block), _ignored(block)


def _ignored(like: np.ndarray) -> np.ndarray:
    return np.full(like.shape, IGNORE, dtype=np.int64)


def _compact(*blocks: Rows) -> Rows:
    """Blocks side by side, each row's padding moved after its tokens (order kept), unused columns dropped."""
    ids, mask, labels = (np.concatenate([block[part] for block in blocks], axis=1) for part in range(3))
    order = np.argsort(mask == 0, axis=1, kind="stable")  # (n, T) tokens first, in their order
    width = int(mask.sum(axis=1).max(initial=0))
    ids, mask, labels = (np.take_along_axis(a, order, axis=1)[:, :width] for a in (ids, mask, labels))
    return np.where(mask == 1, ids, PAD_TOKEN), mask, np.where(mask == 1, labels, IGNORE)


def _stacked(*parts: Rows) -> Rows:
    """Row blocks of different widths, one under the other, padded to the widest."""
    width = max(part[0].shape[1] for part in parts)
    pads = (PAD_TOKEN, 0, IGNORE)
    return tuple(
        np.concatenate(
            [np.pad(part[i], ((0, 0), (0, width - part[i].shape[1])), constant_values=pads[i]) for part in parts]
        )
        for i in range(3)
    )
