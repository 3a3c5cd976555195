"""Packages that import their parts on first use (PEP 562), so that importing them costs nothing.

    from nas.lazy import lazy_attributes
    __getattr__ = lazy_attributes(__name__, {"Store": "nas.store.store"})

`nas --help` and the store's readers stay free of torch, SQLAlchemy and scikit-learn this way: a
name's module is imported when the name is first read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, public: Mapping[str, str]) -> Callable[[str], Any]:
    """Return a module `__getattr__` that imports `public[name]` and reads `name` from it."""

    def __getattr__(name: str) -> Any:
        if name in public:
            return getattr(importlib.import_module(public[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
