"""The kernel-sum latency predictor, fitted from a device profile (no pickles: refit from JSON).

latency(model, batch) = correction_b( sum over kernels k of f_kind(k)(features(k, batch)) )

f_kind is a log-linear model of the kernel's size (FLOPs, bytes, shape) plus a small boosted tree
ensemble on its residuals: the linear part extrapolates to sizes never profiled, the trees learn
where the device departs from it (thread blocking, cache sizes, the dispatch floor that dominates
tiny kernels at batch 1). Each standalone timing already holds its kernel's dispatch overhead,
and module-call overhead is its own kernel ("call"). The optional per-batch correction is a
robust ratio fitted on whole-model measurements (what the standalone sum misses: cache misses
between kernels, allocator work).
"""

from __future__ import annotations

import hashlib
import math
import weakref
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from hardware.profile import DeviceProfile
from nas.errors import HardwareError
from predictors.kernel_ops import kernel_features
from predictors.kernels import Kernel, extract_kernels

_MIN_ROWS_TREES = 12


class _KindModel:
    """Log-linear base plus boosted residuals for one kernel kind (target: log ms)."""

    def __init__(self, n_estimators: int, seed: int) -> None:
        self.n_estimators, self.seed = n_estimators, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> _KindModel:
        self.linear_ = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x, y)
        self.trees_ = None
        if len(y) >= _MIN_ROWS_TREES and self.n_estimators > 0:
            resid = y - self.linear_.predict(x)
            self.trees_ = GradientBoostingRegressor(
                n_estimators=self.n_estimators, max_depth=3, learning_rate=0.05,
                subsample=0.8, min_samples_leaf=3, random_state=self.seed).fit(x, resid)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self.linear_.predict(x)
        if self.trees_ is not None:
            out = out + self.trees_.predict(x)
        return out


def _as_kernel(row: dict[str, Any]) -> Kernel:
    return Kernel(row["kind"], dict(row["config"]))


def _structure_key(kernels: list[Kernel]) -> str:
    joined = "\n".join(sorted(k.key() for k in kernels))
    return hashlib.sha1(joined.encode()).hexdigest()


