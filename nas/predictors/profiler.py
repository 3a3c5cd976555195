"""Profile a device for the latency predictor: fp32 kernels, and int8 ones when asked.

The fp32 profile (model kernels, adaptive extra samples, a few whole models) is
`nas.kernels.profiling.profile_float`; int8 kernels and fp32<->int8 transitions are added to it
by `nas.predictors.int8_profiler.extend_int8`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nas.errors import HardwareError
from nas.hardware.identity import DEFAULT_THREADS
from nas.hardware.profile import DeviceProfile
from nas.kernels.profiling import check_budget, profile_float
from nas.kernels.timing import Progress
from nas.predictors.int8_profiler import extend_int8

PRECISIONS = ("fp32", "int8")
INT8_SHARE = 0.4  # of the time budget, when int8 is profiled too


def profile_device(models: Sequence[Any], *, device: str = "cpu",
                   batch_sizes: Sequence[int] = (1, 32), time_budget_s: float = 120.0,
                   progress: Progress | None = None, threads: int | None = DEFAULT_THREADS,
                   whole_models: int = 8, seed: int = 0,
                   precisions: Sequence[str] = ("fp32",), repeats: int = 5) -> DeviceProfile:
    """Return a DeviceProfile: model kernels, adaptive extra samples and a few whole models.

    `repeats` samples per timing: on a shared machine one sample scatters by 10-20%, so more
    repeats buy a steadier profile at the price of fewer configurations within the budget.

    With "int8" in `precisions` the models are also quantized under random per-layer
    policies and their int8 kernels and fp32<->int8 transitions are profiled
    (`nas.predictors.int8_profiler.profile_int8`, 40% of the budget).
    """
    check_budget(time_budget_s, repeats)  # before a share of the budget is handed on
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or "fp32" not in precisions:
        raise HardwareError(f"precisions={list(precisions)} is invalid; valid: ('fp32',) or "
                            "('fp32', 'int8')")
    int8 = "int8" in precisions
    profile = profile_float(models, device=device, batch_sizes=batch_sizes,
                            time_budget_s=(1 - INT8_SHARE) * time_budget_s if int8 else time_budget_s,
                            progress=progress, threads=threads, whole_models=whole_models, seed=seed,
                            repeats=repeats)
    if not int8:
        return profile
    return extend_int8(profile, models, time_budget_s=INT8_SHARE * time_budget_s, progress=progress,
                       whole_models=whole_models, seed=seed, repeats=repeats)
