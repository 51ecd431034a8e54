"""Property tests of the iterative k-core: every survivor has >= k interactions, and filtering again changes nothing."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops.ingest.frames import interactions_frame, items_frame
from ops.ingest.kcore import kcore_interactions, kcore_tables
from ops.ingest.normalize import build_tables
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


def peel(edges: list[tuple[int, int]], k: int) -> list[tuple[int, int]]:
    """Reference k-core: repeatedly drop every edge touching a user or item of degree < k."""
    alive = list(edges)
    while True:
        user_degree = Counter(u for u, _ in alive)
        item_degree = Counter(i for _, i in alive)
        kept = [(u, i) for u, i in alive if user_degree[u] >= k and item_degree[i] >= k]
        if len(kept) == len(alive):
            return kept
        alive = kept


@settings(max_examples=100, deadline=None)
@given(edges=pairs, k=st.integers(1, 6))
def test_core_matches_reference_peeling(edges, k):
    """The k-core is unique (the largest subgraph of min degree k): ours equals a plain reference peeling."""
    core, _ = kcore_interactions(frame_of(edges), k)
    expected = peel(edges, k)
    assert sorted(zip(core["user_id"], core["item_id"])) == sorted((f"u{u}", f"i{i}") for u, i in expected)


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
    assert (
        tables.interactions.group_by("user_id").agg(pl.col("position").sort())["position"].to_list() == [[0, 1, 2]] * 3
    )


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        kcore_interactions(frame_of([(0, 0)]), 0)
