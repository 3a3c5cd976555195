"""The dashboard's computations (no Streamlit): fronts, hypervolume, importance, downloads."""

from __future__ import annotations

import io
import json

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from nas.dashboard import common, data, downloads
from nas.objectives import pareto_front
from nas.references import load_space

torch.set_num_threads(1)


@pytest.mark.parametrize("seed", range(5))
def test_pareto_mask_agrees_with_the_library(seed):
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 6, size=(200, 2 + seed % 2)).astype(float)  # many ties on purpose
    mask = data.pareto_mask(pts)
    assert sorted(np.flatnonzero(mask)) == pareto_front(pts.tolist())


def test_hypervolume_2d_of_known_shapes():
    assert data.hypervolume_2d(np.array([[0.0, 0.0]])) == pytest.approx(1.21)
    # two points: (0, .5) and (.5, 0) -> 1.21 - .5 * .5 (the corner they do not dominate)
    assert data.hypervolume_2d(np.array([[0.0, 0.5], [0.5, 0.0]])) == pytest.approx(1.21 - 0.25)
    assert data.hypervolume_2d(np.array([[0.0, 0.5], [0.5, 0.0], [0.6, 0.6]])) == pytest.approx(0.96)
    assert data.hypervolume_2d(np.array([[1.2, 0.0]])) == 0.0  # beyond the reference


def test_hypervolume_curve_grows_and_respects_directions():
    values = np.array([[80.0, 10.0], [np.nan, np.nan], [90.0, 20.0], [95.0, 5.0]])
    lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    n, hv = data.hypervolume_curve(values, lo, hi, np.array([1.0, -1.0]))
    assert list(n) == [1, 2, 3, 4]
    assert hv[0] == hv[1] < hv[2] < hv[3]
    assert hv[3] == pytest.approx(1.21)  # (95, 5) is best in both: it dominates everything


def _study(values: dict[str, list], metric: list[float]) -> data.StudyData:
    df = pd.DataFrame({"number": range(len(metric)), "state": "COMPLETE", **values, "accuracy": metric})
    return data.StudyData(df, ["accuracy"], {k: k for k in values})


def test_importance_ranks_the_decision_that_decides():
    rng = np.random.default_rng(0)
    width = rng.choice([16, 32, 64], 300)
    act = rng.choice(["relu", "gelu"], 300)
    sd = _study({"width": width, "act": act}, list(width / 64 + rng.normal(0, 0.01, 300)))
    ranking = data.importance(sd, "accuracy")
    assert list(ranking["decision"]) == ["width", "act"]
    assert ranking["importance"].iloc[0] > 0.95 and ranking["importance"].iloc[1] < 0.05


def test_best_so_far_ignores_failed_trials():
    sd = _study({}, [0.5, 0.9, 0.7])
    sd.df.loc[1, "state"] = "FAILED"
    assert list(data.best_so_far(sd, "accuracy", "max")) == [0.5, 0.5, 0.7]
    assert list(data.best_so_far(sd, "accuracy", "min")) == [0.5, 0.5, 0.5]


def test_db_url_is_read_after_the_double_dash():
    assert common.db_url(["app.py", "--", "--db", "x.db"]) == "x.db"
    assert common.db_url(["app.py", "--", "--db=postgresql://h/db"]) == "postgresql://h/db"
    assert common.db_url(["pytest", "--db", "ignored-before-dashes", "--"]) == "nas.db"


def test_trust_comes_only_from_the_flag_after_the_double_dash():
    assert common.trusts_spaces(["app.py", "--", "--db", "x.db", "--trust-spaces"])
    assert not common.trusts_spaces(["app.py", "--", "--db", "x.db"])
    assert not common.trusts_spaces(["app.py", "--", "--db", "--trust-spaces.db"])


def test_units_and_directions():
    assert data.label("latency_ms") == "latency_ms [ms]"
    assert data.label("lat_ms_pixel3") == "lat_ms_pixel3 [ms]"
    assert data.label("accuracy") == "accuracy"
    assert data.direction("params", ["accuracy:max"]) == "min"
    assert data.direction("params", ["params:max"]) == "max"


def _convnet():
    sp = load_space("search_spaces.convnet:space", {"widths": [8], "max_blocks": 2})
    return sp, sp.sample(3)


def test_downloads_round_trip():
    sp, arch = _convnet()
    model = sp.build(arch)
    weights_model = sp.build(arch)
    from safetensors.torch import save

    blob = save({k: v.contiguous() for k, v in weights_model.state_dict().items()})
    x = torch.randn(2, *sp.input_shape)
    scripted = torch.jit.load(io.BytesIO(downloads.export_bytes(sp, dict(arch), blob, "torchscript")))
    weights_model.eval()
    assert torch.allclose(scripted(x), weights_model(x), atol=1e-5)
    proto = onnx.load_model_from_string(downloads.export_bytes(sp, dict(arch), None, "onnx"))
    assert [i.name for i in proto.graph.input] == ["x"]
    assert json.loads(downloads.export_bytes(None, dict(arch), None, "json")) == dict(arch)
    from safetensors.torch import load

    assert downloads.export_bytes(None, dict(arch), blob, "state-dict") == blob  # as stored, no code run
    assert set(load(blob)) == set(model.state_dict())
    with pytest.raises(ValueError, match="needs the study's space"):
        downloads.export_bytes(None, dict(arch), blob, "onnx")
    with pytest.raises(ValueError, match="no stored weights"):
        downloads.export_bytes(sp, dict(arch), None, "state-dict")
