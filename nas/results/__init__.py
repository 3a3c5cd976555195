"""Reading results: the best trials or the front, a trial's own weights, and exports of a model."""

from nas.results.best import TrialLike, best_trials

__all__ = ["TrialLike", "best_trials"]
