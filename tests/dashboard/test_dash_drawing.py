"""What the dashboard draws is stored at trial time (`nas.compile.drawing`, `nas.run.executors.run_job`).

The dashboard must show a model without importing the space code a database names, so each
trial keeps a drawing as plain data, and the DOT the page renders is written from it with every
label quoted.
"""

from __future__ import annotations

import json

import pytest
import torch

from nas.compile import drawing
from nas.compile.drawing import MAX_NODES, drawing_dot, model_drawing
from nas.errors import StoreError
from nas.evaluate import TrainConfig, make_evaluator
from nas.references import load_space
from nas.run.executors import Job, run_job

torch.set_num_threads(1)


def _convnet():
    sp = load_space("search_spaces.convnet:space", {"widths": [8], "max_blocks": 2})
    return sp, sp.sample(3)


class Branchy(torch.nn.Module):  # data-dependent control flow: torch.fx cannot trace it
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else x


def test_drawing_is_json_with_every_layer_and_falls_back_to_the_module_tree():
    sp, arch = _convnet()
    model = sp.build(arch)
    d = json.loads(json.dumps(model_drawing(model)))  # plain data: survives the database
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert d["kind"] == "dataflow" and d["edges"] and d["text"] == str(model)
    dot = drawing_dot(d)
    assert dot.startswith("digraph") and dot.count("Conv2d") == convs and "->" in dot

    tree = model_drawing(Branchy())
    assert tree["kind"] == "module tree"
    assert "n0 -> n1;" in drawing_dot(tree) and "fc\\nLinear" in drawing_dot(tree)


def test_drawing_is_bounded():
    big = torch.nn.Sequential(*[torch.nn.ReLU() for _ in range(2 * MAX_NODES)])
    d = model_drawing(big)
    assert d["kind"] == "module tree" and len(d["nodes"]) == MAX_NODES and d["truncated"]
    assert len(d["text"]) <= drawing.MAX_TEXT and d["text_truncated"]
    assert len(json.dumps(d)) < 100_000


def test_dot_quotes_what_a_doctored_database_stored():
    evil = {"version": 1, "kind": "dataflow", "edges": [[0, 1]],
            "nodes": [{"label": 'x"]; n9 [URL="javascript:alert(1)" label="', "role": "module"},
                      {"label": "a\\\nb", "role": ["unhashable"]}]}
    dot = drawing_dot(evil)
    assert 'URL="javascript' not in dot and '\\"javascript' in dot
    assert dot.count('fillcolor="white"') == 1  # an unknown role gets the plain colour
    for bad in ({"version": 2}, {**evil, "kind": "svg"}, {**evil, "edges": [[0, 5]]},
                {**evil, "edges": [["n0", "n1"]]}, {**evil, "nodes": [{"label": 3}]},
                {**evil, "nodes": [{"label": "x"}] * (MAX_NODES + 1)}, ["not", "a", "mapping"]):
        with pytest.raises(StoreError):
            drawing_dot(bad)


def _digits_job(sp, arch) -> Job:
    ev = make_evaluator("digits", config=TrainConfig(epochs=1, seed=0), max_train=100)
    return Job(arch.to_json(), ev, seed=0)


def test_a_trained_trial_stores_its_drawing_once_and_a_bad_drawing_costs_nothing(monkeypatch):
    sp = load_space("search_spaces.convnet:space", {"widths": [8], "max_blocks": 2,
                                                    "num_classes": 10, "input_shape": [1, 8, 8]})
    arch = sp.sample(3)
    calls = []
    real = drawing.model_drawing
    monkeypatch.setattr(drawing, "model_drawing", lambda m: calls.append(m) or real(m))
    result = run_job(sp, _digits_job(sp, arch))
    assert result.error is None and len(calls) == 1
    assert result.extra["model_drawing"] == real(sp.build(arch))

    def broken(model):
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(drawing, "model_drawing", broken)
    result = run_job(sp, _digits_job(sp, arch))
    assert result.error is None and "model_drawing" not in result.extra and result.metrics["accuracy"] >= 0


def test_a_tabular_benchmark_builds_nothing_and_stores_no_drawing(monkeypatch):
    sp = load_space("search_spaces.nb201:space", {"num_classes": 10})
    monkeypatch.setattr(drawing, "model_drawing", lambda m: pytest.fail("nothing was built to draw"))
    result = run_job(sp, Job(sp.sample(0).to_json(), make_evaluator("nb201-cifar10"), seed=0))
    assert result.error is None and "model_drawing" not in result.extra
