"""The decoder-only recommender: one causal pass scores every target exactly as scoring each prefix on its own would;
its windows train every target once; the cached beam search over left-aligned prompts returns what an uncached
search and exhaustive scoring return, and only real items; the options, checkpoints and CPU dropout do what they
say."""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ops.retrieval import cpu_training, decoder
from ops.retrieval.beam_search import Beams, causal_beam_search, decode_users, extend, finish
from ops.retrieval.causal import target_losses, training_windows, window_batch
from ops.retrieval.checkpoint import save_model
from ops.retrieval.decoder import (
    DecoderConfig,
    LevelEmbedding,
    build_decoder,
    init_from_code_vectors,
    load_decoder,
    prepare_for_cpu_training,
)
from ops.retrieval.sequences import SequenceConfig, padded_histories, train_examples
from ops.retrieval.sid_data import SIDData
from ops.retrieval.stage import invalid_items
from ops.retrieval.trie import SIDTrie
from ops.retrieval.vocabulary import Vocabulary, item_tokens
from ops.semantic_ids.stage import read_table

LEVEL_SIZES = (3, 4, 2)


def slice_data(real_slice, max_history: int) -> SIDData:
    splits, sid_table = real_slice
    split = pl.read_parquet(splits.file("leave_one_out.parquet"))
    return SIDData.build(split, read_table(sid_table), 8, SequenceConfig(max_history=max_history, user_buckets=50))


def random_decoder(vocabulary: Vocabulary, seed: int = 0, **options) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_decoder(replace(DecoderConfig.test(), **options), vocabulary).eval()


def test_windows_make_every_train_item_after_the_first_a_target_once(real_slice):
    data = slice_data(real_slice, max_history=3)
    windows = training_windows(data.sequences, 3)
    assert (windows.length <= 4).all() and np.bincount(windows.user).max() >= 2  # some users need several windows
    items = padded_histories(data.sequences.items, windows)  # (n, 4) the windows' items
    targets = {(int(u), int(w), i) for w, u in enumerate(windows.user) for i in range(1, windows.length[w])}
    prefixes = train_examples(data.sequences, 3)
    assert len(targets) == len(prefixes)  # as many targets as TIGER's examples
    trained = sorted((int(windows.user[w]), int(windows.end[w] - windows.length[w] + i)) for _, w, i in targets)
    expected = sorted((int(u), int(e)) for u, e in zip(prefixes.user, prefixes.end))  # (user, position of target)
    assert trained == expected
    assert (items[np.arange(len(windows)), windows.length - 1] == windows.target).all()


@pytest.mark.parametrize("level_embedding", [False, True])
def test_one_causal_pass_gives_each_target_the_loss_of_its_own_prefix(real_slice, level_embedding):
    data = slice_data(real_slice, max_history=3)
    model = random_decoder(data.vocabulary, level_embedding=level_embedding)
    windows = training_windows(data.sequences, 3)
    with torch.no_grad():
        losses = target_losses(model, data, windows)  # one padded batch, every target at once
    input_ids, mask, _ = window_batch(data, windows)
    levels, first = data.vocabulary.levels, 1  # the user token comes first
    expected = []
    with torch.no_grad():
        for row in range(len(windows)):
            for item in range(1, windows.length[row]):
                end = first + (item + 1) * levels  # the target's last token
                alone = torch.from_numpy(input_ids[row : row + 1, :end])  # (1, end): no padding, no other target
                assert mask[row, :end].all()
                log_probs = torch.log_softmax(model(input_ids=alone).logits[0, end - levels - 1 : end - 1], dim=-1)
                expected.append(-log_probs.gather(1, alone[0, end - levels :, None]).sum())
    assert len(losses) == len(expected) == (windows.length - 1).sum()
    torch.testing.assert_close(losses, torch.stack(expected), atol=1e-5, rtol=0)


