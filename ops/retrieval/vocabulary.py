"""The token layout of the Semantic-ID recommenders: Semantic IDs flattened into one vocabulary, an offset per level.

Token 0 is padding and the decoder's start token, 1 is end-of-sequence (T5's conventions; never generated
here, since every item is exactly ``levels`` tokens). Then come the code levels, each with its own range of
ids (code c at level l is ``offset[l] + c``: the same code means different things at different levels), the
collision suffix as the last level, and the user buckets last.

The same layout can start elsewhere (``first_token``): a pretrained LLM keeps its own tokens below its new
Semantic-ID tokens (`ops.retrieval.llm_tokens`), so level 0 begins at the LLM's first new id there; everything
that reads ``offsets`` (the trie, the beam search, `SIDData`) then speaks that LLM's ids unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ops.retrieval.sequences import PAD_ITEM
from ops.semantic_ids.table import table_codes

PAD_TOKEN = 0  # padding and decoder start
EOS_TOKEN = 1
FIRST_TOKEN = 2  # where level 0's ids begin


@dataclass(frozen=True)
class Vocabulary:
    level_sizes: tuple[int, ...]  # ids per level: codebook size per code level, then max suffix + 1
    user_buckets: int  # user tokens after the item levels (0 = none)
    first_token: int = FIRST_TOKEN  # id of level 0's first token: FIRST_TOKEN, or an LLM's first new token

    @classmethod
    def for_table(cls, table: pl.DataFrame, codebook_size: int, user_buckets: int) -> Vocabulary:
        n_codes = len(table["codes"][0])
        suffixes = int(table["collision_suffix"].max()) + 1
        return cls((codebook_size,) * n_codes + (suffixes,), user_buckets)

    @property
    def levels(self) -> int:
        return len(self.level_sizes)

    @property
    def offsets(self) -> np.ndarray:
        """(levels,) first id of each level."""
        return self.first_token + np.concatenate([[0], np.cumsum(self.level_sizes)[:-1]]).astype(np.int64)

    @property
    def user_offset(self) -> int:
        return self.first_token + int(sum(self.level_sizes))

    @property
    def size(self) -> int:
        return self.user_offset + self.user_buckets


def table_levels(table: pl.DataFrame) -> np.ndarray:
    """(n_items, levels) int64 level-local ids of each table row: its codes, then its collision suffix."""
    return np.column_stack([table_codes(table), table["collision_suffix"].to_numpy().astype(np.int64)])


def item_tokens(vocabulary: Vocabulary, levels: np.ndarray) -> np.ndarray:
    """(n_items, levels) level-local ids -> (n_items, levels) vocabulary ids."""
    if levels.shape[1] != vocabulary.levels or (levels >= np.asarray(vocabulary.level_sizes)).any():
        raise ValueError(f"item ids of shape {levels.shape} do not fit the vocabulary {vocabulary.level_sizes}")
    return levels + vocabulary.offsets


def history_inputs(
    vocabulary: Vocabulary, tokens: np.ndarray, histories: np.ndarray, buckets: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten histories into token ids: (input_ids (n, 1 + width * levels), attention_mask) with user tokens,
    (n, width * levels) without; padding (id 0, mask 0) follows each history.

    tokens (n_items, levels) from `item_tokens`; histories (n, width) item indices with PAD_ITEM; buckets (n,).
    """
    present = histories != PAD_ITEM  # (n, width)
    flat = np.where(present[..., None], tokens[np.where(present, histories, 0)], PAD_TOKEN)  # (n, width, levels)
    flat = flat.reshape(len(histories), -1)  # (n, width * levels)
    if buckets is not None and vocabulary.user_buckets:
        flat = np.column_stack([vocabulary.user_offset + buckets, flat])  # (n, 1 + width * levels)
    return flat, (flat != PAD_TOKEN).astype(np.int64)
