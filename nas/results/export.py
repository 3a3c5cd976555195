"""Export a built architecture (with its trained weights when stored) as a file usable without nas."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from nas.errors import NasError
from nas.space import Architecture, Space

FORMATS = ("torchscript", "onnx", "state-dict", "json")


def load_weights(model: torch.nn.Module, weights: bytes) -> None:
    """Load safetensors bytes into `model` (strict: a mismatch means the space changed)."""
    from safetensors.torch import load

    try:
        model.load_state_dict(load(weights), strict=True)
    except RuntimeError as e:
        raise NasError(f"the stored weights do not fit the rebuilt model: {e}") from e


def check_out_path(out: Path, *, force: bool, reads: list[str]) -> None:
    """Refuse an output file that is one the command reads, sits in a missing folder, or exists."""
    from sqlalchemy.exc import ArgumentError

    from nas.store.db import normalize_url, sqlite_path

    target = Path(out).expanduser().resolve()
    for src in reads:
        try:
            path = sqlite_path(normalize_url(src))
        except ArgumentError:  # not a URL at all: opening it says so
            path = None
        if path is not None and path.resolve() == target:
            raise NasError(f"--out {out} is the database this command reads; write somewhere else")
    if not target.parent.is_dir():
        raise NasError(f"--out {out}: the folder {target.parent} does not exist")
    if target.is_dir():
        raise NasError(f"--out {out} is a folder; give a file name")
    if target.exists() and not force:
        raise NasError(f"--out {out} exists; pass --force to overwrite it")


def export_model(space: Space | None, arch: Architecture, weights: bytes | None, fmt: str,
                 out: Path) -> bool:
    """Write the model in `fmt` to `out`; return whether trained weights were used.

    The file is written beside `out` and moved into place, so a failure leaves `out` as it was.
    `space` may be None for "json", which needs no model.
    """
    out = Path(out)
    tmp = out.with_name(f".{out.name}.part")
    try:
        _write(space, arch, weights, fmt, tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return weights is not None


def _write(space: Space | None, arch: Architecture, weights: bytes | None, fmt: str, out: Path) -> None:
    if fmt == "json":
        out.write_text(arch.to_json() + "\n")
        return
    if fmt not in FORMATS:
        raise NasError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    if space is None:
        raise NasError(f"exporting {fmt} builds the model: it needs the study's space")
    model = space.build(arch)
    if weights is not None:
        load_weights(model, weights)
    model.eval()
    if fmt == "torchscript":
        try:
            scripted = torch.jit.script(model)
        except Exception as e:  # an op TorchScript cannot compile: say what still works
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise NasError(f"TorchScript cannot compile this model ({first}); export it with "
                           "--format onnx, state-dict or json instead") from e
        torch.jit.save(scripted, str(out))
    elif fmt == "onnx":
        example = torch.randn(1, *space.input_shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(model, (example,), str(out), input_names=["x"],
                                  output_names=["logits"], dynamo=False)
            except Exception as e:
                raise NasError(f"ONNX export failed ({type(e).__name__}: {str(e)[:200]}); export it "
                               "with --format torchscript, state-dict or json instead") from e
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out))

