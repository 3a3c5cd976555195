"""Predicted int8 latency: int8 kernels, fp32<->int8 transitions, profiles and a search using them."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nas.compress.quantize import apply_policy
from nas.errors import HardwareError
from nas.hardware import DeviceProfile
from nas.kernels.kernel import Kernel
from nas.predictors import LatencyPredictor, build_kernel, extract_kernels, profile_device
from nas.predictors.int8_profiler import extend_int8
from nas.predictors.quant_analysis import agreement
from nas.predictors.quant_kernels import is_int8
from tests.cli.test_cli import nas

SHAPE = (3, 12, 12)
LAYERS = ("0", "2", "5")  # the three quantizable layers of _net(), in forward order


def _net(width: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(width * 12 * 12, 10)).eval()


def _policy(*precisions: str) -> dict[str, str]:
    return dict(zip(LAYERS, precisions, strict=True))


def _counts(kernels: list[Kernel]) -> dict[str, int]:
    return {kind: sum(k.kind == kind for k in kernels) for kind in ("quantize", "dequantize")}


pytestmark = pytest.mark.usefixtures("one_thread")


METHODS = ("convert", "analyse")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("precisions", [("int8", "fp32", "fp32"), ("fp32", "int8", "fp32"),
                                        ("fp32", "fp32", "int8"), ("int8", "int8", "int8"),
                                        ("int8", "fp32", "int8")])
def test_int8_kernels_are_exactly_the_layers_the_policy_makes_int8(precisions, method):
    kernels = extract_kernels(_net(), SHAPE, policy=_policy(*precisions), int8_method=method)
    layers = [k for k in kernels if k.kind in ("conv", "linear")]
    assert [k.precision for k in layers] == list(precisions)
    # the layers keep their shapes, and an int8 conv carries its fused relu
    assert [k.config.get("cin", k.config.get("fin")) for k in layers] == [3, 8, 8 * 12 * 12]
    assert all(k.config["act"] == "relu" for k in layers[:2])


@pytest.mark.parametrize(("precisions", "changes"), [
    (("fp32", "int8", "fp32"), 2),   # quantize before conv 2, dequantize after it
    (("int8", "int8", "int8"), 2),   # in at the input, out at the logits
    (("int8", "fp32", "int8"), 4),
    (("fp32", "fp32", "int8"), 2),
    (("int8", "fp32", "fp32"), 2),
])
@pytest.mark.parametrize("method", METHODS)
def test_a_transition_appears_exactly_where_precision_changes(precisions, changes, method):
    kernels = extract_kernels(_net(), SHAPE, policy=_policy(*precisions), int8_method=method)
    counts = _counts(kernels)
    assert counts["quantize"] + counts["dequantize"] == changes
    assert counts["quantize"] == counts["dequantize"]
    # each transition is sized by the tensor it converts: a quantize feeds the next int8 layer
    layers = [k for k in kernels if k.kind in ("conv", "linear", "quantize", "dequantize")]
    for before, after in zip(layers, layers[1:], strict=False):
        if before.kind == "quantize" and after.kind == "conv":
            assert before.config["shape"][0] == after.config["cin"]


@pytest.mark.parametrize("method", METHODS)
def test_a_converted_model_decomposes_like_its_policy(method):
    x = torch.randn(4, *SHAPE)
    qmodel = apply_policy(_net(), _policy("fp32", "int8", "int8"), example_input=x[:1], calib=x)
    direct = extract_kernels(qmodel, SHAPE)
    via_policy = extract_kernels(_net(), SHAPE, policy=_policy("fp32", "int8", "int8"),
                                 int8_method=method)
    assert [k.key() for k in direct] == [k.key() for k in via_policy]


@pytest.mark.parametrize("space", ["resnet", "mobilenet"])
def test_analysis_agrees_with_the_converted_graph(space):
    # residual adds (add_relu fusion, one transition per tensor), depthwise convs, channels-last
    import importlib

    sp = importlib.import_module(f"search_spaces.{space}").space()
    model = sp.build(sp.sample(3))
    layers = [n for n, m in model.named_modules() if type(m) in (nn.Conv2d, nn.Linear)]
    for k in (2, 3):
        policy = {n: "int8" if i % k else "fp32" for i, n in enumerate(layers)}
        converted = extract_kernels(model, sp.input_shape, policy=policy, int8_method="convert")
        analysed = extract_kernels(model, sp.input_shape, policy=policy, int8_method="analyse")
        assert agreement(converted, analysed)
        assert sum(k.kind == "quantize" for k in converted) >= 2


def test_standalone_int8_kernels_run_quantized_engine_ops():
    kernels = extract_kernels(_net(), SHAPE, policy=_policy("int8", "int8", "int8"))
    wanted = {"conv": "quantized::conv2d_relu", "linear": "quantized::linear",
              "quantize": "aten::quantize_per_tensor", "dequantize": "aten::dequantize"}
    seen = set()
    for k in kernels:
        if k.kind not in wanted or k.kind in seen:
            continue
        seen.add(k.kind)
        mod, xs = build_kernel(k, 2)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            out = mod(*xs)
        names = {e.name for e in prof.events()}
        assert wanted[k.kind] in names, (k.kind, sorted(names))
        assert out.is_quantized == (k.kind != "dequantize")
    assert seen == set(wanted) and torch.backends.quantized.engine == "x86"
    add = Kernel("eltwise", {"op": "add", "shapes": [[1, 4, 3, 3]] * 2, "out": [1, 4, 3, 3],
                             "precision": "int8", "act": "relu"})
    mod, xs = build_kernel(add, 2)
    assert all(x.is_quantized for x in xs) and mod(*xs).is_quantized


@pytest.fixture(scope="module")
def profiles() -> tuple[DeviceProfile, DeviceProfile]:
    """A float-only profile and the same with int8 rows (a few seconds each, real timings)."""
    torch.set_num_threads(1)
    models = [(f"w{w}", _net(w), SHAPE) for w in (4, 8)]
    float_only = profile_device(models, batch_sizes=(1, 4), time_budget_s=3.0, threads=1,
                                whole_models=2, seed=0)
    return float_only, extend_int8(float_only, models, time_budget_s=4.0, whole_models=2,
                                   repeats=3)


def test_int8_profile_rows_learn_int8_kinds_and_transitions(profiles):
    float_only, both = profiles
    assert not any(is_int8(Kernel(r["kind"], r["config"])) for r in float_only.measurements)
    kinds = {(r["kind"], r["config"].get("precision", "fp32")) for r in both.measurements}
    assert {("conv", "int8"), ("quantize", "fp32"), ("dequantize", "fp32")} <= kinds
    new = [r for r in both.measurements if r not in float_only.measurements]
    assert {r["repeats"] for r in new} == {3} and both.meta["int8"]["repeats"] == 3
    # the float rows are kept as they were, and int8 whole models are marked
    assert [r for r in both.measurements if r in float_only.measurements] == float_only.measurements
    assert any(m.get("quantized") for m in both.models)
    # the int8 rows were put on the float rows' scale by float anchors timed around them
    assert set(both.meta["int8"]["anchor_scale"]) == {"1", "4"}
    assert all(0.5 <= v <= 2.0 for v in both.meta["int8"]["anchor_scale"].values())
    fitted = LatencyPredictor().fit(both)
    assert fitted.has_int8_ and "conv@int8" in fitted.models_ and "quantize" in fitted.models_


def test_all_fp32_policy_predicts_the_float_model(profiles):
    predictor = LatencyPredictor().fit(profiles[1])
    net = _net()
    for b in (1, 4):
        assert predictor.predict(net, SHAPE, b, policy=_policy("fp32", "fp32", "fp32")) == \
            predictor.predict(net, SHAPE, b)
    int8 = predictor.predict(net, SHAPE, 4, policy=_policy("int8", "int8", "int8"))
    assert int8 > 0 and int8 != predictor.predict(net, SHAPE, 4)
    # int8 rows leave the float regressors as they were
    float_only = LatencyPredictor().fit(profiles[0])
    assert float_only.predict(net, SHAPE, 4) == pytest.approx(
        LatencyPredictor(correction=False).fit(profiles[1]).predict(net, SHAPE, 4)
        * float_only._ratio(4), rel=1e-9)


def test_int8_prediction_from_a_float_only_profile_says_how_to_fix_it(profiles, tmp_path):
    path = profiles[0].save(tmp_path / "old.json")
    predictor = LatencyPredictor.load(path)  # old, float-only profiles still load and predict
    assert predictor.predict(_net(), SHAPE, 1) > 0
    with pytest.raises(HardwareError, match="nas profile --int8"):
        predictor.predict(_net(), SHAPE, 1, policy=_policy("int8", "fp32", "fp32"))


def test_search_with_per_layer_quantization_and_predicted_latency(profiles, tmp_path):
    profile, db = tmp_path / "cpu.json", str(tmp_path / "q.db")
    profiles[1].save(profile)
    out = nas("search", "search_spaces.convnet:space", "--space-arg", "widths=[8]",
              "--space-arg", "max_blocks=1", "--dataset", "digits", "--max-train", "200",
              "--epochs", "1", "--budget", "2", "--quantization", "per-layer",
              "--objective", "accuracy:max", "--objective", "latency_ms:min",
              "--latency", "predicted", "--profile", str(profile), "--db", db,
              "--study", "q").stdout
    assert "re-measured" in out
    trials = json.loads(nas("trials", "q", "--db", db, "--format", "json").stdout)
    assert len(trials) == 2
    for t in trials:
        m = t["metrics"]
        assert {"latency_ms", "latency_ms_predicted", "latency_ms_measured"} <= set(m)
        assert m["latency_ms"] == m["latency_ms_predicted"] > 0 and m["latency_ms_measured"] > 0
        assert "latency_ms" in t["predicted"]


def test_profile_device_with_int8_precision_and_bad_precisions():
    models = [("w4", _net(4), SHAPE)]
    prof = profile_device(models, batch_sizes=(1,), time_budget_s=3.0, threads=1,
                          whole_models=1, seed=0, precisions=("fp32", "int8"))
    assert prof.precisions == ["fp32", "int8"] and "int8" in prof.meta
    assert any(m.get("quantized") for m in prof.models)
    with pytest.raises(HardwareError, match="precisions"):
        profile_device(models, precisions=("int8",))


def test_anchor_scale_is_the_median_of_profiled_over_now_per_batch():
    from nas.predictors.int8_profiler import _scale_to

    anchors = [{"batch_size": 1, "median_ms": m} for m in (2.0, 4.0, 6.0)] + [
        {"batch_size": 32, "median_ms": 10.0}]
    scale = _scale_to(anchors, [1.0, 2.0, None, 50.0], [1.0, 2.0, 2.0, None])
    assert scale == {1: 2.0, 32: 0.5}  # 3.0 at batch 1 has one timing; 0.2 is clipped
