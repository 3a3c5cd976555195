"""Searchers behind one ask/tell contract; `make_searcher(name, ...)` builds one by name."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from nas.errors import SearchError
from nas.search.base import Estimator, Observation, Searcher
from nas.space import Space

# name -> "module:Class"; imported lazily so that optional heavy dependencies load only when used.
SEARCHERS: dict[str, str] = {
    "random": "nas.search.random:RandomSearch",
    "mcts": "nas.search.mcts:MCTS",
    "evolution": "nas.search.evolution:RegularizedEvolution",
    "smbo": "nas.search.smbo:SMBO",
    "nsga2": "nas.search.nsga2:NSGA2Search",
    "linas": "nas.search.linas:LINAS",
    "optuna": "nas.search.optuna_sampler:OptunaSearch",
}


def available() -> list[str]:
    """Return the searcher names `make_searcher` accepts (plus optuna:<sampler> when registered)."""
    return sorted(SEARCHERS)


def check_searcher(name: str) -> None:
    """Raise SearchError unless `name` names a searcher; imports nothing, so a CLI checks it first."""
    if name.partition(":")[0] not in SEARCHERS:
        raise SearchError(f"unknown searcher {name!r}; valid: {', '.join(available())}")


def make_searcher(name: str, space: Space, objectives: Sequence[str], *, seed: int = 0,
                  constraints: Sequence[str] = (), estimate: Estimator | None = None,
                  **settings: Any) -> Searcher:
    """Return a new searcher by name (e.g. random, mcts, smbo, evolution, nsga2, optuna:tpe)."""
    check_searcher(name)
    base, _, variant = name.partition(":")
    module, _, cls_name = SEARCHERS[base].partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    if variant:
        settings = {"sampler": variant, **settings}
    return cls(space, objectives, seed=seed, constraints=constraints, estimate=estimate, **settings)


__all__ = ["Estimator", "Observation", "Searcher", "SEARCHERS", "available", "check_searcher",
           "make_searcher"]
