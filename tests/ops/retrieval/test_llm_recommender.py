"""The LLM recommender on tiny local decoders and a real slice (Gift Cards' first 24 users, a 3x8 table with
suffixes): every Semantic-ID token is one token of a rendered prompt, adding them keeps the pretrained outputs, the
new rows start where the docs say, LoRA leaves the base weights alone, the loss reads Semantic-ID tokens only, a
tiny model memorizes a slice, the beam search returns only real items, and a checkpoint rebuilds the model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from ops.caching import StageOutput
from ops.device import Precision, placement
from ops.embeddings.config import SMOLLM2
from ops.embeddings.model_cache import is_prepared, prepared_dir
from ops.ingest import stages
from ops.ingest.datasets import get_dataset
from ops.llm.lora import LoraSettings, ModelSpec, frozen_state, load_base
from ops.retrieval.causal import IGNORE, next_item_task, on_device, training_windows
from ops.retrieval.llm_prompts import PromptConfig, item_titles
from ops.retrieval.llm_recommender import (
    LLMRecommenderConfig,
    build_recommender,
    load_recommender,
    save_recommender,
    train_llm_recommender,
)
from ops.retrieval.llm_tokens import NewRows, SIDTokenMap, initialise_rows, token_strings
from ops.retrieval.metrics import target_ranks
from ops.retrieval.sequences import Examples, SequenceConfig
from ops.retrieval.sid_data import SIDData
from ops.retrieval.stage import (
    HISTORY,
    LLM_CHECKPOINT,
    evaluate_llm_recommender_stage,
    invalid_items,
    train_llm_recommender_stage,
)
from ops.retrieval.train import SELECTION_METRIC, TrainConfig, fit
from ops.retrieval.vocabulary import FIRST_TOKEN, Vocabulary
from ops.semantic_ids.stage import read_table
from tests.ops.embeddings.tiny_decoders import word_tokenizer
from tests.ops.llm.conftest import (
    VOCAB_TEXTS,
    tiny_dirs,  # noqa: F401 (the fixture: a tiny LLaMA and a tiny OPT)
)
from tests.ops.retrieval.conftest import SLICE_DATASET
from tests.ops.retrieval.test_retrieval_training import (
    MEMORIZED_USERS,
    memorization_slice,
    repeated,
    select_on_recall_at_1,
)

PRECISIONS = [Precision.BF16, Precision.FLOAT32]


@pytest.fixture(scope="session")
def smol_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2's real BPE tokenizer on a tiny random LLaMA: the tokenizer a default run adds its tokens to."""
    source = prepared_dir(SMOLLM2)
    if not is_prepared(source):
        pytest.skip(f"{SMOLLM2} is not prepared at {source}: run `python -m ops.embeddings.model_cache`")
    directory = tmp_path_factory.mktemp("tiny-smol")
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.save_pretrained(directory)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


@pytest.fixture
def model_dirs(tiny_dirs: dict[str, Path], smol_tokenizer_dir: Path) -> dict[str, Path]:  # noqa: F811
    return {**tiny_dirs, "smol": smol_tokenizer_dir}


@pytest.fixture
def slice_kcore(real_slice, shared_data, tmp_path) -> StageOutput:
    """The k-core stage the real_slice fixture built (a cache hit here): the items table with their titles."""
    spec = get_dataset(SLICE_DATASET)
    normalized = stages.normalize(spec, shared_data(SLICE_DATASET).parent, tmp_path, stages.NormalizeConfig())
    return stages.kcore(normalized, tmp_path, stages.KCoreConfig())


@pytest.fixture
def slice_titles(real_slice, slice_kcore) -> list[str]:
    """The slice's item titles per Semantic-ID table row."""
    items = pl.read_parquet(slice_kcore.file("items.parquet"))
    return item_titles(items, read_table(real_slice[1])["item_id"].to_list())


def slice_data(real_slice, sequence: SequenceConfig) -> SIDData:
    splits, sid_table = real_slice
    table = read_table(sid_table)
    return SIDData.build(pl.read_parquet(splits.file("leave_one_out.parquet")), table, 8, sequence)


def tiny_config(model: Path, **changes: object) -> LLMRecommenderConfig:
    return replace(LLMRecommenderConfig.test(str(model)), **changes)


