"""A saved device profile: identity, standalone kernel measurements and whole-model timings.

Stored as JSON (never pickles): a latency predictor is refitted from these rows in seconds, so
a profile outlives any scikit-learn release.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import HardwareError
from nas.hardware.identity import DEFAULT_THREADS, DeviceIdentity, identify

FORMAT_VERSION = 1
# Profiles that ship with nas: read, never written (a user's `nas profile` must not overwrite them).
SHIPPED_PROFILES_DIR = Path(__file__).resolve().parent / "profiles"


def user_profiles_dir() -> Path:
    """Return where this user's profiles are saved: $NAS_PROFILES_DIR, else the XDG data folder."""
    if os.environ.get("NAS_PROFILES_DIR"):
        return Path(os.environ["NAS_PROFILES_DIR"]).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "nas" / "profiles"


def profile_dirs() -> list[Path]:
    """Return the folders searched for profiles, the user's first."""
    return [user_profiles_dir(), SHIPPED_PROFILES_DIR]


def default_profile_path(device_id: str) -> Path:
    """Return the profile of `device_id`: the user's, else a shipped one, else where the user's goes."""
    for folder in profile_dirs():
        if (folder / f"{device_id}.json").is_file():
            return folder / f"{device_id}.json"
    return user_profiles_dir() / f"{device_id}.json"


def profile_path(device: str = "cpu", threads: int | None = DEFAULT_THREADS) -> Path:
    """Return this device's profile: the user's, else a shipped one, else where `nas profile` saves it."""
    return default_profile_path(identify(device, threads).device_id)


# The columns of the store's `measurements` table, in order.
MEASUREMENT_COLUMNS = ("device_id", "kind", "config", "batch_size", "median_ms", "iqr_ms",
                       "repeats", "device")


@dataclass
class DeviceProfile:
    """Everything measured on one device; `measurements` rows match the store's table."""

    identity: DeviceIdentity
    measurements: list[dict[str, Any]] = field(default_factory=list)
    # Whole models: {"name", "batch_size", "median_ms", "iqr_ms", "kernels": [{"kind","config"}]},
    # and "quantized": true for an FX int8 model (int8 kernels carry config "precision": "int8")
    models: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def device_id(self) -> str:
        """Return the identity's device_id slug."""
        return self.identity.device_id

    @property
    def precisions(self) -> list[str]:
        """Return the precisions measured: ["fp32"], or ["fp32", "int8"] with int8 kernels."""
        int8 = any(r["kind"] in ("quantize", "dequantize")
                   or (r.get("config") or {}).get("precision") == "int8" for r in self.measurements)
        return ["fp32", "int8"] if int8 else ["fp32"]

    def to_json(self) -> dict[str, Any]:
        """Return the profile as a JSON-able dict."""
        return {"format": FORMAT_VERSION, "identity": self.identity.to_json(),
                "measurements": self.measurements, "models": self.models, "meta": self.meta}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "<dict>") -> DeviceProfile:
        """Return the profile described by `to_json` output; HardwareError if malformed."""
        if not isinstance(data, dict) or "identity" not in data:
            raise HardwareError(f"{source}: not a device profile (no 'identity' key)")
        if data.get("format", FORMAT_VERSION) > FORMAT_VERSION:
            raise HardwareError(f"{source}: profile format {data['format']} is newer than "
                                f"this version reads ({FORMAT_VERSION})")
        rows = data.get("measurements", [])
        for i, row in enumerate(rows):
            missing = [c for c in MEASUREMENT_COLUMNS if c not in row]
            if missing:
                raise HardwareError(f"{source}: measurement {i} lacks columns {missing}")
        return cls(DeviceIdentity.from_json(data["identity"]), list(rows),
                   list(data.get("models", [])), dict(data.get("meta", {})))

    def save(self, path: str | Path | None = None) -> Path:
        """Write the profile as JSON (default: the user's profile folder); return the path."""
        target = Path(path) if path is not None else user_profiles_dir() / f"{self.device_id}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(target)  # atomic: a crash never leaves half a profile behind
        return target

    @classmethod
    def load(cls, path: str | Path) -> DeviceProfile:
        """Return the profile saved at `path`; HardwareError if missing or malformed."""
        p = Path(path)
        if not p.is_file():
            raise HardwareError(f"device profile {str(p)!r} does not exist; create one with "
                                "predictors.profile_device(...).save()")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HardwareError(f"device profile {str(p)!r} is not valid JSON: {exc}") from exc
        return cls.from_json(data, source=str(p))
