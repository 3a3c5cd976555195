"""Standalone kernel latency, learned from a device profile's measurement rows (refit from JSON, no pickles).

Each regressor group (a kernel kind; `regressor_group`) gets a log-linear model of the kernel's size
(FLOPs, bytes, shape: `nas.kernels.features`) plus a small boosted tree ensemble on its residuals:
the linear part extrapolates to sizes never profiled, the trees learn where the device departs from
it (thread blocking, cache sizes, the dispatch floor that dominates tiny kernels at batch 1). Each
standalone timing already holds its kernel's dispatch overhead, and module-call overhead is its own
kernel ("call"). Kinds never profiled ("other") are predicted from size alone, by a fallback fitted
across all groups.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nas.errors import HardwareError
from nas.kernels.features import kernel_features
from nas.kernels.kernel import Kernel

_MIN_ROWS_TREES = 12  # fewer rows than this: the log-linear part alone (trees would fit noise)


class KindRegressor:
    """Log-linear base plus boosted residuals for one regressor group (target: log ms)."""

    def __init__(self, n_estimators: int, seed: int) -> None:
        self.n_estimators, self.seed = n_estimators, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> KindRegressor:
        """Fit on features `x` and log latencies `y`; return self."""
        self.linear_ = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x, y)
        self.trees_ = None
        if len(y) >= _MIN_ROWS_TREES and self.n_estimators > 0:
            resid = y - self.linear_.predict(x)
            self.trees_ = GradientBoostingRegressor(
                n_estimators=self.n_estimators, max_depth=3, learning_rate=0.05,
                subsample=0.8, min_samples_leaf=3, random_state=self.seed).fit(x, resid)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Return the predicted log latencies of features `x`."""
        out = self.linear_.predict(x)
        if self.trees_ is not None:
            out = out + self.trees_.predict(x)
        return out


def regressor_group(kernel: Kernel) -> str:
    """Return the regressor a kernel is predicted by: its kind, "@<precision>" / "@nhwc" when so."""
    group = kernel.kind
    if kernel.precision != "fp32":
        group += "@" + kernel.precision
    if kernel.config.get("nhwc"):
        group += "@nhwc"
    return group


def timed_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the measurement rows with a positive median: the models learn its log."""
    return [r for r in rows if r.get("median_ms", 0) > 0]


class KernelLatencyModel:
    """Predicts a kernel's standalone latency in ms from measurement rows of one device.

    `lookup=True` answers exactly-profiled kernels with their measured median instead of the
    fit; off by default because one standalone timing is noisier than the fit over many.
    """

    def __init__(self, n_estimators: int = 150, lookup: bool = False, seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.lookup = lookup
        self.seed = seed

    def fit(self, rows: Iterable[dict[str, Any]]) -> KernelLatencyModel:
        """Fit a regressor per group and the fallback on rows {kind, config, batch_size, median_ms}."""
        rows = timed_rows(rows)
        if not rows:
            raise HardwareError("cannot fit a kernel latency model from no measurements")
        by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_group[regressor_group(Kernel.from_json(r))].append(r)
        self.regressors_ = {group: self._fit_regressor(grows) for group, grows in by_group.items()}
        self.fallback_ = self._fit_regressor(rows, size_only=True)
        self.table_ = {(Kernel.from_json(r).key(), int(r["batch_size"])): float(r["median_ms"])
                       for r in rows}
        self._cache: dict[tuple[str, int], float] = {}
        return self

    def _fit_regressor(self, rows: list[dict[str, Any]], size_only: bool = False) -> KindRegressor:
        x = np.stack([_features(Kernel.from_json(r), r["batch_size"], size_only) for r in rows])
        y = np.log([r["median_ms"] for r in rows])
        return KindRegressor(self.n_estimators, self.seed).fit(x, y)

    def predict_each(self, kernels: list[Kernel], batch_size: int = 1) -> list[float]:
        """Return the predicted standalone latency in ms of each kernel at `batch_size` (cached)."""
        if not hasattr(self, "regressors_"):
            raise HardwareError("this KernelLatencyModel is not fitted; call fit(rows) first")
        keys = [(k.key(), batch_size) for k in kernels]
        todo: dict[str, dict[tuple[str, int], Kernel]] = defaultdict(dict)
        for key, k in zip(keys, kernels, strict=True):
            if key in self._cache:
                continue
            if self.lookup and key in self.table_:
                self._cache[key] = self.table_[key]
            else:
                todo[regressor_group(k)][key] = k
        # sklearn's per-call overhead dwarfs one row's work: predict a group's rows together
        for group, batch in todo.items():
            regressor = self.regressors_.get(group)
            size_only = regressor is None
            feats = np.stack([_features(k, batch_size, size_only) for k in batch.values()])
            logs = (self.fallback_ if size_only else regressor).predict(feats)
            for key, value in zip(batch, logs, strict=True):
                self._cache[key] = float(math.exp(value))
        return [self._cache[key] for key in keys]

    def predict_kernel(self, kernel: Kernel, batch_size: int = 1) -> float:
        """Return the predicted standalone latency in ms of one kernel at `batch_size`."""
        return self.predict_each([kernel], batch_size)[0]


def _features(kernel: Kernel, batch_size: int, size_only: bool) -> np.ndarray:
    feats = kernel_features(kernel, batch_size)
    # the fallback reads what every kind has: log FLOPs, log bytes, log batch
    return feats[:3] if size_only else feats
