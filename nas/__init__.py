"""nas: neural architecture search for PyTorch.

The errors a user can cause are importable from here: ``except nas.NasError`` catches them all.
"""

from nas.errors import (
    CompressionError,
    EvaluationError,
    HardwareError,
    NasError,
    SearchError,
    SpaceError,
    StoreError,
)

__all__ = ["CompressionError", "EvaluationError", "HardwareError", "NasError", "SearchError", "SpaceError",
           "StoreError"]