@pytest.mark.parametrize("kind", ["smol", "llama", "opt"])
def test_every_semantic_id_token_is_one_token_of_a_rendered_prompt(real_slice, slice_titles, model_dirs, kind):
    sequence = SequenceConfig(max_history=5, user_buckets=3)
    data = slice_data(real_slice, sequence)
    config = tiny_config(model_dirs[kind], sequence=sequence, prompt=PromptConfig(titles=True, max_title_tokens=64))
    recommender = build_recommender(config, data.vocabulary, slice_titles)
    tokenizer, tokens = recommender.lm.tokenizer, recommender.tokens
    names = token_strings(data.vocabulary)
    assert len(names) == len(set(names)) == data.vocabulary.size - FIRST_TOKEN
    assert [tokenizer.tokenize(name) for name in names] == [[name] for name in names]  # never split
    assert tokenizer.convert_tokens_to_ids(list(names)) == list(tokens.ids)  # consecutive, in layout order
    prompter = recommender.prompter(data)
    examples = data.evaluation("test")
    input_ids, mask = prompter.prompts(examples)
    texts = prompter.render(examples)
    assert any(title and title in text for title in slice_titles for text in texts)  # titles are in the prompts
    for row, text in enumerate(texts):
        ids = tokenizer(text).input_ids
        assert ids == input_ids[row, : mask[row].sum()].tolist()  # the ids are exactly the rendered text's
        sid = [i for i in ids if i in tokens.ids]
        assert sid[0] == tokens.vocabulary.user_offset + data.buckets[examples.user[row]]
        history = data.tokens[data.sequences.items[examples.end[row] - examples.length[row] : examples.end[row]]]
        assert sid[1:] == (history - FIRST_TOKEN + tokens.first_id).ravel().tolist()  # the map is the shift


@pytest.mark.parametrize("kind", ["llama", "opt"])
def test_adding_the_tokens_keeps_the_old_tokens_embeddings_and_outputs(tiny_dirs, kind):  # noqa: F811
    vocabulary = Vocabulary((8, 8, 3), user_buckets=2)
    _, base = load_base(ModelSpec(str(tiny_dirs[kind])))
    recommender = build_recommender(tiny_config(tiny_dirs[kind]), vocabulary)
    model = recommender.model.eval()
    old_rows = base.get_input_embeddings().weight
    assert model.get_input_embeddings().weight.shape[0] >= recommender.tokens.vocabulary.size
    assert torch.equal(model.get_input_embeddings().weight[: len(old_rows)], old_rows)
    inputs = torch.tensor([[0, 5, 9, 17, 4, 30, 2]])  # old tokens only
    with torch.no_grad():
        before, after = base.eval()(input_ids=inputs).logits, model(input_ids=inputs).logits
    torch.testing.assert_close(after[..., : before.shape[-1]], before, atol=1e-6, rtol=0)  # fresh LoRA: B = 0


def test_new_rows_start_at_the_mean_with_the_stated_spread_or_at_the_code_vectors(tiny_dirs):  # noqa: F811
    vocabulary = Vocabulary((8, 8, 3), user_buckets=0)
    tokenizer, model = load_base(ModelSpec(str(tiny_dirs["llama"]), new_tokens=token_strings(vocabulary)))
    tokens = SIDTokenMap.from_tokenizer(vocabulary, tokenizer)
    assert len(tokens.ids) == 19
    weight = model.get_input_embeddings().weight
    old = weight[: tokens.first_id].detach().clone()
    mean, deviation = old.mean(dim=0), (old - old.mean(dim=0)).square().mean().sqrt()
    initialise_rows(model, tokens, spread=0.0, seed=0)
    torch.testing.assert_close(weight[tokens.first_id :], mean.expand(19, -1))  # spread 0: exactly the mean
    initialise_rows(model, tokens, spread=0.5, seed=0)
    noise = (weight[tokens.first_id :] - mean) / deviation  # (19, dim) ~ 0.5 x N(0, 1)
    assert 0.4 < float(noise.std()) < 0.6 and torch.equal(weight[: tokens.first_id], old)
    codes = [np.random.default_rng(level).normal(size=(8, 6)) for level in range(2)]
    initialise_rows(model, tokens, spread=0.5, seed=0, code_vectors=codes)
    for level, vectors in enumerate(codes):
        start = tokens.first_id + 8 * level
        rows = weight[start : start + 8].detach().numpy()
        ratio = np.linalg.norm(rows[:, None] - rows[None], axis=2) / (
            np.linalg.norm(vectors[:, None] - vectors[None], axis=2) + np.eye(8)
        )
        off_diagonal = ratio[~np.eye(8, dtype=bool)]
        np.testing.assert_allclose(off_diagonal, off_diagonal.mean(), rtol=1e-4)  # distances kept up to scale
    assert model.get_output_embeddings().weight is weight  # tied: the head reads the same rows


