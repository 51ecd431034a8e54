"""The LoRA trainer on tiny local decoders: frozen base, exact accumulation, budget, checkpoints, new tokens."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from ops.device import Precision, cpu_placement
from ops.llm.language_modeling import collate_labelled, next_token_loss
from ops.llm.lora import LoraLM, export_merged, frozen_state, load_checkpoint, read_checkpoint, save_checkpoint
from ops.llm.trainer import StopReason, TrainerConfig, accumulate_gradients, train
from tests.ops.embeddings.conftest import ITEM_TEXTS
from tests.ops.llm.conftest import PRECISIONS

NEW_TOKENS = ("<a_1>", "<b_7>")  # e.g. Semantic-ID tokens
TEXTS = [f"{NEW_TOKENS[i % 2]} {text}" for i, text in enumerate(ITEM_TEXTS)]


def examples(lm: LoraLM, texts: list[str] = TEXTS) -> list[tuple[list[int], list[int]]]:
    """Language-modelling examples: every token is its own label."""
    return [(ids, ids) for ids in lm.tokenizer(texts)["input_ids"]]


def collate(lm: LoraLM):
    return lambda batch: collate_labelled(batch, lm.tokenizer.pad_token_id)


def run(lm: LoraLM, config: TrainerConfig, **kwargs):
    return train(lm.model, examples(lm), collate(lm), next_token_loss, config, where=cpu_placement(), **kwargs)


def logits(lm_model: torch.nn.Module, lm: LoraLM) -> torch.Tensor:
    batch = collate(lm)(examples(lm))
    with torch.inference_mode():
        return lm_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def test_new_tokens_are_single_tokens_with_trainable_rows(tiny_lm) -> None:
    lm = tiny_lm("llama", new_tokens=NEW_TOKENS)
    ids = lm.tokenizer("<b_7> Ruby Red")["input_ids"]
    assert ids[1] == lm.new_token_ids[1] and len(ids) == 4  # BOS, the new token, two words
    trainable = {name for name, p in lm.model.named_parameters() if p.requires_grad}
    assert any("trainable_tokens_delta" in name for name in trainable)
    assert all("lora_" in name or "trainable_tokens_delta" in name for name in trainable)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", ["llama", "opt"])
def test_lora_leaves_base_weights_untouched(tiny_lm, kind: str, precision: Precision) -> None:
    lm = tiny_lm(kind, new_tokens=NEW_TOKENS)
    before_frozen = frozen_state(lm.model)
    before_trainable = {n: p.detach().clone() for n, p in lm.model.named_parameters() if p.requires_grad}
    run(lm, dataclasses.replace(TrainerConfig.test(), lr=1e-2, precision=precision))
    assert before_frozen.keys() == frozen_state(lm.model).keys()
    for name, tensor in frozen_state(lm.model).items():
        assert torch.equal(tensor, before_frozen[name]), f"{name} changed"
    changed = [n for n, p in lm.model.named_parameters() if p.requires_grad and not torch.equal(p, before_trainable[n])]
    assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)
    assert any("trainable_tokens_delta" in n for n in changed)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_accumulating_micro_batches_equals_one_big_batch(tiny_lm, precision: Precision) -> None:
    lm = tiny_lm("llama", new_tokens=NEW_TOKENS)
    with torch.no_grad():  # B = 0 at initialisation would leave A's gradient zero: give both a gradient
        for name, p in lm.model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.1)
    data = examples(lm)[:4]  # lengths differ, so the big batch pads and the micro-batches do not
    where = cpu_placement()

    def gradients(micro: list) -> dict[str, torch.Tensor]:
        lm.model.zero_grad(set_to_none=True)
        accumulate_gradients(lm.model, micro, next_token_loss, precision, where)
        return {n: p.grad.clone() for n, p in lm.model.named_parameters() if p.grad is not None}

    lm.model.train()
    one = gradients([collate(lm)(data)])
    four = gradients([collate(lm)([example]) for example in data])
    assert one.keys() == four.keys() and len(one) > 10
    tolerance = 1e-5 if precision is Precision.FLOAT32 else 3e-2  # bf16 rounds per matmul shape
    for name in one:
        scale = one[name].abs().max().clamp(min=1e-8)
        assert (one[name] - four[name]).abs().max() / scale < tolerance, name


def test_budget_and_step_cap_stop_training(tiny_lm) -> None:
    lm = tiny_lm("llama")
    long_run = dataclasses.replace(TrainerConfig.test(), batch_size=2, micro_batch_size=1, epochs=5)
    assert run(lm, long_run).stopped is StopReason.EPOCHS and len(run(lm, long_run).history) == 15  # 3 steps x 5
    budget = run(lm, dataclasses.replace(long_run, budget_s=1e-9))
    assert budget.stopped is StopReason.BUDGET and len(budget.history) == 1
    capped = run(lm, dataclasses.replace(long_run, max_steps=4))
    assert capped.stopped is StopReason.MAX_STEPS and [log.step for log in capped.history] == [1, 2, 3, 4]


def test_steps_report_their_loss_parts(tiny_lm) -> None:
    lm = tiny_lm("llama")
    logs = []
    result = run(lm, TrainerConfig.test(), callback=logs.append)
    assert logs == result.history and [log.epoch for log in logs] == [1, 1, 2, 2]
    assert all(
        log.parts["ce"] == pytest.approx(log.loss) and log.examples == (4 if log.step % 2 else 2) for log in logs
    )


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", ["llama", "opt"])
def test_checkpoint_reloads_to_the_same_outputs(tiny_lm, tmp_path: Path, kind: str, precision: Precision) -> None:
    lm = tiny_lm(kind, new_tokens=NEW_TOKENS)
    saved = []

    def checkpoint(step: int) -> None:
        save_checkpoint(lm, tmp_path / f"step{step}.pt", {"step": step})
        saved.append(step)

    config = dataclasses.replace(TrainerConfig.test(), lr=1e-2, checkpoint_every=3, epochs=3, precision=precision)
    run(lm, config, checkpoint=checkpoint)
    assert saved == [3, 6]  # every 3 steps; the last step (6) is not saved twice
    payload = read_checkpoint(tmp_path / "step6.pt")  # torch.load(weights_only=True) inside
    assert payload["meta"] == {"step": 6} and payload["spec"]["new_tokens"] == list(NEW_TOKENS)
    reloaded = load_checkpoint(tmp_path / "step6.pt")
    assert reloaded.new_token_ids == lm.new_token_ids
    expected = logits(lm.model, lm)
    assert torch.equal(logits(reloaded.model, reloaded), expected)
    assert not torch.allclose(logits(load_checkpoint(tmp_path / "step3.pt").model, lm), expected)

    merged = AutoModelForCausalLM.from_pretrained(export_merged(payload, tmp_path / "merged")).eval()
    assert type(merged).__name__ == type(lm.model.get_base_model()).__name__  # plain transformers, no peft
    torch.testing.assert_close(logits(merged, lm), expected, atol=1e-4, rtol=1e-4)
