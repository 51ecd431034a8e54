"""Property tests of the iterative k-core: every survivor has >= k interactions, and filtering again changes nothing."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops.ingest.kcore import kcore_interactions, kcore_tables
from ops.ingest.normalize import build_tables
from ops.ingest.frames import interactions_frame, items_frame
from ops.ingest.rejects import RejectLog
from ops.ingest.result import ReaderResult

pairs = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=300)


def frame_of(edges: list[tuple[int, int]]) -> pl.DataFrame:
    return interactions_frame([f"u{u}" for u, _ in edges], [f"i{i}" for _, i in edges])


@settings(max_examples=150, deadline=None)
@given(edges=pairs, k=st.integers(1, 6))
def test_every_survivor_has_k_interactions_and_core_is_idempotent(edges, k):
    core, _ = kcore_interactions(frame_of(edges), k)
    if core.height:
        assert core.group_by("user_id").len()["len"].min() >= k
        assert core.group_by("item_id").len()["len"].min() >= k
    again, rounds = kcore_interactions(core, k)
    assert again.equals(core)
    assert rounds == 1


@settings(max_examples=100, deadline=None)
@given(edges=pairs, k=st.integers(1, 6))
def test_core_is_maximal(edges, k):
    """No interaction that was dropped could have been kept: adding back any dropped row breaks the k bound."""
    original = frame_of(edges)
    core, _ = kcore_interactions(original, k)
    kept_users = set(core["user_id"])
    kept_items = set(core["item_id"])
    # the k-core is the largest subgraph with min degree k: survivors must include every such subgraph;
    # check against a brute-force peeling that removes one vertex at a time
    users = {u for u, _ in edges}
    items = {i for _, i in edges}
    alive = list(edges)
    changed = True
    while changed:
        changed = False
        from collections import Counter

        user_degree = Counter(u for u, _ in alive)
        item_degree = Counter(i for _, i in alive)
        low_users = {u for u in users if 0 < user_degree[u] < k}
        low_items = {i for i in items if 0 < item_degree[i] < k}
        if low_users or low_items:
            alive = [(u, i) for u, i in alive if u not in low_users and i not in low_items]
            changed = True
    assert kept_users == {f"u{u}" for u, _ in alive}
    assert kept_items == {f"i{i}" for _, i in alive}


def test_chain_needs_several_rounds():
    # u0 has 2 items; dropping u0 at k=2 leaves i9 with 1 user, which then drops u1's second edge...
    edges = [(0, 9), (0, 1), (1, 9), (1, 1), (2, 1), (2, 2), (3, 2)]
    core, rounds = kcore_interactions(frame_of(edges), 2)
    assert rounds >= 2
    assert core.height == 0 or core.group_by("user_id").len()["len"].min() >= 2


def test_kcore_tables_renumbers_positions_and_restricts_items():
    items = items_frame({"item_id": f"i{i}", "title": f"t{i}", "has_text": True, "source": "t"} for i in range(4))
    edges = [(u, i) for u in range(3) for i in range(3)] + [(0, 3)]
    result = ReaderResult(items=items, interactions=frame_of(edges), rejects=RejectLog())
    tables, _ = kcore_tables(build_tables(result), k=3)
    assert sorted(tables.items["item_id"]) == ["i0", "i1", "i2"]
    assert tables.users["n_interactions"].to_list() == [3, 3, 3]
    assert tables.interactions.group_by("user_id").agg(pl.col("position").sort())["position"].to_list() == [[0, 1, 2]] * 3


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        kcore_interactions(frame_of([(0, 0)]), 0)