class LatencyPredictor:
    """Predicts a model's latency in ms on one device from that device's kernel profile.

    `lookup=True` answers exactly-profiled kernels with their measured median instead of the
    fit; off by default because one standalone timing is noisier than the fit over many
    (60 held-out models at batch 32 here: within ±10% 0.57 with lookup, 0.63 without).
    """

    def __init__(self, n_estimators: int = 150, correction: bool = True, lookup: bool = False,
                 seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.correction = correction
        self.lookup = lookup
        self.seed = seed

    # ---- fitting ------------------------------------------------------------------------
    def fit(self, profile_or_rows: DeviceProfile | Iterable[dict[str, Any]]) -> LatencyPredictor:
        """Fit per-kind regressors (and the whole-model correction); return self."""
        if isinstance(profile_or_rows, DeviceProfile):
            rows, models = profile_or_rows.measurements, profile_or_rows.models
            self.device_id_ = profile_or_rows.device_id
        else:
            rows, models = list(profile_or_rows), []
            self.device_id_ = rows[0]["device_id"] if rows else ""
        rows = [r for r in rows if r.get("median_ms", 0) > 0]
        if not rows:
            raise HardwareError("cannot fit a latency predictor from no measurements; "
                                "profile the device first (predictors.profile_device)")
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_kind[r["kind"]].append(r)
        self.models_: dict[str, _KindModel] = {}
        for kind, krows in by_kind.items():
            x = np.stack([kernel_features(_as_kernel(r), r["batch_size"]) for r in krows])
            y = np.log([r["median_ms"] for r in krows])
            self.models_[kind] = _KindModel(self.n_estimators, self.seed).fit(x, y)
        self._fit_fallback(rows)
        self.table_ = {(_as_kernel(r).key(), int(r["batch_size"])): float(r["median_ms"])
                       for r in rows}
        self._reset_caches()
        self.ratio_: dict[int, float] = {}
        if self.correction and models:
            self._fit_correction(models)
        return self

    def _fit_fallback(self, rows: list[dict[str, Any]]) -> None:
        # Kinds never profiled ("other") are predicted from size alone, across all kinds.
        x = np.stack([kernel_features(_as_kernel(r), r["batch_size"])[:3] for r in rows])
        y = np.log([r["median_ms"] for r in rows])
        self.fallback_ = _KindModel(self.n_estimators, self.seed).fit(x, y)

    def _fit_correction(self, models: list[dict[str, Any]]) -> None:
        ratios: dict[int, list[float]] = defaultdict(list)
        for m in models:
            if m.get("kernel_sum_ms"):
                # Timed interleaved with its own kernels: a load-neutral ratio.
                base = float(m["kernel_sum_ms"])
            else:
                kernels = [_as_kernel(k) for k in m["kernels"]]
                base = self.predict_kernels(kernels, int(m["batch_size"]), corrected=False)
            if base > 0 and m["median_ms"] > 0:
                ratios[int(m["batch_size"])].append(m["median_ms"] / base)
        # A robust ratio, bounded: a wild value means the profile is broken, not the model.
        self.ratio_ = {b: float(np.clip(np.median(r), 0.5, 2.0)) for b, r in ratios.items()}
        self._reset_caches()

    def _reset_caches(self) -> None:
        self._kernel_cache: dict[tuple[str, int], float] = {}
        self._model_cache: dict[tuple[str, int], float] = {}
        self._object_keys: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    # ---- predicting ---------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise HardwareError("this LatencyPredictor is not fitted; call fit(profile) or "
                                "LatencyPredictor.load(path) first")

    def predict_kernel(self, kernel: Kernel, batch_size: int = 1) -> float:
        """Return the predicted standalone latency in ms of one kernel at `batch_size`."""
        self._fill_cache([kernel], int(batch_size))
        return self._kernel_cache[(kernel.key(), int(batch_size))]

    def _fill_cache(self, kernels: list[Kernel], batch_size: int) -> list[tuple[str, int]]:
        """Predict every uncached kernel, one regressor call per kind; return the keys."""
        self._check_fitted()
        keys = [(k.key(), batch_size) for k in kernels]
        todo: dict[str, dict[tuple[str, int], Kernel]] = defaultdict(dict)
        for key, k in zip(keys, kernels, strict=True):
            if key in self._kernel_cache:
                continue
            if self.lookup and key in self.table_:
                self._kernel_cache[key] = self.table_[key]
            else:
                todo[k.kind][key] = k
        # sklearn's per-call overhead dwarfs one row's work: predict a kind's rows together
        for kind, group in todo.items():
            feats = np.stack([kernel_features(k, batch_size) for k in group.values()])
            model = self.models_.get(kind)
            logs = (self.fallback_.predict(feats[:, :3]) if model is None
                    else model.predict(feats))
            for key, value in zip(group, logs, strict=True):
                self._kernel_cache[key] = float(math.exp(value))
        return keys

    def _ratio(self, batch_size: int) -> float:
        if not self.ratio_:
            return 1.0
        if batch_size in self.ratio_:
            return self.ratio_[batch_size]
        nearest = min(self.ratio_, key=lambda b: abs(math.log(b) - math.log(batch_size)))
        return self.ratio_[nearest]

    def predict_kernels(self, kernels: list[Kernel], batch_size: int = 1,
                        corrected: bool = True) -> float:
        """Return the predicted latency in ms of a model made of `kernels` at `batch_size`."""
        keys = self._fill_cache(kernels, int(batch_size))
        total = sum(self._kernel_cache[key] for key in keys)
        return total * (self._ratio(batch_size) if corrected else 1.0)

    def predict(self, model: nn.Module, input_shape: tuple[int, ...] | None = None,
                batch_size: int = 1, *, key: str | None = None) -> float:
        """Return the predicted latency in ms of `model` at `batch_size` (cached per structure).

        `key` (e.g. an Architecture id) skips tracing when that structure was seen before.
        """
        self._check_fitted()
        if batch_size < 1:
            raise HardwareError(f"batch_size={batch_size} is invalid; it must be at least 1")
        shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
        if shape is None:
            raise HardwareError("predict needs input_shape (without the batch dimension) for a "
                                f"{type(model).__name__} that has no .input_shape attribute")
        shape = tuple(int(d) for d in shape)
        seen = self._object_keys.get(model, {})
        skey = f"{key}{shape}" if key is not None else seen.get(shape)
        if skey is not None and (skey, batch_size) in self._model_cache:
            return self._model_cache[(skey, batch_size)]
        kernels = extract_kernels(model, shape)
        skey = skey if skey is not None else _structure_key(kernels) + str(shape)
        self._object_keys[model] = {**seen, shape: skey}
        ms = self.predict_kernels(kernels, batch_size)
        self._model_cache[(skey, batch_size)] = ms
        return ms

    @classmethod
    def load(cls, profile_path: str | Path, **params: Any) -> LatencyPredictor:
        """Return a predictor refitted from the profile JSON at `profile_path`."""
        return cls(**params).fit(DeviceProfile.load(profile_path))
