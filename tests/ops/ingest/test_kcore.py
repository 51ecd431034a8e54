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


def impressions_of(rows: list[tuple[str, str, str, bool]]) -> pl.DataFrame:
    """(impression_id, user_id, item_id, clicked) rows, slots numbered in order within each impression."""
    frame = pl.DataFrame(rows, schema=["impression_id", "user_id", "item_id", "clicked"], orient="row")
    return frame.with_columns(
        timestamp=pl.lit(0, pl.Int64), slot=pl.int_range(pl.len(), dtype=pl.Int32).over("impression_id")
    )


def test_kcore_drops_impression_rows_of_removed_users_and_items():
    """The k-core folder holds the same tables after the filter: an impression row needs its user and its item."""
    items = items_frame({"item_id": f"i{i}", "title": f"t{i}", "has_text": True, "source": "t"} for i in range(4))
    edges = [(u, i) for u in range(3) for i in range(3)] + [(0, 3), (3, 0)]  # u3 and i3 fall out of the 3-core
    impressions = impressions_of(
        [
            ("a", "u0", "i0", True),
            ("a", "u0", "i3", False),  # item removed
            ("a", "u0", "i1", False),
            ("b", "u3", "i0", True),  # user removed
            ("c", "u1", "i9", False),  # never interacted with: not in the core
            ("c", "u1", "i2", True),
        ]
    )
    result = ReaderResult(items=items, interactions=frame_of(edges), rejects=RejectLog(), impressions=impressions)
    tables, _ = kcore_tables(build_tables(result), k=3)
    kept = tables.impressions.select("impression_id", "slot", "user_id", "item_id").rows()
    assert kept == [("a", 0, "u0", "i0"), ("a", 2, "u0", "i1"), ("c", 1, "u1", "i2")]  # slots keep their place


def test_real_mind_kcore_keeps_only_impressions_of_its_users_and_items(shared_data):
    from ops.ingest.readers.mind import read_mind

    folder = shared_data("mind-small-sample")
    tables = build_tables(read_mind(folder / "news.tsv", folder / "behaviors.tsv"))
    core, _ = kcore_tables(tables, k=5)
    impressions = core.impressions
    assert impressions["item_id"].is_in(core.items["item_id"].implode()).all()
    assert impressions["user_id"].is_in(core.users["user_id"].implode()).all()
    assert 0 < impressions.height < tables.impressions.height
    # every row whose user and item survived is still there
    survivors = tables.impressions.filter(
        pl.col("item_id").is_in(core.items["item_id"].implode())
        & pl.col("user_id").is_in(core.users["user_id"].implode())
    )
    assert impressions.equals(survivors)
