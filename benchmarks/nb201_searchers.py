"""NAS-Bench-201 benchmark of the searchers (the table in docs/searchers.md).

Protocol (shared/benchmarks/nb201/README.md): a searcher sees validation accuracy only; a run's
result is the test accuracy of its best-by-validation architecture after `budget` distinct queries;
mean +- std over seeds. Multi-objective: validation accuracy vs a latency column; the front found
(by validation accuracy and latency) is scored by the hypervolume of (test error, latency) over that
of the table's true front, reference point at the true front's nadir + 10% of its range.

    python benchmarks/nb201_searchers.py --seeds 30 --budgets 50,100,300 \
        --datasets cifar10,cifar100,ImageNet16-120 --searchers random,mcts,smbo,evolution,tpe
    python benchmarks/nb201_searchers.py --mo pixel3,raspi4 --budgets 100 --seeds 10

`tpe` is the peer: Optuna's TPESampler used directly on six categorical parameters (repeated
proposals are told their known value and cost no budget). Other names go through
`nas.search.make_searcher` (`optuna:tpe` is Optuna through our wrapper). Settings: `--arg mcts.c=1`.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# One BLAS thread: the machine is shared, and timings are per ask/tell, not per core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.evaluate.nb201 import EDGES, OPS, NB201Table, nb201_arch_str  # noqa: E402
from nas.search import make_searcher  # noqa: E402
from nas.space import Space  # noqa: E402

TABLE_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nb201"
COLUMNS = {
    "cifar10": ("val_acc_200ep_cifar10-valid_mean", "test_acc_200ep_cifar10"),
    "cifar100": ("val_acc_200ep_cifar100_mean", "test_acc_200ep_cifar100"),
    "ImageNet16-120": ("val_acc_200ep_ImageNet16-120_mean", "test_acc_200ep_ImageNet16-120"),
}


def nb201_space() -> Space:
    """Return the NAS-Bench-201 cell space: the project's if present, else an equivalent DAG."""
    try:
        from search_spaces.nb201 import space

        return space()
    except ImportError:
        pass
    from nas import space as S

    def ops() -> dict:
        return {"none": S.zero(), "skip_connect": S.identity(),
                "nor_conv_1x1": S.sequential(S.relu(), S.conv2d(16, 1), S.batch_norm()),
                "nor_conv_3x3": S.sequential(S.relu(), S.conv2d(16, 3), S.batch_norm()),
                "avg_pool_3x3": S.avg_pool2d(3, 1, 1)}

    @S.graph
    def cell(x0):
        x1 = S.choice("1<-0", ops())(x0)
        x2 = S.choice("2<-0", ops())(x0) + S.choice("2<-1", ops())(x1)
        return S.choice("3<-0", ops())(x0) + S.choice("3<-1", ops())(x1) + S.choice("3<-2", ops())(x2)

    body = S.sequential(S.conv2d(16, 3), cell, S.global_avg_pool(), S.linear(10))
    return S.Space(body, input_shape=(3, 32, 32), name="nb201")


class Bench:
    """The table's columns as arrays, and a fast architecture -> row lookup."""

    def __init__(self, table_dir: Path) -> None:
        self.table = NB201Table.load(table_dir)
        self._rows: dict[str, int] = {}

    def row(self, arch) -> int:
        i = self._rows.get(arch.id)
        if i is None:
            i = self._rows[arch.id] = self.table.index_of[nb201_arch_str(arch)]
        return i

    def col(self, name: str) -> np.ndarray:
        return self.table.column(name)


# -- one run -----------------------------------------------------------------------------------
def run_searcher(name: str, space: Space, bench: Bench, metrics: dict[str, str], objectives: list[str],
                 budget: int, seed: int, settings: dict) -> tuple[list[int], float]:
    """Return the rows queried (distinct, in order) and the mean seconds per ask+tell."""
    cols = {m: bench.col(c) for m, c in metrics.items()}
    if name == "tpe":
        return run_tpe_peer(space, bench, cols, objectives, budget, seed)
    searcher = make_searcher(name, space, objectives, seed=seed, **settings)
    rows: list[int] = []
    seen: set[int] = set()
    spent = 0.0
    for _ in range(budget * 20):
        if len(rows) >= budget:
            break
        t0 = time.perf_counter()
        arch = searcher.ask()
        spent += time.perf_counter() - t0
        i = bench.row(arch)
        result = {m: float(c[i]) for m, c in cols.items()}
        t0 = time.perf_counter()
        searcher.tell(arch, result)
        spent += time.perf_counter() - t0
        if i not in seen:
            seen.add(i)
            rows.append(i)
    return rows, spent / max(len(rows), 1)


