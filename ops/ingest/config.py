"""Settings of the ingest stages, shared by the stages, the data-set registry (per-data-set defaults) and the assets."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class NormalizeConfig:
    max_reject_fraction: float = 0.01  # fail a file when more than 1% of its rows are rejected


@dataclass(frozen=True)
class KCoreConfig:
    k: int = 5  # the usual 5-core of the Amazon and TIGER literature

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k = {self.k}: the k-core needs k >= 1")


@dataclass(frozen=True)
class SplitConfig:
    seed: int = 42  # seed of the random 8/1/1 split
    train_fraction: float = 0.8  # share of all interactions, drawn at random, in the random split's train part
    valid_fraction: float = 0.1  # share in its valid part
    test_fraction: float = 0.1  # share in its test part; the three sum to 1

    def __post_init__(self) -> None:
        check_fractions(self.train_fraction, self.valid_fraction, self.test_fraction)


def check_fractions(train: float, valid: float, test: float) -> None:
    """Raise ValueError unless the three fractions are each in [0, 1], train > 0, and they sum to 1.

    A sum off by more than rounding would silently drop (or double-count) interactions in the random split.
    """
    fractions = {"train_fraction": train, "valid_fraction": valid, "test_fraction": test}
    for name, value in fractions.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} = {value} is outside [0, 1]")
    if train <= 0.0:
        raise ValueError("train_fraction must be above 0: a split without training rows trains nothing")
    total = train + valid + test
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        raise ValueError(f"split fractions must sum to 1: train {train} + valid {valid} + test {test} = {total:g}")
