"""Cost metrics of a built model: parameters, FLOPs, serialised size, latency."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

LATENCY_UNAVAILABLE = "hardware.measure_latency not yet available"


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
    """Return the size in MB (1e6 bytes) of the model's state_dict serialised by safetensors.

    Tensors that share storage (tied weights) are stored once. Quantized tensors count as their
    integer representation (scales and zero points are a few bytes per layer).
    """
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    for name, t in _flat_tensors("", model.state_dict()):
        if t.is_quantized:
            t = t.int_repr()
        key = (t.data_ptr(), t.element_size(), tuple(t.shape))
        if t.numel() and key in seen:
            continue
        seen.add(key)
        tensors[name] = t.detach().to("cpu").contiguous().clone()
    return len(save(tensors)) / 1e6


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


def measure_latency_ms(
    model: nn.Module, input_shape: tuple[int, ...], *, batch_size: int = 1, device: str = "cpu",
    threads: int | None = None,
) -> float:
    """Return the median latency in ms measured by ``hardware.measure_latency``.

    Raises ``ImportError`` with ``LATENCY_UNAVAILABLE`` while the hardware package lacks it.
    """
    try:
        from hardware.timing import measure_latency  # lazy: hardware is an optional sibling
    except ImportError as e:
        raise ImportError(LATENCY_UNAVAILABLE) from e
    return float(measure_latency(model, input_shape, batch_size=batch_size, device=device,
                                 threads=threads))


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")
