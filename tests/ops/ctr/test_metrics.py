"""AUC and log loss agree with scikit-learn, ties included."""

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from ops.ctr.metrics import auc, logloss


@pytest.mark.parametrize("seed", range(5))
def test_auc_and_logloss_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=500)
    tied_scores = rng.integers(0, 7, size=500) / 7  # many ties
    probabilities = rng.uniform(0.001, 0.999, size=500)
    assert auc(labels, tied_scores) == pytest.approx(roc_auc_score(labels, tied_scores), abs=1e-12)
    assert auc(labels, probabilities) == pytest.approx(roc_auc_score(labels, probabilities), abs=1e-12)
    assert logloss(labels, probabilities) == pytest.approx(log_loss(labels, probabilities), abs=1e-12)


def test_auc_needs_both_classes():
    with pytest.raises(ValueError):
        auc(np.ones(4), np.arange(4))
