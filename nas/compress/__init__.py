"""Compression inside the search: per-layer quantization policies and layer-adaptive pruning.

The names below load on first use, so `import nas.compress.quantize` (every quantized search)
does not pull in the pruning stack and the latency kernels it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

_PRUNE = ("CHANNEL_METHODS", "ChannelPruner", "PruneResult", "Pruner", "additivity", "distortion_curves",
          "dp_allocate", "make_permanent", "prune", "prune_channels")
_QUANTIZE = ("QuantBackend", "apply_policy", "default_backend", "int8_layers", "layer_precisions",
             "make_backend", "policy_options", "quantizable_layers", "torchscript_file_mb")
_PUBLIC = {**dict.fromkeys(_PRUNE, "nas.compress.prune"),
           **dict.fromkeys(_QUANTIZE, "nas.compress.quantize")}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'nas.compress' has no attribute {name!r}")
