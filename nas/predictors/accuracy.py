"""Accuracy predictors: light regressors on architecture encodings, for SMBO and LINAS-style searches.

`AccuracyPredictor(kind)` follows scikit-learn's estimator rules: parameters in the constructor,
`fit(X, y)` learns state kept in attributes with a trailing underscore, `predict(X)` returns the
mean prediction and, where the model has one, a standard deviation (the uncertainty an acquisition
function needs). `kind="auto"` picks the regressor by cross-validated Kendall tau, since a searcher
uses the predictor to rank candidates, not to read their accuracy. "auto" costs about (cv + 1)
fits of every kind; a searcher that refits often can run it now and then and refit
`AccuracyPredictor(p.kind_)` in between. `std` is given by "rf" (spread of the trees), "ensemble"
(bootstrap of five small MLPs, as BANANAS) and "gp"; it is None for "ridge", "svr" and "gbm".

Nothing is persisted: refitting one kind from the stored trials takes well under a second at 200
points, so a predictor is never pickled (a pickle breaks on the next scikit-learn release).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import PowerTransformer
from sklearn.svm import SVR
from threadpoolctl import threadpool_limits

from nas.errors import SearchError

REGRESSORS = ("ridge", "svr", "gbm", "rf", "ensemble", "gp")
KINDS = ("auto", *REGRESSORS)
ENSEMBLE_MEMBERS = 5


class _Bagged:
    """Bootstrap ensemble of small MLPs: mean and spread of the members (as BANANAS' ensemble)."""

    def __init__(self, seed: int, members: int = ENSEMBLE_MEMBERS) -> None:
        self.seed, self.members = seed, members

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Bagged:
        rng = np.random.default_rng(self.seed)
        self.models_ = []
        for m in range(self.members):
            rows = rng.integers(0, len(y), len(y)) if len(y) > 1 else np.zeros(1, dtype=int)
            # Small and briefly trained: on NB201 (200 points) two layers of 32 for 100 L-BFGS steps
            # ranked as well as 64x64 for 300 steps (Kendall tau 0.64) at a fifth of the time.
            mlp = MLPRegressor(hidden_layer_sizes=(32, 32), alpha=0.1, solver="lbfgs",
                               max_iter=100, random_state=self.seed * 1000 + m)
            self.models_.append(mlp.fit(x[rows], y[rows]))
        return self

    def predict_all(self, x: np.ndarray) -> np.ndarray:
        """Return the members' predictions, one row per member."""
        return np.stack([m.predict(x) for m in self.models_])


class _Target:
    """A monotone map of accuracies to a unit-scale, roughly Gaussian target, and back.

    Yeo-Johnson, then standardisation: accuracies have a long tail of failed networks (NB201 has
    cells at 10% among cells at 90%), which dominates squared losses. Measured on NB201 cifar10-valid
    at 200 points, held-out Kendall tau rose from 0.52 to 0.66 (ridge) and 0.58 to 0.69 (GP), and
    every kind gained; models also need unit scale (SVR's epsilon, the GP's priors, MLP weights).
    """

    def fit(self, t: np.ndarray) -> _Target:
        self.lo_, self.hi_ = float(t.min()), float(t.max())
        self.power_ = None
        if self.hi_ > self.lo_ and len(t) >= 3:
            self.power_ = PowerTransformer(method="yeo-johnson").fit(t[:, None])
            self.zlo_, self.zhi_ = self.power_.transform(np.array([[self.lo_], [self.hi_]]))[:, 0]
        self.mean_, self.scale_ = float(t.mean()), float(t.std()) or 1.0
        return self

    def transform(self, t: np.ndarray) -> np.ndarray:
        if self.power_ is None:
            return (t - self.mean_) / self.scale_
        return self.power_.transform(t[:, None])[:, 0]

    def _inverse(self, z: np.ndarray) -> np.ndarray:
        if self.power_ is None:
            return z * self.scale_ + self.mean_
        # Exact inside the training range; linear beyond it with the range's mean slope. Past the
        # range the Yeo-Johnson inverse of a long tail explodes or is undefined (NaN), and a
        # model extrapolating a little below the worst network must not predict -70%.
        zc = np.clip(z, self.zlo_, self.zhi_)
        y = self.power_.inverse_transform(zc[:, None])[:, 0]
        return y + (z - zc) * (self.hi_ - self.lo_) / (self.zhi_ - self.zlo_)

    def inverse(self, mean: np.ndarray, std: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Return mean and std in accuracy units (std: half the image of mean +- std)."""
        if std is None:
            return self._inverse(mean), None
        std = np.maximum(std, 0.0)
        spread = (self._inverse(mean + std) - self._inverse(mean - std)) / 2
        return self._inverse(mean), np.maximum(spread, 0.0)


def _make(kind: str, seed: int, n_features: int) -> Any:
    """Return an unfitted regressor of `kind` (it sees targets mapped by `_Target`)."""
    if kind == "ridge":
        return RidgeCV(alphas=(0.1, 1.0, 10.0, 100.0))
    if kind == "svr":
        return SVR(C=3.0, epsilon=0.05, gamma="scale")
    if kind == "gbm":
        return GradientBoostingRegressor(n_estimators=150, max_depth=3, learning_rate=0.05,
                                         subsample=0.8, random_state=seed)
    if kind == "rf":
        return RandomForestRegressor(n_estimators=60, max_features=0.5, min_samples_leaf=1,
                                     random_state=seed, n_jobs=1)
    if kind == "ensemble":
        return _Bagged(seed)
    if kind == "gp":
        # One length scale for all columns: with 30-100 one-hot columns and 50 points, a scale per
        # column overfits and costs seconds to optimise.
        kernel = (ConstantKernel(1.0, (1e-2, 1e2))
                  * Matern(length_scale=np.sqrt(max(n_features, 1)), length_scale_bounds=(1e-1, 1e3),
                           nu=2.5)
                  + WhiteKernel(0.1, (1e-3, 1e1)))
        return GaussianProcessRegressor(kernel, normalize_y=False, n_restarts_optimizer=0,
                                        random_state=seed)
    raise SearchError(f"AccuracyPredictor(kind={kind!r}): valid kinds are {KINDS}")


def _predict(kind: str, model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Return mean and std (None for models without one), in the units of `_Target`."""
    if kind == "ensemble":
        preds = model.predict_all(x)
        return preds.mean(axis=0), preds.std(axis=0)
    if kind == "rf":
        # The spread of the trees, as SMAC uses it: a cheap, usable uncertainty.
        preds = np.stack([t.predict(x) for t in model.estimators_])
        return preds.mean(axis=0), preds.std(axis=0)
    if kind == "gp":
        mean, std = model.predict(x, return_std=True)
        return mean, std
    return model.predict(x), None


def kendall_tau(pred: Sequence[float], true: Sequence[float]) -> float:
    """Return Kendall's tau-b between predictions and truths (0.0 when either is constant)."""
    p, t = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    if len(p) < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return 0.0
    return float(stats.kendalltau(p, t).statistic)


class AccuracyPredictor:
    """A regressor from architecture encodings to accuracy; `predict` gives (mean, std or None)."""

    def __init__(self, kind: str = "auto", *, seed: int = 0, cv: int = 5) -> None:
        self.kind = kind
        self.seed = seed
        self.cv = cv

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters (scikit-learn's convention)."""
        return {"kind": self.kind, "seed": self.seed, "cv": self.cv}

    def fit(self, X: Any, y: Any) -> AccuracyPredictor:  # noqa: N803 - scikit-learn's names
        """Return self, fitted on encodings X (n, d) and accuracies y (n,); "auto" picks by CV."""
        self._check_params()
        x, t = _check_xy(X, y)
        # One BLAS thread: these matrices are tiny, and threads spinning on a shared machine made a
        # small MLP fit 16x slower (1.7 s vs 27 s measured side by side on 2 busy cores).
        # ConvergenceWarning silenced: the MLPs stop early on purpose, and a GP hyperparameter at a
        # bound is expected with few points; neither is something the caller can act on.
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return self._fit(x, t)

    def _fit(self, x: np.ndarray, t: np.ndarray) -> AccuracyPredictor:
        self.n_features_in_ = x.shape[1]
        self.target_ = _Target().fit(t)
        z = self.target_.transform(t)
        self.cv_scores_: dict[str, float] = {}
        if self.kind == "auto":
            self.cv_scores_ = self._cross_validate(x, z)
            best = max(self.cv_scores_.values())
            self.kind_ = next(k for k in REGRESSORS if self.cv_scores_[k] == best)
        else:
            self.kind_ = self.kind
        self.model_ = _make(self.kind_, self.seed, x.shape[1]).fit(x, z)
        return self

    def predict(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:  # noqa: N803
        """Return (mean, std) predicted for encodings X, shape (n,); std is None for ridge/svr/gbm."""
        if not hasattr(self, "model_"):
            raise SearchError("AccuracyPredictor.predict: call fit(X, y) first")
        x = _check_x(X, "X")
        if x.shape[1] != self.n_features_in_:
            raise SearchError(
                f"AccuracyPredictor.predict: X has {x.shape[1]} columns, the predictor was fitted on "
                f"{self.n_features_in_}; encode with the same Encoder"
            )
        with threadpool_limits(1):
            mean, std = _predict(self.kind_, self.model_, x)
        return self.target_.inverse(mean, std)

    def _cross_validate(self, x: np.ndarray, z: np.ndarray) -> dict[str, float]:
        """Return each regressor's pooled out-of-fold Kendall tau (0.0 for every kind if n < 4)."""
        folds = min(self.cv, len(z) // 2)
        if folds < 2:
            return dict.fromkeys(REGRESSORS, 0.0)
        splits = list(KFold(folds, shuffle=True, random_state=self.seed).split(x))
        scores = {}
        for kind in REGRESSORS:
            oof = np.empty_like(z)
            for train, test in splits:
                model = _make(kind, self.seed, x.shape[1]).fit(x[train], z[train])
                oof[test] = _predict(kind, model, x[test])[0]
            scores[kind] = kendall_tau(oof, z)
        return scores

    def _check_params(self) -> None:
        if self.kind not in KINDS:
            raise SearchError(f"AccuracyPredictor(kind={self.kind!r}): valid kinds are {KINDS}")
        if not isinstance(self.cv, int) or isinstance(self.cv, bool) or self.cv < 2:
            raise SearchError(f"AccuracyPredictor(cv={self.cv!r}): give an integer number of folds >= 2")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise SearchError(f"AccuracyPredictor(seed={self.seed!r}): give an integer seed")

    def __repr__(self) -> str:
        fitted = f", kind_={self.kind_!r}" if hasattr(self, "kind_") else ""
        return f"AccuracyPredictor(kind={self.kind!r}, seed={self.seed}, cv={self.cv}{fitted})"


def _check_x(X: Any, name: str) -> np.ndarray:  # noqa: N803
    try:
        x = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SearchError(f"AccuracyPredictor: {name} must be a numeric (n, d) array: {e}") from None
    if x.ndim != 2 or x.shape[0] == 0:
        raise SearchError(f"AccuracyPredictor: {name} must be a non-empty 2-D array (n, d), got shape "
                          f"{x.shape}; encode architectures with nas.space.encoding.Encoder")
    if not np.all(np.isfinite(x)):
        raise SearchError(f"AccuracyPredictor: {name} holds NaN or infinite values")
    return x


def _check_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    x = _check_x(X, "X")
    try:
        t = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SearchError(f"AccuracyPredictor.fit: y must be numeric: {e}") from None
    if t.shape != (x.shape[0],):
        raise SearchError(f"AccuracyPredictor.fit: y has shape {t.shape}; expected ({x.shape[0]},), "
                          "one accuracy per row of X")
    if not np.all(np.isfinite(t)):
        raise SearchError("AccuracyPredictor.fit: y holds NaN or infinite values (drop failed trials)")
    if len(t) < 2:
        raise SearchError(f"AccuracyPredictor.fit: needs at least 2 points, got {len(t)}")
    return x, t

