"""Test metrics of a CTR model: ROC AUC (rank statistic, ties averaged) and log loss, on numpy arrays."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

PROBABILITY_EPS = np.finfo(np.float64).eps  # clip like sklearn's log_loss for float64 inputs


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC: P(score of a random positive > a random negative), ties counting one half.

    Average ranks give tied scores half credit exactly, which is what the trapezoidal ROC area does.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    n_positive = int(labels.sum())
    n_negative = labels.size - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError("AUC needs both positive and negative labels")
    ranks = rankdata(np.asarray(scores, dtype=np.float64).ravel(), method="average")  # 1-based
    return float((ranks[labels].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def logloss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities, clipped away from 0 and 1."""
    labels = np.asarray(labels, dtype=np.float64).ravel()
    p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p)))