def uncached_search(model, trie: SIDTrie, prompt: torch.Tensor, beams: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One user's beam search that re-reads prompt + prefix from scratch at every level (no cache, no padding)."""
    state = Beams.root(1, prompt.device)
    for _ in range(trie.vocabulary.levels):
        k = state.scores.shape[1]
        inputs = torch.cat([prompt.expand(k, -1), state.tokens[0]], dim=1)  # (k, T + depth)
        state, _ = extend(state, model(input_ids=inputs).logits[:, -1], trie, beams)
    items, scores, _ = finish(state, beams)
    return items[0], scores[0]


def exhaustive_scores(model, trie: SIDTrie, tokens: np.ndarray, prompt: torch.Tensor) -> torch.Tensor:
    """(n_items,) log-probability of every item after ``prompt`` by teacher forcing, full-vocabulary softmax."""
    levels = tokens.shape[1]
    inputs = torch.cat([prompt.expand(len(tokens), -1), torch.from_numpy(tokens)], dim=1)  # (n_items, T + L)
    log_probs = torch.log_softmax(model(input_ids=inputs).logits[:, -levels - 1 : -1], dim=-1)  # (n_items, L, V)
    return log_probs.gather(2, inputs[:, -levels:, None]).sum(dim=(1, 2))


@pytest.mark.parametrize("beams", [1, 3, 8])
def test_cached_search_matches_an_uncached_one_and_exhaustive_scoring(beams):
    vocabulary = Vocabulary((5, 5, 3), user_buckets=4)
    rng = np.random.default_rng(0)
    levels = np.unique(rng.integers(0, (5, 5, 3), size=(40, 3)), axis=0)
    trie, tokens = SIDTrie.build(levels, vocabulary), item_tokens(vocabulary, levels)
    model = random_decoder(vocabulary, seed=1, level_embedding=True)
    lengths = [1, 4, 7, 10, 4]  # user token + whole items; rows padded after their tokens
    input_ids = np.zeros((len(lengths), max(lengths)), dtype=np.int64)
    for row, length in enumerate(lengths):
        input_ids[row, 0] = vocabulary.user_offset + row % 4
        input_ids[row, 1:length] = tokens[rng.integers(0, len(tokens), size=(length - 1) // 3)].ravel()
    mask = (input_ids != 0).astype(np.int64)
    found = decode_users(model, trie, input_ids, mask, beams, batch_size=3, search=causal_beam_search)
    widest = decode_users(model, trie, input_ids, mask, len(levels), batch_size=5, search=causal_beam_search)
    with torch.no_grad():
        for row, length in enumerate(lengths):
            prompt = torch.from_numpy(input_ids[row : row + 1, :length])
            items, scores = uncached_search(model, trie, prompt, beams)
            assert found.items[row].tolist() == items.tolist()
            np.testing.assert_allclose(found.scores[row], scores.numpy(), atol=1e-5)
            exact = exhaustive_scores(model, trie, tokens, prompt)  # a beam as wide as the catalogue is exhaustive
            assert widest.items[row].tolist() == exact.argsort(descending=True).tolist()
            np.testing.assert_allclose(widest.scores[row], exact.sort(descending=True).values.numpy(), atol=1e-5)


@st.composite
def tables(draw) -> np.ndarray:
    """Distinct (n_items, 3) rows of level-local ids within LEVEL_SIZES, in any order."""
    space = list(itertools.product(*(range(s) for s in LEVEL_SIZES)))
    rows = draw(st.lists(st.sampled_from(space), min_size=1, max_size=len(space), unique=True))
    return np.array(rows, dtype=np.int64)


@settings(max_examples=25, deadline=None)
@given(
    levels=tables(),
    beams=st.integers(1, 10),
    seed=st.integers(0, 3),
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5),
)
def test_causal_search_returns_only_distinct_real_items(levels, beams, seed, lengths):
    vocabulary = Vocabulary(LEVEL_SIZES, user_buckets=2)
    trie = SIDTrie.build(levels, vocabulary)
    generator = np.random.default_rng(seed)
    input_ids = generator.integers(2, vocabulary.size, size=(len(lengths), max(lengths)))
    mask = (np.arange(max(lengths)) < np.array(lengths)[:, None]).astype(np.int64)
    input_ids = input_ids * mask  # padding (0) after each prompt
    found = decode_users(random_decoder(vocabulary, seed), trie, input_ids, mask, beams, search=causal_beam_search)
    table = item_tokens(vocabulary, levels)
    assert invalid_items(found.tokens, found.items, table) == 0
    assert ((found.items >= 0).sum(axis=1) == min(beams, len(levels))).all()
    for row, scores in zip(found.items, found.scores):
        real = row[row >= 0]
        assert len(set(real.tolist())) == len(real) and (row[len(real) :] == -1).all()
        assert np.isfinite(scores[: len(real)]).all() and (np.diff(scores[: len(real)]) <= 0).all()


def test_code_vectors_set_code_tokens_with_their_distances_kept():
    vocabulary = Vocabulary((8, 8, 2), user_buckets=0)
    model = random_decoder(vocabulary)
    codes = [np.random.default_rng(level).normal(size=(8, 6)) for level in range(2)]  # dim 6 < d_model 32
    suffix = model.get_input_embeddings().weight[vocabulary.offsets[2] :].detach().clone()
    init_from_code_vectors(model, vocabulary, codes, seed=0)
    weight = model.get_input_embeddings().weight.detach().numpy()
    for level, vectors in enumerate(codes):
        rows = weight[vocabulary.offsets[level] : vocabulary.offsets[level] + 8]
        ratio = np.linalg.norm(rows[:, None] - rows[None], axis=2) / (
            np.linalg.norm(vectors[:, None] - vectors[None], axis=2) + np.eye(8)
        )
        off_diagonal = ratio[~np.eye(8, dtype=bool)]
        np.testing.assert_allclose(off_diagonal, off_diagonal.mean(), rtol=1e-4)  # one scale for every pair
        assert abs(rows.std() - 0.02) < 1e-3
    assert torch.equal(model.get_input_embeddings().weight[vocabulary.offsets[2] :], suffix)  # suffix left alone
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # still tied


def test_checkpoint_rebuilds_the_same_model_with_its_options(tmp_path):
    vocabulary = Vocabulary((4, 4, 2), user_buckets=3)
    config = replace(DecoderConfig.test(), level_embedding=True)
    torch.manual_seed(0)
    model = build_decoder(config, vocabulary).eval()
    assert isinstance(model.get_input_embeddings(), LevelEmbedding)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    save_model(model, config, vocabulary, tmp_path / "decoder.pt")
    loaded, loaded_config, loaded_vocabulary = load_decoder(tmp_path / "decoder.pt")
    inputs = torch.tensor([[vocabulary.user_offset, 2, 6, 10, 3, 7]])
    assert loaded_config == config and loaded_vocabulary == vocabulary
    torch.testing.assert_close(loaded(input_ids=inputs).logits, model(input_ids=inputs).logits, atol=0, rtol=0)


def test_cpu_training_routes_every_dropout_through_fast_dropout(monkeypatch):
    vocabulary = Vocabulary((4, 4, 2), user_buckets=3)
    config = replace(DecoderConfig.test(), dropout=0.3)
    torch.manual_seed(0)
    plain = build_decoder(config, vocabulary)
    prepared = prepare_for_cpu_training(copy.deepcopy(plain))
    inputs = torch.tensor([[vocabulary.user_offset, 2, 6, 10, 3, 7, 11]])
    reference = plain.eval()(input_ids=inputs).logits
    torch.testing.assert_close(prepared.eval()(input_ids=inputs).logits, reference)  # eval: the same (to float error)
    prepared.train()
    torch.manual_seed(1)
    dropped = prepared(input_ids=inputs).logits
    assert not torch.allclose(dropped, reference)  # training mode drops...
    monkeypatch.setattr(decoder, "fast_dropout", lambda x, p: x)
    monkeypatch.setattr(cpu_training, "fast_dropout", lambda x, p: x)
    torch.testing.assert_close(prepared(input_ids=inputs).logits, reference)  # ... only through fast_dropout
