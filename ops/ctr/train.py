"""The one CTR training loop: Adam on binary cross-entropy, early stopping on validation AUC, best epoch restored.

Deterministic on the CPU: the model is initialised and shuffled under one forked, seeded RNG, so the same
data, config and seed give the same weights and the same AUC, without disturbing the caller's random state.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ops.ctr.data import CTRData, Split, shuffled_batches
from ops.ctr.metrics import auc, logloss

EpochCallback = Callable[[dict[str, Any]], None]  # epoch, train_loss, valid_auc, valid_logloss, seconds
EVAL_BATCH = 65536  # rows per forward pass when scoring; no gradients, so memory stays small


@dataclass(frozen=True)
class CTRTrainConfig:
    batch_size: int = 4096  # FuxiCTR's Amazon/MovieLens setting; big enough that 2 CPU cores stay fed
    lr: float = 3e-3  # Adam; BARS uses 1e-3, but on Beauty validation AUC 3e-3 is higher and peaks sooner (README)
    max_epochs: int = 20  # an upper bound only: ID models peak within a few epochs and early stopping ends them
    patience: int = 2  # epochs without a better validation AUC before stopping (BARS uses 2)
    seed: int = 0  # model initialisation, dropout and shuffling
    plateau_factor: float = 0.1  # lr x this after each epoch without a better validation AUC (BARS/FuxiCTR)
    min_lr: float = 1e-6  # floor of those reductions

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.lr <= 0 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError(f"batch_size, max_epochs, patience must be >= 1 and lr > 0, got {self}")
        if not 0 < self.plateau_factor <= 1 or self.min_lr < 0:
            raise ValueError(f"plateau_factor must be in (0, 1] and min_lr >= 0, got {self}")

    @classmethod
    def test(cls) -> CTRTrainConfig:
        return cls(batch_size=256, lr=1e-2, max_epochs=3, patience=1, seed=0)


@dataclass(frozen=True)
class CTRResult:
    history: list[dict[str, Any]]  # one entry per epoch, as passed to the callback
    best_epoch: int  # 1-based epoch whose weights the model holds now
    valid_auc: float  # at the best epoch
    test_auc: float
    test_logloss: float
    train_seconds: float  # training steps only, all epochs
    samples_per_second: float  # training rows per second of training steps


def fit(
    build: Callable[[], nn.Module],
    data: CTRData,
    config: CTRTrainConfig,
    callback: EpochCallback | None = None,
) -> tuple[nn.Module, CTRResult]:
    """Build the model and train it, both under a forked RNG seeded with ``config.seed``."""
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        model = build().to(data.train.x.device)
        return model, train_ctr(model, data, config, callback)


def train_ctr(
    model: nn.Module, data: CTRData, config: CTRTrainConfig, callback: EpochCallback | None = None
) -> CTRResult:
    """Train ``model`` in place on ``data.train``; it ends holding its best-validation-AUC weights."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)  # one kernel per step, not per tensor
    shuffle = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    train_seconds = 0.0
    for epoch in range(1, config.max_epochs + 1):
        start = time.perf_counter()
        train_loss = _train_epoch(model, optimizer, data.train, config, shuffle, epoch)
        seconds = time.perf_counter() - start
        train_seconds += seconds
        valid_auc, valid_logloss = evaluate(model, data.valid)
        log = {
            "epoch": epoch,
            "train_loss": train_loss,
            "valid_auc": valid_auc,
            "valid_logloss": valid_logloss,
            "seconds": seconds,
            "lr": optimizer.param_groups[0]["lr"],
        }
        history.append(log)
        if callback is not None:
            callback(log)
        if best is None or valid_auc > best[0]:
            best = (valid_auc, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= config.patience:
            break
        else:  # a plateau: go on from here with smaller steps, as BARS' reduce-lr-on-plateau does
            for group in optimizer.param_groups:
                group["lr"] = max(group["lr"] * config.plateau_factor, config.min_lr)
    assert best is not None
    model.load_state_dict(best[2])
    test_auc, test_logloss = evaluate(model, data.test)
    samples = len(data.train) * len(history)
    return CTRResult(history, best[1], best[0], test_auc, test_logloss, train_seconds, samples / train_seconds)


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    config: CTRTrainConfig,
    shuffle: torch.Generator,
    epoch: int,
) -> float:
    """One shuffled pass; returns the row-weighted mean training loss."""
    model.train()
    total = torch.zeros((), dtype=torch.float64)
    n_batches = -(-len(split) // config.batch_size)
    batches = shuffled_batches(split, config.batch_size, shuffle)
    progress = tqdm(batches, total=n_batches, desc=f"epoch {epoch}", leave=False, disable=None)  # None: off a TTY, none
    for x, y in progress:
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().double().cpu() * len(y)
    return float(total / len(split))


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Click probabilities (n_rows,) as float64 numpy."""
    model.eval()
    logits = torch.cat([model(chunk) for chunk in x.split(EVAL_BATCH)])  # (n_rows,)
    return torch.sigmoid(logits.double()).cpu().numpy()


def evaluate(model: nn.Module, split: Split) -> tuple[float, float]:
    """(AUC, log loss) of ``model`` on ``split``."""
    labels = split.y.cpu().numpy()
    probabilities = predict(model, split.x)
    return auc(labels, probabilities), logloss(labels, probabilities)
