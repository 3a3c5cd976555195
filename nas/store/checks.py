"""Validation of what callers hand the store, so bad input fails with a StoreError naming it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nas.errors import StoreError
from nas.store.codec import metric_value, metrics_to_json, to_json
from nas.store.records import StudySpec, TrialState

MEASUREMENT_REQUIRED = ("device_id", "kind", "batch_size", "median_ms")
MEASUREMENT_OPTIONAL = ("config", "iqr_ms", "repeats", "device", "created_at")


def text(value: Any, where: str, max_len: int = 255, *, empty: bool = False) -> str:
    """Return `value` if it is a string that fits its column; StoreError otherwise."""
    if not isinstance(value, str):
        raise StoreError(f"{where} = {value!r} must be a string")
    if not value and not empty:
        raise StoreError(f"{where} must not be empty")
    if len(value) > max_len:
        raise StoreError(f"{where} is {len(value)} characters long; at most {max_len} fit")
    return value


def integer(value: Any, where: str, minimum: int | None = None) -> int:
    """Return `value` as an int (bools refused); StoreError if it is not one or too small."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise StoreError(f"{where} = {value!r} must be an integer")
    out = int(value.__index__())
    if minimum is not None and out < minimum:
        raise StoreError(f"{where} = {out} must be >= {minimum}")
    return out


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise StoreError(f"{where} = {value!r} must be a list of strings")
    return [text(v, f"{where}[{i}]", 500) for i, v in enumerate(value)]


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise StoreError(f"{where} = {value!r} must be a dict")
    return to_json(value, where)


def study_columns(spec: StudySpec) -> dict[str, Any]:
    """Return the column values of a new `studies` row for `spec`, validated."""
    if not isinstance(spec, StudySpec):
        raise StoreError(f"create_study takes a StudySpec, not a {type(spec).__name__}")
    return {
        "name": text(spec.name, "study name"),
        "space_ref": text(spec.space_ref, "space_ref", 500, empty=True),
        "space_fingerprint": text(spec.space_fingerprint, "space_fingerprint", 128),
        "space_description": _mapping(spec.space_description, "space_description"),
        "searcher": text(spec.searcher, "searcher"),
        "searcher_settings": _mapping(spec.searcher_settings, "searcher_settings"),
        "objectives": _strings(spec.objectives, "objectives"),
        "constraints": _strings(spec.constraints, "constraints"),
        "evaluator": _mapping(spec.evaluator, "evaluator"),
        "seed": integer(spec.seed, "seed"),
        "budget": integer(spec.budget, "budget", 0),
        "user_attrs": _mapping(spec.user_attrs, "user_attrs"),
    }


# What a trial means: resuming a study with any of these changed would mix two configurations.
RESUME_FIXED = ("searcher", "searcher_settings", "objectives", "constraints", "evaluator", "seed")


