"""The kernel-sum latency predictor, fitted from a device profile (no pickles: refit from JSON).

latency(model, batch) = correction_b( sum over kernels k of f_kind(k)(features(k, batch)) )

f_kind is a log-linear model of the kernel's size (FLOPs, bytes, shape) plus a small boosted tree
ensemble on its residuals: the linear part extrapolates to sizes never profiled, the trees learn
where the device departs from it (thread blocking, cache sizes, the dispatch floor that dominates
tiny kernels at batch 1). Each standalone timing already holds its kernel's dispatch overhead,
and module-call overhead is its own kernel ("call"). The optional per-batch correction is a
robust ratio fitted on whole-model measurements (what the standalone sum misses: cache misses
between kernels, allocator work).

Quantized models (a per-layer int8 policy, FX) are decomposed by `extract_kernels(...,
policy=...)`: int8 kernels, fp32 kernels on channels-last tensors and the fp32<->int8
transitions (`quantize` / `dequantize`) each get a regressor of their own ("conv@int8",
"conv@int8@nhwc", "quantize", ...), a fallback of their own and a correction ratio of their own
(from int8 whole models), so a profile's int8 rows leave the float predictions unchanged.
"""

from __future__ import annotations

import hashlib
import math
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from nas.errors import HardwareError
from nas.hardware.profile import DeviceProfile
from nas.predictors.kernel_ops import kernel_features
from nas.predictors.kernels import Kernel, extract_kernels
from nas.predictors.quant_kernels import TRANSITIONS, policy_is_float

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


def regressor_group(kernel: Kernel) -> str:
    """Return the regressor a kernel is predicted by: its kind, "@int8" / "@nhwc" when so."""
    group = kernel.kind
    if kernel.precision != "fp32":
        group += "@" + kernel.precision
    if kernel.config.get("nhwc"):
        group += "@nhwc"
    return group


def _is_float_group(group: str) -> bool:
    # What the float predictor has always learned; int8, channels-last and transition kernels
    # appear only in quantized models and get regressors (and a fallback) of their own.
    return "@" not in group and group not in TRANSITIONS


NO_INT8 = ("the device profile has no int8 measurements, so a quantized model's latency cannot "
           "be predicted; run `nas profile --int8` on this machine (or `nas profile --int8 "
           "--extend` to add them to the existing profile)")


