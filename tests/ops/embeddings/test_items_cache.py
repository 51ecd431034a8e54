"""embed_items: text-less items reported, vectors in input order, and re-indexing embeds only what changed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from ops.embeddings.encoder import ProgressFn, TransformerEmbedder
from ops.embeddings.items import embed_items
from ops.embeddings.store import LOCK, MANIFEST, VECTORS, load_vectors
from ops.embeddings.templates import AMAZON
from ops.ingest.schema import ITEMS


class RecordingEmbedder:
    """The real embedder, remembering which texts it was asked to embed."""

    def __init__(self, inner: TransformerEmbedder) -> None:
        self.inner, self.dim, self.calls = inner, inner.dim, []

    @property
    def identity(self) -> str:
        return self.inner.identity

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts, progress)


def catalogue(titles: dict[str, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "item_id": item_id,
                "title": title,
                "description": None,
                "brand": "Acme",
                "categories": ["Beauty"],
                "price": None,
                "attributes": "{}",
                "has_text": title is not None,
                "source": "test",
            }
            for item_id, title in titles.items()
        ],
        schema=ITEMS,
    )


def test_reindexing_embeds_only_added_and_edited_items(minilm: TransformerEmbedder, tmp_path: Path) -> None:
    embedder = RecordingEmbedder(minilm)
    first = catalogue({"a": "Red lipstick", "b": "Dry hair shampoo", "c": None, "d": "Rose perfume"})
    progress: list[tuple[int, int]] = []
    result = embed_items(first, embedder, AMAZON, cache_dir=tmp_path, progress=lambda d, t: progress.append((d, t)))
    assert result.item_ids == ["a", "b", "d"] and result.textless_ids == ["c"]
    assert (result.n_cached, result.n_computed) == (0, 3) and result.items_per_s > 0
    assert result.vectors.shape == (3, 384) and progress[-1] == (3, 3)
    assert (result.store / VECTORS).is_file() and (result.store / MANIFEST).is_file()

    # Edit b, add e, keep a and d: only b's and e's texts are embedded again.
    second = catalogue({"e": "Nail polish", "a": "Red lipstick", "b": "Volume shampoo", "c": None, "d": "Rose perfume"})
    again = embed_items(second, embedder, AMAZON, cache_dir=tmp_path)
    assert embedder.calls[-1] == ["Nail polish; Acme; Beauty", "Volume shampoo; Acme; Beauty"]
    assert (again.n_cached, again.n_computed) == (2, 2)
    assert again.item_ids == ["e", "a", "b", "d"]
    np.testing.assert_array_equal(again.vectors[[1, 3]], result.vectors[[0, 2]])  # a, d: read back bit for bit
    np.testing.assert_allclose(
        again.vectors,
        minilm.encode(
            [
                "Nail polish; Acme; Beauty",
                "Red lipstick; Acme; Beauty",
                "Volume shampoo; Acme; Beauty",
                "Rose perfume; Acme; Beauty",
            ]
        ),
        atol=1e-5,
    )

    # Nothing changed: no model call at all, and no temp files left behind.
    n_calls = len(embedder.calls)
    unchanged = embed_items(second, embedder, AMAZON, cache_dir=tmp_path)
    assert len(embedder.calls) == n_calls and (unchanged.n_cached, unchanged.n_computed) == (4, 0)
    assert unchanged.items_per_s is None
    assert sorted(p.name for p in result.store.iterdir()) == sorted([LOCK, MANIFEST, VECTORS])


def test_setup_change_uses_a_separate_cache(minilm: TransformerEmbedder, tmp_path: Path) -> None:
    from ops.embeddings.templates import TextTemplate

    items = catalogue({"a": "Red lipstick"})
    amazon = embed_items(items, minilm, AMAZON, cache_dir=tmp_path)
    title_only = embed_items(items, minilm, TextTemplate("title", ("title",)), cache_dir=tmp_path)
    assert amazon.store != title_only.store and title_only.n_computed == 1


def test_duplicate_texts_are_embedded_once_and_no_cache_works(minilm: TransformerEmbedder) -> None:
    embedder = RecordingEmbedder(minilm)
    result = embed_items(catalogue({"a": "Red lipstick", "b": "Red lipstick"}), embedder, AMAZON, cache_dir=None)
    assert embedder.calls == [["Red lipstick; Acme; Beauty"]] and result.n_computed == 2 and result.store is None
    np.testing.assert_array_equal(result.vectors[0], result.vectors[1])


def test_all_textless(minilm: TransformerEmbedder) -> None:
    result = embed_items(catalogue({"a": None}), minilm, AMAZON)
    assert result.vectors.shape == (0, 384) and result.textless_ids == ["a"] and result.items_per_s is None


def test_parallel_runs_on_one_store_keep_each_others_vectors(minilm: TransformerEmbedder, tmp_path: Path) -> None:
    """Run A loads the store, run B saves new vectors while A is still encoding; A's save must keep B's."""

    class InterleavedEmbedder(RecordingEmbedder):
        def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
            if len(self.calls) == 0:  # while run A encodes, run B embeds another catalogue into the same store
                self.calls.append(["run B"])
                embed_items(catalogue({"x": "Blue eyeliner"}), minilm, AMAZON, cache_dir=tmp_path)
            return super().encode(texts, progress)

    run_a = embed_items(catalogue({"a": "Red lipstick"}), InterleavedEmbedder(minilm), AMAZON, cache_dir=tmp_path)
    stored = load_vectors(run_a.store)
    assert len(stored) == 2  # A's lipstick and B's eyeliner
    again = embed_items(catalogue({"x": "Blue eyeliner", "a": "Red lipstick"}), minilm, AMAZON, cache_dir=tmp_path)
    assert (again.n_cached, again.n_computed) == (2, 0)
