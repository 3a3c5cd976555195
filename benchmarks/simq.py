"""SimQ-NAS on Fashion-MNIST, this CPU: joint (architecture + per-layer int8 policy) search vs the rest.

Four ways to a model, each measured for real (accuracy after quantization, latency on int8 kernels,
size of the weights as stored, int8 at one byte plus scales):
  joint       LINAS (predictor-driven NSGA-II) on the VGG space with one fp32/int8 decision per layer
  sequential  LINAS on the architecture alone (fp32), then its front quantized all-int8
  int8 / fp32 the largest architecture of the space, all-int8 and all-fp32 (SimQ-NAS's baselines)
Every method reads the same trained weights for the same architecture (one cache), so a
difference between fronts is the search's, not the training's. The searches use latency at
batch 1; every model on some method's front is then timed again at batches 1 and 32, interleaved
(thread CPU time, one thread), and the fronts, hypervolumes and ratios below are of those figures.

    PYTHONPATH=. .venv/bin/python benchmarks/simq.py            # ~20 min on 2 shared cores
    PYTHONPATH=. .venv/bin/python benchmarks/simq.py --quick    # ~3 min smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import search_spaces.vgg as vgg
from nas import space as S
from nas.evaluate import TrainConfig, TrainEvaluator
from nas.evaluate.quant_evaluator import QuantEvaluator, structural_arch
from nas.run import search
from nas.space import Architecture

OBJECTIVES = ["accuracy:max", "latency_ms:min", "size_mb:min"]
WIDTHS = ((8, 16), (16, 32), (32, 64))


class TrimmedEvaluator(TrainEvaluator):
    """Fashion-MNIST with smaller validation and test sets (each trial evaluates them twice)."""

    def __init__(self, n_val: int, n_test: int, **kw) -> None:
        super().__init__("fashion-mnist", **kw)
        self.n_val, self.n_test = n_val, n_test

    def splits(self):
        """Return the splits with the first n_val / n_test validation / test examples."""
        s = super().splits()
        return dataclasses.replace(s, x_val=s.x_val[: self.n_val], y_val=s.y_val[: self.n_val],
                                   x_test=s.x_test[: self.n_test], y_test=s.y_test[: self.n_test])


class MemoryCache:
    """Trained weights by structure id, shared by every evaluator of the benchmark."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, arch_id: str, key: str = "trained") -> bytes | None:
        """Return the weights, or None."""
        return self.data.get(f"{key}/{arch_id}")

    def put(self, arch_id: str, data: bytes, key: str = "trained") -> None:
        """Keep the weights."""
        self.data[f"{key}/{arch_id}"] = data


class SharedQuantEvaluator(QuantEvaluator):
    """A QuantEvaluator whose weight cache the search loop cannot replace (one per benchmark)."""

    shared: MemoryCache

    @property
    def weight_cache(self):  # noqa: D102
        return self.shared

    @weight_cache.setter
    def weight_cache(self, value) -> None:
        pass  # nas.run.search sets the study's store; keep the cache every method shares


def pareto(points: np.ndarray) -> np.ndarray:
    """Return the indices of the non-dominated rows (all columns minimised)."""
    keep = []
    for i, p in enumerate(points):
        dominated = np.any(np.all(points <= p, axis=1) & np.any(points < p, axis=1))
        if not dominated:
            keep.append(i)
    return np.array(keep, dtype=int)