def _policy_key(policy: Mapping[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((policy or {}).items()))


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
                 seed: int = 0, int8_method: str = "analyse") -> None:
        self.n_estimators = n_estimators
        self.correction = correction
        self.lookup = lookup
        self.seed = seed
        self.int8_method = int8_method  # how a policy is decomposed: see extract_kernels

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
            by_kind[regressor_group(_as_kernel(r))].append(r)
        self.models_: dict[str, _KindModel] = {}
        for kind, krows in by_kind.items():
            x = np.stack([kernel_features(_as_kernel(r), r["batch_size"]) for r in krows])
            y = np.log([r["median_ms"] for r in krows])
            self.models_[kind] = _KindModel(self.n_estimators, self.seed).fit(x, y)
        float_rows = [r for r in rows if _is_float_group(regressor_group(_as_kernel(r)))]
        quant_rows = [r for r in rows if not _is_float_group(regressor_group(_as_kernel(r)))]
        self.fallback_ = self._fit_fallback(float_rows or rows)
        self.has_int8_ = bool(quant_rows)
        self.fallback_int8_ = self._fit_fallback(quant_rows) if quant_rows else self.fallback_
        self.table_ = {(_as_kernel(r).key(), int(r["batch_size"])): float(r["median_ms"])
                       for r in rows}
        self._reset_caches()
        self.ratio_: dict[int, float] = {}
        self.ratio_int8_: dict[int, float] = {}
        if self.correction and models:
            self.ratio_ = self._fit_correction([m for m in models if not m.get("quantized")])
            self.ratio_int8_ = self._fit_correction([m for m in models if m.get("quantized")])
            self._reset_caches()
        return self

    def _fit_fallback(self, rows: list[dict[str, Any]]) -> _KindModel:
        # Kinds never profiled ("other") are predicted from size alone, across all kinds.
        x = np.stack([kernel_features(_as_kernel(r), r["batch_size"])[:3] for r in rows])
        y = np.log([r["median_ms"] for r in rows])
        return _KindModel(self.n_estimators, self.seed).fit(x, y)

    def _fit_correction(self, models: list[dict[str, Any]]) -> dict[int, float]:
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
        return {b: float(np.clip(np.median(r), 0.5, 2.0)) for b, r in ratios.items()}

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
                todo[regressor_group(k)][key] = k
        # sklearn's per-call overhead dwarfs one row's work: predict a kind's rows together
        for kind, group in todo.items():
            feats = np.stack([kernel_features(k, batch_size) for k in group.values()])
            model = self.models_.get(kind)
            if model is None and not _is_float_group(kind) and not self.has_int8_:
                raise HardwareError(NO_INT8)
            fallback = self.fallback_ if _is_float_group(kind) else self.fallback_int8_
            logs = (fallback.predict(feats[:, :3]) if model is None
                    else model.predict(feats))
            for key, value in zip(group, logs, strict=True):
                self._kernel_cache[key] = float(math.exp(value))
        return keys

    def _ratio(self, batch_size: int, quantized: bool = False) -> float:
        ratios = self.ratio_int8_ if quantized and self.ratio_int8_ else self.ratio_
        if not ratios:
            return 1.0
        if batch_size in ratios:
            return ratios[batch_size]
        nearest = min(ratios, key=lambda b: abs(math.log(b) - math.log(batch_size)))
        return ratios[nearest]

    def predict_kernels(self, kernels: list[Kernel], batch_size: int = 1,
                        corrected: bool = True) -> float:
        """Return the predicted latency in ms of a model made of `kernels` at `batch_size`."""
        keys = self._fill_cache(kernels, int(batch_size))
        total = sum(self._kernel_cache[key] for key in keys)
        if not corrected:
            return total
        quantized = any(k.kind in TRANSITIONS for k in kernels)  # an FX-converted model
        return total * self._ratio(batch_size, quantized)

    def predict(self, model: nn.Module, input_shape: tuple[int, ...] | None = None,
                batch_size: int = 1, *, key: str | None = None,
                policy: Mapping[str, str] | None = None) -> float:
        """Return the predicted latency in ms of `model` at `batch_size` (cached per structure).

        `input_shape` is one example's shape without the batch dimension; when None, the model's
        own ``.input_shape`` (which models built by `Space.build` carry) is used.
        `key` (e.g. an Architecture id) skips tracing when that structure was seen before.
        `policy` ({layer: "fp32" | "int8"}) predicts the model as it runs quantized (FX, int8
        kernels and the fp32<->int8 transitions); the key must then name the policy too (an
        Architecture id of a quantized space does). An all-fp32 policy is the float model.
        """
        self._check_fitted()
        quantized = not policy_is_float(policy)
        if quantized and not self.has_int8_:
            raise HardwareError(NO_INT8)
        if batch_size < 1:
            raise HardwareError(f"batch_size={batch_size} is invalid; it must be at least 1")
        shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
        if shape is None:
            raise HardwareError("pass input_shape (one example, without the batch dimension) to "
                                f"predict: this {type(model).__name__} has no .input_shape (models "
                                "built by Space.build carry one)")
        shape = tuple(int(d) for d in shape)
        seen = self._object_keys.get(model, {})
        which = (shape, _policy_key(policy) if quantized else "")
        skey = f"{key}{shape}" if key is not None else seen.get(which)
        if skey is not None and (skey, batch_size) in self._model_cache:
            return self._model_cache[(skey, batch_size)]
        kernels = extract_kernels(model, shape, policy=policy if quantized else None,
                                  int8_method=self.int8_method)
        skey = skey if skey is not None else _structure_key(kernels) + str(shape)
        self._object_keys[model] = {**seen, which: skey}
        ms = self.predict_kernels(kernels, batch_size)
        self._model_cache[(skey, batch_size)] = ms
        return ms

    @classmethod
    def load(cls, profile_path: str | Path, **params: Any) -> LatencyPredictor:
        """Return a predictor refitted from the profile JSON at `profile_path`."""
        return cls(**params).fit(DeviceProfile.load(profile_path))
