"""`nas search --quantization per-layer`: the policy is searched with the architecture, int8 is real."""

from __future__ import annotations

import json

from tests.cli.test_cli import nas


def test_per_layer_quantization_search_from_the_cli(tmp_path):
    db = str(tmp_path / "q.db")
    nas("search", "search_spaces.convnet:space", "--space-arg", "widths=[8]", "--space-arg", "max_blocks=1",
        "--dataset", "digits", "--max-train", "300", "--epochs", "1", "--budget", "3",
        "--quantization", "per-layer", "--db", db, "--study", "q")
    trials = json.loads(nas("trials", "q", "--db", db, "--format", "json").stdout)
    assert len(trials) == 3 and all(t["state"] == "COMPLETE" for t in trials)
    for t in trials:
        labels = [k for k in t["architecture"] if k.startswith("quant/")]
        policy = t["extra"]["quant_policy"]
        assert len(labels) == len(policy) == 3  # stem conv, one block conv, the classifier
        assert sorted(policy.values()) == sorted(t["architecture"][k] for k in labels)
        assert sorted(t["extra"]["int8_layers"]) == sorted(n for n, p in policy.items() if p == "int8")
        assert {"accuracy", "fp32_accuracy", "latency_ms", "size_mb"} <= set(t["metrics"])
    # the model still rebuilds and shows for a quantized study (the policy travels with the study)
    assert "Conv2d" in nas("show", "q", "0", "--db", db, "--space", "search_spaces.convnet:space").stdout
