"""How good is a latency predictor: accuracy bands, errors, rank agreement, baselines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from nas.errors import HardwareError


def _pair(pred: Sequence[float], true: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    if p.shape != t.shape or p.ndim != 1 or len(p) == 0:
        raise HardwareError(f"predictions ({p.shape}) and truths ({t.shape}) must be two "
                            "non-empty 1-D sequences of equal length")
    if np.any(t <= 0):
        raise HardwareError("true latencies must all be positive (ms); got a value <= 0")
    return p, t


def latency_report(pred: Sequence[float], true: Sequence[float]) -> dict[str, float]:
    """Return within_5/10/15 (shares), mape, rmse (ms), bias (mean rel. error), spearman, kendall."""
    p, t = _pair(pred, true)
    rel = (p - t) / t
    out = {f"within_{k}": float(np.mean(np.abs(rel) <= k / 100 + 1e-12)) for k in (5, 10, 15)}
    out["mape"] = float(np.mean(np.abs(rel)))
    out["rmse"] = float(np.sqrt(np.mean((p - t) ** 2)))
    out["bias"] = float(np.mean(rel))
    if len(p) > 1 and np.ptp(p) > 0 and np.ptp(t) > 0:
        out["spearman"] = float(stats.spearmanr(p, t).statistic)
        out["kendall"] = float(stats.kendalltau(p, t).statistic)
    else:
        out["spearman"] = out["kendall"] = float("nan")
    out["n"] = float(len(p))
    return out


def noise_ceiling(meas_a: Sequence[float], meas_b: Sequence[float], tol: float = 0.10) -> float:
    """Return the share of models whose two independent measurements agree within ±tol."""
    a, b = _pair(meas_a, meas_b)
    return float(np.mean(np.abs(a - b) / b <= tol + 1e-12))


def flops_baseline(flops_train: Sequence[float], lat_train: Sequence[float],
                   flops_test: Sequence[float]) -> np.ndarray:
    """Return latencies for flops_test from a least-squares fit lat = a * flops + c."""
    x, y = np.asarray(flops_train, dtype=float), np.asarray(lat_train, dtype=float)
    if x.shape != y.shape or len(x) < 2:
        raise HardwareError("flops_baseline needs at least two (flops, latency) training pairs "
                            f"of equal length; got {len(x)} and {len(y)}")
    a, c = np.polyfit(x, y, 1)
    return a * np.asarray(flops_test, dtype=float) + c
