"""The one training loop for TIGER and SASRec: AdamW, warm-up + inverse-sqrt schedule, early stopping on
validation Recall@10, and a wall-clock budget, so both models get the same treatment and the same CPU time.

The budget counts everything the fit does (training steps and validations): a benchmark that gives each
model N seconds means N seconds of machine time. It is checked after every step; when it runs out the partial
epoch is still validated, then the loop stops. The weights of the best validated epoch are restored at the end.
Training is seeded under a forked RNG, so it neither depends on nor disturbs the caller's random state.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch

from ops.device import placement

Batch = TypeVar("Batch")
SELECTION_METRIC = "recall@10"  # validation metric early stopping and model selection follow


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 256  # TIGER's batch size
    lr: float = 1e-3  # AdamW peak learning rate (TIGER's 0.01 is for Adafactor; AdamW diverges there)
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    warmup_steps: int = 1000  # linear warm-up, then lr * sqrt(warmup_steps / step) (TIGER: inverse sqrt)
    decay: bool = True  # False: the peak lr stays after warm-up (SASRec trains at a constant 1e-3)
    max_epochs: int = 200  # upper bound; the budget or patience usually stops earlier
    max_train_seconds: float = 1800.0  # wall-clock budget of the whole fit (steps + validations)
    patience: int = 5  # validations without a better Recall@10 before stopping
    eval_users: int = 2000  # seeded sample of validation users scored after each epoch (0 = all)
    seed: int = 0  # weights, dropout, shuffling and the validation sample derive from it
    mixed_precision: bool = True  # bf16 autocast of the training steps where the hardware has it (ops/device.py)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.lr <= 0 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError(f"batch_size, max_epochs and patience must be >= 1 and lr > 0, got {self}")

    @classmethod
    def test(cls) -> TrainConfig:
        return cls(batch_size=16, lr=3e-3, warmup_steps=10, max_epochs=60, max_train_seconds=60.0, patience=60)


@dataclass(frozen=True)
class EpochLog:
    epoch: int  # 1-based
    train_loss: float  # sample-weighted mean over the epoch's steps
    valid: dict[str, float]  # metrics on the validation sample
    samples: int  # training examples (TIGER) or predicted positions (SASRec) seen this epoch
    seconds: float  # wall time of the epoch's training steps
    samples_per_s: float
    valid_seconds: float  # wall time of the validation
    lr: float  # learning rate at the end of the epoch


EpochCallback = Callable[[EpochLog], None]


@dataclass(frozen=True)
class FitResult:
    history: list[EpochLog]
    best_epoch: int  # epoch whose weights the model holds now
    best_valid: dict[str, float]
    seconds: float  # wall time of the whole fit
    samples_per_s: float  # over all training steps
    stopped: str  # "patience", "budget" or "max_epochs"


@dataclass(frozen=True)
class Task(Generic[Batch]):
    """What a model plugs into `fit`: its batches, its loss and its validation."""

    batches: Callable[[np.random.Generator], Iterable[Batch]]  # one epoch's batches, shuffled by the generator
    loss: Callable[[Batch], tuple[torch.Tensor, int]]  # (mean loss, number of samples it averages)
    validate: Callable[[], dict[str, float]]  # metrics on the validation sample, model in eval mode


def inverse_sqrt(step: int, warmup_steps: int, decay: bool = True) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then 1 / sqrt(step / warmup_steps) (or 1 without decay)."""
    step = max(step, 1)
    warmup = max(warmup_steps, 1)
    return min(step / warmup, math.sqrt(warmup / step) if decay else 1.0)


def fit(
    model: torch.nn.Module, task: Task[Batch], config: TrainConfig, callback: EpochCallback | None = None
) -> FitResult:
    """Train ``model`` (already on its device) on ``task`` until patience, budget or max_epochs runs out."""
    start = time.perf_counter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: inverse_sqrt(step + 1, config.warmup_steps, config.decay)
    )
    rng = np.random.default_rng(config.seed)
    history: list[EpochLog] = []
    best_state, best_valid, best_epoch = None, {SELECTION_METRIC: -1.0}, 0
    stopped, train_seconds, train_samples = "max_epochs", 0.0, 0
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        for epoch in range(1, config.max_epochs + 1):
            model.train()
            epoch_start, loss_sum, samples = time.perf_counter(), 0.0, 0
            for batch in task.batches(rng):
                with placement().autocast(config.mixed_precision):
                    loss, n = task.loss(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum, samples = loss_sum + loss.item() * n, samples + n
                if time.perf_counter() - start > config.max_train_seconds:
                    stopped = "budget"
                    break
            seconds = time.perf_counter() - epoch_start
            train_seconds, train_samples = train_seconds + seconds, train_samples + samples
            model.eval()
            valid_start = time.perf_counter()
            valid = task.validate()
            log = EpochLog(
                epoch,
                loss_sum / max(samples, 1),
                valid,
                samples,
                seconds,
                samples / max(seconds, 1e-9),
                time.perf_counter() - valid_start,
                optimizer.param_groups[0]["lr"],
            )
            history.append(log)
            if callback is not None:
                callback(log)
            if valid[SELECTION_METRIC] > best_valid[SELECTION_METRIC]:
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
                best_valid, best_epoch = valid, epoch
            elif epoch - best_epoch >= config.patience:
                stopped = "patience"
            if stopped != "max_epochs":
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(
        history, best_epoch, best_valid, time.perf_counter() - start, train_samples / max(train_seconds, 1e-9), stopped
    )


def sample_users(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted seeded sample of ``size`` row indices out of ``n`` (all of them when size is 0 or >= n)."""
    if size <= 0 or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