def changed_settings(stored: Any, columns: dict[str, Any]) -> list[str]:
    """Return 'name: stored -> new' for each setting that differs between a stored study and a request."""
    def norm(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    out = []
    for name in RESUME_FIXED:
        if norm(getattr(stored, name)) != norm(columns[name]):
            out.append(f"{name}: {_short(getattr(stored, name))} -> {_short(columns[name])}")
    old_args = (stored.user_attrs or {}).get("space_args", {})
    new_args = (columns["user_attrs"] or {}).get("space_args", {})
    if norm(old_args) != norm(new_args):
        out.append(f"space arguments: {_short(old_args)} -> {_short(new_args)}")
    return out


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def arch_document(arch_id: str, arch_json: str) -> Any:
    """Return the decoded architecture JSON; StoreError if `arch_json` is not JSON."""
    text(arch_id, "arch_id", 128)
    if not isinstance(arch_json, str):
        raise StoreError(f"arch_json for {arch_id} must be a JSON string, not {type(arch_json)}")
    try:
        return json.loads(arch_json)
    except ValueError as exc:
        raise StoreError(f"arch_json for {arch_id} is not valid JSON: {exc}") from exc


def _finite(value: Any, where: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    out = metric_value(value, where)
    if not math.isfinite(out):
        raise StoreError(f"{where} = {out} must be a finite number of milliseconds")
    return out


def measurement_columns(row: Any, i: int, now: datetime) -> dict[str, Any]:
    """Return the column values of one `measurements` row, validated."""
    where = f"measurement {i}"
    if not isinstance(row, Mapping):
        raise StoreError(f"{where} is a {type(row).__name__}; expected a dict")
    unknown = set(row) - set(MEASUREMENT_REQUIRED) - set(MEASUREMENT_OPTIONAL)
    missing = [k for k in MEASUREMENT_REQUIRED if k not in row]
    if unknown or missing:
        raise StoreError(
            f"{where} has unknown keys {sorted(unknown)} / lacks {missing}; required: "
            f"{', '.join(MEASUREMENT_REQUIRED)}; optional: {', '.join(MEASUREMENT_OPTIONAL)}"
        )
    repeats = row.get("repeats")
    return {
        "device_id": text(row["device_id"], f"{where}: device_id"),
        "kind": text(row["kind"], f"{where}: kind", 128),
        "config": to_json(dict(row.get("config") or {}), f"{where}: config"),
        "batch_size": integer(row["batch_size"], f"{where}: batch_size", 1),
        "median_ms": _finite(row["median_ms"], f"{where}: median_ms"),
        "iqr_ms": _finite(row.get("iqr_ms"), f"{where}: iqr_ms", optional=True),
        "repeats": None if repeats is None else integer(repeats, f"{where}: repeats", 1),
        "device": to_json(dict(row.get("device") or {}), f"{where}: device"),
        "created_at": row.get("created_at") or now,
    }


def finish_values(
    trial_id: int, state: Any, metrics: Any, predicted: Any, error: Any, extra: Any
) -> dict[str, Any]:
    """Return the columns that finish a trial, validated (metrics JSON-ready)."""
    try:
        state = TrialState(state)
    except ValueError as exc:
        raise StoreError(
            f"state {state!r} for trial id {trial_id} is not one of COMPLETE, FAILED, PRUNED"
        ) from exc
    if state is TrialState.RUNNING:
        raise StoreError(f"finish_trial({trial_id}) needs COMPLETE, FAILED or PRUNED, not RUNNING")
    encoded = metrics_to_json(metrics, f"metrics of trial id {trial_id}")
    names = [text(p, "predicted metric name") for p in (predicted or [])]
    unknown = [p for p in names if p not in encoded]
    if unknown:
        raise StoreError(
            f"predicted metrics {unknown} of trial id {trial_id} are not among its metrics "
            f"{sorted(encoded)}"
        )
    if error is not None and not isinstance(error, str):
        raise StoreError(f"error of trial id {trial_id} must be a string, not {error!r}")
    return {
        "state": state.value, "metrics": encoded, "predicted": names, "error": error,
        "extra": to_json(dict(extra or {}), f"extra of trial id {trial_id}"),
    }


def curve_rows(trial_id: int, curve: list[dict] | None) -> list[dict[str, Any]]:
    """Return the `curves` rows of a learning curve; a point's epoch defaults to its index."""
    rows, seen = [], set()
    for i, point in enumerate(curve or []):
        if not isinstance(point, dict):
            raise StoreError(f"curve point {i} of trial id {trial_id} must be a dict")
        values = {k: v for k, v in point.items() if k != "epoch"}
        epoch = integer(point.get("epoch", i), f"curve point {i}: epoch", 0)
        if epoch in seen:
            raise StoreError(f"curve of trial id {trial_id} repeats epoch {epoch}")
        seen.add(epoch)
        where = f"curve point {i} of trial id {trial_id}"
        rows.append({"trial_id": trial_id, "epoch": epoch,
                     "values": metrics_to_json(values, where)})
    return rows
