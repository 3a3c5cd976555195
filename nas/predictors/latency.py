"""The kernel-sum latency predictor of float and int8 models, fitted from a device profile.

latency(model, batch) = correction_b( sum over kernels k of standalone_ms(k, batch) )

standalone_ms is a `nas.kernels.model.KernelLatencyModel` (per-kind regressors of the profile's
standalone timings; no pickles: refit from JSON). The optional per-batch correction is a robust
ratio fitted on whole-model measurements (what the standalone sum misses: cache misses between
kernels, allocator work).

Quantized models (a per-layer int8 policy, FX) are decomposed by
`nas.predictors.mixed_precision.extract_kernels(..., policy=...)`: int8 kernels, fp32 kernels on
channels-last tensors and the fp32<->int8 transitions (`quantize` / `dequantize`) are predicted by
a kernel model of their own, fitted on the profile's int8 rows alone (regressors "conv@int8",
"conv@int8@nhwc", "quantize", ... and a fallback of their own), with a correction ratio of their
own (from int8 whole models), so a profile's int8 rows leave the float predictions unchanged.
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
from torch import nn

from nas.errors import HardwareError
from nas.hardware.profile import DeviceProfile
from nas.kernels.kernel import Kernel
from nas.kernels.model import KernelLatencyModel, KindRegressor, timed_rows
from nas.predictors.mixed_precision import extract_kernels
from nas.predictors.quant_kernels import has_transitions, needs_int8_profile, policy_is_float

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
        """Fit the float and int8 kernel models (and the whole-model corrections); return self."""
        if isinstance(profile_or_rows, DeviceProfile):
            rows, models = profile_or_rows.measurements, profile_or_rows.models
            self.device_id_ = profile_or_rows.device_id
        else:
            rows, models = list(profile_or_rows), []
            self.device_id_ = rows[0]["device_id"] if rows else ""
        rows = timed_rows(rows)
        if not rows:
            raise HardwareError("cannot fit a latency predictor from no measurements; "
                                "profile the device first (predictors.profile_device)")
        float_rows = [r for r in rows if not needs_int8_profile(Kernel.from_json(r))]
        int8_rows = [r for r in rows if needs_int8_profile(Kernel.from_json(r))]
        # an int8-only profile still predicts float kernels: from size, by the fallback over all rows
        self.float_model_ = self._kernel_model().fit(float_rows or rows)
        self.int8_model_ = self._kernel_model().fit(int8_rows) if int8_rows else None
        self._model_cache: dict[tuple[str, int], float] = {}
        self._object_keys: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.ratio_: dict[int, float] = {}
        self.ratio_int8_: dict[int, float] = {}
        if self.correction and models:
            self.ratio_ = self._fit_correction([m for m in models if not m.get("quantized")])
            self.ratio_int8_ = self._fit_correction([m for m in models if m.get("quantized")])
        return self

    def _kernel_model(self) -> KernelLatencyModel:
        return KernelLatencyModel(self.n_estimators, lookup=self.lookup, seed=self.seed)

    @property
    def has_int8_(self) -> bool:
        """Whether the profile held int8 measurements (quantized models can be predicted)."""
        return self.int8_model_ is not None

    @property
    def models_(self) -> dict[str, KindRegressor]:
        """The regressor of every group, float and int8 ("conv", "conv@int8", "quantize", ...)."""
        return {**self.float_model_.regressors_,
                **(self.int8_model_.regressors_ if self.int8_model_ is not None else {})}

    def _fit_correction(self, models: list[dict[str, Any]]) -> dict[int, float]:
        ratios: dict[int, list[float]] = defaultdict(list)
        for m in models:
            if m.get("kernel_sum_ms"):
                # Timed interleaved with its own kernels: a load-neutral ratio.
                base = float(m["kernel_sum_ms"])
            else:
                kernels = [Kernel.from_json(k) for k in m["kernels"]]
                base = self.predict_kernels(kernels, int(m["batch_size"]), corrected=False)
            if base > 0 and m["median_ms"] > 0:
                ratios[int(m["batch_size"])].append(m["median_ms"] / base)
        # A robust ratio, bounded: a wild value means the profile is broken, not the model.
        return {b: float(np.clip(np.median(r), 0.5, 2.0)) for b, r in ratios.items()}

    # ---- predicting ---------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "float_model_"):
            raise HardwareError("this LatencyPredictor is not fitted; call fit(profile) or "
                                "LatencyPredictor.load(path) first")

    def _standalone_ms(self, kernels: list[Kernel], batch_size: int) -> list[float]:
        """Return each kernel's predicted standalone ms, by the float or the int8 kernel model."""
        self._check_fitted()
        int8 = [needs_int8_profile(k) for k in kernels]
        if any(int8) and self.int8_model_ is None:
            raise HardwareError(NO_INT8)
        float_ms = iter(self.float_model_.predict_each(
            [k for k, q in zip(kernels, int8, strict=True) if not q], batch_size))
        int8_ms = iter(self.int8_model_.predict_each(
            [k for k, q in zip(kernels, int8, strict=True) if q], batch_size) if any(int8) else [])
        return [next(int8_ms if q else float_ms) for q in int8]

    def predict_kernel(self, kernel: Kernel, batch_size: int = 1) -> float:
        """Return the predicted standalone latency in ms of one kernel at `batch_size`."""
        return self._standalone_ms([kernel], int(batch_size))[0]

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
        total = sum(self._standalone_ms(kernels, int(batch_size)))
        if not corrected:
            return total
        return total * self._ratio(batch_size, quantized=has_transitions(kernels))

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