def test_the_loss_reads_semantic_id_tokens_only(real_slice, slice_titles, tiny_dirs):  # noqa: F811
    data = slice_data(real_slice, SequenceConfig(max_history=3, user_buckets=0))
    config = tiny_config(tiny_dirs["llama"], prompt=PromptConfig(titles=True), alignment=True)
    recommender = build_recommender(config, data.vocabulary, slice_titles)
    prompter = recommender.prompter(data)
    windows = training_windows(data.sequences, 3)
    input_ids, mask, labels = prompter.next_item_rows(windows)
    labelled = labels != IGNORE
    assert (labels[labelled] == input_ids[labelled]).all() and (mask[labelled] == 1).all()
    assert np.isin(input_ids[labelled], list(recommender.tokens.ids)).all()  # Semantic-ID tokens only
    assert labelled.sum() == data.vocabulary.levels * (windows.length - 1).sum()  # every target's tokens, once
    assert (~np.isin(input_ids[mask == 1], list(recommender.tokens.ids))).sum() > labelled.size * 0.05  # titles read
    for row in range(len(windows)):  # each window's targets, in order: its items after the first
        targets = data.sequences.items[windows.end[row] - windows.length[row] + 1 : windows.end[row]]
        expected = prompter.data.tokens[targets].ravel()
        assert labels[row][labelled[row]].tolist() == expected.tolist()
    items = prompter.alignment_items()[:5]
    ids, mask, labels = prompter.alignment_rows(items)
    assert (labels[labels != IGNORE] == ids[labels != IGNORE]).all() and (mask[labels != IGNORE] == 1).all()
    to_item, to_text = labels[:5], labels[5:]
    assert (to_item[to_item != IGNORE].reshape(5, -1) == prompter.data.tokens[items]).all()  # title -> Semantic ID
    text = to_text[to_text != IGNORE]
    assert len(text) == prompter.title_mask[items].sum() and not np.isin(text, list(recommender.tokens.ids)).any()


@pytest.mark.parametrize("precision", PRECISIONS)
def test_lora_trains_adapters_and_new_rows_and_leaves_base_weights_untouched(
    real_slice,
    slice_titles,
    tiny_dirs,  # noqa: F811
    precision,
):
    data = slice_data(real_slice, SequenceConfig(max_history=3, user_buckets=0))
    short = replace(TrainConfig.test(), max_epochs=2, eval_users=4, precision=precision)
    config = tiny_config(tiny_dirs["opt"], alignment=True, train=short)  # alignment: phase 1 joint, phase 2 alone
    recommender = build_recommender(config, data.vocabulary, slice_titles)
    frozen = frozen_state(recommender.lm.model)
    trained_before = {n: p.detach().clone() for n, p in recommender.lm.model.named_parameters() if p.requires_grad}
    logs = []
    trained, result, phases = train_llm_recommender(config, data, slice_titles, logs.append)
    after = dict(trained.lm.model.named_parameters())
    for name, tensor in frozen.items():
        assert torch.equal(after[name], tensor), name  # bitwise: no base weight moved
    assert all("lora_" in name or "trainable_tokens_delta" in name for name in trained_before)  # nothing else
    (delta,) = [tensor for name, tensor in trained_before.items() if "trainable_tokens_delta" in name]
    assert delta.shape[0] == len(recommender.tokens.ids)  # the new rows only, not the whole matrix
    changed = [name for name, before in trained_before.items() if not torch.equal(after[name], before)]
    assert any("trainable_tokens_delta" in name for name in changed) and any("lora_B" in name for name in changed)
    assert [phase["task"] for phase in phases] == ["next_item+alignment", "next_item"]
    assert [log.epoch for log in logs] == [1, 2] == [log.epoch for log in result.history]  # one epoch per phase
    assert logs[0].samples > (windows := training_windows(data.sequences, 3)).length.sum() - len(windows)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_tiny_llm_memorizes_its_training_users(real_slice, tiny_dirs, precision):  # noqa: F811
    # with seeds 0, 1 and 2 on both numeric paths, Recall@1 first reaches 1 at epoch 3-7 of these 12
    train = TrainConfig(batch_size=2, lr=1e-2, max_epochs=12, max_train_seconds=3600.0, patience=30)
    lora = LoraSettings(rank=8, alpha=16, dropout=0.0)
    config = tiny_config(tiny_dirs["llama"], lora=lora, spread=1.0, train=replace(train, precision=precision))
    data = slice_data(real_slice, config.sequence)
    _, memorize = memorization_slice(data.prefixes())
    recommender = build_recommender(config, data.vocabulary)
    recommender.lm.model.to(placement().device)
    prompter = recommender.prompter(data)
    windows = training_windows(data.sequences, config.sequence.max_history)
    windows = windows.subset(np.flatnonzero(windows.user < MEMORIZED_USERS))

    def rank(examples: Examples) -> np.ndarray:
        return target_ranks(recommender.search(prompter, examples, beams=5).beams.items, examples.target)

    task = next_item_task(recommender.model, prompter.data, repeated(windows), 2, dict, prompter.next_item_rows)
    result = fit(recommender.lm.model, select_on_recall_at_1(task, rank, memorize), config.train)
    assert result.best_valid[SELECTION_METRIC] == 1.0 and (rank(memorize) == 0).all()  # Recall@1 = 1