def hypervolume(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Return the hypervolume of `points` normalised to [lo, hi] per objective, reference 1.1."""
    from pymoo.indicators.hv import HV

    scaled = (points - lo) / np.where(hi > lo, hi - lo, 1.0)
    return float(HV(ref_point=np.full(points.shape[1], 1.1))(scaled))


def run_studies(args, qspace: S.Space, base_space: S.Space, ev: QuantEvaluator,
                seq_ev: QuantEvaluator, db: str) -> tuple[dict[str, list[Architecture]], dict]:
    """Return each method's candidates (full architectures) and the joint trials' metrics."""
    linas = {"pop_size": 50, "generations": 40, "beta": 0.5}
    joint = search(qspace, evaluator=ev, searcher="linas", objectives=OBJECTIVES, storage=db,
                   budget=args.joint_budget, seed=args.seed, study="joint",
                   searcher_args={**linas, "n_init": args.n_init, "batch": args.batch})
    seq = search(base_space, evaluator=seq_ev, searcher="linas", objectives=OBJECTIVES,
                 storage=db, budget=args.seq_budget, seed=args.seed, study="sequential",
                 searcher_args={**linas, "n_init": args.n_init // 2, "batch": args.batch // 2})
    int8 = lambda d: "int8"  # noqa: E731
    seq_front = [Architecture(t.architecture) for t in seq.best()]
    largest = base_space.complete({}, lambda d: max(d.options))
    done = [t for t in joint.trials if t.metrics]
    known = {t.arch_id: {**t.metrics, "policy": t.extra["quant_policy"]} for t in done}
    return {
        "joint": [Architecture(t.architecture) for t in done],
        "sequential": [qspace.complete(a, int8) for a in seq_front],
        "int8": [qspace.complete(largest, int8)],
        "fp32": [qspace.complete(largest, lambda d: "fp32")],
    }, known


def measure_all(ev: QuantEvaluator, qspace: S.Space, methods, known: dict,
                seed: int) -> dict[str, dict]:
    """Return {arch id: metrics} of every candidate, evaluating those not yet measured."""
    out: dict[str, dict] = dict(known)
    for archs in methods.values():
        for a in archs:
            if a.id not in out:  # the sequential front's int8 versions and the baselines
                r = ev.evaluate(lambda a=a: qspace.build(a), a, seed=seed)
                out[a.id] = {**r.metrics, "policy": r.extra["quant_policy"]}
    return out


def retime(ev: SharedQuantEvaluator, qspace: S.Space, archs: list[Architecture],
           batch: int) -> dict[str, float]:
    """Return {arch id: median ms at `batch`} of the quantized models, timed interleaved."""
    from safetensors.torch import load

    from nas.compress.quantize import apply_policy
    from nas.hardware.timing import compare_interleaved

    splits = ev.base.splits()
    models = {}
    for a in archs:
        model = qspace.build(a)
        model.load_state_dict(load(ev.shared.get(structural_arch(a).id)))
        models[a.id] = apply_policy(model.eval(), qspace.quant_policy(a),
                                    example_input=splits.x_train[:1],
                                    calib=splits.x_train[: ev.calib_samples])
    timings = compare_interleaved(models, splits.input_shape, batch_size=batch, repeats=15,
                                  threads=1)
    return {k: t.median_ms for k, t in timings.items()}


def report(methods, metrics, lat: dict[int, dict[str, float]], baseline_acc: float) -> None:
    """Print the fronts, hypervolumes and the SimQ-NAS ratios at each batch size."""
    for batch, times in lat.items():
        rows = {m: np.array([[1 - metrics[a.id]["accuracy"], times[a.id], metrics[a.id]["size_mb"]]
                             for a in archs]) for m, archs in methods.items()}
        allp = np.vstack(list(rows.values()))
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        print(f"\n## batch {batch}: fronts (accuracy, latency_ms, size_mb) and hypervolume")
        print("| method | candidates | front | hypervolume | best accuracy | min latency ms | min size MB |")
        print("|---|---|---|---|---|---|---|")
        fronts = {}
        for m, pts in rows.items():
            f = pts[pareto(pts)]
            fronts[m] = f
            print(f"| {m} | {len(pts)} | {len(f)} | {hypervolume(f, lo, hi):.3f} | "
                  f"{1 - f[:, 0].min():.4f} | {f[:, 1].min():.3f} | {f[:, 2].min():.4f} |")
        dom = _dominance(fronts["joint"], fronts["sequential"])
        print(f"sequential front points dominated by (or equal to) a joint point: {dom}")
        base = rows["int8"][0]
        ok = [p for p in rows["joint"] if 1 - p[0] >= baseline_acc - 0.005]
        if ok:
            best = min(ok, key=lambda p: p[1])
            smallest = min(ok, key=lambda p: p[2])
            print(f"joint, within 0.5% of all-int8 largest ({baseline_acc:.4f}): fastest "
                  f"{base[1] / best[1]:.2f}x lower latency ({best[1]:.3f} vs {base[1]:.3f} ms, "
                  f"size {base[2] / best[2]:.2f}x); smallest {base[2] / smallest[2]:.2f}x smaller "
                  f"({smallest[2]:.4f} vs {base[2]:.4f} MB), latency {base[1] / smallest[1]:.2f}x")
        else:
            print(f"joint: no model within 0.5% of the all-int8 baseline ({baseline_acc:.4f})")


def _dominance(joint: np.ndarray, seq: np.ndarray) -> str:
    n = sum(bool(np.any(np.all(joint <= p, axis=1))) for p in seq)
    return f"{n}/{len(seq)}"


def main() -> None:
    """Run the searches and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-train", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--joint-budget", type=int, default=30)
    ap.add_argument("--seq-budget", type=int, default=14)
    ap.add_argument("--n-init", type=int, default=16)
    ap.add_argument("--batch", type=int, default=5)
    args = ap.parse_args()
    if args.quick:
        args.max_train, args.epochs, args.joint_budget, args.seq_budget = 1000, 1, 10, 6
        args.n_init, args.batch = 6, 4
    torch.set_num_threads(1)
    start = time.perf_counter()
    base_space = vgg.space(widths=WIDTHS)
    qspace = S.Space(base_space.root, base_space.input_shape,
                     quantization=S.per_layer(["fp32", "int8"]))
    train_ev = TrimmedEvaluator(1500, 1000, config=TrainConfig(epochs=args.epochs, batch_size=32,
                                                             lr=0.05),
                                max_train=args.max_train)
    cache = MemoryCache()
    ev = SharedQuantEvaluator(train_ev, policy_of=qspace.quant_policy)
    seq_ev = SharedQuantEvaluator(train_ev, policy_of=None)  # no precision decisions: fp32
    ev.shared = seq_ev.shared = cache
    with tempfile.TemporaryDirectory() as tmp:
        methods, known = run_studies(args, qspace, base_space, ev, seq_ev,
                                     str(Path(tmp) / "simq.db"))
    metrics = measure_all(ev, qspace, methods, known, args.seed)
    searched = time.perf_counter() - start
    fronts = _b1_fronts(methods, metrics)
    lat = {batch: retime(ev, qspace, fronts, batch) for batch in (1, 32)}
    methods = {m: [a for a in archs if a.id in lat[1]] for m, archs in methods.items()}
    baseline_acc = metrics[methods["int8"][0].id]["accuracy"]
    print(f"# SimQ-NAS on Fashion-MNIST (max_train={args.max_train}, epochs={args.epochs}, "
          f"seed={args.seed}); trained structures: {ev.n_trained + seq_ev.n_trained}; "
          f"search {searched:.0f} s, total {time.perf_counter() - start:.0f} s")
    for m, archs in methods.items():
        print(f"- {m}: " + "; ".join(
            f"acc {metrics[a.id]['accuracy']:.4f} lat1 {lat[1][a.id]:.3f} lat32 "
            f"{lat[32][a.id]:.2f} MB {metrics[a.id]['size_mb']:.4f} int8 "
            f"{sum(p == 'int8' for p in metrics[a.id]['policy'].values())}/"
            f"{len(metrics[a.id]['policy'])}" for a in archs))
    report(methods, metrics, lat, baseline_acc)


def _b1_fronts(methods, metrics) -> list[Architecture]:
    """Return every architecture on some method's front by (accuracy, latency b1, size)."""
    keep: dict[str, Architecture] = {}
    for archs in methods.values():
        pts = np.array([[1 - metrics[a.id]["accuracy"], metrics[a.id]["latency_ms"],
                         metrics[a.id]["size_mb"]] for a in archs])
        for i in pareto(pts):
            keep[archs[i].id] = archs[i]
    return list(keep.values())


if __name__ == "__main__":
    main()
