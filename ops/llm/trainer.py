"""The one training loop for every LoRA task: a task is a collate function and a loss function.

Each optimizer step sees ``batch_size`` examples as ``batch_size / micro_batch_size`` micro-batches (gradient
accumulation: LAMIA's batch of 128 fits a CPU's memory). A loss function returns its loss *mean* over the
micro-batch with the *weight* it averaged over (target tokens for a language-model loss, examples for a
per-example one); the loop backpropagates ``mean x weight`` and divides the summed gradients by the step's total
weight, so k micro-batches give the gradient of one big batch exactly (up to float rounding) for any loss that
is a sum over its weight units. In-batch contrastive losses (SimCSE, LAMIA's inter-palette loss) are not: their
negatives are the micro-batch's, so accumulation is an approximation for them, and their micro-batch is their
effective batch.

Steps run under `Placement.autocast` (bf16 where the hardware multiplies it natively, or forced by
``Precision.BF16``); weights, gradients and Adam state stay float32. Training stops after ``epochs``, after
``max_steps``, or when the wall-clock ``budget_s`` is spent (checked after each step, so at least one step
runs), and says which. Every step's loss parts go to ``callback`` (the asset logs them to MLflow); a tqdm bar
shows progress. ``activation_checkpointing`` trades compute for memory where a micro-batch's activations would
not fit (SimCSE keeps two forward graphs of its whole contrastive batch).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch
from torch import nn
from tqdm import tqdm
from transformers import PreTrainedModel

from ops.device import Placement, Precision, placement

Batch = Mapping[str, torch.Tensor]  # what a collate function returns: named tensors (moved to the device here)


@dataclass(frozen=True)
class LossOutput:
    loss: torch.Tensor  # () mean over the micro-batch's ``weight`` units; the quantity optimized
    weight: float  # units the mean is over (target tokens, examples); micro-batches are combined by it
    parts: Mapping[str, float] = field(default_factory=dict)  # named terms (means too), logged per step


Collate = Callable[[Sequence[Any]], Batch]
LossFn = Callable[[nn.Module, Batch], LossOutput]


class StopReason(StrEnum):
    EPOCHS = "epochs"  # every epoch ran
    MAX_STEPS = "max_steps"  # the step cap was reached
    BUDGET = "budget"  # the wall-clock budget was spent


@dataclass(frozen=True)
class TrainerConfig:
    lr: float = 1e-4  # Adam (LAMIA: 1e-4)
    batch_size: int = 128  # examples per optimizer step (LAMIA: 128)
    micro_batch_size: int = 8  # examples per forward/backward; a CPU-sized slice of the batch
    epochs: int = 1  # passes over the examples (the budget or max_steps may stop earlier)
    max_steps: int = 0  # optimizer steps at most; 0 = no cap
    budget_s: float = 0.0  # wall-clock seconds for the whole run; 0 = no budget
    precision: Precision = Precision.AUTO  # bf16 autocast where the hardware has it natively
    max_grad_norm: float = 1.0  # gradient clipping; 0 = none
    weight_decay: float = 0.0  # decoupled (AdamW); 0 = plain Adam, as the papers
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0 = only the final one
    # recompute each layer's activations in the backward pass (the dropout masks replayed, so gradients are the
    # same): a micro-batch keeps one layer's activations instead of every layer's, for up to ~1.9x the step time
    # (measured: SimCSE's 32 x 128-token micro-batch 27 -> 51 s; LAMIA's micro-batch of 16 items 38.7 -> 39.8 s)
    activation_checkpointing: bool = False
    seed: int = 0  # example order and dropout draw from it

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision(self.precision))
        if self.micro_batch_size < 1 or self.batch_size % self.micro_batch_size:
            raise ValueError(f"batch_size must be a multiple of micro_batch_size >= 1, got {self}")
        if self.lr <= 0 or self.epochs < 1 or self.max_steps < 0 or self.budget_s < 0 or self.checkpoint_every < 0:
            raise ValueError(f"invalid trainer config {self}")

    @property
    def accumulation(self) -> int:
        return self.batch_size // self.micro_batch_size

    @classmethod
    def test(cls) -> TrainerConfig:
        return cls(lr=1e-3, batch_size=4, micro_batch_size=2, epochs=2)


@dataclass(frozen=True)
class StepLog:
    step: int  # 1-based optimizer step
    epoch: int  # 1-based
    loss: float  # weighted mean over the step's micro-batches
    parts: dict[str, float]  # each part's weighted mean over the step's micro-batches
    examples: int  # examples in this step (the last of an epoch may be short)
    seconds: float  # wall time of this step
    elapsed_s: float  # since training started


@dataclass(frozen=True)
class TrainResult:
    history: list[StepLog]
    stopped: StopReason
    seconds: float
    examples_per_s: float


StepCallback = Callable[[StepLog], None]
CheckpointFn = Callable[[int], None]  # called with the step number whenever a checkpoint is due


def train(
    model: nn.Module,
    examples: Sequence[Any],
    collate: Collate,
    loss_fn: LossFn,
    config: TrainerConfig,
    callback: StepCallback | None = None,
    checkpoint: CheckpointFn | None = None,
    where: Placement | None = None,
    description: str = "train",
) -> TrainResult:
    """Optimize ``model``'s trainable parameters on ``examples``; the model ends in eval mode on ``where``."""
    where = where or placement()
    model.to(where.device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters or not examples:
        raise ValueError(f"nothing to train: {len(parameters)} trainable tensors, {len(examples)} examples")
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    planned = math.ceil(len(examples) / config.batch_size) * config.epochs
    history: list[StepLog] = []
    stopped, start = StopReason.EPOCHS, time.perf_counter()
    model.train()
    with (
        _activation_checkpointing(model, config.activation_checkpointing),
        torch.random.fork_rng(devices=[where.device] if where.device.type == "cuda" else []),
        tqdm(total=min(planned, config.max_steps or planned), desc=description, unit="step", disable=None) as bar,
    ):
        torch.manual_seed(config.seed)  # dropout masks
        for epoch, indices in _step_indices(len(examples), config):
            step_start = time.perf_counter()
            chunks = indices.split(config.micro_batch_size)
            micro = [collate([examples[i] for i in chunk.tolist()]) for chunk in chunks]
            loss, parts = accumulate_gradients(model, micro, loss_fn, config.precision, where)
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            now = time.perf_counter()
            log = StepLog(len(history) + 1, epoch, loss, parts, len(indices), now - step_start, now - start)
            history.append(log)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            if callback is not None:
                callback(log)
            if checkpoint is not None and config.checkpoint_every and log.step % config.checkpoint_every == 0:
                checkpoint(log.step)
            stopped = _stop_reason(log, config)
            if stopped is not StopReason.EPOCHS:
                break
    model.eval()
    if checkpoint is not None and (not config.checkpoint_every or history[-1].step % config.checkpoint_every):
        checkpoint(history[-1].step)  # the final state, unless the last step just saved it
    seconds = time.perf_counter() - start
    return TrainResult(history, stopped, seconds, sum(log.examples for log in history) / max(seconds, 1e-9))


@contextlib.contextmanager
def _activation_checkpointing(model: nn.Module, enabled: bool) -> Iterator[None]:
    """Switch ``transformers``' per-layer activation checkpointing on for the block (non-reentrant, so inputs
    need no gradient and the RNG state is replayed: same dropout masks, same gradients), and off after it."""
    models = [m for m in model.modules() if isinstance(m, PreTrainedModel)][:1] if enabled else []
    if enabled and not models:
        raise ValueError(f"activation checkpointing needs a transformers model inside {type(model).__name__}")
    for pretrained in models:
        pretrained.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    try:
        yield
    finally:
        for pretrained in models:
            pretrained.activation_checkpointing_disable()


def _step_indices(n_examples: int, config: TrainerConfig) -> Iterator[tuple[int, torch.Tensor]]:
    """(epoch, example indices of one optimizer step), shuffled per epoch from the config's seed."""
    order = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, config.epochs + 1):
        for indices in torch.randperm(n_examples, generator=order).split(config.batch_size):
            yield epoch, indices


