"""Per-trial overhead of the search loop and the store, outside evaluation (issue 3).

Runs random search for N trials with the NAS-Bench-201 table as the evaluator (a lookup of a few
microseconds), so nearly all the time is the loop itself: the searcher, the two store transactions
per trial and the bookkeeping. Prints a table: total, evaluation, overhead per trial, per backend.

    python benchmarks/loop_overhead.py --trials 1000 [--postgres URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from nas.evaluate import make_evaluator
from nas.run import search
from search_spaces import nb201


class TimedEvaluator:
    """Wraps an evaluator and adds up the time spent inside it."""

    def __init__(self, inner) -> None:
        self.inner, self.seconds, self.name = inner, 0.0, inner.name

    def describe(self) -> dict:
        return self.inner.describe()

    def evaluate(self, build, arch, *, seed, on_epoch=None):
        start = time.perf_counter()
        try:
            return self.inner.evaluate(build, arch, seed=seed, on_epoch=on_epoch)
        finally:
            self.seconds += time.perf_counter() - start


def run(url: str, trials: int) -> tuple[float, float]:
    """Return (total seconds, seconds inside the evaluator) for one search of `trials` trials."""
    evaluator = TimedEvaluator(make_evaluator("nb201-cifar10"))
    space = nb201.space(cells_per_stage=1)
    start = time.perf_counter()
    result = search(space, evaluator=evaluator, budget=trials, storage=url, study="overhead", seed=0)
    total = time.perf_counter() - start
    assert len(result.trials) == trials
    return total, evaluator.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--postgres", help="a PostgreSQL URL to measure as well")
    args = parser.parse_args()
    make_evaluator("nb201-cifar10").evaluate(None, {k: "none" for k in nb201.space().decisions()}, seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("sqlite (file, WAL)", f"sqlite:///{Path(tmp) / 'overhead.db'}")]
        if args.postgres:
            backends.append(("postgresql", args.postgres))
        for name, url in backends:
            total, inside = run(url, args.trials)
            rows.append((name, args.trials, total, inside, (total - inside) / args.trials * 1000))
    print(f"{'backend':<20} {'trials':>7} {'total s':>9} {'in evaluator s':>15} {'overhead ms/trial':>18}")
    for name, n, total, inside, per in rows:
        print(f"{name:<20} {n:>7} {total:>9.2f} {inside:>15.3f} {per:>18.2f}")


if __name__ == "__main__":
    main()
