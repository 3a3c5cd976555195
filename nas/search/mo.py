"""Two-objective acquisition for SMBO: exact expected hypervolume improvement (EHVI).

In two dimensions the region a new point (X, Y) adds to a front is a sum over the front's vertical
strips: strip i spans x in [a_i, b_i] above the height h_i the front already dominates there, and adds
max(0, min(X, b_i) - a_i) * max(0, Y - h_i). With X and Y independent, the expectation of each
product is the product of two one-dimensional expectations, each a difference of "expected
positive parts" E[(X - a)^+]: for a Gaussian that is the EI formula, for any other marginal a
quadrature over its nodes. So EHVI costs O(candidates x front) and is exact (no Monte Carlo).

Objectives here are maximised. `ehvi_2d` takes them on the scale the hypervolume is measured in;
`ehvi`, SMBO's entry point, gets there from each objective's GP predictions on its targets
(`targets`: ranks, values or logs), normalising by the front's range with the reference point
below its nadir. Everything here is a pure function of the predictions: the models stay SMBO's
(`nas.search.surrogate`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import ndtr, ndtri

from nas.objectives import pareto_mask
from nas.search.gp import normal_scores, to_values

Part = Callable[[float], np.ndarray]


def strips(front: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the strips (x from, x to, height dominated) of a 2-D front (maximised) above `ref`."""
    f = np.asarray(front, dtype=np.float64).reshape(-1, 2)
    f = f[np.all(f > ref, axis=1)]
    f = f[np.argsort(f[:, 0], kind="stable")]
    # keep the staircase: a point is dominated when a later (larger-x) point is at least as high
    keep = np.ones(len(f), dtype=bool)
    top = -np.inf
    for i in range(len(f) - 1, -1, -1):
        keep[i] = f[i, 1] > top
        top = max(top, f[i, 1])
    f = f[keep]
    lo = np.concatenate([[ref[0]], f[:, 0]])
    hi = np.concatenate([f[:, 0], [np.inf]])
    height = np.concatenate([f[:, 1], [ref[1]]])
    return lo, hi, height


def positive_part_gaussian(mean: np.ndarray, std: np.ndarray, a: float) -> np.ndarray:
    """Return E[(V - a)^+] for V ~ N(mean, std^2), elementwise (std > 0)."""
    if np.isinf(a):
        return np.zeros_like(mean) if a > 0 else np.full_like(mean, np.inf)
    z = (mean - a) / std
    return std * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi) + (mean - a) * ndtr(z)


def positive_part_nodes(values: np.ndarray, weights: np.ndarray, a: float) -> np.ndarray:
    """Return E[(V - a)^+] where each row of `values` holds quadrature nodes of V (weights sum 1)."""
    if np.isinf(a):
        return np.zeros(len(values)) if a > 0 else np.full(len(values), np.inf)
    return np.clip(values - a, 0.0, None) @ weights


def ehvi_2d(front: np.ndarray, ref: np.ndarray, x_part: Part, y_part: Part) -> np.ndarray:
    """Return the expected hypervolume improvement per candidate, given each axis' E[(V - a)^+].

    `x_part(a)` and `y_part(a)` return, for every candidate, E[(X - a)^+] and E[(Y - a)^+].
    """
    lo, _, height = strips(front, ref)
    # strip i spans [lo_i, lo_{i+1}] (the last one is unbounded): E[(min(X, b) - a)^+] is
    # E[(X - a)^+] - E[(X - b)^+], and each strip's end is the next one's start
    px = [x_part(a) for a in lo]
    total = px[-1] * y_part(height[-1])
    for i in range(len(lo) - 1):
        total = total + (px[i] - px[i + 1]) * y_part(height[i])
    return np.maximum(total, 0.0)


def normal_strata(k: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Return k nodes and equal weights for N(0, 1): the means of its k equal-probability strata.

    For the kinked integrands here ((v - a)^+) this is about twice as accurate as Gauss-Hermite
    with the same number of nodes (1 % of the std at k = 32), and keeps the mean exact.
    """
    edges = ndtri(np.linspace(0.0, 1.0, k + 1))
    density = np.exp(-0.5 * edges * edges) / np.sqrt(2.0 * np.pi)  # 0 at the infinite ends
    return (density[:-1] - density[1:]) * k, np.full(k, 1.0 / k)


# -- SMBO's two-objective acquisition, on its GPs' predictions ---------------------------------
def targets(kind: str, y: np.ndarray, sign: float) -> tuple[np.ndarray, Callable]:
    """Return the GP targets of one objective column and the map from targets back to values.

    rank: normal scores (robust to broken architectures' outlying accuracies); value: the values
    standardised; log: the standardised log of the metric (positive metrics, e.g. latency).
    """
    if kind == "log" and np.all(sign * y > 0):
        logs = np.log(sign * y)
        mu, sd = logs.mean(), max(logs.std(), 1e-12)
        # times sign: higher targets stay better, as for the other kinds
        return sign * (logs - mu) / sd, lambda t: sign * np.exp(mu + sd * sign * t)
    if kind in ("value", "log"):
        mu, sd = y.mean(), max(y.std(), 1e-12)
        return (y - mu) / sd, lambda t: mu + sd * t
    z = normal_scores(y)
    return z, lambda t: to_values(t, z, y, tail=True)


def positive_part(kind: str, back: Callable, mean: np.ndarray, std: np.ndarray, lo: float,
                  span: float) -> Part:
    """Return a -> E[(V - a)^+] for every candidate, V its objective normalised as (v - lo) / span."""
    if kind == "value":  # linear back-map: V is Gaussian
        m, sd = (back(mean) - lo) / span, np.maximum((back(mean + std) - back(mean)) / span, 1e-12)
        return lambda a: positive_part_gaussian(m, sd, a)
    t, w = normal_strata()
    nodes = (back(mean[:, None] + std[:, None] * t[None, :]) - lo) / span
    return lambda a: positive_part_nodes(nodes, w, a)


def _scale(ref: str, y: np.ndarray, front: np.ndarray, predicted: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Return the origin and span that normalise the objectives; the reference point is at -0.1.

    observed: the worst and best of all trials. predicted: the nadir and ideal point of the front
    of the trials and the candidates' predicted means, as the usual protocol puts the reference
    point 10 % beyond the true front's nadir (the observed front's own nadir would give nothing
    to a point that extends the front at one end while worse than the nadir on the other).
    """
    if ref == "predicted":
        pts = np.vstack([front, predicted])
        on = pts[pareto_mask(pts)]
        lo, hi = on.min(0), on.max(0)
    else:
        lo, hi = y.min(0), y.max(0)
    return lo, np.maximum(hi - lo, 1e-12)


def ehvi(preds: list[tuple[Callable, np.ndarray, np.ndarray]], kinds: list[str], y: np.ndarray,
         front: np.ndarray, ref: str) -> np.ndarray:
    """Return the EHVI of each candidate over `front` (values, maximised).

    `preds` holds, per objective, the map from its targets back to values (`targets`) and the
    candidates' predicted mean and std of the targets; `kinds` the targets' kinds; y the trials'
    values; `ref` how the objectives are normalised (`_scale`).
    """
    lo, span = _scale(ref, y, front, np.column_stack([back(m) for back, m, _ in preds]))
    parts = [positive_part(kinds[j], back, m, sd, lo[j], span[j])
             for j, (back, m, sd) in enumerate(preds)]
    return ehvi_2d((front - lo) / span, np.full(2, -0.1), *parts)
