"""The architecture page's downloads, made with `nas.export` (the one exporter CLI and dashboard share)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from nas.export import export_model
from nas.space import Architecture, Space

FORMATS = {  # format -> (file suffix, MIME type, button label)
    "torchscript": (".pt", "application/octet-stream", "TorchScript (.pt)"),
    "onnx": (".onnx", "application/octet-stream", "ONNX (.onnx)"),
    "state-dict": (".safetensors", "application/octet-stream", "State dict (.safetensors)"),
    "json": (".json", "application/json", "Architecture (.json)"),
}


def export_bytes(space: Space | None, architecture: dict[str, Any], weights: bytes | None,
                 fmt: str) -> bytes:
    """Return the architecture exported in `fmt` (with `weights` loaded when given) as bytes."""
    arch = Architecture(architecture)
    if fmt == "json":
        return (arch.to_json() + "\n").encode()
    if space is None:
        raise ValueError(f"exporting {fmt} needs the study's space; only json works without it")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"model{FORMATS[fmt][0]}"
        export_model(space, arch, weights, fmt, out)
        return out.read_bytes()
