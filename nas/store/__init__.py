"""The results database: studies, trials, learning curves, cached weights, latency measurements.

    from nas.store import Store, StudySpec, TrialState, upgrade
    store = Store.open("nas.db")          # a path means SQLite; any SQLAlchemy URL works

A new database gets the schema on first use; an existing one at an older schema needs
`upgrade(url)` (the CLI's `nas db upgrade`). NaN and infinite metric values are stored as the
strings "NaN", "Infinity", "-Infinity" and come back as floats.

A Store may be handed to other processes: it pickles as its URL and reopens there, and a forked
child drops the connections it inherited and opens its own.
"""

from __future__ import annotations

from nas.lazy import lazy_attributes
from nas.store.records import StudyRecord, StudySpec, TrialRecord, TrialState

# SQLAlchemy is imported on first use of these, so that `nas --help` and the records stay light
_LAZY = {"Store": "nas.store.store", "upgrade": "nas.store.db"}

__all__ = ["Store", "StudyRecord", "StudySpec", "TrialRecord", "TrialState", "upgrade"]

__getattr__ = lazy_attributes(__name__, _LAZY)
