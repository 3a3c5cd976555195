"""Import a user's function from `path/to/file.py:function` or `package.module:function`."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.errors import NasError


def import_reference(ref: str, what: str, error: type[NasError]) -> Any:
    """Return the object `ref` names; `error(...)` names `what` (space, loader) and what went wrong."""
    target, sep, name = ref.rpartition(":")
    if not sep or not target or not name:
        raise error(f"{what} {ref!r}: write path/to/file.py:function or package.module:function")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise error(f"{what} {ref!r}: the file {target} does not exist")
        # a stable module name per file (not Python's salted hash): dataclasses and pickling look it up
        mod_name = f"_nas_user_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
        try:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        except Exception as e:
            raise error(f"{what} {ref!r}: importing {target} raised {type(e).__name__}: {e}") from e
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise error(f"{what} {ref!r}: cannot import module {target!r} ({e})") from e
    if not hasattr(module, name):
        found = sorted(n for n, v in vars(module).items() if isinstance(v, Callable) and n[0] != "_")
        raise error(f"{what} {ref!r}: {target} has no function {name!r} (callables there: {found})")
    return getattr(module, name)
