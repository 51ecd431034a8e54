"""The one training loop for every retrieval model: AdamW, a budget-aware learning-rate schedule, early stopping
on validation Recall@10, and a wall-clock budget, so all models get the same treatment and the same CPU time.

The budget counts everything the fit does (training steps and validations): a benchmark that gives each
model N seconds means N seconds of machine time. It is checked after every step; when it runs out the partial
epoch is still validated, then the loop stops. The weights of the best validated epoch are restored at the end.
Training is seeded under a forked RNG, so it neither depends on nor disturbs the caller's random state.

The schedule follows the run's progress, not a fixed step count: progress = max(steps / planned steps,
elapsed / budget), where planned steps = max_epochs x batches per epoch. The learning rate warms up linearly
over the first ``warmup`` of the progress, then follows a cosine down to ``min_lr_ratio`` x peak at progress 1
(or stays at the peak with ``decay=False``). A fixed step count cannot be right for every budget: TIGER's
1,000-step warm-up never ended in a 15-minute CPU run on a 4,344-item catalogue, which trained at a quarter of
its peak rate throughout. With progress, a 15-minute and a 15-hour run both warm up for 5% of their time and
end near the floor. An early stop on patience simply ends the run before the schedule does.

Early stopping needs both ``patience`` validations and ``patience_share`` of the run's progress without a
better Recall@10, both counted from the end of warm-up at the earliest (a model below its peak rate says nothing
by not improving yet). Validations alone are no clock: on a 1,000-user sample a 20-minute run validates every 10
s, and five validations at noise level (2 or 3 hits in 1,000) stopped it after 90 s, restoring a warm-up epoch's
weights that scored 0 on test. On all of Beauty five validations are ~8 minutes, a quarter of a 30-minute run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch

from ops.device import Precision, placement

Batch = TypeVar("Batch")
M = TypeVar("M", bound=torch.nn.Module)
SELECTION_METRIC = "recall@10"  # validation metric early stopping and model selection follow


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 256  # TIGER's batch size
    lr: float = 1e-3  # AdamW peak learning rate (TIGER's 0.01 is for Adafactor; AdamW diverges there)
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    warmup: float = 0.05  # fraction of the run's progress (budget or planned steps) spent in linear warm-up
    decay: bool = True  # cosine decay to min_lr_ratio x lr by the end of the run; False: the peak lr stays
    min_lr_ratio: float = 0.1  # floor of the cosine, as a fraction of the peak (LLaMA's and Chinchilla's 10%)
    max_epochs: int = 200  # upper bound; the budget or patience usually stops earlier
    max_train_seconds: float = 1800.0  # wall-clock budget of the whole fit (steps + validations)
    patience: int = 5  # validations after warm-up without a better Recall@10 before stopping ...
    patience_share: float = 0.25  # ... and at least this share of the run's progress (see the module docstring)
    eval_users: int = 2000  # seeded sample of validation users scored after each epoch (0 = all)
    seed: int = 0  # weights, dropout, shuffling and the validation sample derive from it
    precision: Precision = Precision.AUTO  # bf16 autocast of the steps where the hardware has it (ops/device.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", Precision(self.precision))  # a plain string from JSON/checkpoints
        if self.batch_size < 1 or self.lr <= 0 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError(f"batch_size, max_epochs and patience must be >= 1 and lr > 0, got {self}")
        if not 0 <= self.warmup < 1 or not 0 <= self.min_lr_ratio <= 1 or self.max_train_seconds <= 0:
            raise ValueError(f"warmup must be in [0, 1), min_lr_ratio in [0, 1], the budget > 0, got {self}")
        if not 0 <= self.patience_share <= 1:
            raise ValueError(f"patience_share must be in [0, 1], got {self}")

    @classmethod
    def test(cls) -> TrainConfig:
        return cls(batch_size=16, lr=3e-3, max_epochs=60, max_train_seconds=60.0, patience=60)


@dataclass(frozen=True)
class EpochLog:
    epoch: int  # 1-based
    train_loss: float  # sample-weighted mean over the epoch's steps
    valid: dict[str, float]  # metrics on the validation sample
    samples: int  # next-item targets trained this epoch: examples (TIGER), window targets (decoder), positions (SASRec)
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


def lr_multiplier(progress: float, config: TrainConfig) -> float:
    """Fraction of the peak learning rate at ``progress`` in [0, 1] of the run (see the module docstring)."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < config.warmup:
        return progress / config.warmup
    if not config.decay:
        return 1.0
    cosine = 0.5 * (1 + math.cos(math.pi * (progress - config.warmup) / (1 - config.warmup)))  # 1 -> 0
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine


