"""The trie admits exactly the table's Semantic IDs; beam search returns distinct real items or says why not,
and agrees with `transformers`' own constrained beam search on the same model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ops.retrieval.beam_search import beam_search, decode_users
from ops.retrieval.model import TIGERConfig, build_tiger
from ops.retrieval.trie import SIDTrie
from ops.retrieval.vocabulary import Vocabulary, item_tokens

LEVEL_SIZES = (3, 4, 2)


@st.composite
def tables(draw) -> np.ndarray:
    """Distinct (n_items, 3) rows of level-local ids within LEVEL_SIZES, in any order."""
    space = list(itertools.product(*(range(s) for s in LEVEL_SIZES)))
    rows = draw(st.lists(st.sampled_from(space), min_size=1, max_size=len(space), unique=True))
    return np.array(rows, dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(levels=tables())
def test_trie_admits_exactly_the_table(levels):
    vocabulary = Vocabulary(LEVEL_SIZES, user_buckets=0)
    trie = SIDTrie.build(levels, vocabulary)
    index = {tuple(row): i for i, row in enumerate(levels.tolist())}
    for candidate in itertools.product(*(range(s) for s in LEVEL_SIZES)):
        assert trie.lookup(candidate) == index.get(candidate, -1)
    tokens = item_tokens(vocabulary, levels)
    for depth in range(vocabulary.levels):  # allowed next tokens = the next tokens of items with that prefix
        for prefix in {tuple(row[:depth]) for row in tokens.tolist()}:
            expected = sorted({row[depth] for row in tokens.tolist() if tuple(row[:depth]) == prefix})
            assert trie.allowed_tokens([0, *prefix]) == expected
    assert trie.allowed_tokens([0, 99]) == []  # a token outside the level's range continues nothing


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="share the same Semantic ID"):
        SIDTrie.build(np.array([[0, 1, 0], [0, 1, 0]]), Vocabulary(LEVEL_SIZES, 0))


def random_model(vocabulary: Vocabulary, seed: int = 0):
    torch.manual_seed(seed)
    return build_tiger(TIGERConfig.test(), vocabulary).eval()


@settings(max_examples=15, deadline=None)
@given(levels=tables(), beams=st.integers(1, 8), seed=st.integers(0, 3))
def test_beam_search_returns_distinct_real_items_or_empty_slots(levels, beams, seed):
    vocabulary = Vocabulary(LEVEL_SIZES, user_buckets=0)
    trie = SIDTrie.build(levels, vocabulary)
    inputs = torch.randint(2, vocabulary.size, (3, 5), generator=torch.Generator().manual_seed(seed))
    items, scores, tokens = beam_search(random_model(vocabulary, seed), trie, inputs, torch.ones_like(inputs), beams)
    expected = min(beams, len(levels))  # every prefix continues to an item, so only a small table runs short
    assert ((items >= 0).sum(axis=1) == expected).all()
    for row, row_scores, row_tokens in zip(items.tolist(), scores, tokens):
        found = [i for i in row if i >= 0]
        assert len(set(found)) == len(found) and row[: len(found)] == found  # distinct, empty slots last
        assert (row_tokens[: len(found)] == torch.from_numpy(item_tokens(vocabulary, levels)[found])).all()
        assert torch.isfinite(row_scores[: len(found)]).all() and torch.isinf(row_scores[len(found) :]).all()
        assert (row_scores[:-1] >= row_scores[1:]).all()


def test_fewer_items_than_beams_are_reported_not_padded():
    vocabulary = Vocabulary(LEVEL_SIZES, user_buckets=0)
    levels = np.array([[0, 1, 0], [0, 1, 1], [2, 3, 0]])  # 3 items, 5 beams asked
    inputs = np.random.default_rng(0).integers(2, vocabulary.size, size=(4, 6))
    result = decode_users(random_model(vocabulary), SIDTrie.build(levels, vocabulary), inputs, np.ones_like(inputs), 5)
    assert result.users_short == 4
    assert (np.sort(result.items[:, :3], axis=1) == [0, 1, 2]).all() and (result.items[:, 3:] == -1).all()
    assert (result.tokens[:, 3:] == 0).all()


def test_matches_transformers_generate_with_prefix_allowed_tokens():
    vocabulary = Vocabulary((6, 6, 6, 2), user_buckets=0)
    rng = np.random.default_rng(0)
    codes = np.unique(rng.integers(0, 6, size=(80, 3)), axis=0)
    levels = np.column_stack([codes, rng.integers(0, 2, size=len(codes))])
    levels = np.unique(levels, axis=0)
    trie = SIDTrie.build(levels, vocabulary)
    model = random_model(vocabulary, seed=1)
    inputs = torch.randint(2, vocabulary.size, (4, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(inputs)
    mask[2, 6:] = 0  # padding must be handled the same way
    beams = 6
    _, scores, tokens = beam_search(model, trie, inputs, mask, beams)
    output = model.generate(
        input_ids=inputs,
        attention_mask=mask,
        num_beams=beams,
        num_return_sequences=beams,
        max_new_tokens=vocabulary.levels,
        do_sample=False,
        prefix_allowed_tokens_fn=lambda _, prefix: trie.allowed_tokens(prefix.tolist()),
        return_dict_in_generate=True,
        output_scores=True,
    )
    generated = output.sequences[:, 1:].reshape(4, beams, vocabulary.levels)
    assert torch.equal(generated, tokens)
    # transformers divides by length ** length_penalty (1.0); every item has the same length
    assert torch.allclose(output.sequences_scores.view(4, beams) * vocabulary.levels, scores, atol=1e-4)
