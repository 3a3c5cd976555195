"""CPU time of the quick `nas` commands against importing torch, side by side.

    python benchmarks/cli_startup.py --repeats 5

`nas --help` imports neither torch nor SQLAlchemy nor numpy; `nas studies`, `nas trials` and
`nas best` read the store and print, importing no torch (the search, export and profiling commands
load it when they run): SQLAlchemy's import is most of what they cost. Each command runs in a new
process; the figure is the median CPU time (user + system) of its process over the repeats, so a
busy machine stretches wall time but hardly this.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from nas.store import Store, StudySpec, TrialState

NAS = str(Path(sys.executable).with_name("nas"))


def cpu_seconds(cmd: list[str]) -> float:
    """Return the CPU time (user + system) that running `cmd` to its end cost its process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def small_study(db: str, trials: int = 50) -> None:
    """Write a study of `trials` finished trials, as a search would (no torch needed)."""
    with Store.open(db) as store:
        study = store.create_study(StudySpec(
            name="bench", space_ref="", space_fingerprint="fp", space_description={}, searcher="random",
            searcher_settings={}, objectives=["accuracy:max"], constraints=[], evaluator={}, seed=0,
            budget=trials))
        for i in range(trials):
            t = store.start_trial(study.id, f"a{i}", f'{{"width": {i}}}', host="h", device="cpu", worker="w")
            store.finish_trial(t.id, TrialState.COMPLETE, metrics={"accuracy": i / trials, "params": 1e5 + i})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        small_study(db)
        commands = {
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            'python -c "import optuna, torch"': [sys.executable, "-c", "import optuna, torch"],
            # the floor of a command that reads the store: SQLAlchemy's own import
            'python -c "import sqlalchemy.orm"': [sys.executable, "-c", "import sqlalchemy.orm"],
            "nas --help": [NAS, "--help"],
            "nas studies": [NAS, "studies", "--db", db],
            "nas trials bench": [NAS, "trials", "bench", "--db", db],
            "nas best bench": [NAS, "best", "bench", "--db", db],
        }
        times = {name: statistics.median(cpu_seconds(cmd) for _ in range(args.repeats))
                 for name, cmd in commands.items()}
    torch_s = times['python -c "import torch"']
    print(f"| command | CPU s (median of {args.repeats}) | x import torch |")
    print("|---|---|---|")
    for name, s in times.items():
        print(f"| `{name}` | {s:.2f} | {s / torch_s:.2f} |")


if __name__ == "__main__":
    main()
