"""The contract every accuracy predictor kind must pass (as scikit-learn checks its estimators).

The data are real encodings of a real space: a small conditional convnet space whose toy "accuracy"
is a fixed function of its decisions (additive effects plus one interaction), so a predictor can
learn it and a constant cannot.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas import space as S
from nas.errors import SearchError
from nas.predictors.accuracy import REGRESSORS, AccuracyPredictor, kendall_tau
from nas.space.encoding import Encoder

torch.set_num_threads(1)
STD_KINDS = {"rf", "ensemble", "gp"}  # the kinds whose models carry an uncertainty


def toy_space() -> S.Space:
    width = S.choice("width", [8, 16, 32, 64])

    def block(i: int):
        return S.sequential(S.conv2d(width, kernel_size=S.choice("kernel", [1, 3, 5])),
                            S.choice("act", {"relu": S.relu(), "gelu": S.gelu()}))

    return S.Space(S.sequential(S.repeat("blocks", [1, 2, 3], block),
                                S.optional("bn", S.batch_norm()), S.global_avg_pool()),
                   input_shape=(1, 8, 8))


def toy_accuracy(arch) -> float:
    """A learnable target: wider, deeper, bigger kernels help; gelu helps only in wide nets."""
    acc = 50.0 + 4.0 * [8, 16, 32, 64].index(arch["width"]) + 3.0 * arch["blocks"]
    for i in range(arch["blocks"]):
        acc += {1: 0.0, 3: 2.0, 5: 2.5}[arch[f"blocks[{i}]/kernel"]]
        if arch[f"blocks[{i}]/act"] == "gelu":
            acc += 1.5 if arch["width"] >= 32 else -1.5
    return acc + (2.0 if arch["bn"] else 0.0)


@pytest.fixture(scope="module")
def data():
    sp = toy_space()
    archs = list(dict.fromkeys(sp.sample(s) for s in range(400)))[:260]
    X = Encoder(sp).transform(archs)
    y = np.array([toy_accuracy(a) for a in archs])
    y += np.random.default_rng(0).normal(0.0, 0.3, len(y))  # measurement noise
    return X[:100], y[:100], X[100:], y[100:]


@pytest.mark.parametrize("kind", REGRESSORS)
def test_every_kind_fits_and_predicts_shapes_and_std(kind, data):
    X, y, Xt, _ = data
    p = AccuracyPredictor(kind, seed=1).fit(X, y)
    assert p.kind_ == kind and p.n_features_in_ == X.shape[1]
    mean, std = p.predict(Xt)
    assert mean.shape == (len(Xt),) and np.all(np.isfinite(mean))
    if kind in STD_KINDS:
        assert std is not None and std.shape == (len(Xt),)
        assert np.all(std >= 0) and np.all(np.isfinite(std)) and std.max() > 0
    else:
        assert std is None


@pytest.mark.parametrize("kind", REGRESSORS)
def test_every_kind_is_deterministic_for_a_seed(kind, data):
    X, y, Xt, _ = data
    a = AccuracyPredictor(kind, seed=3).fit(X, y).predict(Xt)
    b = AccuracyPredictor(kind, seed=3).fit(X, y).predict(Xt)
    np.testing.assert_array_equal(a[0], b[0])
    if a[1] is not None:
        np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("kind", REGRESSORS)
def test_every_kind_beats_a_constant_on_a_learnable_target(kind, data):
    X, y, Xt, yt = data
    mean, _ = AccuracyPredictor(kind, seed=0).fit(X, y).predict(Xt)
    constant_mse = np.mean((yt - y.mean()) ** 2)
    assert np.mean((mean - yt) ** 2) < 0.5 * constant_mse
    assert kendall_tau(mean, yt) > 0.6


def test_auto_picks_the_kind_with_the_best_cross_validated_kendall_tau(data):
    X, y, Xt, yt = data
    p = AccuracyPredictor("auto", seed=0, cv=3).fit(X[:60], y[:60])
    assert set(p.cv_scores_) == set(REGRESSORS)
    assert p.cv_scores_[p.kind_] == max(p.cv_scores_.values()) > 0.5
    assert kendall_tau(p.predict(Xt)[0], yt) > 0.6
    # the refit on all points is the chosen kind fitted alone
    alone = AccuracyPredictor(p.kind_, seed=0).fit(X[:60], y[:60]).predict(Xt)[0]
    np.testing.assert_array_equal(p.predict(Xt)[0], alone)


def test_constant_targets_and_tiny_data_do_not_break_fitting(data):
    X, y, Xt, _ = data
    mean, _ = AccuracyPredictor("ridge").fit(X[:5], np.full(5, 70.0)).predict(Xt)
    np.testing.assert_allclose(mean, 70.0)
    p = AccuracyPredictor("auto").fit(X[:3], y[:3])  # too few points for folds: still a model
    assert p.kind_ in REGRESSORS and p.predict(Xt)[0].shape == (len(Xt),)


def test_uncertainty_grows_away_from_the_data(data):
    X, y, _, _ = data
    far = np.full((1, X.shape[1]), 3.0, dtype=np.float32)  # no architecture encodes like this
    for kind in ("gp", "ensemble"):
        p = AccuracyPredictor(kind).fit(X, y)
        assert p.predict(far)[1][0] > np.median(p.predict(X)[1]), kind


def test_bad_parameters_and_inputs_are_clear_errors(data):
    X, y, Xt, _ = data
    with pytest.raises(SearchError, match="kind='xgb'.*valid kinds"):
        AccuracyPredictor("xgb").fit(X, y)
    with pytest.raises(SearchError, match="cv=1"):
        AccuracyPredictor(cv=1).fit(X, y)
    with pytest.raises(SearchError, match="call fit"):
        AccuracyPredictor("ridge").predict(Xt)
    with pytest.raises(SearchError, match=r"y has shape \(3,\)"):
        AccuracyPredictor("ridge").fit(X, y[:3])
    with pytest.raises(SearchError, match="NaN"):
        AccuracyPredictor("ridge").fit(X[:2], [1.0, float("nan")])
    with pytest.raises(SearchError, match="2-D"):
        AccuracyPredictor("ridge").fit(X[0], y[:1])
    p = AccuracyPredictor("ridge").fit(X, y)
    with pytest.raises(SearchError, match=f"fitted on {X.shape[1]}"):
        p.predict(Xt[:, :-1])
    assert p.get_params() == {"kind": "ridge", "seed": 0, "cv": 5}
