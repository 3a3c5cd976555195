"""The architecture page's downloads.

The architecture (JSON) and the trial's stored weights (safetensors, handed out byte for byte)
are data from the database. TorchScript and ONNX need the model itself, so they need the space's
code: the page offers them only when the user started the dashboard with --trust-spaces, and
then makes them with `nas.results.export` (the one exporter CLI and dashboard share).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from nas.results.export import export_model
from nas.space import Architecture, Space

FORMATS = {  # format -> (file suffix, MIME type, button label)
    "torchscript": (".pt", "application/octet-stream", "TorchScript (.pt)"),
    "onnx": (".onnx", "application/octet-stream", "ONNX (.onnx)"),
    "state-dict": (".safetensors", "application/octet-stream", "State dict (.safetensors)"),
    "json": (".json", "application/json", "Architecture (.json)"),
}
NEEDS_CODE = ("torchscript", "onnx")  # formats that rebuild the model from the space's code


def export_bytes(space: Space | None, architecture: dict[str, Any], weights: bytes | None,
                 fmt: str) -> bytes:
    """Return the download in `fmt`: the JSON, the stored weights as they are, or a rebuilt model."""
    arch = Architecture(architecture)
    if fmt == "json":
        return (arch.to_json() + "\n").encode()
    if fmt == "state-dict":
        if weights is None:
            raise ValueError("this trial has no stored weights to download")
        return weights
    if space is None:
        raise ValueError(f"exporting {fmt} needs the study's space; only json and the stored weights "
                         "work without it")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"model{FORMATS[fmt][0]}"
        export_model(space, arch, weights, fmt, out)
        return out.read_bytes()
