"""A model built by Space.build carries its input shape; LatencyPredictor.predict uses it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.errors import HardwareError
from nas.kernels.trace import extract_kernels
from nas.predictors import LatencyPredictor
from search_spaces import convnet


def _rows(model: nn.Module, shapes: list[tuple[int, ...]], batch_size: int) -> list[dict]:
    """Profile rows for `model`'s own kernels with made-up times growing with the image area.

    Enough to fit a predictor in well under a second: predictions here are compared with one
    another, never with a clock.
    """
    rows = []
    for shape in shapes:
        area = shape[-1] * shape[-2]
        for i, k in enumerate(extract_kernels(model, shape)):
            rows.append({"device_id": "test-cpu", "kind": k.kind, "config": k.config,
                         "batch_size": batch_size, "median_ms": 0.01 * (1 + i % 3) * area / 64})
    return rows


@pytest.fixture(scope="module")
def built() -> nn.Module:
    space = convnet.space()
    return space.build(space.sample(0)).eval()


def _fitted(model: nn.Module) -> LatencyPredictor:
    rows = _rows(model, [(1, 8, 8), (1, 16, 16)], batch_size=32)
    return LatencyPredictor(n_estimators=0, correction=False).fit(rows)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script is deprecated
def test_a_built_model_carries_its_space_input_shape(built):
    assert built.input_shape == (1, 8, 8)
    assert "input_shape" not in str(list(built.state_dict()))
    torch.jit.script(built)  # a plain tuple attribute: scripting and tracing still work
    torch.fx.symbolic_trace(built)


def test_predict_without_input_shape_uses_the_models_own(built):
    implicit = _fitted(built).predict(built, batch_size=32)
    explicit = _fitted(built).predict(built, (1, 8, 8), batch_size=32)  # fresh: no shared cache
    assert implicit == explicit > 0
    assert _fitted(built).predict(built, (1, 16, 16), batch_size=32) != implicit  # shape matters


def test_predict_without_any_input_shape_says_to_pass_one(built):
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    with pytest.raises(HardwareError, match=r"pass input_shape .*Sequential has no \.input_shape"):
        _fitted(built).predict(plain, batch_size=32)
