"""Export a built architecture (with its trained weights when stored) as a file usable without nas."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from nas.errors import NasError
from nas.space import Architecture, Space


def load_weights(model: torch.nn.Module, weights: bytes) -> None:
    """Load safetensors bytes into `model` (strict: a mismatch means the space changed)."""
    from safetensors.torch import load

    try:
        model.load_state_dict(load(weights), strict=True)
    except RuntimeError as e:
        raise NasError(f"the stored weights do not fit the rebuilt model: {e}") from e


def export_model(space: Space, arch: Architecture, weights: bytes | None, fmt: str, out: Path) -> bool:
    """Write the model in `fmt` to `out`; return whether trained weights were used."""
    out = Path(out)
    if fmt == "json":
        out.write_text(arch.to_json() + "\n")
        return weights is not None
    model = space.build(arch)
    if weights is not None:
        load_weights(model, weights)
    model.eval()
    example = torch.randn(1, *space.input_shape)
    if fmt == "torchscript":
        torch.jit.save(torch.jit.script(model), str(out))
    elif fmt == "onnx":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(out), input_names=["x"], output_names=["logits"],
                              dynamo=False)
    elif fmt == "state-dict":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out))
    else:
        raise NasError(f"unknown export format {fmt!r}; valid: torchscript, onnx, state-dict, json")
    return weights is not None