def run_tpe_peer(space: Space, bench: Bench, cols: dict[str, np.ndarray], objectives: list[str],
                 budget: int, seed: int) -> tuple[list[int], float]:
    """Return the rows queried by Optuna's TPE on six categorical parameters, used directly."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [o.split(":")[0] for o in objectives]
    dirs = ["maximize" if o.endswith(":max") else "minimize" for o in objectives]
    study = optuna.create_study(directions=dirs, sampler=optuna.samplers.TPESampler(seed=seed))
    label = {e: next(k for k in space.decisions() if k.rsplit("/", 1)[-1] == e) for e in EDGES}
    rows: list[int] = []
    seen: set[int] = set()
    spent = 0.0
    for _ in range(budget * 20):
        if len(rows) >= budget:
            break
        t0 = time.perf_counter()
        trial = study.ask()
        arch = {label[e]: trial.suggest_categorical(e, list(OPS)) for e in EDGES}
        spent += time.perf_counter() - t0
        i = bench.table.index_of[nb201_arch_str(arch)]
        t0 = time.perf_counter()
        study.tell(trial, [float(cols[n][i]) for n in names])
        spent += time.perf_counter() - t0
        if i not in seen:
            seen.add(i)
            rows.append(i)
    return rows, spent / max(len(rows), 1)


# -- scoring -----------------------------------------------------------------------------------
def best_test(rows: list[int], budget: int, val: np.ndarray, test: np.ndarray) -> float:
    """Return the test accuracy of the best-by-validation row among the first `budget`."""
    first = np.asarray(rows[:budget])
    return float(test[first[np.argmax(val[first])]])


def front_2d(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the indices of the points non-dominated when minimising both x and y."""
    order = np.lexsort((y, x))
    keep, best_y = [], math.inf
    for i in order:
        if y[i] < best_y:
            keep.append(i)
            best_y = y[i]
    return np.asarray(keep, dtype=int)


def hypervolume_2d(x: np.ndarray, y: np.ndarray, ref: tuple[float, float]) -> float:
    """Return the area dominated by the points (both minimised) and bounded by `ref`."""
    idx = front_2d(x, y)
    px, py = x[idx], y[idx]
    inside = (px < ref[0]) & (py < ref[1])
    px, py = px[inside], py[inside]
    edges = np.append(px[1:], ref[0])
    return float(np.sum((edges - px) * (ref[1] - py)))


class MOScore:
    """Hypervolume ratio of the README's protocol for one latency column and data set."""

    def __init__(self, val: np.ndarray, test: np.ndarray, lat: np.ndarray) -> None:
        self.val, self.err, self.lat = val, 100.0 - test, lat
        idx = front_2d(self.err, lat)
        lo = np.array([self.err[idx].min(), lat[idx].min()])
        hi = np.array([self.err[idx].max(), lat[idx].max()])
        self.ref = tuple(hi + 0.1 * (hi - lo))
        self.true_hv = hypervolume_2d(self.err[idx], lat[idx], self.ref)

    def ratio(self, rows: list[int], budget: int) -> float:
        r = np.asarray(rows[:budget])
        found = r[front_2d(-self.val[r], self.lat[r])]  # reported: by validation accuracy
        return hypervolume_2d(self.err[found], self.lat[found], self.ref) / self.true_hv


def _random_trials(space: Space, n_trials: int) -> list:
    """Return `n_trials` distinct random architectures (seed 0)."""
    rng = np.random.default_rng(0)
    archs = {}
    while len(archs) < n_trials:
        a = space.sample(int(rng.integers(2**31)))
        archs[a.id] = a
    return list(archs.values())


def overhead(name: str, space: Space, bench: Bench, n_trials: int, settings: dict,
             repeats: int = 20) -> float:
    """Return the mean CPU seconds per ask+tell of a searcher restored from `n_trials` random trials."""
    return overhead_detail(name, space, bench, n_trials, settings, repeats)[0]


def overhead_detail(name: str, space: Space, bench: Bench, n_trials: int, settings: dict,
                    repeats: int = 20) -> tuple[float, float]:
    """Return CPU seconds per ask+tell after `n_trials` random trials, and sampler calls per ask.

    Sampler calls per ask: Optuna study.ask() calls (a repeat of a finished cell is re-asked), 1
    for the other searchers. `tpe` is Optuna's TPE used directly, repeats re-asked as in the peer.
    """
    from nas.search import Observation

    val = bench.col(COLUMNS["cifar10"][0])
    archs = _random_trials(space, n_trials)
    if name == "tpe":
        return _overhead_tpe_direct(space, bench, archs, val, repeats)
    searcher = make_searcher(name, space, ["accuracy:max"], seed=0, **settings)
    searcher.restore([Observation(a, {"accuracy": float(val[bench.row(a)])}) for a in archs])
    study = getattr(searcher, "_study", None)
    before = len(study.trials) if study is not None else 0
    # CPU time of this process: on a shared machine, wall time mostly measures the neighbours
    t0 = time.process_time()
    for _ in range(repeats):
        a = searcher.ask()
        searcher.tell(a, {"accuracy": float(val[bench.row(a)])})
    spent = (time.process_time() - t0) / repeats
    return spent, (len(study.trials) - before) / repeats if study is not None else 1.0


