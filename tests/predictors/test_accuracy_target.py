"""The target map inside AccuracyPredictor: monotone, invertible, finite far off the data."""

from __future__ import annotations

import numpy as np

from nas.predictors.accuracy import AccuracyPredictor, _Target


def long_tailed(n: int = 200, seed: int = 0) -> np.ndarray:
    """Accuracies like NB201's: most near 90%, a tail of failed networks near 10%."""
    rng = np.random.default_rng(seed)
    y = 90.0 - rng.gamma(2.0, 2.0, n)
    y[: n // 20] = rng.uniform(9.0, 20.0, n // 20)
    return y


def test_round_trip_and_a_gaussian_like_scale():
    y = long_tailed()
    t = _Target().fit(y)
    z = t.transform(y)
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-6
    assert z.min() > -4.0  # the tail no longer sits 5+ standard deviations out
    np.testing.assert_allclose(t.inverse(z, None)[0], y, atol=1e-8)


def test_inverse_is_monotone_and_finite_far_from_the_data():
    t = _Target().fit(long_tailed())
    z = np.linspace(-30, 30, 601)
    mean, std = t.inverse(z, np.full_like(z, 0.5))
    assert np.all(np.isfinite(mean)) and np.all(np.diff(mean) >= 0)
    assert np.all(np.isfinite(std)) and np.all(std >= 0)
    assert np.all(t.inverse(z, np.zeros_like(z))[1] == 0)


def test_constant_and_tiny_targets_fall_back_to_standardisation():
    for y in (np.full(6, 70.0), np.array([60.0, 61.0])):
        t = _Target().fit(y)
        assert t.power_ is None
        np.testing.assert_allclose(t.inverse(t.transform(y), None)[0], y)


def test_predictions_are_in_accuracy_units_with_a_long_tail():
    y = long_tailed(120, seed=1)
    X = np.random.default_rng(2).integers(0, 2, (120, 12)).astype(float)
    X[:, 0] = y < 30  # one column tells the failed networks apart
    for kind in ("ridge", "gp"):
        mean, _ = AccuracyPredictor(kind).fit(X, y).predict(X)
        assert -10 < mean.min() < 30 < 80 < mean.max() < 100, (kind, mean.min(), mean.max())
