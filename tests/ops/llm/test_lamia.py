"""LAMIA palettes on tiny local decoders: the block mask, the dual forward, the losses, training and inference."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from ops.device import Precision, cpu_placement
from ops.llm.lamia import (
    LamiaConfig,
    PaletteCollate,
    PaletteExample,
    additive_mask,
    hierarchical_mask,
    inter_palette_loss,
    intra_palette_loss,
    item_examples,
    item_layout,
    lamia_loss,
    palette_embeddings,
    palettes,
    task_states,
)
from ops.llm.lora import LoraLM, build, decoder_parts, frozen_state
from ops.llm.trainer import train
from tests.ops.llm.conftest import PRECISIONS

# content 3 tokens, L = 2, task blocks of 2 and 1 tokens. Columns/rows: C C C LaP LaP LdP LdP a a b.
EXPECTED_MASK = [
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # content: causal
    [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
    [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],  # LaP: all of the content, causal inside
    [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 1, 0, 0, 0, 0],  # LdP: only itself, causal
    [0, 0, 0, 0, 0, 1, 1, 0, 0, 0],
    [0, 0, 0, 0, 0, 1, 1, 1, 0, 0],  # task a: all of LdP, causal inside
    [0, 0, 0, 0, 0, 1, 1, 1, 1, 0],
    [0, 0, 0, 0, 0, 1, 1, 0, 0, 1],  # task b: all of LdP and itself; never task a
]
EXPECTED_POSITIONS = [0, 1, 2, 3, 4, 0, 1, 2, 3, 2]

MIND_ITEMS = pl.DataFrame(
    {
        "item_id": ["N1", "N2", "N3", "N4"],
        "title": ["Yellowstone tourist injured", "Matte Liquid Lipstick", "Volumizing Shampoo with Biotin", None],
        "description": ["A tourist suffered severe burns at a hot spring", "", "Ruby Red", "Coral Pink"],
        "brand": [None, "Glossier", "OGX", None],
        "categories": [["travel", "travelnews"], ["Beauty", "Makeup"], ["Beauty"], []],
        "attributes": [None, None, None, None],
        "has_text": [True, True, True, False],
    }
)


def lamia(tiny_dirs: dict[str, Path], kind: str = "llama", **changes: object) -> tuple[LamiaConfig, LoraLM]:
    config = dataclasses.replace(LamiaConfig.test(str(tiny_dirs[kind])), **changes)
    return config, build(config.spec, seed=config.seed)


def test_mask_matrix_follows_the_block_rules() -> None:
    kinds, blocks, positions = item_layout(3, 2, [2, 1])
    assert positions == EXPECTED_POSITIONS
    allowed = hierarchical_mask(torch.tensor([kinds]), torch.tensor([blocks]))[0]
    assert allowed.int().tolist() == EXPECTED_MASK


def test_collate_cuts_the_sequence_between_the_passes_and_masks_padding(tiny_dirs) -> None:
    _, lm = lamia(tiny_dirs)
    collate = PaletteCollate(lm.tokenizer, 2)
    small = PaletteExample((11, 12, 13), (((20,), (30,)), ((22,), ())))  # the layout of EXPECTED_MASK
    longer = PaletteExample((11, 12, 13, 14), (((20,), (31, 32, 33)),))
    batch = collate([small, longer])
    expected = torch.tensor(EXPECTED_MASK, dtype=torch.bool)
    # pass 1 of `small` is left-padded by one column: its pad row sees itself only, nobody sees it
    assert torch.equal(batch["content_allowed"][0, 1:, 1:], expected[:5, :5])
    assert batch["content_allowed"][0, 0].tolist() == [True] + [False] * 5
    assert not batch["content_allowed"][0, 1:, 0].any()
    assert batch["content_ids"][0].tolist() == [lm.tokenizer.pad_token_id, 11, 12, 13, *collate.palette_ids]
    assert torch.equal(batch["task_allowed"][0, :5, :5], expected[5:, 5:])  # pass 2 is right-padded
    assert batch["task_positions"][0, :5].tolist() == EXPECTED_POSITIONS[5:]
    assert batch["task_ids"][0, :5].tolist() == [*collate.placeholder_ids, 20, 30, 22]
    assert batch["labels"][0, :5].tolist() == [-100, -100, -100, 30, -100]  # answers only, not task tokens
    assert batch["labels"][1].tolist() == [-100, -100, -100, 31, 32, 33]
    assert not torch.tensor(EXPECTED_MASK)[5:, :5].any()  # no pass-2 row reads a pass-1 column: the split is exact


def full_sequence_states(model, collate: PaletteCollate, example: PaletteExample, palette: torch.Tensor):
    """The paper's second pass on the *whole* sequence in one forward: content, LaP, LdP (inputs replaced by
    ``palette`` (1, L, D)), tasks, under the full 4-D hierarchical mask. Returns the LdP + task states."""
    batch = collate([example])
    ids = torch.cat([batch["content_ids"], batch["task_ids"]], dim=1)  # (1, seq): no padding with one item
    kinds, blocks, positions = item_layout(len(example.content), 2, [len(p) + len(a) for p, a in example.tasks])
    allowed = hierarchical_mask(torch.tensor([kinds]), torch.tensor([blocks]))
    embed, body, _ = decoder_parts(model)
    inputs = embed(ids).clone()
    cut = len(example.content) + 2
    inputs[:, cut : cut + 2] = palette
    states = body(
        inputs_embeds=inputs, attention_mask=additive_mask(allowed), position_ids=torch.tensor([positions])
    ).last_hidden_state
    return states[:, cut:]


@pytest.mark.parametrize("kind", ["llama", "opt"])
def test_task_reads_the_content_only_through_the_palette(tiny_dirs, kind: str) -> None:
    _, lm = lamia(tiny_dirs, kind)
    collate = PaletteCollate(lm.tokenizer, 2)
    first, second = lm.tokenizer(["Ruby Red Glossier", "Volumizing Shampoo with Biotin"])["input_ids"]
    task = (tuple(lm.tokenizer("title:", add_special_tokens=False)["input_ids"]), (7, 8, 2))
    a, b = PaletteExample(tuple(first), (task,)), PaletteExample(tuple(second), (task,))  # other content, same task
    lm.model.eval()
    with torch.no_grad():
        batch_a, batch_b = collate([a]), collate([b])
        palette_a, palette_b = palettes(lm.model, batch_a, 2), palettes(lm.model, batch_b, 2)  # (1, L, D)
        assert (palette_a - palette_b).abs().max() > 1e-3

        held_a = full_sequence_states(lm.model, collate, a, palette_a)
        held_b = full_sequence_states(lm.model, collate, b, palette_a)  # b's content, a's palette held fixed
        torch.testing.assert_close(held_a, held_b, atol=1e-6, rtol=1e-6)  # content alone changes nothing
        moved = full_sequence_states(lm.model, collate, a, palette_b)  # a's content, b's palette
        assert (held_a - moved).abs().max() > 1e-3  # the palette outputs do

        # the split dual forward equals the full sequence's second pass, and content reaches the task through it
        split_a = task_states(lm.model, batch_a, palette_a)
        torch.testing.assert_close(split_a, held_a, atol=1e-5, rtol=1e-5)
        assert (split_a - task_states(lm.model, batch_b, palette_b)).abs().max() > 1e-3


def test_contrastive_losses_are_zero_when_margins_hold_and_squared_hinges_otherwise() -> None:
    basis = torch.eye(4)
    separated = torch.stack([basis[:2], basis[2:]])  # (2 items, 2 aspects, 4): every pair orthogonal
    assert intra_palette_loss(separated, 0.1) == 0 and inter_palette_loss(separated, 0.25) == 0

    tilt = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.2, (1 - 0.2**2) ** 0.5, 0.0, 0.0]])  # cosine 0.2
    assert intra_palette_loss(tilt[None], 0.25) == 0  # below the margin
    torch.testing.assert_close(intra_palette_loss(tilt[None], 0.1), torch.tensor(0.1**2))  # (0.2 - 0.1)^2
    same = torch.stack([tilt, tilt])  # two items with the same palette: aspect j of both at cosine 1
    torch.testing.assert_close(inter_palette_loss(same, 0.25), torch.tensor(0.75**2))
    assert inter_palette_loss(tilt[None], 0.25) == 0  # one item has no negatives
    scaled = torch.stack([tilt, 3 * tilt])  # cosine, not dot product
    torch.testing.assert_close(inter_palette_loss(scaled, 0.25), torch.tensor(0.75**2))


def test_item_examples_build_content_and_one_task_per_present_attribute(tiny_dirs) -> None:
    config, lm = lamia(tiny_dirs, task_fields=("title", "brand", "category"))
    ids, examples = item_examples(MIND_ITEMS, lm.tokenizer, config)
    assert ids == ["N1", "N2", "N3"]  # N4 has no text
    decode = lm.tokenizer.decode
    assert decode(examples[0].content, skip_special_tokens=True) == (  # BOS + 15 words: max_content_tokens 16
        "title : Yellowstone tourist injured ; abstract : A tourist suffered severe burns at a"
    )
    prompts = [decode(prompt) for prompt, _ in examples[0].tasks]
    assert prompts == ["title :", "category :"]  # N1 has no brand: no brand task
    assert [decode(answer) for _, answer in examples[1].tasks] == [
        "Matte Liquid Lipstick </s>",
        "Glossier </s>",
        "Beauty </s>",
    ]
    assert all(len(answer) <= config.max_answer_tokens for e in examples for _, answer in e.tasks)
    assert examples[0].tasks[0][1][-1] == lm.tokenizer.eos_token_id  # the answer of a cut title still ends


@pytest.mark.parametrize("precision", PRECISIONS)
def test_training_lowers_the_generation_loss_and_keeps_the_base(tiny_dirs, precision: Precision) -> None:
    config, lm = lamia(tiny_dirs)
    config = dataclasses.replace(config, training=dataclasses.replace(config.training, epochs=25, precision=precision))
    _, examples = item_examples(MIND_ITEMS, lm.tokenizer, config)
    base = frozen_state(lm.model)
    collate = PaletteCollate(lm.tokenizer, config.palette_size)
    result = train(lm.model, examples, collate, lamia_loss(config), config.training, where=cpu_placement())
    generation = [log.parts["generation"] for log in result.history]
    assert np.mean(generation[-3:]) < 0.5 * np.mean(generation[:3])
    assert all({"generation", "intra", "inter"} <= log.parts.keys() for log in result.history)
    log = result.history[-1]
    assert log.loss == pytest.approx(
        log.parts["generation"] + config.gamma * (log.parts["intra"] + log.parts["inter"]), rel=1e-4
    )
    assert all(torch.equal(tensor, base[name]) for name, tensor in frozen_state(lm.model).items())


def test_gamma_zero_drops_the_contrastive_terms(tiny_dirs) -> None:
    config, lm = lamia(tiny_dirs, gamma=0.0)
    _, examples = item_examples(MIND_ITEMS, lm.tokenizer, config)
    output = lamia_loss(config)(lm.model, PaletteCollate(lm.tokenizer, 2)(examples))
    assert output.parts["inter"] > 0 and output.loss.item() == pytest.approx(output.parts["generation"])


@pytest.mark.parametrize("kind", ["llama", "opt"])
def test_palette_inference_does_not_depend_on_batching(tiny_dirs, kind: str) -> None:
    config, lm = lamia(tiny_dirs, kind)
    _, examples = item_examples(MIND_ITEMS, lm.tokenizer, config)
    collate = PaletteCollate(lm.tokenizer, config.palette_size)
    batched = palette_embeddings(lm.model, collate, examples, 8, cpu_placement())
    alone = palette_embeddings(lm.model, collate, examples, 1, cpu_placement())
    dim = 32 if kind == "llama" else 16  # OPT's output projection
    assert batched.shape == (3, 2, dim) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert np.abs(batched[0] - batched[1]).max() > 1e-3


def test_items_with_text_but_no_content_get_the_shared_prior_palette(tiny_dirs) -> None:
    config, lm = lamia(tiny_dirs)
    categories_only = {  # Beauty has items like these: no title, no brand, only the category path
        "item_id": ["C1", "C2"],
        "title": [None, ""],
        "description": [None, None],
        "brand": ["Acme", None],
        "categories": [["Beauty"], ["Beauty", "Makeup"]],
        "attributes": [None, None],
        "has_text": [True, True],
    }
    items = pl.concat([MIND_ITEMS, pl.DataFrame(categories_only, schema=MIND_ITEMS.schema)])
    assert item_examples(items, lm.tokenizer, config)[0] == ["N1", "N2", "N3"]  # training: nothing to learn from
    ids, examples = item_examples(items, lm.tokenizer, config, empty_content=True)
    assert ids == ["N1", "N2", "N3", "C1", "C2"]  # N4 has no text at all
    collate = PaletteCollate(lm.tokenizer, config.palette_size)
    palette = palette_embeddings(lm.model, collate, examples, 4, cpu_placement())
    assert np.isfinite(palette).all()
    np.testing.assert_allclose(palette[3], palette[4], atol=1e-5)  # no content: the same palette
    assert np.abs(palette[3] - palette[0]).max() > 1e-3
