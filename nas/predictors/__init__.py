"""Latency predictors fitted from device profiles, and their metrics.

(Accuracy predictors will live beside them in `predictors.accuracy`.)
"""

from nas.predictors.int8_profiler import extend_int8, profile_int8
from nas.predictors.kernel_ops import build_kernel, kernel_cost, kernel_features
from nas.predictors.kernels import Kernel, extract_kernels
from nas.predictors.latency import LatencyPredictor
from nas.predictors.metrics import flops_baseline, latency_report, noise_ceiling
from nas.predictors.profiler import measure_models, profile_device, profile_kernels

__all__ = [
    "Kernel", "LatencyPredictor", "build_kernel", "extract_kernels", "flops_baseline",
    "kernel_cost", "kernel_features", "latency_report", "measure_models", "noise_ceiling",
    "profile_device", "profile_kernels", "extend_int8", "profile_int8",
]
from nas.predictors.accuracy import REGRESSORS, AccuracyPredictor  # noqa: E402, F401 - accuracy nas.predictors
