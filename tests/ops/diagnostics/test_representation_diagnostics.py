"""Singular spectrum and codebook correlation on hand-computed matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ops.diagnostics.correlation import codebook_correlation
from ops.diagnostics.spectrum import singular_spectrum


def test_spectrum_by_hand():
    matrix = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])  # centered; sigma = sqrt(8), sqrt(2)
    assert singular_spectrum(matrix) == pytest.approx([math.sqrt(0.8), math.sqrt(0.2)])  # / Frobenius sqrt(10)
    shifted_and_scaled = 5 * matrix + np.array([3.0, -7.0])
    assert singular_spectrum(shifted_and_scaled) == pytest.approx([math.sqrt(0.8), math.sqrt(0.2)])
    assert (singular_spectrum(np.ones((3, 2))) == 0).all()


def test_spectrum_shows_collapse_of_a_rank_one_representation():
    rng = np.random.default_rng(0)
    rank_one = rng.normal(size=(50, 1)) @ rng.normal(size=(1, 4))
    spectrum = singular_spectrum(rank_one)
    assert spectrum.shape == (4,) and spectrum[0] == pytest.approx(1.0) and spectrum[1:] == pytest.approx(0, abs=1e-12)
    assert (singular_spectrum(rng.normal(size=(50, 4))) ** 2).sum() == pytest.approx(1.0)


def test_correlation_of_scalars_is_pearson():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(30, 3))
    assert codebook_correlation(values[:, :, None]) == pytest.approx(np.corrcoef(values.T))


def test_correlation_of_vectors_by_hand():
    first = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])  # mean 0
    second = np.array([[1.0, 1.0], [0.0, 0.0], [-1.0, -1.0]])  # mean 0
    vectors = np.stack([first, second, -first], axis=1)  # (3 items, 3 codebooks, 2)
    # <first, second> summed over items: 1 + 0 + 2 = 3; |first|^2 = 1 + 1 + 2 = 4; |second|^2 = 2 + 0 + 2 = 4
    expected = np.array([[1.0, 0.75, -1.0], [0.75, 1.0, -0.75], [-1.0, -0.75, 1.0]])
    assert codebook_correlation(vectors) == pytest.approx(expected)
