"""Compression inside the search: per-layer quantization policies and layer-adaptive pruning."""

from nas.compress.prune import (  # noqa: F401  (pruning: public API)
    PruneResult,
    additivity,
    distortion_curves,
    dp_allocate,
    make_permanent,
    prune,
    prune_channels,
)
from nas.compress.quantize import (  # noqa: F401  (quantization: public API)
    QuantBackend,
    apply_policy,
    default_backend,
    int8_layers,
    layer_precisions,
    make_backend,
    policy_options,
    quantizable_layers,
    torchscript_file_mb,
)
