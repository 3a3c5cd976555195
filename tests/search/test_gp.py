"""The SMBO surrogate pieces: copula transform, GP fit, acquisitions, hypervolume improvement."""

from __future__ import annotations

import numpy as np

from nas.search.gp import GP, expected_improvement, hypervolume_improvement_2d, normal_scores, to_values


def test_normal_scores_are_ranks_with_ties_shared():
    z = normal_scores(np.array([10.0, 90.0, 50.0, 50.0]))
    assert z[0] < z[2] == z[3] < z[1]
    assert abs(z.mean()) < 1e-9


def test_gp_interpolates_and_is_unsure_far_away():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (40, 6)).astype(float)
    y = X @ np.array([1.0, -1.0, 0.5, 0.0, 2.0, 0.0])
    y = (y - y.mean()) / y.std()
    gp = GP([np.arange(6)]).fit(X, y)
    mean, std = gp.predict(X)
    assert np.corrcoef(mean, y)[0, 1] > 0.95
    far = gp.predict(np.full((1, 6), 5.0))[1]
    assert far[0] > 3 * std.mean()


def test_expected_improvement_prefers_better_mean_and_more_doubt():
    ei = expected_improvement(np.array([0.0, 1.0, 0.0]), np.array([0.1, 0.1, 1.0]), best=0.5)
    assert ei[1] > ei[2] > ei[0] > 0


def test_hypervolume_improvement_2d_matches_areas():
    front = np.array([[1.0, 3.0], [3.0, 1.0]])
    ref = np.array([0.0, 0.0])
    pts = np.array([[2.0, 2.0], [0.5, 0.5], [4.0, 4.0], [1.0, 4.0]])
    # (2,2) adds the unit square [1,2]x[1,2]; (0.5,0.5) is dominated; (4,4) covers 16 - 5;
    # (1,4) adds the strip [0,1]x[3,4]
    assert np.allclose(hypervolume_improvement_2d(pts, front, ref), [1.0, 0.0, 11.0, 1.0])
    assert np.allclose(hypervolume_improvement_2d(pts[:1], front[:0], ref), [4.0])


def test_to_values_inverts_normal_scores_and_extrapolates():
    y = np.array([1.0, 5.0, 2.0, 9.0])
    z = normal_scores(y)
    assert np.allclose(to_values(z, z, y), y)
    assert to_values(np.array([z.max() + 1.0]), z, y)[0] > 9.0
    assert np.allclose(to_values(z, z, y, tail=True), y)
    # below 20 points a tenth is 2 points: with 2 points, tails and the overall slope agree
    two = np.array([3.0, 1.0])
    zq = np.array([-3.0, 0.0, 3.0])
    assert np.array_equal(to_values(zq, normal_scores(two), two, tail=True),
                          to_values(zq, normal_scores(two), two))


def test_nll_gradient_matches_finite_differences_with_a_linear_term():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 2, (25, 8)).astype(float)
    y = rng.normal(size=25)
    gp = GP([np.arange(4), np.arange(4, 8)], linear=[np.arange(8)])
    dists = gp._dists(X, X)
    params = np.array([-1.0, -0.5, -2.0, np.log(0.1)])
    _, grad = gp._nll(params, dists, y)
    eps = 1e-6
    numeric = [(gp._nll(params + eps * e, dists, y)[0] - gp._nll(params - eps * e, dists, y)[0])
               / (2 * eps) for e in np.eye(len(params))]
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_linear_term_carries_an_additive_target_to_unseen_corners():
    # a sum of per-column costs, observed only on rows with 3-5 columns set: the all-but-one-zero
    # rows lie far from every trial, where the squared-exponential kernel alone reverts to the mean
    rng = np.random.default_rng(0)
    cost = rng.uniform(0.5, 2.0, 10)
    X = np.array([r for r in rng.integers(0, 2, (400, 10)).astype(float) if 3 <= r.sum() <= 5][:40])
    mu, sd = (X @ cost).mean(), (X @ cost).std()
    y = (X @ cost - mu) / sd
    corners = np.eye(10)
    truth = (corners @ cost - mu) / sd
    plain = GP([np.arange(10)]).fit(X, y).predict(corners)[0]
    linear = GP([np.arange(10)], linear=[np.arange(10)]).fit(X, y).predict(corners)
    assert np.abs(linear[0] - truth).mean() < 0.5 * np.abs(plain - truth).mean()
    # the prior variance grows with the linear term: still a valid, positive std
    assert np.all(linear[1] > 0)
