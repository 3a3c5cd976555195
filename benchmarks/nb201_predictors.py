"""Predictors on NAS-Bench-201: accuracy from encodings, and latency from a few measured cells.

    PYTHONPATH=. .venv/bin/python benchmarks/nb201_predictors.py [--table-dir DIR] [--seeds 3]

Prints markdown tables:
1. accuracy: each regressor of `predictors.accuracy` (and "auto", chosen by 5-fold CV) fitted on 50,
   100, 200 random cells' 200-epoch validation accuracy (cifar10-valid, cifar100, ImageNet16-120),
   scored by Kendall tau and Spearman rho on every other cell of the table; mean over seeds;
2. the encodings side by side (one-hot vs one-hot + DAG paths) on cifar10-valid at 100 points;
3. fit time (CPU seconds of this process, so other work on the machine does not inflate it);
4. latency: every `lat_ms_<device>` column predicted from 20, 50, 100 measured cells (Spearman rho and
   share within +-10% on the rest): a parameter-count-linear baseline (the table has no FLOPs; in
   this space params and FLOPs are proportional per stage), ridge on the one-hot encoding, and a
   linear model on op counts (how many edges carry each op, a sum of per-op costs);
5. how much of each latency column is a function of the cell at all: R² of 3-fold cross-validation
   over the whole table (one-hot ridge, one-hot + pairwise products ridge, op-count linear, gradient
   boosting). What no model explains is the measurement's own noise: the ceiling of any predictor,
   and of a searcher's latency model;
6. stretch, HELP's protocol: adapt to each of HELP's six meta-test devices from 20 samples using the
   nine meta-train devices' columns (ridge on their log latencies; ridge on their latencies plus
   op counts).

The table is third-party data read in place (never copied): ../shared/benchmarks/nb201 by default.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.model_selection import KFold, cross_val_score
from sklearn.preprocessing import PolynomialFeatures
from threadpoolctl import threadpool_limits

from nas.evaluate.nb201 import OPS, NB201Table, nb201_arch_from_str
from nas.predictors.accuracy import REGRESSORS, AccuracyPredictor
from nas.predictors.metrics import flops_baseline, latency_report
from nas.space.encoding import Encoder
from search_spaces import nb201

DATASETS = {"cifar10-valid": "val_acc_200ep_cifar10-valid_mean",
            "cifar100": "val_acc_200ep_cifar100_mean",
            "ImageNet16-120": "val_acc_200ep_ImageNet16-120_mean"}
KINDS = (*REGRESSORS, "auto")
ACC_SIZES = (50, 100, 200)
LAT_SIZES = (20, 50, 100)
# HELP (Lee et al., NeurIPS 2021), NAS-Bench-201 split: sources for meta-training, devices to adapt to.
HELP_SOURCES = ("1080ti_1", "1080ti_32", "1080ti_256", "silver_4114", "silver_4210r", "samsung_a50",
                "pixel3", "essential_ph_1", "samsung_s7")
HELP_TARGETS = ("titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss")
DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nb201"


def split(n_total: int, n_train: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (train rows, held-out rows): n_train random cells and all the others."""
    perm = np.random.default_rng(seed).permutation(n_total)
    return perm[:n_train], perm[n_train:]


