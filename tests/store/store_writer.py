"""A separate process writing trials to one study, for the concurrency test.

usage: python store_writer.py URL WORKER N READY_FILE GO_FILE
Opens the store (racing the other writer to create the schema of a new database), creates or
loads study "race", waits at the barrier, then starts and finishes N trials.
"""

import os
import sys
import time
from pathlib import Path

from nas.store import Store, StudySpec, TrialState


def main(url: str, worker: str, n: int, ready: Path, go: Path) -> None:
    ready.touch()
    deadline = time.monotonic() + 120
    while not go.exists():  # start together, so the writes really overlap
        if time.monotonic() > deadline:
            sys.exit("no go signal within 120 s")
        time.sleep(0.005)
    store = Store.open(url)
    spec = StudySpec("race", "m:space", "fp", {}, "random", {}, ["accuracy:max"], [], {}, 0, 2 * n)
    study = store.create_study(spec, load_if_exists=True)
    for i in range(n):
        arch_id = f"{worker}-{i}"
        trial = store.start_trial(study.id, arch_id, f'{{"i": {i}}}', worker=worker,
                                  host=str(os.getpid()))
        store.finish_trial(trial.id, TrialState.COMPLETE, metrics={"i": i},
                           curve=[{"loss": 1.0 / (i + 1)}, {"loss": 0.5 / (i + 1)}])
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