def accumulate_gradients(
    model: nn.Module,
    micro_batches: Sequence[Batch],
    loss_fn: LossFn,
    precision: Precision,
    where: Placement,
) -> tuple[float, dict[str, float]]:
    """Leave in ``.grad`` the gradient of the weighted mean loss over all ``micro_batches`` (one optimizer
    step's worth); return that loss and its parts' weighted means."""
    total_weight, loss_sum, part_sums = 0.0, 0.0, {}
    for batch in micro_batches:
        batch = {name: tensor.to(where.device) for name, tensor in batch.items()}
        with where.autocast(precision):
            output = loss_fn(model, batch)
        if output.weight == 0:  # nothing to learn from (e.g. no token drawn for masking): a 0/0 mean is NaN
            continue
        (output.loss.float() * output.weight).backward()
        total_weight += output.weight
        loss_sum += output.loss.item() * output.weight
        for name, value in output.parts.items():
            part_sums[name] = part_sums.get(name, 0.0) + value * output.weight
    if total_weight <= 0:
        raise ValueError("the step's micro-batches have no weight (no target tokens?)")
    for parameter in model.parameters():
        if parameter.grad is not None:
            parameter.grad.div_(total_weight)
    return loss_sum / total_weight, {name: value / total_weight for name, value in part_sums.items()}


def _stop_reason(log: StepLog, config: TrainerConfig) -> StopReason:
    """Why to stop after this step, or EPOCHS to go on (the loop ends by itself after the last epoch)."""
    if config.max_steps and log.step >= config.max_steps:
        return StopReason.MAX_STEPS
    if config.budget_s and log.elapsed_s >= config.budget_s:
        return StopReason.BUDGET
    return StopReason.EPOCHS