@pytest.mark.parametrize("beams", [1, 7, 40])
def test_the_beam_search_returns_only_real_distinct_items(real_slice, tiny_dirs, beams):  # noqa: F811
    data = slice_data(real_slice, SequenceConfig(max_history=5, user_buckets=0))
    recommender = build_recommender(tiny_config(tiny_dirs["llama"], spread=1.0), data.vocabulary)
    prompter = recommender.prompter(data)
    test = data.evaluation("test")
    found = recommender.search(prompter, test, beams).beams
    assert invalid_items(found.tokens, found.items, prompter.data.tokens) == 0
    assert ((found.items >= 0).sum(axis=1) == min(beams, len(data.tokens))).all()
    for row in found.items:
        assert len(set(row[row >= 0].tolist())) == (row >= 0).sum()
    first = test.subset(np.arange(3))
    widest = recommender.search(prompter, first, len(data.tokens)).beams  # as wide as the catalogue: exhaustive
    ids, mask = prompter.prompts(first)
    candidates = torch.from_numpy(prompter.data.tokens)  # (n_items, levels)
    levels = data.vocabulary.levels
    with torch.no_grad():  # every item scored by teacher forcing after the prompt, full-vocabulary softmax
        for row in range(len(first)):
            prompt = torch.from_numpy(ids[row : row + 1, : mask[row].sum()])
            inputs = torch.cat([prompt.expand(len(candidates), -1), candidates], dim=1)
            log_probs = torch.log_softmax(recommender.model(input_ids=inputs).logits[:, -levels - 1 : -1], dim=-1)
            scores = log_probs.gather(2, candidates[..., None]).sum(dim=(1, 2))  # (n_items,)
            assert widest.items[row].tolist() == scores.argsort(descending=True).tolist()
            np.testing.assert_allclose(widest.scores[row], scores.sort(descending=True).values.numpy(), atol=1e-4)


