"""Compression inside the search: per-layer quantization policies and layer-adaptive pruning.

The names below load on first use, so `import nas.compress.quantize` (every quantized search)
does not pull in the pruning stack and the latency kernels it uses.
"""

from __future__ import annotations

from nas.lazy import lazy_attributes

_PRUNE = ("CHANNEL_METHODS", "ChannelPruner", "PruneResult", "Pruner", "additivity", "distortion_curves",
          "dp_allocate", "make_permanent", "prune", "prune_channels")
_QUANTIZE = ("QuantBackend", "apply_policy", "default_backend", "int8_layers", "layer_precisions",
             "make_backend", "policy_options", "quantizable_layers", "torchscript_file_mb")
_PUBLIC = {**dict.fromkeys(_PRUNE, "nas.compress.prune"),
           **dict.fromkeys(_QUANTIZE, "nas.compress.quantize")}
__all__ = sorted(_PUBLIC)

__getattr__ = lazy_attributes(__name__, _PUBLIC)
