"""How long each dashboard page takes on a database of 10,000 trials (issue 6: "a couple of seconds").

    PYTHONPATH=. .venv/bin/python benchmarks/dashboard_load.py [--trials 10000] [--repeats 3]

Writes a synthetic SQLite database (two NAS-Bench-201-space studies of N trials each, two
objectives, 2% failed trials, a learning curve on the first 100 trials of the first), then runs
every page with Streamlit's AppTest, in process, and prints per-page times: "cold" right after
clearing Streamlit's caches (the first visit after a study changes) and "warm" (the next rerun,
what a user clicking around sees). Studies are created through the Store; the trials are
bulk-inserted into the store's tables in one transaction, which is only there to make a
10,000-trial database in seconds rather than minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa
import streamlit as st
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.references import load_space  # noqa: E402
from nas.space import Architecture  # noqa: E402
from nas.store import Store, StudySpec  # noqa: E402
from nas.store.schema import Architecture as ArchRow  # noqa: E402
from nas.store.schema import Curve, Trial  # noqa: E402

SPACE = "search_spaces.nb201:space"
OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
EDGES = ["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]


def _rows(study_id: int, n: int, seed: int) -> tuple[list[dict], dict[str, str]]:
    """Return trial rows and {arch_id: arch_json} for n synthetic trials."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    trials, archs = [], {}
    for i in range(n):
        arch = Architecture({e: OPS[int(k)] for e, k in zip(EDGES, rng.integers(0, 5, 6), strict=True)})
        archs[arch.id] = arch.to_json()
        convs = sum(v.startswith("nor_conv") for v in arch.values())
        failed = rng.random() < 0.02
        metrics = {} if failed else {
            "accuracy": float(70 + 3 * convs + rng.normal(0, 2)), "params": float(1e5 * (1 + convs)),
            "latency_ms": float(5 + 2 * convs + rng.normal(0, 0.5)), "flops": float(1e7 * (1 + convs)),
            "latency_ms_measured": float(5 + 2 * convs), "latency_ms_predicted": float(5.2 + 2 * convs)}
        start = t0 + timedelta(seconds=10 * i)
        trials.append({
            "study_id": study_id, "number": i, "arch_id": arch.id,
            "state": "FAILED" if failed else "COMPLETE", "metrics": metrics,
            "predicted": [] if failed else ["latency_ms_predicted"],
            "error": "RuntimeError: synthetic failure" if failed else None, "started_at": start,
            "finished_at": start + timedelta(seconds=9), "duration_s": 9.0, "worker": "w0",
            "host": "bench", "device": "cpu", "extra": {}})
    return trials, archs


def build(url: str, n: int) -> None:
    """Write two studies of n synthetic trials each to `url`; returns None."""
    space = load_space(SPACE, {"num_classes": 10})
    store = Store.open(url)
    engine = sa.create_engine(store.url)  # the normalised URL (a path becomes sqlite:///...)
    for k, searcher in enumerate(["random", "mcts"]):
        study = store.create_study(StudySpec(
            name=f"bench-{searcher}", space_ref=SPACE, space_fingerprint=space.fingerprint,
            space_description=space.describe(), searcher=searcher, searcher_settings={},
            objectives=["accuracy:max", "latency_ms:min"], constraints=[],
            evaluator={"dataset": "synthetic"}, seed=k, budget=n,
            user_attrs={"space_args": {"num_classes": 10}}))
        trials, archs = _rows(study.id, n, seed=k)
        with Session(engine) as s, s.begin():
            known = set(s.scalars(sa.select(ArchRow.arch_id)))
            s.execute(sa.insert(ArchRow), [
                {"space_fingerprint": space.fingerprint, "arch_id": a, "arch_json": j}
                for a, j in archs.items() if a not in known])
            s.execute(sa.insert(Trial), trials)
            if k == 0:
                ids = s.scalars(sa.select(Trial.id).where(Trial.study_id == study.id)
                                .order_by(Trial.number).limit(100)).all()
                s.execute(sa.insert(Curve), [{"trial_id": t, "epoch": e, "values": {
                    "loss": 2.0 / e, "accuracy": 1 - 1.0 / (e + 1)}} for t in ids for e in range(1, 11)])
        store.finish_study(study.id)
    store.close()


PAGES = [  # (label, page, query parameters, widget changes after the first run)
    ("studies", "views/studies.py", {}, None),
    ("study", "views/study.py", {"study": "bench-random"}, None),
    ("architecture", "views/architecture.py", {"study": "bench-random", "trial": "1234"}, None),
    ("compare (best so far)", "views/compare.py", {}, None),
    ("compare (hypervolume)", "views/compare.py", {}, ("cmp_mode", "hypervolume")),
    ("hardware", "views/hardware.py", {}, None),
]


def time_page(db: str, page: str, query: dict, change: tuple | None, cold: bool) -> float:
    """Return the seconds one run of `page` takes (after clearing the caches when `cold`)."""
    sys.argv = ["streamlit", "--", "--db", db]
    at = AppTest.from_file(str(ROOT / "nas" / "dashboard" / "app.py"), default_timeout=300)
    at.switch_page(page)
    for k, v in query.items():
        at.query_params[k] = v
    if change is not None:  # get to the widget first, then time the run that uses it
        at.run()
        at.radio(key=change[0]).set_value(change[1])
    if cold:
        st.cache_data.clear()
    t = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t
    if at.exception:
        raise RuntimeError(f"{page}: {at.exception[0].value}")
    return elapsed


def main() -> None:
    """Build the database, time every page, print a table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--db", help="reuse (or keep) the database at this path")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "bench.db")
        if not Path(db).exists():
            t = time.perf_counter()
            build(db, args.trials)
            print(f"database: 2 studies x {args.trials} trials, written in {time.perf_counter() - t:.1f} s")
        time_page(db, "views/architecture.py", PAGES[2][2], None, cold=False)  # imports, space build
        print(f"{'page':24} {'cold median [s]':>16} {'warm median [s]':>16}   (of {args.repeats})")
        for name, page, query, change in PAGES:
            # Interleaved cold and warm runs, so a noisy neighbour hits both alike.
            cold, warm = [], []
            for _ in range(args.repeats):
                cold.append(time_page(db, page, query, change, cold=True))
                warm.append(time_page(db, page, query, change, cold=False))
            print(f"{name:24} {statistics.median(cold):16.2f} {statistics.median(warm):16.2f}")


if __name__ == "__main__":
    main()
