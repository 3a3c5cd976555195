"""Compression inside the search: per-layer quantization policies and layer-adaptive pruning."""

from nas.compress.quantize import (  # noqa: F401  (quantization: public API)
    apply_policy,
    default_backend,
    int8_layers,
    layer_precisions,
    policy_options,
    quantizable_layers,
    serialized_size_mb,
)
