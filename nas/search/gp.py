"""A small Gaussian process for SMBO: grouped squared-exponential kernel, fitted by marginal likelihood.

Columns are split into groups (one-hot decisions, DAG path counts) and each group gets one inverse
squared lengthscale: a per-column (ARD) kernel overfits the few dozen points a search has early on,
one shared lengthscale cannot tell "same ops" from "same paths". Optional `linear` groups add a
dot-product kernel (one variance each): a Bayesian linear model in those columns under the
squared-exponential residual. Latency is close to a sum of per-op costs, and the linear term carries
that sum to cells far from every trial (a cell of skips and nones), where the squared-exponential
part alone falls back to the mean. Targets are rank-transformed to
normal scores first (a Gaussian copula): accuracies of broken architectures (10 %) would otherwise
dominate the fit, and the acquisition only needs the order of good candidates right; `to_values`
maps them back. The acquisition functions at the end are pure functions of a GP's predictions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.special import ndtr, ndtri


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Return the Gaussian-copula transform of y: normal quantiles of the (tie-averaged) ranks."""
    order = np.argsort(y, kind="stable")
    ranks = np.empty(len(y))
    ranks[order] = np.arange(1, len(y) + 1)
    # ties share their mean rank, so equal values get equal scores
    _, inverse = np.unique(y, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return ndtri((sums / counts)[inverse] / (len(y) + 1))


def to_values(zq: np.ndarray, z: np.ndarray, y: np.ndarray, *, tail: bool = False) -> np.ndarray:
    """Return normal scores zq mapped back to values: the empirical inverse of (z, y) inside the
    observed range, linear beyond its ends.

    Beyond the ends the slope is the overall one, or with `tail` that of the top (or bottom) tenth
    of the points: accuracies bunch up near the best, so one more standard deviation there is
    worth far less than across the whole range.
    """
    order = np.argsort(z, kind="stable")  # equal scores have equal values: any order of ties will do
    zs, ys = z[order], y[order]
    k = max(2, len(zs) // 10) if tail else len(zs)  # all points: the overall slope
    top = (ys[-1] - ys[-k]) / max(zs[-1] - zs[-k], 1e-12)
    bottom = (ys[k - 1] - ys[0]) / max(zs[k - 1] - zs[0], 1e-12)
    out = np.interp(zq, zs, ys)
    out = np.where(zq > zs[-1], ys[-1] + (zq - zs[-1]) * top, out)
    return np.where(zq < zs[0], ys[0] + (zq - zs[0]) * bottom, out)


def sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the matrix of squared Euclidean distances between the rows of a and b."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


@dataclass
class GP:
    """Zero-mean GP on grouped columns; `fit(X, y)` then `predict(X) -> (mean, std)`."""

    groups: list[np.ndarray]  # column indices of each group
    linear: list[np.ndarray] = field(default_factory=list)  # column groups of dot-product terms
    # log inverse lengthscales (per group), log variances (per linear group), log noise
    log_params: np.ndarray | None = None
    max_fit_points: int = 300  # hyperparameters are fitted on at most this many points
    X_: np.ndarray = field(init=False, repr=False)
    alpha_: np.ndarray = field(init=False, repr=False)
    chol_: tuple = field(init=False, repr=False)

    def _dists(self, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
        """Return each group's squared distances, then each linear group's dot products."""
        return ([sq_dists(a[:, g], b[:, g]) for g in self.groups]
                + [a[:, g] @ b[:, g].T for g in self.linear])

    def _se(self, dists: list[np.ndarray], params: np.ndarray) -> np.ndarray:
        n = len(self.groups)
        return np.exp(-sum(s * d for s, d in zip(np.exp(params[:n]), dists[:n], strict=True)))

    def _dot(self, dists: list[np.ndarray], params: np.ndarray) -> np.ndarray | float:
        n, m = len(self.groups), len(self.linear)
        return sum((v * d for v, d in zip(np.exp(params[n:n + m]), dists[n:], strict=True)), 0.0)

    def _kernel(self, dists: list[np.ndarray], params: np.ndarray) -> np.ndarray:
        return self._se(dists, params) + self._dot(dists, params)

    def _nll(self, params: np.ndarray, dists: list[np.ndarray], y: np.ndarray
             ) -> tuple[float, np.ndarray]:
        """Return the negative log marginal likelihood and its gradient in the log parameters."""
        n, m = len(self.groups), len(self.linear)
        kf = self._se(dists, params)
        k = kf + self._dot(dists, params)  # the kernel, with its squared-exponential part kept
        k[np.diag_indices_from(k)] += np.exp(params[-1]) + 1e-6
        try:
            c, low = cho_factor(k, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(params)
        alpha = cho_solve((c, low), y, check_finite=False)
        inner = np.outer(alpha, alpha) - cho_solve((c, low), np.eye(len(y)), check_finite=False)
        # dK/dlog(scale) = -scale * d * kf; dK/dlog(variance) = variance * dot
        scales, variances = np.exp(params[:n]), np.exp(params[n:n + m])
        grad = [0.5 * s * np.sum(inner * d * kf) for s, d in zip(scales, dists[:n], strict=True)]
        grad += [-0.5 * v * np.sum(inner * d) for v, d in zip(variances, dists[n:], strict=True)]
        grad.append(-0.5 * np.exp(params[-1]) * np.trace(inner))
        return float(0.5 * y @ alpha + np.log(np.diag(c)).sum()), np.array(grad)

    def fit(self, X: np.ndarray, y: np.ndarray, *, refit: bool = True,
            rng: np.random.Generator | None = None) -> GP:
        """Return self fitted to (X, y): y standardised by the caller (e.g. `normal_scores`)."""
        X = np.asarray(X, dtype=np.float64)
        if refit or self.log_params is None:
            self.log_params = self.fit_params(X, y, rng or np.random.default_rng(0))
        k = self._kernel(self._dists(X, X), self.log_params)
        k[np.diag_indices_from(k)] += np.exp(self.log_params[-1]) + 1e-6
        self.chol_ = cho_factor(k, lower=True, check_finite=False)
        self.alpha_ = cho_solve(self.chol_, y, check_finite=False)
        self.X_ = X
        return self

    def fit_params(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the log hyperparameters maximising the marginal likelihood of (X, y)."""
        if len(X) > self.max_fit_points:
            pick = rng.choice(len(X), self.max_fit_points, replace=False)
            X, y = X[pick], y[pick]
        dists = self._dists(X, X)
        n = len(self.groups)
        # scale each group's start by its typical distance, so that exp(-s * d) starts near e^-1
        typical = [max(float(np.median(d[d > 0])) if np.any(d > 0) else 1.0, 1e-3) for d in dists[:n]]
        # each linear term starts at a share of the (unit) prior variance at a typical point
        norms = [np.log(max(float(np.median(np.diag(d))), 1e-3) * len(self.linear)) for d in dists[n:]]
        starts = [np.array([*np.log(1.0 / np.array(typical)), *(-np.array(norms)), np.log(0.1)])]
        if self.linear:  # and one where the linear part is nearly off
            starts.append(np.array([*starts[0][:n], *(-np.array(norms) - 4.0), np.log(0.1)]))
        if self.log_params is not None:
            starts.insert(0, self.log_params)
        bounds = ([(-8.0, 4.0)] * n + [(-12.0, 4.0)] * len(self.linear)
                  + [(np.log(1e-4), np.log(2.0))])
        best = min((minimize(self._nll, s, args=(dists, y), jac=True, method="L-BFGS-B",
                             bounds=bounds, options={"maxiter": 50}) for s in starts), key=lambda r: r.fun)
        return np.asarray(best.x)

    def predict(self, X: np.ndarray, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Return the posterior mean and standard deviation at the rows of X."""
        X = np.asarray(X, dtype=np.float64)
        means, stds = [], []
        for start in range(0, len(X), batch):
            rows = X[start:start + batch]
            ks = self._kernel(self._dists(rows, self.X_), self.log_params)
            means.append(ks @ self.alpha_)
            v = solve_triangular(self.chol_[0], ks.T, lower=True, check_finite=False)
            prior = 1.0 + sum((w * np.einsum("ij,ij->i", rows[:, g], rows[:, g]) for w, g in
                               zip(np.exp(self.log_params[len(self.groups):-1]), self.linear,
                                   strict=True)), 0.0)
            stds.append(np.sqrt(np.maximum(prior - (v * v).sum(0), 1e-12)))
        return np.concatenate(means), np.concatenate(stds)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.0
                         ) -> np.ndarray:
    """Return EI over `best` (maximisation) for Gaussian predictions."""
    z = (mean - best - xi) / std
    return std * (z * ndtr(z) + np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi))


def ucb(mean: np.ndarray, std: np.ndarray, beta: float) -> np.ndarray:
    """Return the upper confidence bound mean + beta * std (maximisation): the optimistic point."""
    return mean + beta * std


def hypervolume_improvement_2d(points: np.ndarray, front: np.ndarray, ref: np.ndarray
                               ) -> np.ndarray:
    """Return, for each 2-D point (both maximised), the area it adds to `front`'s above `ref`."""
    f = front[np.all(front > ref, axis=1)]
    f = f[np.argsort(f[:, 0])]
    # staircase: between consecutive front x values the dominated height is the next point's y
    xs = np.concatenate([[ref[0]], f[:, 0]])
    heights = np.concatenate([f[:, 1], [ref[1]]])
    ends = np.concatenate([f[:, 0], [np.inf]])
    px, py = points[:, :1], points[:, 1:2]
    width = np.clip(np.minimum(px, ends[None, :]) - xs[None, :], 0.0, None)
    height = np.clip(py - heights[None, :], 0.0, None)
    return (width * height).sum(1)
