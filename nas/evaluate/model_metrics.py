"""Cost metrics of a built model: parameters, FLOPs, size of its weights, latency."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Return the number of parameters (trainable or not; shared ones once; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Return the FLOPs of one forward pass at batch 1, as torch's FlopCounterMode counts them.

    Counted the way ``torch.utils.flop_counter`` does: a multiply-add is 2 FLOPs (a Linear of
    ``in -> out`` is ``2 * in * out``), convolutions and matmuls only; bias additions,
    activations, pooling and normalisation count 0. The model is run in eval mode under
    ``no_grad`` on the device of its parameters, and its training flag is restored.
    """
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros((1, *input_shape), device=_device_of(model))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def model_size_mb(model: nn.Module) -> float:
    """Return the size in MB (1e6 bytes) of the model's weights as stored, float or quantized.

    The one definition of ``size_mb``: the tensors of `stored_weights` serialised by safetensors,
    each at its element size, so an int8 layer is about a quarter of its fp32 self and size falls
    with every layer made int8. The safetensors header (a few tens of bytes per tensor) is
    included; no code is, unlike a TorchScript file (`nas.compress.quantize.torchscript_file_mb`).
    """
    from safetensors.torch import save

    return len(save(stored_weights(model))) / 1e6


def stored_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Return {name: CPU tensor} of what storing `model`'s weights keeps, float or quantized.

    The model's state (parameters, persistent buffers, the packed weights of quantized modules).
    A quantized tensor is its integer representation (one byte per int8 element) plus its
    quantization parameters: per-channel scales and zero points (float64 and int64, as torch
    keeps them), or one scale and zero point when per-tensor. Tensors that share storage (tied
    weights) and modules registered under two names are kept once.
    """
    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, torch.dtype, tuple[int, ...]]] = set()
    # All held at once: a fresh tensor freed early could hand its address to the next one and be
    # taken for a tied weight.
    for name, t in list(_stored_tensors(model)):
        key = (t.data_ptr(), t.dtype, tuple(t.shape))
        if t.numel() and key in seen:
            continue
        seen.add(key)
        for part_name, part in _storage_parts(name, t.detach()):
            tensors[part_name] = part.to("cpu").contiguous().clone()
    return tensors


def _stored_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (name, tensor) for what each distinct module writes into the model's state_dict.

    Module by module rather than one ``state_dict()`` call: a quantized conv/linear unpacks fresh
    weight tensors on every call, so a module registered under two names would be counted twice
    by storage identity. ``_save_to_state_dict`` is what ``state_dict`` itself calls per module.
    """
    for prefix, module in model.named_modules():  # each module once
        local: dict[str, object] = {}
        module._save_to_state_dict(local, f"{prefix}." if prefix else "", keep_vars=True)
        yield from _flat_tensors("", local)


def _storage_parts(name: str, t: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield the tensors that store `t`: itself, or a quantized tensor's integers and qparams."""
    if not t.is_quantized:
        yield name, t
        return
    yield name, t.int_repr()
    if t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        yield f"{name}.q_scale", torch.tensor(t.q_scale(), dtype=torch.float64)
        yield f"{name}.q_zero_point", torch.tensor(t.q_zero_point(), dtype=torch.int64)
    else:  # per channel: one scale and zero point per output channel
        yield f"{name}.q_scales", t.q_per_channel_scales()
        yield f"{name}.q_zero_points", t.q_per_channel_zero_points()


def _flat_tensors(prefix: str, value) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (name, tensor) for every tensor in a state_dict, looking inside tuples/dicts."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _flat_tensors(f"{prefix}.{k}" if prefix else str(k), v)
    elif isinstance(value, tuple | list):
        for i, v in enumerate(value):
            yield from _flat_tensors(f"{prefix}.{i}", v)


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")
