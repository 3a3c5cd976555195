"""nas: neural architecture search for PyTorch.

The errors a user can cause are importable from here: ``except nas.NasError`` catches them all.
"""

from nas.deprecated_paths import install as _install_moved_paths
from nas.errors import (
    CompressionError,
    EvaluationError,
    HardwareError,
    NasError,
    SearchError,
    SpaceError,
    StoreError,
)

_install_moved_paths()  # the old import paths (nas.latency, nas.loading, ...) warn for one release

__all__ = ["CompressionError", "EvaluationError", "HardwareError", "NasError", "SearchError", "SpaceError",
           "StoreError"]
