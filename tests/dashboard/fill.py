"""Fill a results database the dashboard tests read: real searches plus one hand-written study.

Real: a random and an MCTS search on digits (1 epoch, a few trials; each trial stores its model's
drawing and weights) and a two-objective random search on NAS-Bench-201 (tabular: nothing built,
nothing drawn). Hand-written through the store API: a study whose trial carries what issues 7/8
add (a quantization policy, a pruning allocation, measured and predicted latency) and the drawing
a search would store, a failed trial, and latency measurements for the Hardware page.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import torch

from nas.compile.drawing import model_drawing
from nas.evaluate import TrainConfig, make_evaluator
from nas.references import load_space_and_args
from nas.run import search
from nas.store import Store, StudySpec, TrialState

DIGITS = "search_spaces.convnet:space"
NB201 = "search_spaces.nb201:space"
HANDMADE = "handmade"
HANDMADE_TRIAL = 1  # the trial with quantization policy, pruning allocation and both latencies


def _digits(url: str, searcher: str, study: str, budget: int) -> None:
    ev = make_evaluator("digits", config=TrainConfig(epochs=1, seed=0), max_train=200)
    defaults = {"num_classes": ev.num_classes(), "input_shape": ev.input_shape()}
    args = {"widths": [8, 16], "max_blocks": 2}
    sp, space_args = load_space_and_args(DIGITS, args, defaults)
    search(sp, evaluator=ev, searcher=searcher, budget=budget, storage=url, study=study, seed=0,
           space_ref=DIGITS, space_args=space_args)


def _nb201(url: str, budget: int) -> None:
    ev = make_evaluator("nb201-cifar10")
    sp, space_args = load_space_and_args(NB201, {}, {"num_classes": 10})
    search(sp, evaluator=ev, searcher="random", objectives=["accuracy:max", "params:min"],
           budget=budget, storage=url, study="nb201-random", seed=0, space_ref=NB201,
           space_args=space_args)


def _handmade(url: str) -> None:
    sp, space_args = load_space_and_args(DIGITS, {"widths": [8, 16], "max_blocks": 2},
                                         {"num_classes": 10, "input_shape": [1, 8, 8]})
    store = Store.open(url)
    study = store.create_study(StudySpec(
        name=HANDMADE, space_ref=DIGITS, space_fingerprint=sp.fingerprint,
        space_description=sp.describe(), searcher="random", searcher_settings={},
        objectives=["accuracy:max", "latency_ms:min"], constraints=[], evaluator={"dataset": "digits"},
        seed=0, budget=3, user_attrs={"space_args": space_args}))
    archs = [sp.sample(seed) for seed in (1, 2)]
    failed = store.start_trial(study.id, archs[0].id, archs[0].to_json())
    store.finish_trial(failed.id, TrialState.FAILED, error="RuntimeError: CUDA out of memory\n  at layer 3")
    done = store.start_trial(study.id, archs[1].id, archs[1].to_json())
    model = sp.build(archs[1])
    layers = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    extra = {"quant_policy": {n: ("int8" if i % 2 else "fp32") for i, n in enumerate(layers)},
             "prune_allocation": {n: round(0.1 * (i + 1), 2) for i, n in enumerate(layers)},
             "model_drawing": model_drawing(model)}
    store.finish_trial(done.id, TrialState.COMPLETE, metrics={
        "accuracy": 0.91, "latency_ms": 1.2, "latency_ms_measured": 1.2, "latency_ms_predicted": 1.3,
        "params": 1234.0, "size_mb": 0.01}, predicted=["latency_ms_predicted"],
        curve=[{"epoch": 1, "loss": 1.5, "accuracy": 0.7}, {"epoch": 2, "loss": 0.9, "accuracy": 0.91}],
        extra=extra)
    store.finish_study(study.id)
    store.add_measurements([{"device_id": "cpu-test", "kind": "conv2d", "config": {"k": 3},
                             "batch_size": 1, "median_ms": 0.5 + i / 10, "iqr_ms": 0.01, "repeats": 5,
                             "device": {"type": "cpu"}} for i in range(3)])
    store.close()


def fill(url: str, *, digits_budget: int = 2, nb201_budget: int = 15) -> None:
    """Fill `url` with the test studies; returns None."""
    torch.set_num_threads(1)
    _digits(url, "random", "digits-random", digits_budget)
    _digits(url, "mcts", "digits-mcts", digits_budget)
    _nb201(url, nb201_budget)
    _handmade(url)


def doctor(src: str, dst: str | Path, study: str, command: str) -> None:
    """Copy the database and make `study` name os.system with `command` as its space (the attack)."""
    with closing(sqlite3.connect(src)) as a, closing(sqlite3.connect(dst)) as c:
        a.backup(c)  # a copy that includes what is still in the write-ahead log
        (attrs,) = c.execute("select user_attrs from studies where name = ?", (study,)).fetchone()
        attrs = {**json.loads(attrs or "{}"), "space_args": {"command": command}}
        c.execute("update studies set space_ref = 'os:system', user_attrs = ? where name = ?",
                  (json.dumps(attrs), study))
        c.commit()


if __name__ == "__main__":
    import sys
    import time

    t = time.perf_counter()
    fill(sys.argv[1])
    print(f"filled {sys.argv[1]} in {time.perf_counter() - t:.1f} s")
