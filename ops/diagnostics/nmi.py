"""Discriminability (MoC paper, 5.2.2): normalized mutual information between a partition of the items
(their codes, or K-Means clusters of their semantic representation) and ground-truth labels (categories).

NMI(U, V) = I(U; V) / sqrt(H(U) H(V)), natural logarithms: the paper's geometric normalization, which is
scikit-learn's ``normalized_mutual_info_score(..., average_method="geometric")``.
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np
from numpy.typing import ArrayLike

KMEANS_ITERS = 20  # Lloyd iterations for the clusters scored against labels


def normalized_mutual_info(a: ArrayLike, b: ArrayLike) -> float:
    """NMI of two labelings of the same items (any hashable labels; rows of a 2-d array count as one label)."""
    a_ids, b_ids = _label_ids(a), _label_ids(b)
    if len(a_ids) != len(b_ids):
        raise ValueError(f"labelings differ in length: {len(a_ids)} vs {len(b_ids)}")
    n_a, n_b = a_ids.max(initial=-1) + 1, b_ids.max(initial=-1) + 1
    if n_a == n_b == 1 or n_a == n_b == 0:
        return 1.0  # two trivial partitions agree perfectly (scikit-learn's convention)
    if n_a == 1 or n_b == 1:
        return 0.0  # one cluster tells nothing about the other labeling: MI is 0 (its float sum is only near 0)
    joint = np.zeros((n_a, n_b))
    np.add.at(joint, (a_ids, b_ids), 1.0)
    joint /= joint.sum()  # P(u_i, v_j)
    p_a, p_b = joint.sum(1), joint.sum(0)
    nonzero = joint > 0
    mutual = float((joint[nonzero] * np.log(joint[nonzero] / np.outer(p_a, p_b)[nonzero])).sum())
    if mutual <= 0.0:
        return 0.0
    h_a, h_b = _entropy(p_a), _entropy(p_b)
    return float(mutual / np.sqrt(h_a * h_b))


def code_nmi(codes: ArrayLike, labels: ArrayLike) -> dict[str, float | list[float]]:
    """NMI of each level's codes, and of the joint code tuple, against ``labels``: codes (n, n_codes)."""
    codes = np.asarray(codes)
    return {
        "per_level": [normalized_mutual_info(codes[:, level], labels) for level in range(codes.shape[1])],
        "joint": normalized_mutual_info(codes, labels),
    }


def kmeans_nmi(
    representation: ArrayLike, labels: ArrayLike, cluster_counts: Sequence[int], seed: int = 0
) -> dict[int, float]:
    """NMI between K-Means clusters (faiss) of the representation (n, dim) and labels, per cluster count
    (the paper's Figure 2b/3b: discriminability as the number of clusters grows)."""
    data = np.ascontiguousarray(np.asarray(representation, dtype=np.float32).reshape(len(representation), -1))
    scores = {}
    for k in cluster_counts:
        kmeans = faiss.Kmeans(data.shape[1], k, niter=KMEANS_ITERS, seed=seed, min_points_per_centroid=1)
        kmeans.train(data)
        _, clusters = kmeans.index.search(data, 1)  # (n, 1)
        scores[k] = normalized_mutual_info(clusters[:, 0], labels)
    return scores


def _label_ids(labels: ArrayLike) -> np.ndarray:
    """Dense 0..L-1 ids for any labels; a 2-d array is labelled by whole rows (a code tuple)."""
    values = np.asarray(labels)
    if values.ndim > 1:
        return np.unique(values.reshape(len(values), -1), axis=0, return_inverse=True)[1].ravel()
    return np.unique(values, return_inverse=True)[1].ravel()


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
