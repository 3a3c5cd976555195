"""Behaviour pins: digests of every searcher's first asks on NAS-Bench-201 and of the latency
predictor's outputs on a fixed set of models.

A refactor that must not change behaviour is checked by running this before and after it and
comparing the tables (or `--save FILE` before and `--check FILE` after):

    python benchmarks/behaviour_pins.py --save /tmp/pins.json      # on the old commit
    python benchmarks/behaviour_pins.py --check /tmp/pins.json     # on the new one

Searchers are asked 45 times (one objective: validation accuracy on CIFAR-10; two: that and
`lat_ms_pixel3`) and told the table's values; the digest covers the ids of every proposal in order.
The predictor's digest covers its float and int8 predictions, at batch 1 and 32, for sampled
architectures of the built-in spaces, as `repr` of each float (so any change shows).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.evaluate.factory import nb201_dir  # noqa: E402
from nas.evaluate.nb201 import NB201Table, nb201_arch_str  # noqa: E402
from nas.search import make_searcher  # noqa: E402

ASKS = 45
VAL, LAT = "val_acc_200ep_cifar10-valid_mean", "lat_ms_pixel3"
SINGLE = [
    ("random", {}), ("evolution", {}), ("mcts", {}), ("mcts", {"rollout": "random"}),
    ("mcts", {"binarize": True}), ("smbo", {}), ("smbo", {"acquisition": "ucb"}),
    ("smbo", {"surrogate": "predictor:ridge"}), ("optuna:tpe", {}), ("linas", {}),
]
TWO = [
    ("random", {}), ("evolution", {}), ("mcts", {}), ("smbo", {}), ("smbo", {"mo": "hvi"}),
    ("nsga2", {}), ("linas", {}), ("optuna:tpe", {}),
]


def digest(items: list[str]) -> str:
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:16]


def searcher_pins(seed: int) -> dict[str, str]:
    from search_spaces.nb201 import space as nb201_space

    space = nb201_space()
    table = NB201Table.load(nb201_dir())
    val, lat = table.column(VAL), table.column(LAT)
    pins = {}
    for objectives, runs in ((["accuracy:max"], SINGLE), (["accuracy:max", "latency_ms:min"], TWO)):
        for name, settings in runs:
            s = make_searcher(name, space, objectives, seed=seed, **settings)
            ids = []
            for _ in range(ASKS):
                arch = s.ask()
                i = table.index_of[nb201_arch_str(arch)]
                s.tell(arch, {"accuracy": float(val[i]), "latency_ms": float(lat[i])})
                ids.append(arch.id)
            key = f"{name}{json.dumps(settings, sort_keys=True) if settings else ''} x{len(objectives)}"
            pins[key] = digest(ids)
            print(f"{key:<48} {pins[key]}", flush=True)
    return pins


def predictor_pins() -> dict[str, str]:
    import importlib

    from nas.compress.quantize import quantizable_layers
    from nas.hardware.profile import SHIPPED_PROFILES_DIR
    from nas.predictors import LatencyPredictor

    predictor = LatencyPredictor.load(next(SHIPPED_PROFILES_DIR.glob("cpu-*.json")))
    pins = {}
    for name in ("convnet", "mobilenet", "resnet", "vgg", "vit"):
        space = importlib.import_module(f"search_spaces.{name}").space()
        values = []
        for k in range(6):
            arch = space.sample(k)
            model = space.build(arch)
            int8 = {layer: "int8" for layer in quantizable_layers(model)}
            for batch in (1, 32):
                for policy in (None, int8):
                    values.append(repr(predictor.predict(model, space.input_shape, batch_size=batch,
                                                         policy=policy)))
        pins[f"latency {name}"] = digest(values)
        print(f"{'latency ' + name:<48} {pins['latency ' + name]}", flush=True)
    return pins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--check", type=Path)
    args = parser.parse_args()
    pins = {**searcher_pins(args.seed), **predictor_pins()}
    if args.save:
        args.save.write_text(json.dumps(pins, indent=1))
    if args.check:
        old = json.loads(args.check.read_text())
        changed = [k for k in old if pins.get(k) != old[k]]
        note = f"; changed: {changed}" if changed else ""
        print(f"{len(old) - len(changed)} of {len(old)} pins unchanged{note}")
        sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
