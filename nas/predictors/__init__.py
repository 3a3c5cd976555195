"""Predictors: the latency predictor of float and int8 models, its profiler, metrics, and accuracy
predictors.

    latency          `LatencyPredictor`: a model's latency from a device profile, at any precision
    mixed_precision  `extract_kernels` / `build_kernel` at any precision, `INT8_SUPPORT`
    quant_kernels    what an FX-quantized model runs; quant_analysis: the same by analysis
    quant_build      standalone int8 modules to time
    profiler         `profile_device`: fp32 kernels, int8 ones when asked (int8_profiler)
    metrics          accuracy bands, rank agreement, baselines of latency predictions
    accuracy         `AccuracyPredictor`: scikit-learn regressors on architecture encodings

The fp32 kernel core beneath them is `nas.kernels`. The names below load on first use, so
importing the package pulls in neither scikit-learn nor the profilers.
"""

from __future__ import annotations

from nas.lazy import lazy_attributes

_PUBLIC = {
    "LatencyPredictor": "nas.predictors.latency",
    "extract_kernels": "nas.predictors.mixed_precision",
    "build_kernel": "nas.predictors.mixed_precision",
    "profile_device": "nas.predictors.profiler",
    "extend_int8": "nas.predictors.int8_profiler",
    "profile_int8": "nas.predictors.int8_profiler",
    "flops_baseline": "nas.predictors.metrics",
    "latency_report": "nas.predictors.metrics",
    "noise_ceiling": "nas.predictors.metrics",
    "REGRESSORS": "nas.predictors.accuracy",
    "AccuracyPredictor": "nas.predictors.accuracy",
    # the fp32 core's, for callers of the former predictors.kernels / kernel_ops / profiler
    "Kernel": "nas.kernels.kernel",
    "kernel_cost": "nas.kernels.features",
    "kernel_features": "nas.kernels.features",
    "profile_kernels": "nas.kernels.timing",
    "measure_models": "nas.kernels.timing",
}
__all__ = sorted(_PUBLIC)

__getattr__ = lazy_attributes(__name__, _PUBLIC)