def test_a_checkpoint_rebuilds_the_same_recommender(real_slice, slice_titles, tiny_dirs, tmp_path):  # noqa: F811
    data = slice_data(real_slice, SequenceConfig(max_history=5, user_buckets=0))
    short = replace(TrainConfig.test(), max_epochs=1, eval_users=4)
    config = tiny_config(tiny_dirs["llama"], prompt=PromptConfig(titles=True), new_rows=NewRows.MEAN, train=short)
    trained, _, _ = train_llm_recommender(config, data, slice_titles)
    save_recommender(trained, tmp_path / "llm.pt")
    with pytest.raises(ValueError, match="trained with titles"):
        load_recommender(tmp_path / "llm.pt")
    loaded = load_recommender(tmp_path / "llm.pt", slice_titles)
    assert loaded.config == config and loaded.tokens == trained.tokens
    test = data.evaluation("test")
    ids, mask = trained.prompter(data).prompts(test)
    with torch.no_grad():
        expected = trained.model.eval()(*on_device(trained.model, (ids, mask))).logits
        got = loaded.model(*on_device(loaded.model, (ids, mask))).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_llm_stages_are_cached_name_their_inputs_and_decode_only_real_items(
    real_slice,
    slice_kcore,
    tiny_dirs,  # noqa: F811
    tmp_path,
    precision,
):
    splits, sid_table = real_slice
    short = replace(TrainConfig.test(), max_epochs=2, eval_users=5, precision=precision)
    config = tiny_config(tiny_dirs["llama"], prompt=PromptConfig(titles=True), alignment=True, train=short)
    with pytest.raises(ValueError, match="items stage"):
        train_llm_recommender_stage(tmp_path, splits, sid_table, config)
    logs = []
    trained = train_llm_recommender_stage(tmp_path, splits, sid_table, config, slice_kcore, logs.append)
    manifest = trained.manifest
    assert len(logs) == manifest["epochs"] == 2 and [p["epochs"] for p in manifest["phases"]] == [1, 1]
    assert (
        manifest["sid_table"]["fingerprint"] == sid_table.fingerprint and manifest["items"] == slice_kcore.fingerprint
    )
    assert manifest["new_tokens"] == 3 * 8 + manifest_suffixes(sid_table) and manifest["trainable_parameters"] > 0
    assert len(manifest["base_model"]["files_sha256"]) == 64 and trained.file(HISTORY).is_file()
    assert trained.file(LLM_CHECKPOINT).stat().st_size < 1_000_000  # adapters and new rows, not the model
    assert train_llm_recommender_stage(tmp_path, splits, sid_table, config, slice_kcore).cache_hit

    with pytest.raises(ValueError, match="read the titles"):
        evaluate_llm_recommender_stage(tmp_path, trained, splits, sid_table)
    report = evaluate_llm_recommender_stage(tmp_path, trained, splits, sid_table, slice_kcore, beams=20).manifest
    assert report["invalid_items"] == 0 and report["n_users"] == 24 and report["users_short_of_k"] == 0
    assert report["model"] == {"stage": "llm_recommender", "fingerprint": trained.fingerprint}
    assert 0 <= report["test"]["ndcg@20"] <= report["test"]["recall@20"] <= 1
    assert evaluate_llm_recommender_stage(tmp_path, trained, splits, sid_table, slice_kcore, beams=20).cache_hit


def manifest_suffixes(sid_table: StageOutput) -> int:
    return int(read_table(sid_table)["collision_suffix"].max()) + 1


@pytest.fixture(scope="session")
def untied_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LLaMA whose output head is a matrix of its own (SmolLM2 and OPT tie theirs to the embedding)."""
    directory = tmp_path_factory.mktemp("tiny-untied")
    tokenizer = word_tokenizer(VOCAB_TEXTS, bos="<s>")
    tokenizer.save_pretrained(directory)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
        pad_token_id=1,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def test_an_untied_head_gets_its_own_new_rows_started_and_trained(real_slice, untied_dir):
    data = slice_data(real_slice, SequenceConfig(max_history=3, user_buckets=0))
    short = replace(TrainConfig.test(), max_epochs=1, eval_users=4)
    config = tiny_config(untied_dir, spread=0.0, train=short)
    fresh = build_recommender(config, data.vocabulary).model
    ids = fresh.get_input_embeddings().token_adapter.trainable_tokens_delta["default"]  # (n_new, dim)
    head = fresh.get_output_embeddings()
    rows = head.token_adapter.trainable_tokens_delta["default"]  # the head's own new rows
    old = head.token_adapter.base_layer.weight[: len(head.token_adapter.base_layer.weight) - len(rows)]
    torch.testing.assert_close(rows, old.mean(dim=0).expand_as(rows))  # spread 0: the mean of the head's rows
    assert not torch.allclose(rows, ids)  # not the embedding's
    trained, _, _ = train_llm_recommender(config, data)
    frozen = frozen_state(build_recommender(config, data.vocabulary).lm.model)
    after = dict(trained.lm.model.named_parameters())
    assert all(torch.equal(after[name], tensor) for name, tensor in frozen.items())
    moved = trained.model.get_output_embeddings().token_adapter.trainable_tokens_delta["default"]
    assert not torch.equal(moved, rows)  # the head's new rows trained
