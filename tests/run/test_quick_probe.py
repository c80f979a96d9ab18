"""The closed-form probe (``run/quick_probe.py``) against scikit-learn's Ridge, and the head it initialises."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from transferlab.run.quick_probe import PENALTIES, fit_ridge, ridge_accuracy


def _blobs(n, d, classes, spread, seed):
    """Gaussian blobs around the same class centres for every seed (train and val of one task)."""
    centres = torch.randn(classes, d, generator=torch.Generator().manual_seed(1000 + d + classes)) * 3
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = centres[y] + spread * torch.randn(n, d, generator=g) + 5.0  # an offset: the bias must absorb it
    return x * torch.linspace(0.1, 10, d), y  # features on very different scales


@pytest.mark.parametrize(("n", "d"), [(40, 64), (300, 16)])  # the dual (n ≤ d) and the primal form
def test_the_ridge_fit_predicts_what_sklearn_ridge_predicts(n, d):
    x, y = _blobs(n, d, 4, 4.0, seed=n)
    vx, vy = _blobs(120, d, 4, 4.0, seed=n + 1)
    fit = fit_ridge(x, y, vx, vy, 4)
    mean = x.double().mean(0)
    std = float((x.double() - mean).pow(2).mean().sqrt())  # one scale for all features (their RMS)
    reference = Ridge(alpha=fit.penalty * n, fit_intercept=True, solver="cholesky")
    reference.fit(((x.double() - mean) / std).numpy(), np.eye(4)[y.numpy()])
    expected = reference.predict(((vx.double() - mean) / std).numpy())
    scores = (vx @ fit.weight.T + fit.bias).numpy()  # the raw-feature head the fit returns
    np.testing.assert_allclose(scores, expected, rtol=1e-3, atol=1e-4)
    accs = []
    for alpha in PENALTIES:  # the chosen penalty is the best on val (ties: the larger)
        r = Ridge(alpha=alpha * n, solver="cholesky").fit(((x.double() - mean) / std).numpy(), np.eye(4)[y.numpy()])
        accs.append(float((r.predict(((vx.double() - mean) / std).numpy()).argmax(1) == vy.numpy()).mean()))
    assert fit.val_acc == pytest.approx(max(accs))
    assert fit.penalty == max(a for a, acc in zip(PENALTIES, accs, strict=True) if acc == max(accs))


def test_separable_features_score_perfectly_and_random_labels_near_chance():
    x, y = _blobs(200, 32, 5, 0.1, seed=0)
    vx, vy = _blobs(200, 32, 5, 0.1, seed=1)
    assert ridge_accuracy(x, y, vx, vy, 5)[0] == 1.0
    g = torch.Generator().manual_seed(3)
    noise, labels = torch.randn(400, 32, generator=g), torch.randint(0, 5, (400,), generator=g)
    acc, _ = ridge_accuracy(noise[:200], labels[:200], noise[200:], labels[200:], 5)
    assert acc < 0.4  # chance is 0.2; a best-of-5 penalty on 200 samples stays well below separable


def test_the_score_does_not_depend_on_how_the_classes_are_numbered():
    x, y = _blobs(60, 48, 6, 3.0, seed=5)
    vx, vy = _blobs(90, 48, 6, 3.0, seed=6)
    perm = torch.tensor([3, 5, 0, 1, 4, 2])
    assert ridge_accuracy(x, y, vx, vy, 6) == ridge_accuracy(x, perm[y], vx, perm[vy], 6)
