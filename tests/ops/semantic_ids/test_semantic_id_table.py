"""Collision suffixes: hand cases, and the properties every table keeps (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops.semantic_ids.table import collision_report, extend_table, semantic_id_table, table_codes


def test_suffixes_follow_item_id_order_within_a_shared_tuple():
    table = semantic_id_table(["b", "a", "c", "d"], np.array([[1, 2], [1, 2], [3, 4], [1, 2]]))
    assert table["item_id"].to_list() == ["a", "b", "c", "d"]
    assert table["codes"].to_list() == [[1, 2], [1, 2], [3, 4], [1, 2]]
    assert table["collision_suffix"].to_list() == [0, 1, 0, 2]
    report = collision_report(table)
    assert report["collision_rate"] == 0.75 and report["collision_rate_with_suffix"] == 0.0
    assert report["max_collision_suffix"] == 2 and report["distinct_code_tuples"] == 2


def test_extension_keeps_old_rows_and_continues_suffixes():
    old = semantic_id_table(["a", "b"], np.array([[1, 2], [1, 2]]))
    new = extend_table(old, ["c", "aa", "z"], np.array([[1, 2], [1, 2], [9, 9]]))
    assert new.filter(new["item_id"].is_in(["a", "b"])).equals(old)
    suffix = dict(zip(new["item_id"].to_list(), new["collision_suffix"].to_list(), strict=True))
    assert suffix == {"a": 0, "b": 1, "aa": 2, "c": 3, "z": 0}  # "aa" sorts before "c" among the new items
    with pytest.raises(ValueError, match="already present"):
        extend_table(old, ["a"], np.array([[5, 5]]))
    with pytest.raises(ValueError, match="codes"):
        extend_table(old, ["q"], np.array([[5, 5, 5]]))


def test_empty_tables():
    empty = semantic_id_table([], np.zeros((0, 3), dtype=np.int64))
    assert len(empty) == 0 and collision_report(empty)["collision_rate"] == 0.0
    grown = extend_table(empty, ["x"], np.array([[1, 2, 3]]))
    assert grown["collision_suffix"].to_list() == [0]


code_rows = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=0, max_size=40)


@settings(max_examples=80, deadline=None)
@given(code_rows, code_rows)
def test_codes_with_suffix_are_unique_and_old_ids_never_change(first, second):
    ids = [f"item{i:03d}" for i in range(len(first) + len(second))]
    rng = np.random.default_rng(len(ids))
    rng.shuffle(ids)  # item order and id order differ
    old_codes = np.array(first, dtype=np.int64).reshape(-1, 2)
    table = semantic_id_table(ids[: len(first)], old_codes)
    grown = extend_table(table, ids[len(first) :], np.array(second, dtype=np.int64).reshape(-1, 2))
    for frame in (table, grown):
        suffixes = frame["collision_suffix"].to_list()
        keys = [(*codes, suffix) for codes, suffix in zip(frame["codes"].to_list(), suffixes, strict=True)]
        assert len(set(keys)) == len(keys)  # (codes, suffix) names exactly one item
        assert collision_report(frame)["collision_rate_with_suffix"] == 0.0
        assert frame["item_id"].is_sorted()
    assert grown.filter(grown["item_id"].is_in(table["item_id"].to_list())).equals(table)
    # built in one go, each tuple's suffixes are exactly 0..m-1
    for codes in {tuple(row) for row in table_codes(table).tolist()}:
        rows = table.filter(table["codes"].list.get(0) == codes[0], table["codes"].list.get(1) == codes[1])
        assert sorted(rows["collision_suffix"].to_list()) == list(range(len(rows)))
