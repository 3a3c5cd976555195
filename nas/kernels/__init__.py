"""The fp32 kernel core of the latency predictor: models traced into kernels, kernels built and timed
standalone, and a latency model of them fitted from a device profile.

    trace       model -> kernels (`extract_kernels`), the tracer `run_traced` and `meta_copy`
    recognize   which kernel a module or function call is (`module_kernel`, `function_kernel`)
    kernel      `Kernel` and `batched_shape`
    build       a standalone module and inputs for a kernel (`build_kernel`)
    features    what the regressors learn from (`kernel_cost`, `kernel_features`)
    model       `KernelLatencyModel`: per-kind regressors of standalone latency
    timing      `time_kernel`, `profile_kernels`, `measure_models`, `KernelSupport`
    perturb     configurations near a profiled one
    profiling   `profile_float`: a device profile of fp32 kernels, adaptively sampled

Nothing here knows int8: quantized models and kernels come in through public parameters (a
`KernelSupport`, a module builder), supplied by `nas.predictors`. The names below load on first
use, so importing the package costs nothing (sklearn loads with `KernelLatencyModel` only).
"""

from __future__ import annotations

from nas.lazy import lazy_attributes

_PUBLIC = {
    "Kernel": "nas.kernels.kernel",
    "extract_kernels": "nas.kernels.trace",
    "run_traced": "nas.kernels.trace",
    "build_kernel": "nas.kernels.build",
    "kernel_cost": "nas.kernels.features",
    "kernel_features": "nas.kernels.features",
    "KernelLatencyModel": "nas.kernels.model",
    "KernelSupport": "nas.kernels.timing",
    "FLOAT_SUPPORT": "nas.kernels.timing",
    "time_kernel": "nas.kernels.timing",
    "profile_kernels": "nas.kernels.timing",
    "measure_models": "nas.kernels.timing",
    "profile_float": "nas.kernels.profiling",
}
__all__ = sorted(_PUBLIC)

__getattr__ = lazy_attributes(__name__, _PUBLIC)
