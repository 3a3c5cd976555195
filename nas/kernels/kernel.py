"""The unit the latency model counts: one kernel that runs at inference, with its configuration."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Kernel:
    """One unit of work at inference: `kind` and a JSON-able `config` (shapes at batch 1)."""

    kind: str
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Kernel:
        """Return the kernel of a {"kind", "config"} dict (a profile row), its config copied."""
        return cls(data["kind"], dict(data.get("config", {})))

    @property
    def precision(self) -> str:
        """Return the precision the kernel runs at: "fp32" or "int8" (config["precision"])."""
        return str(self.config.get("precision", "fp32"))

    def key(self) -> str:
        """Return a canonical JSON string identifying this kernel configuration."""
        return json.dumps({"kind": self.kind, "config": self.config}, sort_keys=True)

    def to_json(self) -> dict[str, Any]:
        """Return {"kind", "config"} as plain JSON."""
        return {"kind": self.kind, "config": self.config}


def batched_shape(shape: list[int], batch_size: int, batched: bool = True) -> list[int]:
    """Return a shape recorded at batch 1 (batch in dim 0) at `batch_size`; unbatched ones as they are."""
    return [batch_size, *shape[1:]] if batched and shape and shape[0] == 1 else list(shape)
