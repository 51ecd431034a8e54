"""LLM2Vec: MNTP masks and shifts as LLM2Vec defines, SimCSE learns, the adapted model is an embedder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ops.device import Precision, cpu_placement
from ops.embeddings.attention import attends_to_future
from ops.embeddings.config import EmbedderConfig, Pooling, llm2vec_config
from ops.embeddings.encoder import TransformerEmbedder
from ops.llm.language_modeling import IGNORE, next_token_loss
from ops.llm.llm2vec import LLM2VecConfig, adapt
from ops.llm.lora import decoder_parts
from ops.llm.mntp import MNTPCollate, MNTPConfig, mask_tokens
from ops.llm.simcse import collate_texts, embed, simcse_loss
from ops.llm.trainer import TrainerConfig, train
from tests.ops.llm.conftest import PRECISIONS, VOCAB_TEXTS


def test_mask_tokens_selects_and_replaces_at_the_collator_rates() -> None:
    ids = torch.randint(10, 1000, (400, 250), generator=torch.Generator().manual_seed(1))  # (batch, seq)
    eligible = torch.ones_like(ids, dtype=torch.bool)
    eligible[:, :50] = False  # e.g. special tokens and position 0
    config = MNTPConfig(mask_probability=0.2)
    inputs, labels = mask_tokens(ids, eligible, 5, 1000, config, torch.Generator().manual_seed(0))
    selected = labels != IGNORE
    assert not selected[~eligible].any() and torch.equal(inputs[~selected], ids[~selected])
    assert torch.equal(labels[selected], ids[selected])  # the label is the original token
    assert abs(selected[eligible].float().mean().item() - 0.2) < 0.005
    shown = inputs[selected]
    masked = (shown == 5).float().mean().item()
    kept = (shown == ids[selected]).float().mean().item()
    assert abs(masked - 0.8) < 0.01 and abs(kept - 0.1) < 0.01 and abs(1 - masked - kept - 0.1) < 0.01  # random


def test_mntp_collate_leaves_specials_and_position_zero_alone(tiny_lm) -> None:
    lm = tiny_lm("llama")
    collate = MNTPCollate(lm.tokenizer, MNTPConfig(mask_probability=0.5))
    tokens = lm.tokenizer(VOCAB_TEXTS)["input_ids"]
    batches = [collate(tokens) for _ in range(20)]
    for batch in batches:
        original = collate_texts(tokens, lm.tokenizer.pad_token_id)["input_ids"]
        special = torch.isin(original, torch.tensor(lm.tokenizer.all_special_ids))
        assert (batch["labels"][:, 0] == IGNORE).all() and (batch["labels"][special] == IGNORE).all()
    assert not torch.equal(batches[0]["labels"], batches[1]["labels"])  # new masks every call
    assert sum(int((b["labels"] != IGNORE).sum()) for b in batches) > 100


def test_mntp_predicts_token_i_from_the_output_at_i_minus_1(tiny_lm) -> None:
    lm = tiny_lm("llama", bidirectional=True)
    assert attends_to_future(decoder_parts(lm.model).body)
    batch = MNTPCollate(lm.tokenizer, MNTPConfig(mask_probability=0.3))(lm.tokenizer(VOCAB_TEXTS)["input_ids"])
    lm.model.eval()
    with torch.no_grad():
        loss = next_token_loss(lm.model, batch)
        logits = lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"]
    rows, cols = (labels != IGNORE).nonzero(as_tuple=True)
    assert (cols > 0).all() and loss.weight == len(rows)
    shifted = F.cross_entropy(logits[rows, cols - 1], labels[rows, cols])  # LLM2Vec: position i - 1
    same_position = F.cross_entropy(logits[rows, cols], labels[rows, cols])
    torch.testing.assert_close(loss.loss, shifted, atol=1e-5, rtol=1e-5)
    assert abs(loss.loss.item() - same_position.item()) > 1e-3


def test_simcse_views_differ_by_dropout_only_in_training(tiny_lm) -> None:
    lm = tiny_lm("llama", bidirectional=True, attention_dropout=0.3)
    batch = collate_texts(lm.tokenizer(VOCAB_TEXTS)["input_ids"], lm.tokenizer.pad_token_id)
    lm.model.train()
    assert not torch.allclose(embed(lm.model, batch), embed(lm.model, batch))
    lm.model.eval()
    torch.testing.assert_close(embed(lm.model, batch), embed(lm.model, batch))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_simcse_loss_falls_on_a_toy_set(tiny_lm, precision: Precision) -> None:
    lm = tiny_lm("llama", bidirectional=True, attention_dropout=0.3)
    tokens = lm.tokenizer(VOCAB_TEXTS)["input_ids"]  # 8 distinct texts: one batch, 7 negatives each
    config = TrainerConfig(lr=1e-2, batch_size=8, micro_batch_size=8, epochs=40, precision=precision)
    pad_id = lm.tokenizer.pad_token_id
    result = train(
        lm.model, tokens, lambda b: collate_texts(b, pad_id), simcse_loss(0.05), config, where=cpu_placement()
    )
    losses = [log.parts["simcse"] for log in result.history]
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.5 * first, (first, last)


def simcse_run(lm, config: TrainerConfig) -> tuple[dict[str, torch.Tensor], bool]:
    """(the trainable weights after SimCSE on the toy texts, whether any layer checkpointed during training)."""
    tokens = lm.tokenizer(VOCAB_TEXTS)["input_ids"]
    pad_id = lm.tokenizer.pad_token_id
    modules = list(lm.model.modules())
    engaged = []
    train(
        lm.model,
        tokens,
        lambda b: collate_texts(b, pad_id),
        simcse_loss(0.05),
        config,
        lambda _: engaged.append(any(getattr(m, "gradient_checkpointing", False) for m in modules)),
    )
    assert not any(getattr(m, "gradient_checkpointing", False) for m in modules)  # off again after training
    return {n: p.detach().clone() for n, p in lm.model.named_parameters() if p.requires_grad}, all(engaged)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", ["llama", "opt"])
def test_activation_checkpointing_replays_dropout_and_trains_the_same(tiny_lm, kind: str, precision: Precision) -> None:
    """SimCSE's default (its worst micro-batch, 32 texts of 128 tokens, peaked at 23.5 GiB without it on SmolLM2):
    recomputing the layers in the backward pass must draw the same dropout masks, or the two views change."""
    config = TrainerConfig(lr=1e-2, batch_size=4, micro_batch_size=4, epochs=3, precision=precision)
    plain, plain_engaged = simcse_run(tiny_lm(kind, bidirectional=True, attention_dropout=0.3), config)
    recomputed, engaged = simcse_run(
        tiny_lm(kind, bidirectional=True, attention_dropout=0.3),
        dataclasses.replace(config, activation_checkpointing=True),
    )
    assert engaged and not plain_engaged
    tolerance = 1e-6 if precision is Precision.FLOAT32 else 1e-3
    for name, weight in plain.items():
        assert torch.allclose(weight, recomputed[name], atol=tolerance, rtol=0), name
    assert LLM2VecConfig().simcse_training.activation_checkpointing


def test_adapt_writes_an_embedder_that_differs_from_the_untrained_one(tiny_dirs: dict[str, Path], tmp_path) -> None:
    directory = str(tiny_dirs["llama"])
    config = LLM2VecConfig.test(directory)
    seen = []
    result = adapt(VOCAB_TEXTS + VOCAB_TEXTS[:2], config, tmp_path, callback=lambda phase, log: seen.append(phase))
    assert result.n_texts == len(VOCAB_TEXTS)  # duplicates dropped: they would be their own negatives
    assert seen == ["mntp"] * 4 + ["simcse"] * 4  # 2 epochs x 2 steps of 4 texts each
    assert {"mntp.pt", "simcse.pt", "model"} <= {p.name for p in tmp_path.iterdir()}
    assert json.loads((result.model_dir / "config.json").read_text())["is_causal"] is False

    adapted = TransformerEmbedder(llm2vec_config(str(result.model_dir), max_length=32), cpu_placement())
    untrained = TransformerEmbedder(
        EmbedderConfig(directory, Pooling.MEAN, bidirectional=True, max_length=32), cpu_placement()
    )
    vectors, before = adapted.encode(VOCAB_TEXTS), untrained.encode(VOCAB_TEXTS)
    assert vectors.shape == before.shape and np.isfinite(vectors).all()
    assert np.abs(vectors - before).max() > 1e-3
