"""The errors a user can cause. Each names what is at fault and what would be valid."""


class NasError(Exception):
    """Base of every error that bad input (a space, an architecture, an option) can cause."""


class SpaceError(NasError):
    """A search space or an architecture is malformed, or they do not fit each other."""


class StoreError(NasError):
    """The results database is missing, unreadable, foreign, or inconsistent with a request."""


class EvaluationError(NasError):
    """A dataset, evaluator or training setting is invalid (not a failure of one trial)."""


class SearchError(NasError):
    """A searcher, objective or constraint is misconfigured."""


class CompressionError(NasError):
    """A quantization policy or pruning request cannot be applied to a model."""


class HardwareError(NasError):
    """A device, profile or latency request is invalid on this machine."""