def adamw(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over ``model``'s parameters, fused into one kernel per step where torch has one (CPU, CUDA): on the
    CPU the per-tensor loop took 7x longer, ~200 ms of a decoder step on a loaded 2-core machine."""
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)


def fit(
    model: torch.nn.Module, task: Task[Batch], config: TrainConfig, callback: EpochCallback | None = None
) -> FitResult:
    """Train ``model`` (already on its device) on ``task`` until patience, budget or max_epochs runs out."""
    start = time.perf_counter()
    optimizer = adamw(model, config)
    rng = np.random.default_rng(config.seed)
    history: list[EpochLog] = []
    best_state, best_valid, best_epoch, best_progress = None, {SELECTION_METRIC: -1.0}, 0, 0.0
    stopped, train_seconds, train_samples, step, planned_steps = "max_epochs", 0.0, 0, 0, 0
    progress, warm_epoch = 0.0, 0  # warm_epoch: the last epoch that ended inside the warm-up (patience counts after)
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        for epoch in range(1, config.max_epochs + 1):
            model.train()
            epoch_start, loss_sum, samples = time.perf_counter(), 0.0, 0
            batches = list(task.batches(rng))
            planned_steps = planned_steps or config.max_epochs * max(len(batches), 1)
            for batch in batches:
                step += 1
                progress = max(step / planned_steps, (time.perf_counter() - start) / config.max_train_seconds)
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * lr_multiplier(progress, config)
                with placement().autocast(config.precision):
                    loss, n = task.loss(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum, samples = loss_sum + loss.item() * n, samples + n
                if time.perf_counter() - start > config.max_train_seconds:
                    stopped = "budget"
                    break
            seconds = time.perf_counter() - epoch_start
            train_seconds, train_samples = train_seconds + seconds, train_samples + samples
            if progress < config.warmup:
                warm_epoch = epoch
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
                best_state = trained_state(model)
                best_valid, best_epoch, best_progress = valid, epoch, progress
            elif (
                epoch - max(best_epoch, warm_epoch) >= config.patience
                and progress - max(best_progress, config.warmup) >= config.patience_share
            ):
                stopped = "patience"
            if stopped != "max_epochs":
                break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)  # the frozen weights never moved
    model.eval()
    return FitResult(
        history, best_epoch, best_valid, time.perf_counter() - start, train_samples / max(train_seconds, 1e-9), stopped
    )


def trained_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the tensors training can change: trainable parameters and buffers, not frozen weights (a LoRA
    run of a 135M-parameter LLM trains ~3M: copying the whole state at every better epoch copied 540 MB)."""
    return {
        name: tensor.detach().to("cpu", copy=True)
        for name, tensor in model.state_dict(keep_vars=True).items()
        if not isinstance(tensor, torch.nn.Parameter) or tensor.requires_grad
    }


def seeded(build: Callable[[], M], seed: int) -> M:
    """``build()`` under torch's generator seeded with ``seed`` (forked: the caller's random state is untouched);
    models are built on the CPU, so the same seed gives the same weights on every device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def sample_users(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted seeded sample of ``size`` row indices out of ``n`` (all of them when size is 0 or >= n)."""
    if size <= 0 or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
