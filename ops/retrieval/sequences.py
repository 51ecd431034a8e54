"""Leave-one-out user sequences as flat numpy arrays, and the next-item examples every model trains on.

A user's interactions are stored once, contiguously, in position order (`UserSequences.items`); an example is
only a view into that array (``history = items[end - length : end]``, next item ``target``), so the ~130k
training prefixes of Beauty cost four int64 columns, and a batch is gathered with one fancy index.

The protocol is TIGER's (and SASRec's): the valid target is a user's second-to-last item with the train items
as history, the test target the last item with the train + valid items as history; training uses every prefix
of the train items (target = the next train item). Users with fewer than 3 interactions only train.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

PAD_ITEM = -1  # item index of an empty history slot
EvalSplit = Literal["valid", "test"]


@dataclass(frozen=True)
class SequenceConfig:
    max_history: int = 20  # TIGER: the last 20 items of a history are the encoder's input
    user_buckets: int = 2000  # TIGER hashes user ids into 2000 tokens prepended to the input; 0 = no user token

    def __post_init__(self) -> None:
        if self.max_history < 1 or self.user_buckets < 0:
            raise ValueError(f"max_history must be >= 1 and user_buckets >= 0, got {self}")


@dataclass(frozen=True)
class UserSequences:
    """Every user's items (indices into a catalogue) in position order, users one after another."""

    items: np.ndarray  # (n_interactions,) int64 item index
    start: np.ndarray  # (n_users + 1,) int64: user u's items are items[start[u] : start[u + 1]]
    n_train: np.ndarray  # (n_users,) int64: how many of them are train items (they come first)
    user_ids: list[str]  # (n_users,) sorted

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.start)

    @property
    def evaluable(self) -> np.ndarray:
        """(n_users,) bool: users with a valid and a test item."""
        return self.lengths - self.n_train == 2


@dataclass(frozen=True)
class Examples:
    """Next-item examples: history ``items[end - length : end]`` of user ``user``, predicting ``target``."""

    end: np.ndarray  # (n,) int64, exclusive end of the history in UserSequences.items
    length: np.ndarray  # (n,) int64 history length, 1..max_history
    target: np.ndarray  # (n,) int64 item index
    user: np.ndarray  # (n,) int64 user index

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, rows: np.ndarray) -> Examples:
        return Examples(self.end[rows], self.length[rows], self.target[rows], self.user[rows])


def user_sequences(split: pl.DataFrame, item_ids: Sequence[str]) -> UserSequences:
    """A leave-one-out split table (user_id, item_id, position, split) over the catalogue ``item_ids``.

    Raises when the split names an item the catalogue lacks: silently dropping it would shift every history.
    """
    catalogue = pl.DataFrame({"item_id": list(item_ids), "item": np.arange(len(item_ids), dtype=np.int64)})
    rows = split.select("user_id", "item_id", "position", pl.col("split").cast(pl.String)).join(
        catalogue, on="item_id", how="left"
    )
    missing = rows.filter(pl.col("item").is_null())
    if len(missing):
        raise ValueError(f"{len(missing)} interactions name items absent from the catalogue, e.g. {missing[0, 1]!r}")
    rows = rows.sort("user_id", "position")
    per_user = rows.group_by("user_id", maintain_order=True).agg(
        pl.len().alias("n"), (pl.col("split") == "train").sum().alias("n_train")
    )
    start = np.concatenate([[0], np.cumsum(per_user["n"].to_numpy())]).astype(np.int64)
    return UserSequences(
        rows["item"].to_numpy().astype(np.int64),
        start,
        per_user["n_train"].to_numpy().astype(np.int64),
        per_user["user_id"].to_list(),
    )


def train_examples(sequences: UserSequences, max_history: int) -> Examples:
    """Every prefix of every user's train items: target = train item j >= 1, history = up to max_history before."""
    counts = np.maximum(sequences.n_train - 1, 0)  # (n_users,) predicted train items per user
    users = np.repeat(np.arange(len(counts)), counts)  # (n,)
    first_row = np.repeat(np.cumsum(counts) - counts, counts)  # (n,) row of the user's first example
    j = np.arange(len(users)) - first_row + 1  # (n,) place of the target among the user's train items, >= 1
    end = sequences.start[users] + j
    return Examples(end, np.minimum(j, max_history), sequences.items[end], users)


def eval_examples(sequences: UserSequences, split: EvalSplit, max_history: int) -> Examples:
    """One example per evaluable user: the valid item after the train items, or the test item after both."""
    users = np.flatnonzero(sequences.evaluable)
    end = sequences.start[users] + sequences.n_train[users] + (1 if split == "test" else 0)
    available = end - sequences.start[users]
    return Examples(end, np.minimum(available, max_history), sequences.items[end], users)


def padded_histories(items: np.ndarray, examples: Examples, width: int | None = None) -> np.ndarray:
    """(n, width) item indices, oldest first, PAD_ITEM after the history; width defaults to the longest one."""
    width = int(examples.length.max(initial=1)) if width is None else width
    offsets = np.arange(width)  # (width,)
    index = (examples.end - examples.length)[:, None] + offsets  # (n, width)
    inside = offsets < examples.length[:, None]  # (n, width)
    return np.where(inside, items[np.where(inside, index, 0)], PAD_ITEM)


def user_buckets(user_ids: Sequence[str], n_buckets: int) -> np.ndarray:
    """(n_users,) stable hash bucket of each user id (blake2b: the same in every process and version)."""
    if n_buckets < 1:
        return np.zeros(len(user_ids), dtype=np.int64)
    digests = (int.from_bytes(hashlib.blake2b(u.encode(), digest_size=8).digest(), "little") for u in user_ids)
    return np.fromiter((d % n_buckets for d in digests), dtype=np.int64, count=len(user_ids))


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50) -> list[np.ndarray]:
    """Shuffled batches of similar lengths: shuffle, sort within pools of ``pool`` batches, shuffle the batches.

    Padding then costs little while every epoch still sees a fresh mix of examples per batch.
    """
    order = rng.permutation(len(lengths))
    chunk = batch_size * pool
    batches = []
    for begin in range(0, len(order), chunk):
        part = order[begin : begin + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
