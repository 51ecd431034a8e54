"""Split properties: a partition of the rows, no leakage across time in leave-one-out, deterministic bytes."""

from __future__ import annotations

import io

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from ops.ingest.frames import interactions_frame
from ops.ingest.normalize import with_positions
from ops.ingest.splits import leave_one_out, random_split

histories = st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=12), min_size=1, max_size=25)


def interactions_of(histories: list[list[int]]) -> pl.DataFrame:
    users = [f"u{u}" for u, history in enumerate(histories) for _ in history]
    items = [f"i{i}" for history in histories for i in history]
    timestamps = [1000 + t for history in histories for t in range(len(history))]
    return with_positions(interactions_frame(users, items, timestamps))


@settings(max_examples=100, deadline=None)
@given(histories=histories)
def test_leave_one_out_has_no_leakage(histories):
    table = leave_one_out(interactions_of(histories))
    assert table.height == sum(map(len, histories))
    for (user,), rows in table.group_by("user_id"):
        rows = rows.sort("position")
        splits = rows["split"].cast(pl.String).to_list()
        if rows.height < 3:
            assert set(splits) == {"train"}
            continue
        assert splits[-1] == "test" and splits[-2] == "valid" and set(splits[:-2]) <= {"train"}
        # nothing in train happens after valid, nothing in valid after test
        last_train = rows.filter(pl.col("split") == "train")["timestamp"].max()
        assert last_train < rows.filter(pl.col("split") == "valid")["timestamp"].item()
        assert (
            rows.filter(pl.col("split") == "valid")["timestamp"].item()
            < rows.filter(pl.col("split") == "test")["timestamp"].item()
        )


@settings(max_examples=100, deadline=None)
@given(histories=histories, seed=st.integers(0, 2**31 - 1))
def test_random_split_partitions_rows_in_proportion(histories, seed):
    interactions = interactions_of(histories)
    table = random_split(interactions, seed)
    assert table.height == interactions.height
    assert table.select("user_id", "position").is_unique().all()
    counts = dict(table.group_by("split").len().iter_rows())
    n = table.height
    assert abs(counts.get("train", 0) - 0.8 * n) <= 1
    assert abs(counts.get("valid", 0) - 0.1 * n) <= 1


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


def test_splits_are_deterministic_and_independent_of_input_order():
    interactions = interactions_of([[1, 2, 3, 4], [5, 6, 7], [8, 9, 1, 2, 3]] * 20)
    shuffled = interactions.sample(fraction=1.0, shuffle=True, seed=7)
    assert parquet_bytes(random_split(interactions, 3)) == parquet_bytes(random_split(shuffled, 3))
    assert parquet_bytes(leave_one_out(interactions)) == parquet_bytes(leave_one_out(shuffled))
    assert not random_split(interactions, 3)["split"].equals(random_split(interactions, 4)["split"])
