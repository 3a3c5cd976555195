"""Import paths that moved when the package was laid out by layer, kept working for one release.

`import nas.latency`, `from hardware import measure_latency` or `from predictors import
LatencyPredictor` still work and give the very module objects of the new paths (no second copy of
a module, so `isinstance` and module state agree), with a DeprecationWarning that names the new path.
The aliases go in the release after next; `MOVES` is the whole list.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

# top-level packages that became parts of nas: a shim package left at each old place aliases it
PACKAGES = {"hardware": "nas.hardware", "predictors": "nas.predictors"}

# old module -> new one
MOVES = {
    "nas.latency": "nas.run.latency_source",
    "nas.executors": "nas.run.executors",
    "nas.assemble": "nas.run.assemble",
    "nas.export": "nas.results.export",
    "nas.weights": "nas.results.weights",
    "nas.importing": "nas.references",
    "nas.loading": "nas.references",
    "nas.space.quant": "nas.space.precision",
    "nas.compile.layers": "nas.compile.layer_makers",
    "nas.evaluate.trainer": "nas.evaluate.train_loop",
    "nas.evaluate.training": "nas.evaluate.train_evaluator",
    "nas.evaluate.quantized": "nas.evaluate.quant_evaluator",
    "nas.evaluate.pruned": "nas.evaluate.prune_evaluator",
    "nas.compress.quant_backends": "nas.compress.int8_backends",
    "nas.compress.pruning.latency": "nas.compress.pruning.group_latency",
    "nas.compress.pruning.layers": "nas.compress.pruning.prunable",
    "nas.predictors.kernels": "nas.kernels.trace",
    "nas.predictors.kernel_ops": "nas.kernels.build",
}


def new_path(old: str) -> str | None:
    """Return the module path that replaced `old`, or None when `old` did not move."""
    if old in MOVES:
        return MOVES[old]
    if old in PACKAGES:
        return PACKAGES[old]
    head, _, tail = old.partition(".")
    # a submodule of a moved package, once its shim ran: a user's own `hardware` package passes by
    if tail and head in PACKAGES and getattr(sys.modules.get(head), "__name__", None) == PACKAGES[head]:
        new = f"{PACKAGES[head]}.{tail}"
        return MOVES.get(new, new)  # moved again since (predictors.kernels -> nas.kernels.trace)
    return None


def moved_module(old: str) -> ModuleType:
    """Warn that `old` moved and return the module at its new path."""
    new = new_path(old)
    warnings.warn(f"{old} moved to {new}; import it from there (the old path goes in a later release)",
                  DeprecationWarning, stacklevel=3)
    return importlib.import_module(new)


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the module already at its new path (imported once, shared)."""

    def create_module(self, spec):
        return moved_module(spec.name)

    def exec_module(self, module):
        pass  # the new module ran when it was imported


class MovedPathFinder(importlib.abc.MetaPathFinder):
    """Answers imports of the old paths in `MOVES`; every other import passes by."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in PACKAGES or new_path(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader())


def install() -> None:
    """Put the finder first on sys.meta_path (once), ahead of the files of a stale checkout."""
    if not any(isinstance(f, MovedPathFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedPathFinder())


def alias_package(old: str) -> None:
    """Make the top-level package `old` (a shim left at the old place) the package at its new path."""
    install()
    sys.modules[old] = moved_module(old)
