"""Prunable layers, magnitude masks and their application through ``torch.nn.utils.prune``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as tprune

from nas.errors import CompressionError

PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Return the prunable layers (conv and linear) of a model by qualified name, in order."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}
    if not layers:
        raise CompressionError(
            f"model {type(model).__name__} has no prunable layer; pruning needs at least one "
            "nn.Conv1d/Conv2d/Conv3d or nn.Linear"
        )
    return layers


def effective_weight(module: nn.Module) -> torch.Tensor:
    """Return the weight a layer computes with, masks applied (detached)."""
    if hasattr(module, "weight_orig"):
        return (module.weight_orig * module.weight_mask).detach()
    return module.weight.detach()


def kept_counts(layers: dict[str, nn.Module]) -> dict[str, int]:
    """Return the number of non-zero weights each layer computes with."""
    return {name: int(torch.count_nonzero(effective_weight(m))) for name, m in layers.items()}


def magnitude_mask(weight: torch.Tensor, kept: int) -> torch.Tensor:
    """Return a 0/1 mask keeping the ``kept`` largest-magnitude entries of ``weight``."""
    flat = weight.detach().abs().flatten()
    mask = torch.zeros_like(flat)
    if kept > 0:
        # topk on magnitudes: zeros (already pruned) are never chosen ahead of survivors
        mask[torch.topk(flat, min(kept, flat.numel()), sorted=False).indices] = 1.0
    return mask.view_as(weight)


def apply_counts(layers: dict[str, nn.Module], counts: dict[str, int]) -> None:
    """Mask every layer down to its kept count by magnitude (composes with earlier masks)."""
    for name, module in layers.items():
        mask = magnitude_mask(effective_weight(module), counts[name])
        if hasattr(module, "weight_mask"):
            # a later round: narrow the existing mask in place; the pruning hook reads it
            with torch.no_grad():
                module.weight_mask.mul_(mask.to(module.weight_mask))
                module.weight = module.weight_orig * module.weight_mask
        else:
            tprune.custom_from_mask(module, "weight", mask)


def detach_masked(model: nn.Module) -> nn.Module:
    """Return ``model`` with each masked weight recomputed without autograd history.

    After a backward pass the pruning hook leaves ``weight`` as a non-leaf tensor, which
    ``copy.deepcopy`` refuses; the hook recomputes it on the next forward anyway.
    """
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "weight_orig") and hasattr(module, "weight_mask"):
                module.weight = module.weight_orig * module.weight_mask
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Return ``model`` with every pruning mask folded into its weights (zeros stay zero)."""
    for module in model.modules():
        if hasattr(module, "weight_orig") and tprune.is_pruned(module):
            tprune.remove(module, "weight")
    return model


def check_calib(model: nn.Module, calib: torch.Tensor) -> torch.Tensor:
    """Return the model's logits on ``calib``, or raise CompressionError if the batch does not fit."""
    first = next(iter(prunable_layers(model).values()))
    if isinstance(first, nn.Linear):
        expect = f"(N, {first.in_features}) for the first nn.Linear"
    else:
        expect = f"(N, {first.in_channels}, ...) for the first conv (in_channels={first.in_channels})"
    if not isinstance(calib, torch.Tensor) or calib.dim() < 2 or calib.shape[0] < 1:
        shape = tuple(calib.shape) if isinstance(calib, torch.Tensor) else type(calib).__name__
        raise CompressionError(
            f"calibration batch of shape {shape} is not a batch: expected {expect}, "
            "with a leading batch dimension of at least one sample"
        )
    try:
        with torch.no_grad():
            out = model(calib)
    except RuntimeError as err:
        raise CompressionError(
            f"calibration batch of shape {tuple(calib.shape)} does not fit the model: expected "
            f"{expect} ({str(err).splitlines()[0]})"
        ) from err
    if not isinstance(out, torch.Tensor) or out.shape[0] != calib.shape[0]:
        raise CompressionError(
            "the model must return one logits tensor with the batch first; got "
            f"{type(out).__name__} for a calibration batch of {calib.shape[0]} samples"
        )
    return out
