"""JSON values in and out of the database.

JSON has no NaN or infinity and PostgreSQL's json type rejects them, yet a diverged training run
reports ``loss = nan``. So every non-finite float is stored as one of the strings ``"NaN"``,
``"Infinity"``, ``"-Infinity"`` (the names Python's ``json`` module uses). Metrics and curve values
are numbers by contract, so they are decoded back to floats on the way out; inside free-form JSON
(``extra``, settings) such strings come back as strings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from nas.errors import StoreError


def _float_to_json(x: float) -> float | str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def to_json(value: Any, where: str) -> Any:
    """Return `value` as plain JSON data (non-finite floats as strings); StoreError if it is not."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return _float_to_json(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise StoreError(f"{where}: key {k!r} is a {type(k).__name__}; JSON keys are strings")
            out[k] = to_json(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    # numpy scalars and 0-d tensors: keep the number, not the type
    if hasattr(value, "item") and callable(value.item):
        try:
            return to_json(value.item(), where)
        except (TypeError, ValueError):
            pass
    raise StoreError(
        f"{where} = {value!r} is a {type(value).__name__}, which cannot be stored as JSON; "
        "use numbers, strings, booleans, None, lists and dicts with string keys"
    )


def metric_value(value: Any, where: str) -> float:
    """Return a metric as a float; StoreError for anything that is not a real number."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise StoreError(f"{where} = {value!r} is not a number; metrics are floats (ints accepted)")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{where} = {value!r} is not a number; metrics are floats (ints accepted)"
        ) from exc


def metrics_to_json(metrics: Mapping[str, Any] | None, where: str) -> dict[str, float | str]:
    """Return a metric dict ready for a JSON column (floats; non-finite ones as strings)."""
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise StoreError(f"{where} is a {type(metrics).__name__}; expected a dict name -> float")
    out: dict[str, float | str] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise StoreError(f"{where}: metric name {name!r} must be a non-empty string")
        out[name] = _float_to_json(metric_value(value, f"{where}[{name!r}]"))
    return out


def metrics_from_json(data: Mapping[str, Any] | None) -> dict[str, float]:
    """Return stored metrics as floats, turning "NaN"/"Infinity"/"-Infinity" back into floats."""
    if not data:
        return {}
    # float() reads "NaN", "Infinity" and "-Infinity" itself
    return {k: float(v) for k, v in data.items()}


def dumps(value: Any) -> str:
    """Return the JSON text the engine writes; refuses NaN so nothing non-standard slips in."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
