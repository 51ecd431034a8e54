"""The training-free building blocks: seeded k-means (faiss) with k-means++ starts and redos, and PCA layers."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

from ops.diagnostics.nmi import normalized_mutual_info
from ops.quantizers import kmeans, pca
from ops.quantizers.kmeans import KMeansCodebook, KMeansConfig, KMeansInit, fit_kmeans, nearest_code
from ops.quantizers.pca import fit_pca, pca_layers, principal_components


def mixture(n_per: int, centres: np.ndarray, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 points (n_per * n_centres, dim) around ``centres`` and their true component labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), n_per)
    points = centres[labels] + spread * rng.normal(size=(len(labels), centres.shape[1]))
    return points.astype(np.float32), labels


def objective(data: np.ndarray, centroids: np.ndarray) -> float:
    """Sum of squared distances to the nearest centroid."""
    distances = ((data[:, None, :] - centroids[None]) ** 2).sum(-1)  # (n, K)
    return float(distances.min(1).sum())


def test_kmeans_plus_plus_finds_every_separated_cluster_where_a_random_start_does_not():
    centres = 10.0 * np.eye(8, dtype=np.float32)  # 8 components, pairwise 14 apart, spread 0.3
    data, labels = mixture(40, centres, 0.3, seed=0)
    found = {init: [] for init in KMeansInit}
    for init in KMeansInit:
        for seed in range(5):
            centroids = fit_kmeans(data, KMeansConfig(codebook_size=8, niter=20, init=init), seed)
            codes = nearest_code(torch.from_numpy(data), torch.from_numpy(centroids)).numpy()
            found[init].append(normalized_mutual_info(codes, labels))
    assert found[KMeansInit.PLUS_PLUS] == [1.0] * 5
    assert min(found[KMeansInit.RANDOM]) < 1.0  # two random starts in one component leave another merged


def test_random_start_single_run_is_faiss_kmeans_itself():
    """RQ-VAE's k-means initialisation goes through `fit_kmeans`; with its settings it is faiss unchanged."""
    data = np.random.default_rng(1).normal(size=(300, 6)).astype(np.float32)
    reference = faiss.Kmeans(6, 16, niter=7, seed=3, min_points_per_centroid=1)
    reference.train(data)
    ours = fit_kmeans(data, KMeansConfig(codebook_size=16, niter=7, init=KMeansInit.RANDOM), seed=3)
    assert np.array_equal(ours, reference.centroids)


def test_redos_keep_the_run_with_the_lowest_objective():
    data = np.random.default_rng(2).normal(size=(200, 4)).astype(np.float32)
    single = [fit_kmeans(data, KMeansConfig(codebook_size=12, niter=5), seed) for seed in (7, 8, 9)]
    best = fit_kmeans(data, KMeansConfig(codebook_size=12, niter=5, nredo=3), seed=7)
    objectives = [objective(data, centroids) for centroids in single]
    assert len(set(objectives)) > 1  # the runs differ, so the choice matters
    assert np.array_equal(best, single[int(np.argmin(objectives))])


def test_same_seed_same_centroids_and_subsampling_is_seeded():
    data = np.random.default_rng(3).normal(size=(500, 5)).astype(np.float32)
    config = KMeansConfig(codebook_size=10, niter=5, max_points_per_centroid=20)  # 500 > 10 x 20: subsampled
    first, again = fit_kmeans(data, config, seed=0), fit_kmeans(data, config, seed=0)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, fit_kmeans(data, config, seed=1))


def test_fewer_distinct_points_than_codes_leaves_codes_unused_but_valid():
    data = np.repeat(np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]], dtype=np.float32), 10, axis=0)  # 3 distinct
    codebook = KMeansCodebook(2, KMeansConfig(codebook_size=4, niter=10), seed=0)
    codebook.initialize(torch.from_numpy(data))
    codes = codebook.nearest(torch.from_numpy(data))
    assert torch.isfinite(codebook.codebook).all()
    assert len(set(codes.tolist())) == 3  # every distinct point has its own code; the 4th code is unused
    # faiss re-seeds the empty code by splitting a cluster: both centroids move by 1/1024 of their value
    assert torch.allclose(codebook.codebook[codes], torch.from_numpy(data), atol=5.0 / 1024 + 1e-6)


def test_kmeans_needs_at_least_one_point_per_code():
    with pytest.raises(ValueError, match="needs >= 16 points"):
        fit_kmeans(np.zeros((10, 3), np.float32), KMeansConfig(codebook_size=16), seed=0)


def test_nearest_code_is_the_euclidean_argmin_in_any_chunking(monkeypatch):
    z, codebook = torch.randn(50, 6), torch.randn(9, 6)
    expected = torch.cdist(z, codebook).argmin(1)
    assert torch.equal(nearest_code(z, codebook), expected)
    monkeypatch.setattr(kmeans, "NEAREST_CHUNK", 7)  # 8 chunks, the last one short
    assert torch.equal(nearest_code(z, codebook), expected)


def test_pca_covariance_accumulated_in_chunks_is_the_whole_one(monkeypatch):
    x = torch.randn(230, 5) * torch.tensor([4.0, 3.0, 2.0, 1.0, 0.5]) + 2.0
    whole = principal_components(x, 3)
    monkeypatch.setattr(pca, "CHUNK", 50)
    for expected, chunked in zip(whole, principal_components(x, 3), strict=True):
        assert torch.allclose(expected, chunked, atol=1e-10)


def test_pca_finds_the_stretched_axes_and_round_trips_at_full_width():
    rng = np.random.default_rng(4)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))  # a random orthonormal basis
    scales = np.array([10.0, 5.0, 2.0, 0.5, 0.2, 0.1])
    x = torch.from_numpy((rng.normal(size=(2000, 6)) * scales) @ rotation.T + 3.0).float()  # axes = rotation columns
    mean, components = principal_components(x, 2)
    assert torch.allclose(components @ components.T, torch.eye(2, dtype=torch.float64), atol=1e-10)
    alignment = (components @ torch.from_numpy(rotation)[:, :2]).abs().diagonal()  # |cos| with the two top axes
    assert (alignment > 0.99).all()
    assert torch.allclose(mean.float(), torch.full((6,), 3.0), atol=0.5)

    project, reconstruct = pca_layers(6, 6)
    fit_pca(project, reconstruct, x)
    assert torch.allclose(reconstruct(project(x)), x, atol=1e-4)  # all components kept: nothing lost
    assert not any(p.requires_grad for p in [*project.parameters(), *reconstruct.parameters()])


def test_pca_signs_are_canonical():
    x = torch.randn(300, 5) * torch.tensor([4.0, 3.0, 2.0, 1.0, 0.5])
    _, components = principal_components(x, 3)
    _, negated = principal_components(-x, 3)  # the same axes; an unconstrained solver may flip any of them
    assert torch.allclose(components, negated, atol=1e-8)
    assert (components.gather(1, components.abs().argmax(1, keepdim=True)) > 0).all()