def rank_scores(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """Return (Kendall tau, Spearman rho) from the project's metrics."""
    r = latency_report(pred, true)
    return r["kendall"], r["spearman"]


def accuracy_runs(table: NB201Table, X: np.ndarray, seeds: int, datasets: dict[str, str],
                  sizes: tuple[int, ...], kinds: tuple[str, ...]) -> dict:
    """Return {(dataset, n, kind): [(tau, rho, fit_cpu_s), ...]} over seeds."""
    out: dict = defaultdict(list)
    for name, column in datasets.items():
        y = table.column(column)
        for n in sizes:
            for seed in range(seeds):
                train, test = split(len(y), n, seed)
                for kind in kinds:
                    t0 = time.process_time()
                    p = AccuracyPredictor(kind, seed=seed).fit(X[train], y[train])
                    fit_s = time.process_time() - t0
                    tau, rho = rank_scores(p.predict(X[test])[0], y[test])
                    out[(name, n, kind)].append((tau, rho, fit_s))
            print(f"  ... {name} n={n} done", flush=True)
    return out


def fmt(values: list[float]) -> str:
    """Return 'mean' or 'mean±std' to three decimals."""
    return f"{np.mean(values):.3f}" if len(values) < 2 else f"{np.mean(values):.3f}±{np.std(values):.3f}"


def print_accuracy(runs: dict, datasets: list[str], sizes: tuple[int, ...], kinds: tuple[str, ...],
                   seeds: int) -> None:
    """Print Kendall tau and Spearman rho tables, one row per (dataset, n)."""
    for idx, metric in ((0, "Kendall tau"), (1, "Spearman rho")):
        print(f"\n### Accuracy predictors: {metric} on held-out cells (mean±std over {seeds} seeds)\n")
        print("| data set | n | " + " | ".join(kinds) + " |")
        print("|---|---|" + "---|" * len(kinds))
        for name in datasets:
            for n in sizes:
                cells = [fmt([r[idx] for r in runs[(name, n, k)]]) for k in kinds]
                best = max(kinds, key=lambda k: np.mean([r[idx] for r in runs[(name, n, k)]]))
                cells[kinds.index(best)] = f"**{cells[kinds.index(best)]}**"
                print(f"| {name} | {n} | " + " | ".join(cells) + " |")


def print_fit_times(runs: dict, datasets: list[str], sizes: tuple[int, ...],
                    kinds: tuple[str, ...]) -> None:
    """Print the mean CPU seconds of one fit per kind and training-set size."""
    print("\n### Fit time (CPU s of this process, mean over data sets and seeds)\n")
    print("| n | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for n in sizes:
        row = [np.mean([r[2] for name in datasets for r in runs[(name, n, k)]]) for k in kinds]
        print(f"| {n} | " + " | ".join(f"{t:.2f}" for t in row) + " |")


def print_encodings(table: NB201Table, X1: np.ndarray, runs: dict, seeds: int) -> None:
    """Print Kendall tau of one-hot vs one-hot+paths (from `runs`) on cifar10-valid at n=100."""
    c10 = {"cifar10-valid": DATASETS["cifar10-valid"]}
    enc = {"one-hot": accuracy_runs(table, X1, seeds, c10, (100,), REGRESSORS),
           "one-hot+paths": {k: v for k, v in runs.items() if k[0] == "cifar10-valid"}}
    print(f"\n### Encodings on cifar10-valid, n=100: Kendall tau (mean±std over {seeds} seeds)\n")
    print("| encoding | " + " | ".join(REGRESSORS) + " |")
    print("|---|" + "---|" * len(REGRESSORS))
    for e, r in enc.items():
        print(f"| {e} | " + " | ".join(fmt([x[0] for x in r[("cifar10-valid", 100, k)]])
                                     for k in REGRESSORS) + " |")


def op_counts(encoder: Encoder, X: np.ndarray) -> np.ndarray:
    """Return, per cell, how many edges carry each op (summed from the one-hot columns)."""
    names = encoder.column_names()
    M = np.zeros((len(names), len(OPS)))
    for j, name in enumerate(names):
        label, _, value = name.partition("=")
        if not label.startswith("path[") and value in OPS:
            M[j, OPS.index(value)] = 1.0
    return X @ M


def latency_methods(X1: np.ndarray, counts: np.ndarray, params: np.ndarray) -> dict[str, Callable]:
    """Return name -> fit_predict(train, test, y) for the latency table."""
    def base(tr, te, y):
        return flops_baseline(params[tr], y[tr], params[te])

    def ridge(tr, te, y):
        return AccuracyPredictor("ridge").fit(X1[tr], y[tr]).predict(X1[te])[0]

    def ops(tr, te, y):
        return LinearRegression().fit(counts[tr], y[tr]).predict(counts[te])

    return {"params-linear": base, "one-hot ridge": ridge, "op-count linear": ops}


def print_latency(table: NB201Table, methods: dict[str, Callable], seeds: int) -> None:
    """Print Spearman rho and within +-10% per device column, method and sample size."""
    devices = [c for c in table.columns if c.startswith("lat_ms_")]
    head = [f"{m} n={n}" for n in LAT_SIZES for m in methods]
    print(f"\n### Latency from n measured cells: Spearman rho / within ±10% on the rest "
          f"(mean over {seeds} seeds)\n")
    print("| column | " + " | ".join(head) + " |")
    print("|---|" + "---|" * len(head))
    avg: dict[str, list] = defaultdict(list)
    for col in devices:
        y, cells = table.column(col), []
        for n in LAT_SIZES:
            for m, fn in methods.items():
                reps = [latency_report(fn(tr, te, y), y[te])
                        for tr, te in (split(len(y), n, s) for s in range(seeds))]
                rho, w10 = np.mean([r["spearman"] for r in reps]), np.mean([r["within_10"] for r in reps])
                avg[f"{m} n={n}"].append((rho, w10))
                cells.append(f"{rho:.3f} / {w10:.2f}")
        print(f"| {col[7:]} | " + " | ".join(cells) + " |")
    print("| **mean** | " + " | ".join(
        f"{np.mean([a for a, _ in avg[h]]):.3f} / {np.mean([b for _, b in avg[h]]):.2f}" for h in head)
        + " |")


def print_latency_ceiling(table: NB201Table, X1: np.ndarray, counts: np.ndarray) -> None:
    """Print, per latency column, the R² of models fitted on two thirds of the table (3-fold CV)."""
    pairs = PolynomialFeatures(2, interaction_only=True, include_bias=False).fit_transform(X1)
    alphas = np.logspace(-2, 2, 5)
    models = {"one-hot ridge": (RidgeCV(alphas=alphas), X1),
              "one-hot + pairs ridge": (RidgeCV(alphas=alphas), pairs),
              "op-count linear": (LinearRegression(), counts),
              "gradient boosting": (HistGradientBoostingRegressor(max_iter=300, random_state=0), X1)}
    folds = KFold(3, shuffle=True, random_state=0)
    print("\n### How much of each latency column the cell explains: R² on held-out thirds of the "
          "table (3-fold CV)\n")
    print("| column | " + " | ".join(models) + " | noise sd (ms, best model) |")
    print("|---|" + "---|" * (len(models) + 1))
    for col in [c for c in table.columns if c.startswith("lat_ms_")]:
        y = table.column(col)
        r2 = [cross_val_score(m, X, y, cv=folds, scoring="r2").mean() for m, X in models.values()]
        print(f"| {col[7:]} | " + " | ".join(f"{r:.3f}" for r in r2)
              + f" | {y.std() * np.sqrt(max(0.0, 1.0 - max(r2))):.2f} |", flush=True)


def print_transfer(table: NB201Table, counts: np.ndarray, params: np.ndarray, seeds: int,
                   n: int = 20) -> None:
    """Print HELP's adaptation task: six new devices from n samples, nine source devices known."""
    src = np.log(np.stack([table.column(f"lat_ms_{d}") for d in HELP_SOURCES], axis=1))
    both = np.c_[np.exp(src), counts]  # in ms: a cell's latency is close to a sum of op costs
    alphas = np.logspace(-3, 2, 11)
    methods = {
        "params-linear": lambda tr, te, y: flops_baseline(params[tr], y[tr], params[te]),
        "op-count linear": lambda tr, te, y: LinearRegression().fit(counts[tr], y[tr]).predict(counts[te]),
        "source devices (log ridge)": lambda tr, te, y: np.exp(
            RidgeCV(alphas=alphas).fit(src[tr], np.log(y[tr])).predict(src[te])),
        "source devices + op counts (ridge, ms)": lambda tr, te, y:
            RidgeCV(alphas=alphas).fit(both[tr], y[tr]).predict(both[te]),
    }
    print(f"\n### Stretch (HELP protocol): a new device from {n} samples; Spearman rho / within ±10% "
          f"(mean over {seeds} seeds). HELP reports rho 0.93 on average\n")
    print("| device | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    avg: dict[str, list] = defaultdict(list)
    for dev in HELP_TARGETS:
        y, cells = table.column(f"lat_ms_{dev}"), []
        for m, fn in methods.items():
            reps = [latency_report(fn(tr, te, y), y[te])
                    for tr, te in (split(len(y), n, s) for s in range(seeds))]
            rho, w10 = np.mean([r["spearman"] for r in reps]), np.mean([r["within_10"] for r in reps])
            avg[m].append((rho, w10))
            cells.append(f"{rho:.3f} / {w10:.2f}")
        print(f"| {dev} | " + " | ".join(cells) + " |")
    print("| **mean** | " + " | ".join(
        f"{np.mean([a for a, _ in v]):.3f} / {np.mean([b for _, b in v]):.2f}" for v in avg.values())
        + " |")


def main(argv: list[str] | None = None) -> None:
    """Run every table and print it (markdown)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table-dir", default=str(DEFAULT_TABLE), help="folder of nb201_combined.csv.gz")
    ap.add_argument("--seeds", type=int, default=3, help="seeds (random training sets) per setting")
    ap.add_argument("--skip-accuracy", action="store_true", help="only the latency tables")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    started = time.perf_counter()
    table = NB201Table.load(args.table_dir)
    archs = [nb201_arch_from_str(s) for s in table.arch_strs]
    space = nb201.space()
    onehot = Encoder(space)
    X1 = onehot.transform(archs).astype(np.float64)
    X2 = Encoder(space, features="onehot+paths").transform(archs).astype(np.float64)
    print(f"NB201 table: {len(table)} cells; one-hot {X1.shape[1]} columns, one-hot+paths "
          f"{X2.shape[1]}; {args.seeds} seeds", flush=True)
    with threadpool_limits(1):  # the predictors do this too; it keeps the baselines comparable
        if not args.skip_accuracy:
            runs = accuracy_runs(table, X2, args.seeds, DATASETS, ACC_SIZES, KINDS)
            print_accuracy(runs, list(DATASETS), ACC_SIZES, KINDS, args.seeds)
            print_fit_times(runs, list(DATASETS), ACC_SIZES, KINDS)
            print_encodings(table, X1, runs, args.seeds)
        counts = op_counts(onehot, X1)
        params = table.column("params_M_cifar10-valid")
        print_latency(table, latency_methods(X1, counts, params), max(args.seeds, 5))
        print_latency_ceiling(table, X1, counts)
        print_transfer(table, counts, params, max(args.seeds, 5))
    print(f"\n(wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
