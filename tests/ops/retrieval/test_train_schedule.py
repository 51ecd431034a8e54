"""The budget-aware learning-rate schedule: warm-up over a fixed share of the run, cosine decay to a floor by the
end of the budget or of the planned steps, whichever comes first; a constant rate after warm-up when asked."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from ops.retrieval.train import SELECTION_METRIC, Task, TrainConfig, fit, lr_multiplier, trained_state


def test_multiplier_warms_up_linearly_then_follows_a_cosine_to_the_floor():
    config = TrainConfig(warmup=0.1, min_lr_ratio=0.1)
    progress = np.linspace(0, 1, 201)
    values = np.array([lr_multiplier(p, config) for p in progress])
    assert values[0] == 0 and lr_multiplier(0.05, config) == pytest.approx(0.5)
    assert lr_multiplier(0.1, config) == 1.0 and values[-1] == pytest.approx(0.1)
    assert (np.diff(values[progress <= 0.1]) > 0).all() and (np.diff(values[progress >= 0.1]) < 0).all()
    assert lr_multiplier(0.55, config) == pytest.approx(0.55)  # half-way through the decay: mid-way to the floor
    assert lr_multiplier(2.0, config) == pytest.approx(0.1)  # past the end (the last step of a budget): the floor
    constant = TrainConfig(warmup=0.1, decay=False)
    assert lr_multiplier(0.05, constant) == pytest.approx(0.5) and lr_multiplier(0.9, constant) == 1.0


def counting_task(step_seconds: float) -> tuple[torch.nn.Module, Task]:
    """A one-parameter model, one batch per epoch, each step taking ``step_seconds``; validation never improves."""
    model = torch.nn.Linear(1, 1)

    def loss(_: int) -> tuple[torch.Tensor, int]:
        time.sleep(step_seconds)
        return model(torch.ones(1, 1)).pow(2).mean(), 1

    return model, Task(batches=lambda rng: [0], loss=loss, validate=lambda: {SELECTION_METRIC: 0.0})


def test_a_short_budget_reaches_the_peak_early_and_ends_near_the_floor():
    config = TrainConfig(lr=1e-2, warmup=0.1, max_epochs=100_000, max_train_seconds=1.5, patience=100_000)
    model, task = counting_task(step_seconds=0.005)
    result = fit(model, task, config)
    lrs = np.array([log.lr for log in result.history])  # one step per epoch: the schedule step by step
    assert result.stopped == "budget" and len(lrs) > 20
    peak = int(lrs.argmax())
    assert lrs[peak] > 0.9 * config.lr and peak < 0.3 * len(lrs)  # warm-up ends early in the budget
    assert lrs[-1] < 0.2 * config.lr and (np.diff(lrs[peak:]) <= 1e-12).all()  # then decays to near the floor


def test_without_a_binding_budget_the_planned_steps_set_the_pace():
    config = TrainConfig(lr=1e-2, warmup=0.1, max_epochs=50, max_train_seconds=1e6, patience=100)
    model, task = counting_task(step_seconds=0.0)
    lrs = [log.lr for log in fit(model, task, config).history]
    assert len(lrs) == 50 and lrs[0] == pytest.approx(1e-2 * (1 / 50) / 0.1)  # step 1 of 50 planned, warm-up 5 steps
    assert lrs[4] == pytest.approx(1e-2) and lrs[-1] == pytest.approx(1e-3)  # peak at step 5, floor at step 50


def test_the_best_epoch_is_restored_and_frozen_weights_are_not_copied():
    """Validation peaks at epoch 2 of 4: the trainable weights return to their epoch-2 values; a frozen weight is
    neither copied nor touched."""
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
    model[1].requires_grad_(False)
    frozen = model[1].weight.detach().clone()
    scores, snapshots = iter([0.1, 0.5, 0.2, 0.3]), []

    def validate() -> dict[str, float]:
        snapshots.append(model[0].weight.detach().clone())
        return {SELECTION_METRIC: next(scores)}

    def loss(_: int) -> tuple[torch.Tensor, int]:
        return (model(torch.ones(1, 1)) - 5).pow(2).mean(), 1

    config = TrainConfig(lr=0.1, warmup=0.0, decay=False, max_epochs=4, patience=10, max_train_seconds=60)
    result = fit(model, Task(batches=lambda rng: [0], loss=loss, validate=validate), config)
    assert result.best_epoch == 2 and not torch.equal(snapshots[1], snapshots[3])
    assert torch.equal(model[0].weight, snapshots[1])
    assert torch.equal(model[1].weight, frozen)
    assert set(trained_state(model)) == {"0.weight", "0.bias"}


def test_patience_counts_only_the_validations_after_warm_up():
    """Validation never improves; warm-up takes the first 10 of 100 planned steps (one step per epoch): the run
    stops ``patience`` epochs after the last warm-up epoch, not ``patience`` epochs after the start."""
    config = TrainConfig(lr=1e-2, warmup=0.1, max_epochs=100, max_train_seconds=1e6, patience=3, patience_share=0)
    model, task = counting_task(step_seconds=0.0)
    result = fit(model, task, config)
    assert result.stopped == "patience"
    assert len(result.history) == 9 + 3  # epochs 1-9 end inside the warm-up (progress < 0.1), then 3 more
    no_warmup = replace(config, warmup=0.0)
    assert len(fit(*counting_task(step_seconds=0.0), no_warmup).history) == 1 + 3  # the first is the best


def test_patience_also_waits_for_its_share_of_the_run():
    """Three validations without gain are not enough on their own: the run also goes on until a quarter of its
    progress (25.5 of 100 planned steps, so 26 epochs) has passed since warm-up ended, since many short epochs of a
    small data set validate on noise."""
    config = TrainConfig(lr=1e-2, warmup=0.1, max_epochs=100, max_train_seconds=1e6, patience=3, patience_share=0.255)
    result = fit(*counting_task(step_seconds=0.0), config)
    assert result.stopped == "patience" and len(result.history) == 10 + 26  # progress 0.36 >= warm-up + 0.255
    with pytest.raises(ValueError, match="patience_share"):
        TrainConfig(patience_share=1.5)
