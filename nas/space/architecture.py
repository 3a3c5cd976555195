"""`Architecture`: the currency of nas, an immutable mapping of active decisions to chosen values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from nas.errors import SpaceError
from nas.space.hyper import check_scalar


class Architecture(Mapping[str, Any]):
    """Label path -> chosen value, for the active decisions only; canonical JSON and a stable id."""

    __slots__ = ("_values", "_json", "_id")

    def __init__(self, values: Mapping[str, Any]) -> None:
        clean = {}
        for label in sorted(values):
            if not isinstance(label, str):
                raise SpaceError(f"architecture labels are strings, got {label!r}")
            clean[label] = check_scalar(values[label], f"architecture decision '{label}'")
        self._values = clean
        self._json = json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        # A content hash, never Python's salted hash(): the id must match across runs and machines.
        self._id = hashlib.sha256(self._json.encode()).hexdigest()[:16]

    @property
    def id(self) -> str:
        """Return the stable id: the first 16 hex digits of the SHA-256 of the canonical JSON."""
        return self._id

    def to_json(self) -> str:
        """Return the canonical JSON text (sorted keys, no spaces)."""
        return self._json

    @classmethod
    def from_json(cls, text: str) -> Architecture:
        """Return the architecture encoded by `to_json()`."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as e:
            raise SpaceError(f"not an architecture's JSON: {e}") from e
        if not isinstance(data, dict):
            raise SpaceError(f"an architecture's JSON is an object of decisions, got {text[:80]!r}")
        return cls(data)

    def replace(self, **changes: Any) -> Architecture:
        """Return a copy with some decisions changed (labels with '/' via `replace_items`)."""
        return self.replace_items(changes)

    def replace_items(self, changes: Mapping[str, Any]) -> Architecture:
        """Return a copy with the given label -> value changes applied."""
        return Architecture({**self._values, **changes})

    def __getitem__(self, label: str) -> Any:
        try:
            return self._values[label]
        except KeyError:
            raise KeyError(label) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Architecture):
            return self._json == other._json
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._json)

    def __repr__(self) -> str:
        return f"Architecture({self._json})"