def _overhead_tpe_direct(space: Space, bench: Bench, archs: list, val: np.ndarray,
                         repeats: int) -> tuple[float, float]:
    """Return CPU seconds per new cell and TPE samples per new cell of Optuna's TPE used directly."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    label = {e: next(k for k in space.decisions() if k.rsplit("/", 1)[-1] == e) for e in EDGES}
    dist = {e: CategoricalDistribution(list(OPS)) for e in EDGES}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    seen = set()
    for a in archs:
        i = bench.row(a)
        seen.add(i)
        params = {e: a[label[e]] for e in EDGES}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dist,
                                                  value=float(val[i])))
    before, new = len(study.trials), 0
    t0 = time.process_time()
    while new < repeats:
        trial = study.ask()
        arch = {label[e]: trial.suggest_categorical(e, list(OPS)) for e in EDGES}
        i = bench.table.index_of[nb201_arch_str(arch)]
        study.tell(trial, float(val[i]))
        new += i not in seen
        seen.add(i)
    return (time.process_time() - t0) / repeats, (len(study.trials) - before) / repeats


# -- main ----------------------------------------------------------------------------------------
def _settings(args: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for a in args:
        key, _, value = a.partition("=")
        name, _, k = key.rpartition(".")
        try:
            v: object = float(value) if "." in value or "e" in value else int(value)
        except ValueError:
            v = value
        out.setdefault(name, {})[k] = v
    return out


def _line(label: str, values: list[float], fmt: str = "{:.2f}") -> str:
    sd = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{label} {fmt.format(statistics.mean(values))} ± {fmt.format(sd)}"


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run every (searcher, data set, seed), and print the tables."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--seed-offset", type=int, default=0)
    p.add_argument("--budgets", default="50,100,300")
    p.add_argument("--datasets", default="cifar10,cifar100,ImageNet16-120")
    p.add_argument("--searchers", default="random,mcts,smbo,evolution,nsga2,linas,optuna:tpe,tpe")
    p.add_argument("--mo", default="", help="latency devices for the multi-objective table")
    p.add_argument("--arg", action="append", default=[], help="searcher.key=value")
    p.add_argument("--table-dir", default=str(TABLE_DIR))
    p.add_argument("--hit", type=int, default=150, help="budget for the 'optimum reached' rate")
    p.add_argument("--overhead", type=int, default=0,
                   help="instead: ms per ask+tell after restoring this many trials")
    p.add_argument("--overhead-repeats", type=int, default=20,
                   help="asks timed after the restore (100 spans one refit period of smbo/linas)")
    a = p.parse_args(argv)
    budgets = [int(b) for b in a.budgets.split(",")]
    settings = _settings(a.arg)
    bench, space = Bench(Path(a.table_dir)), nb201_space()
    if a.overhead:
        print(f"| searcher | CPU ms per ask+tell after {a.overhead} trials, mean of "
              f"{a.overhead_repeats} | sampler calls per ask | ms per sampler call |")
        for name in a.searchers.split(","):
            sec, calls = overhead_detail(name, space, bench, a.overhead, settings.get(name, {}),
                                         a.overhead_repeats)
            print(f"| {name} | {1e3 * sec:.1f} | {calls:.1f} | {1e3 * sec / calls:.1f} |", flush=True)
        return
    seeds = range(a.seed_offset, a.seed_offset + a.seeds)
    searchers = a.searchers.split(",")
    for ds in a.datasets.split(","):
        val, test = bench.col(COLUMNS[ds][0]), bench.col(COLUMNS[ds][1])
        devices = [d for d in a.mo.split(",") if d]
        tasks = [(dev, {"accuracy": COLUMNS[ds][0], f"lat_ms_{dev}": f"lat_ms_{dev}"},
                  ["accuracy:max", f"lat_ms_{dev}:min"]) for dev in devices] or [
                     (None, {"accuracy": COLUMNS[ds][0]}, ["accuracy:max"])]
        for dev, metrics, objectives in tasks:
            score: Callable[[list[int], int], float]
            if dev is None:
                score = functools.partial(best_test, val=val, test=test)
                title = f"{ds}: test accuracy (%) of the best-by-validation architecture"
            else:
                score = MOScore(val, test, bench.col(f"lat_ms_{dev}")).ratio
                title = f"{ds} x lat_ms_{dev}: hypervolume ratio"
            print(f"\n## {title}, {a.seeds} seeds (optimum {test.max():.2f})", flush=True)
            print("| searcher | " + " | ".join(f"{b} queries" for b in budgets)
                  + " | ms per ask+tell |" + (f" optimum by {a.hit} |" if dev is None else ""))
            for name in searchers:
                results = {b: [] for b in budgets}
                times, hits = [], 0
                for seed in seeds:
                    rows, t = run_searcher(name, space, bench, metrics, objectives,
                                           max(budgets + [a.hit if dev is None else 0]), seed,
                                           settings.get(name, {}))
                    for b in budgets:
                        results[b].append(score(rows, b))
                    times.append(t * 1e3)
                    hits += dev is None and best_test(rows, a.hit, val, test) >= test.max() - 1e-9
                fmt = "{:.2f}" if dev is None else "{:.3f}"
                cells = [_line("", results[b], fmt).strip() for b in budgets]
                extra = f" {hits}/{a.seeds} |" if dev is None else ""
                print(f"| {name} | " + " | ".join(cells)
                      + f" | {statistics.mean(times):.1f} |" + extra, flush=True)


if __name__ == "__main__":
    main()
