"""Usage, perplexity, collisions and NMI on cases small enough to compute by hand (and NMI against scikit-learn)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import normalized_mutual_info_score

from ops.diagnostics.collisions import collision_rate
from ops.diagnostics.nmi import code_nmi, kmeans_nmi, normalized_mutual_info
from ops.diagnostics.usage import codebook_usage, level_usage, perplexity


def test_usage_and_perplexity_by_hand():
    codes = [0, 0, 1, 3]  # K = 4: codes 0, 1, 3 used; p = (1/2, 1/4, 0, 1/4)
    assert codebook_usage(codes, 4) == 0.75
    entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))  # 1.5 ln 2
    assert perplexity(codes, 4) == pytest.approx(math.exp(entropy)) == pytest.approx(2**1.5)
    assert perplexity([2, 2, 2], 4) == pytest.approx(1.0)
    assert perplexity(list(range(8)), 8) == pytest.approx(8.0)
    two_thirds = math.exp(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))
    assert level_usage(np.array([[0, 1], [0, 2], [1, 3]]), 4) == {
        "usage": [0.5, 0.75],
        "perplexity": [pytest.approx(two_thirds), pytest.approx(3.0)],
    }
    with pytest.raises(ValueError):
        codebook_usage([4], 4)


def test_collision_rate_by_hand():
    assert collision_rate(np.array([[1, 2], [1, 2], [3, 4], [1, 3]])) == 0.5  # the two (1, 2) items
    assert collision_rate(np.array([[1], [1], [1]])) == 1.0
    assert collision_rate(np.array([[1, 2], [2, 1]])) == 0.0
    assert collision_rate(np.zeros((0, 3))) == 0.0


def test_nmi_by_hand():
    a, b = [0, 0, 1, 1], [0, 0, 0, 1]
    # P(a,b): (0,0)=1/2, (1,0)=1/4, (1,1)=1/4; P(a)=(1/2,1/2), P(b)=(3/4,1/4)
    mutual = (
        0.5 * math.log(0.5 / (0.5 * 0.75)) + 0.25 * math.log(0.25 / (0.5 * 0.75)) + 0.25 * math.log(0.25 / (0.5 * 0.25))
    )
    h_a, h_b = math.log(2), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert normalized_mutual_info(a, b) == pytest.approx(mutual / math.sqrt(h_a * h_b))
    assert normalized_mutual_info([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(1.0)  # same partition, other names
    assert normalized_mutual_info([0, 0, 1, 1], [0, 1, 0, 1]) == 0.0  # independent
    # one labeling is a single cluster: 0 exactly (its float MI sum was 2e-8 after the division, found by hypothesis)
    assert normalized_mutual_info([0] * 6, [0, 0, 0, 0, 1, 2]) == 0.0
    assert normalized_mutual_info(["x", "y", "x"], ["s", "t", "s"]) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 6)), min_size=1, max_size=60))
def test_nmi_matches_scikit_learn_geometric(pairs):
    a, b = zip(*pairs, strict=True)
    expected = normalized_mutual_info_score(a, b, average_method="geometric")
    assert normalized_mutual_info(a, b) == pytest.approx(expected, abs=1e-10)


def test_code_nmi_per_level_and_joint():
    codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    labels = np.array(["a", "a", "b", "b"])
    result = code_nmi(codes, labels)
    assert result["per_level"] == [pytest.approx(1.0), 0.0]  # level 0 is the label, level 1 independent of it
    joint = normalized_mutual_info([0, 1, 2, 3], labels)  # every tuple distinct: I = ln 2, H = ln 4, ln 2
    assert result["joint"] == pytest.approx(joint) == pytest.approx(math.log(2) / math.sqrt(math.log(4) * math.log(2)))


def test_kmeans_nmi_recovers_separated_labels():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    centres = np.array([[10.0, 0.0], [-10.0, 0.0], [0.0, 10.0]])
    points = centres[labels] + rng.normal(size=(120, 2))
    scores = kmeans_nmi(points, labels, cluster_counts=[3, 6])
    assert scores[3] == pytest.approx(1.0)
    assert 0.5 < scores[6] < 1.0  # more clusters than labels split classes: still informative, no longer perfect
