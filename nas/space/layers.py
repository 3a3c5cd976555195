"""The built-in layers. Input channels and features are never typed: they are inferred at build time.

Any argument may be a plain value or a hyperparameter (`S.choice` with plain values, `S.dependent`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas.errors import SpaceError
from nas.space.nodes import Layer


def conv2d(out_channels: Any, kernel_size: Any = 3, stride: Any = 1, groups: Any = 1,
           padding: Any = None, bias: Any = True) -> Layer:
    """Return a 2-D convolution; padding defaults to kernel_size // 2 (stride 1 keeps the size)."""
    return Layer("conv2d", dict(out_channels=out_channels, kernel_size=kernel_size, stride=stride,
                                groups=groups, padding=padding, bias=bias))


def depthwise_conv2d(kernel_size: Any = 3, stride: Any = 1, bias: Any = True) -> Layer:
    """Return a depthwise convolution (one filter per input channel)."""
    return Layer("depthwise_conv2d", dict(kernel_size=kernel_size, stride=stride, bias=bias))


def linear(out_features: Any, bias: Any = True) -> Layer:
    """Return a fully connected layer over the last dimension of (features,) or (tokens, features)."""
    return Layer("linear", dict(out_features=out_features, bias=bias))


def batch_norm() -> Layer:
    """Return batch normalisation (2-D for images, 1-D for feature vectors)."""
    return Layer("batch_norm", {})


def layer_norm() -> Layer:
    """Return layer normalisation over the features (over C, H, W for images)."""
    return Layer("layer_norm", {})


def relu() -> Layer:
    """Return a ReLU."""
    return Layer("relu", {})


def gelu() -> Layer:
    """Return a GELU."""
    return Layer("gelu", {})


def max_pool2d(kernel_size: Any = 2, stride: Any = None, padding: Any = 0) -> Layer:
    """Return max pooling (stride defaults to the kernel size)."""
    return Layer("max_pool2d", dict(kernel_size=kernel_size, stride=stride, padding=padding))


def avg_pool2d(kernel_size: Any = 2, stride: Any = None, padding: Any = 0) -> Layer:
    """Return average pooling (stride defaults to the kernel size; padding not counted)."""
    return Layer("avg_pool2d", dict(kernel_size=kernel_size, stride=stride, padding=padding))


def global_avg_pool() -> Layer:
    """Return the mean over the spatial positions (images) or the tokens (sequences)."""
    return Layer("global_avg_pool", {})


def flatten() -> Layer:
    """Return a flatten of everything but the batch dimension."""
    return Layer("flatten", {})


def dropout(p: Any = 0.5) -> Layer:
    """Return dropout with probability p."""
    return Layer("dropout", dict(p=p))


def identity() -> Layer:
    """Return the identity."""
    return Layer("identity", {})


def zero() -> Layer:
    """Return a layer whose output is zeros of the input's shape (NAS-Bench-201's 'none')."""
    return Layer("zero", {})


def op(factory: Callable[..., Any], **kwargs: Any) -> Layer:
    """Return a layer made by a user's `nn.Module` factory.

    The factory receives `kwargs` (values or hyperparameters, resolved), plus `in_shape` (the input
    shape without the batch dimension) if its signature accepts a parameter of that name.
    """
    if not callable(factory):
        raise SpaceError(f"S.op needs a callable that returns an nn.Module, got {factory!r}")
    return Layer("op", kwargs, factory=factory)
