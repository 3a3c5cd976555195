"""Who is measuring: a JSON-able description of the device, threads and software stack.

A latency figure means nothing without the machine it came from; the `device_id` slug keys
saved profiles (`nas/hardware/profiles/<device_id>.json`) and stored measurements.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from nas.errors import HardwareError

# CPU threads of measurements, profiles and predictions unless told otherwise: one thread is the
# steadiest figure on a shared machine, and a measurement compares with a prediction only at the
# thread count the profile was made with.
DEFAULT_THREADS = 1


@dataclass
class DeviceIdentity:
    """The device a measurement was taken on, with everything that changes its timings."""

    kind: str  # "cpu" or "cuda"
    name: str  # CPU model name or GPU name
    logical_cores: int
    threads: int  # intra-op threads used for CPU measurements (1 on CUDA)
    torch_version: str
    backend: dict[str, Any] = field(default_factory=dict)
    driver: str | None = None
    cuda_version: str | None = None
    capability: str | None = None
    device_id: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return a plain dict that json.dumps accepts."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceIdentity:
        """Return the identity stored by `to_json` (unknown keys are ignored)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def _slug(text: str) -> str:
    # "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz" -> "intel-xeon-platinum-8375c"
    text = re.sub(r"\((r|tm|c)\)", " ", text.lower())
    text = re.sub(r"@.*$", " ", text)
    text = re.sub(r"\b(cpu|processor|\d+-core)\b", " ", text)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown"


def _torch_short() -> str:
    major_minor = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    return f"torch{major_minor}"


def _cpu_backend() -> dict[str, Any]:
    return {
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "mkl": bool(torch.backends.mkl.is_available()),
        "openmp": bool(torch.backends.openmp.is_available()),
        "quantized_engine": str(torch.backends.quantized.engine),
        "interop_threads": int(torch.get_num_interop_threads()),
    }


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.stdout.strip().splitlines()
    return first[0].strip() if out.returncode == 0 and first else None


def _identify_cuda(device: str) -> DeviceIdentity:
    if not torch.cuda.is_available():
        raise HardwareError(f"device {device!r} requested but no CUDA GPU is available; use 'cpu'")
    dev = torch.device(device)
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise HardwareError(
            f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s), index 0.."
            f"{torch.cuda.device_count() - 1} are valid"
        )
    props = torch.cuda.get_device_properties(index)
    ident = DeviceIdentity(
        kind="cuda", name=props.name, logical_cores=os.cpu_count() or 1, threads=1,
        torch_version=torch.__version__,
        backend={"cudnn": bool(torch.backends.cudnn.is_available()),
                 "cudnn_version": torch.backends.cudnn.version(),
                 "memory_gib": round(props.total_memory / 2**30, 1)},
        driver=_nvidia_driver(), cuda_version=torch.version.cuda,
        capability=f"{props.major}.{props.minor}",
    )
    ident.device_id = f"cuda-{_slug(props.name)}-{_torch_short()}"
    return ident


def identify(device: str = "cpu", threads: int | None = None) -> DeviceIdentity:
    """Return the identity of `device` ("cpu", "cuda", "cuda:N") with `threads` CPU threads."""
    if device.startswith("cuda"):
        return _identify_cuda(device)
    if device != "cpu":
        raise HardwareError(f"device {device!r} is not supported; valid: 'cpu', 'cuda', 'cuda:N'")
    if threads is not None and threads < 1:
        raise HardwareError(f"threads={threads} is invalid; give a positive thread count or None")
    used = threads if threads is not None else torch.get_num_threads()
    name = _cpu_model_name()
    ident = DeviceIdentity(
        kind="cpu", name=name, logical_cores=os.cpu_count() or 1, threads=used,
        torch_version=torch.__version__, backend=_cpu_backend(),
    )
    ident.device_id = f"cpu-{_slug(name)}-{used}t-{_torch_short()}"
    return ident
