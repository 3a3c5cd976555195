"""References to a user's code: `path/to/file.py:function` or `package.module:function`.

`import_reference` imports what a reference names (a space, a data loader); the rest finds a user's
space from its reference and arguments, and rebuilds a stored study's space only when asked to.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.space import Quantization, Space


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


class LoadError(NasError):
    """A space reference or its arguments cannot be resolved."""


def parse_kv(items: list[str] | tuple[str, ...], what: str) -> dict[str, Any]:
    """Return {key: value} from `key=value` strings; values are read as JSON when they parse."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise LoadError(f"{what} {item!r}: write key=value, e.g. {what} num_classes=10")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def absolute_ref(ref: str) -> str:
    """Return `ref` with a file path made absolute, so the study names its space from any folder."""
    target, sep, name = ref.rpartition(":")
    if sep and target.endswith(".py"):
        return f"{Path(target).expanduser().resolve()}:{name}"
    return ref


def _import_function(ref: str) -> Any:
    return import_reference(ref, "space", LoadError)


def load_space(ref: str, args: Mapping[str, Any] | None = None,
               defaults: Mapping[str, Any] | None = None) -> Space:
    """Return the Space made by the referenced function with `args` (and `defaults` it accepts)."""
    return load_space_and_args(ref, args, defaults)[0]


def load_space_and_args(ref: str, args: Mapping[str, Any] | None = None,
                        defaults: Mapping[str, Any] | None = None) -> tuple[Space, dict[str, Any]]:
    """Return the Space and the exact keyword arguments it was made with (for worker processes)."""
    fn = _import_function(ref)
    if isinstance(fn, Space):
        return fn, {}
    if not callable(fn):
        raise LoadError(f"space {ref!r} is a {type(fn).__name__}, not a function returning a Space")
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in (defaults or {}).items() if k in params}
    kwargs.update(args or {})
    # A reserved argument: a quantization policy to search with any space (unless the space takes it).
    quant = kwargs.pop("quantization", None) if "quantization" not in params else None
    unknown = [k for k in kwargs if k not in params and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())]
    if unknown:
        raise LoadError(f"space {ref!r} takes no argument(s) {unknown}; it takes {list(params)}")
    if "input_shape" in kwargs and isinstance(kwargs["input_shape"], list):
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
    try:
        space = fn(**kwargs)
    except NasError:
        raise
    except Exception as e:
        raise LoadError(f"space {ref!r}({kwargs}) raised {type(e).__name__}: {e}") from e
    if not isinstance(space, Space):
        raise LoadError(f"space {ref!r} returned {type(space).__name__}, not a nas.space.Space")
    if quant:
        policy = Quantization(tuple(quant["options"]), quant.get("granularity", "layer"))
        space = Space(space.root, space.input_shape, name=space.name, quantization=policy)
        kwargs["quantization"] = {"options": list(policy.options), "granularity": policy.granularity}
    return space, kwargs


def study_space(space_ref: str, space_args: Mapping[str, Any], fingerprint: str, study: str = "") -> Space:
    """Return a stored study's space rebuilt from its reference; an edited space is a clear error."""
    if not space_ref:
        raise LoadError(f"study '{study}' was run from Python without a space reference; "
                        "rebuild its space yourself and use Space.build")
    space = load_space(space_ref, space_args)
    if space.fingerprint != fingerprint:
        raise LoadError(
            f"the space {space_ref} has changed since study '{study}' ran (fingerprint "
            f"{space.fingerprint} != {fingerprint}); restore it to rebuild these models"
        )
    return space


@lru_cache(maxsize=8)
def cached_space(ref: str, args_json: str) -> Space:
    """Return `load_space` memoised per process (worker processes rebuild each space once)."""
    return load_space(ref, json.loads(args_json))
