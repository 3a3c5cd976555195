"""The results database behind one small API (`Store`); backends differ only in their URL.

Every write is one short transaction, retried on lock and unique-key conflicts, so several
processes (or hosts, with PostgreSQL) can write one study at the same time. Trial numbers are
assigned inside the transaction that inserts the trial, after taking the study's lock (the
SQLite write lock; a row lock on PostgreSQL), which keeps them unique and gap-free.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from nas.errors import StoreError
from nas.store import checks
from nas.store.codec import metrics_from_json, metrics_to_json
from nas.store.db import WRITE, explain, normalize_url, open_engine, shown
from nas.store.records import StudyRecord, StudySpec, TrialRecord, TrialState
from nas.store.schema import Architecture, Curve, Measurement, Study, Trial, Weights, utcnow

T = TypeVar("T")
_TRIAL_COLUMNS = (
    Trial.id, Trial.study_id, Trial.number, Trial.state, Trial.arch_id, Trial.metrics, Trial.predicted,
    Trial.error, Trial.started_at, Trial.finished_at, Trial.duration_s, Trial.worker, Trial.host,
    Trial.device, Trial.extra,
)
ATTEMPTS = 12
_STUDY_FIELDS = (
    "id", "name", "space_ref", "space_fingerprint", "space_description", "searcher",
    "searcher_settings", "objectives", "constraints", "evaluator", "seed", "budget",
    "created_at", "finished_at", "user_attrs",
)
_MEASUREMENT_FIELDS = (
    "id", "device_id", "kind", "config", "batch_size", "median_ms", "iqr_ms", "repeats",
    "device", "created_at",
)


def _retryable(exc: DBAPIError) -> bool:
    """Return True for conflicts with another writer, which a fresh transaction resolves."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    message = str(exc.orig).lower()
    if isinstance(exc, IntegrityError):
        return code == "23505" or "unique constraint" in message
    # serialization failure, deadlock, lock not available; SQLite's busy/locked
    return code in ("40001", "40P01", "55P03") or "locked" in message or "busy" in message


class Store:
    """A results database: studies, trials, curves, cached weights and latency measurements."""

    def __init__(self, url: str, engine: Engine, readonly: bool = False) -> None:
        self.url = url
        self.readonly = readonly
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE: True})

    @classmethod
    def open(cls, url: str | os.PathLike[str], *, readonly: bool = False) -> Store:
        """Return a Store on `url` (a path means SQLite), creating the schema if it is new."""
        url = normalize_url(url)
        return cls(url, open_engine(url, readonly=readonly), readonly)

    def close(self) -> None:
        """Release the database connections; returns None."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, tuple[str, bool]]:
        # A Store travels to worker processes (spawn, Dask) as its URL and reopens there:
        # connections never cross a process boundary.
        return _reopen, (self.url, self.readonly)

    def __repr__(self) -> str:
        return f"Store({shown(self.url)!r}{', readonly=True' if self.readonly else ''})"

    # -- transactions ---------------------------------------------------------------------

    def _run(self, fn: Callable[[Session], T], write: bool) -> T:
        if write and self.readonly:
            raise StoreError(f"{shown(self.url)} was opened read-only; open it without readonly")
        engine = self._writer if write else self._engine
        for attempt in range(ATTEMPTS):
            try:
                with Session(engine, expire_on_commit=False) as session, session.begin():
                    return fn(session)
            except DBAPIError as exc:
                if not (isinstance(exc, (OperationalError, IntegrityError)) and _retryable(exc)):
                    raise explain(self.url, exc) from exc
                if attempt == ATTEMPTS - 1:
                    raise StoreError(
                        f"gave up writing to {shown(self.url)} after {ATTEMPTS} conflicts with "
                        f"other writers: {str(exc.orig).splitlines()[0]}"
                    ) from exc
                # Jitter keeps colliding writers from retrying in lock step. A private generator:
                # drawing from the global one would shift the streams of seeded user code.
                time.sleep(random.Random().uniform(0, min(0.01 * 2**attempt, 1.0)))
        raise AssertionError("unreachable")

    def _read(self, fn: Callable[[Session], T]) -> T:
        return self._run(fn, write=False)

    def _write(self, fn: Callable[[Session], T]) -> T:
        return self._run(fn, write=True)

    # -- studies --------------------------------------------------------------------------

    def create_study(self, spec: StudySpec, *, load_if_exists: bool = False) -> StudyRecord:
        """Return the new study, or the existing one of that name if load_if_exists."""
        columns = checks.study_columns(spec)

        def create(s: Session) -> int:
            old = s.scalar(sa.select(Study).where(Study.name == spec.name))
            if old is None:
                study = Study(**columns, created_at=utcnow(), finished_at=None)
                s.add(study)
                s.flush()
                return study.id
            if old.space_fingerprint != spec.space_fingerprint:
                raise StoreError(
                    f"study '{spec.name}' exists for a space with fingerprint "
                    f"{old.space_fingerprint}, but this space has fingerprint "
                    f"{spec.space_fingerprint}: the space changed; choose another --study"
                )
            if not load_if_exists:
                n = s.scalar(sa.select(sa.func.count()).where(Trial.study_id == old.id))
                raise StoreError(
                    f"study '{spec.name}' exists ({n} trials): pass --resume to continue it "
                    "or choose another --study"
                )
            changed = checks.changed_settings(old, columns)
            if changed:
                raise StoreError(
                    f"study '{spec.name}' was run with other settings ({'; '.join(changed)}): resuming "
                    "would mix two configurations in one study; run the new settings as a new study "
                    "(--study NEW_NAME) or resume with the stored ones"
                )
            old.budget = columns["budget"]  # a larger (or smaller) budget is safe: it is stored
            return old.id

        return self._study(self._write(create))

    def _study(self, study_id: int) -> StudyRecord:
        def get(s: Session) -> StudyRecord:
            study = self._get_study_row(s, study_id)
            return self._study_records(s, [study])[0]

        return self._read(get)

    def _get_study_row(self, s: Session, study_id: int, lock: bool = False) -> Study:
        query = sa.select(Study).where(Study.id == study_id)
        study = s.scalar(query.with_for_update() if lock else query)
        if study is None:
            raise StoreError(f"no study with id {study_id} in {shown(self.url)}")
        return study

    @staticmethod
    def _study_records(s: Session, studies: list[Study]) -> list[StudyRecord]:
        counts: dict[tuple[int, str], int] = {}
        if studies:
            rows = s.execute(
                sa.select(Trial.study_id, Trial.state, sa.func.count())
                .where(Trial.study_id.in_([st.id for st in studies]))
                .group_by(Trial.study_id, Trial.state)
            )
            counts = {(sid, state): n for sid, state, n in rows}
        return [
            StudyRecord(
                **{f: getattr(st, f) for f in _STUDY_FIELDS},
                **{f"n_{x.value.lower()}": counts.get((st.id, x.value), 0)
                   for x in TrialState},
            )
            for st in studies
        ]

    def get_study(self, name: str) -> StudyRecord:
        """Return the study called `name`; StoreError listing the known names if there is none."""

        def get(s: Session) -> StudyRecord:
            study = s.scalar(sa.select(Study).where(Study.name == name))
            if study is None:
                names = s.scalars(sa.select(Study.name).order_by(Study.id)).all()
                known = ", ".join(names) if names else "none yet"
                raise StoreError(
                    f"no study named {name!r} in {shown(self.url)}; known studies: {known}"
                )
            return self._study_records(s, [study])[0]

        return self._read(get)

    def list_studies(self) -> list[StudyRecord]:
        """Return every study, oldest first, with trial counts."""
        return self._read(
            lambda s: self._study_records(s, list(s.scalars(sa.select(Study).order_by(Study.id))))
        )

    def finish_study(self, study_id: int) -> None:
        """Mark the study finished now; returns None."""

        def finish(s: Session) -> None:
            self._get_study_row(s, study_id).finished_at = utcnow()

        self._write(finish)

    # -- trials ---------------------------------------------------------------------------

    def start_trial(
        self, study_id: int, arch_id: str, arch_json: str, *, worker: str = "", host: str = "",
        device: str = "",
    ) -> TrialRecord:
        """Return a new RUNNING trial of `arch_id` with the study's next trial number."""
        document = checks.arch_document(arch_id, arch_json)
        who = {k: checks.text(v, k, empty=True)
               for k, v in (("worker", worker), ("host", host), ("device", device))}

        def start(s: Session) -> TrialRecord:
            # The row lock (PostgreSQL) or the write lock (SQLite) makes max+1 safe.
            study = self._get_study_row(s, study_id, lock=True)
            self._put_architecture(s, study.space_fingerprint, arch_id, arch_json, document)
            last = s.scalar(sa.select(sa.func.max(Trial.number)).where(Trial.study_id == study_id))
            trial = Trial(
                study_id=study_id, number=0 if last is None else last + 1, arch_id=arch_id,
                state=TrialState.RUNNING.value, metrics={}, predicted=[], error=None,
                started_at=utcnow(), finished_at=None, duration_s=None, extra={}, **who,
            )
            s.add(trial)
            s.flush()
            return self._trial_record(trial, document)

        return self._write(start)

    @staticmethod
    def _put_architecture(s: Session, fp: str, arch_id: str, arch_json: str, doc: Any) -> None:
        stored = s.scalar(
            sa.select(Architecture.arch_json).where(
                Architecture.space_fingerprint == fp, Architecture.arch_id == arch_id
            )
        )
        if stored is None:
            s.add(Architecture(space_fingerprint=fp, arch_id=arch_id, arch_json=arch_json))
        elif json.loads(stored) != doc:
            raise StoreError(
                f"architecture {arch_id} of space {fp} is stored as {stored}, which differs "
                f"from {arch_json}: an id must name one architecture"
            )

    def finish_trial(
        self, trial_id: int, state: TrialState, *, metrics: dict[str, float] | None = None,
        predicted: list[str] | None = None, error: str | None = None,
        curve: list[dict] | None = None, extra: dict | None = None,
    ) -> TrialRecord:
        """Return the trial after recording how it ended, with its metrics and curve."""
        values = checks.finish_values(trial_id, state, metrics, predicted, error, extra)
        rows = checks.curve_rows(trial_id, curve)

        def finish(s: Session) -> TrialRecord:
            trial = s.scalar(sa.select(Trial).where(Trial.id == trial_id).with_for_update())
            if trial is None:
                raise StoreError(f"no trial with id {trial_id} in {shown(self.url)}")
            if trial.state != TrialState.RUNNING.value:
                raise StoreError(
                    f"trial {trial.number} (id {trial_id}) is already {trial.state}; only a "
                    "RUNNING trial can be finished"
                )
            now = utcnow()
            for k, v in values.items():
                setattr(trial, k, v)
            trial.finished_at = now
            trial.duration_s = (now - trial.started_at).total_seconds()
            s.add_all(Curve(**row) for row in rows)
            s.flush()
            return self._trial_record(trial, self._arch_of(s, trial))

        return self._write(finish)

    def add_metrics(self, trial_id: int, metrics: dict[str, float]) -> TrialRecord:
        """Return a finished trial after adding metrics measured later (e.g. a re-measured latency)."""
        extra = metrics_to_json(metrics, f"metrics of trial id {trial_id}")

        def add(s: Session) -> TrialRecord:
            trial = s.scalar(sa.select(Trial).where(Trial.id == trial_id).with_for_update())
            if trial is None:
                raise StoreError(f"no trial with id {trial_id} in {shown(self.url)}")
            trial.metrics = {**(trial.metrics or {}), **extra}
            s.flush()
            return self._trial_record(trial, self._arch_of(s, trial))

        return self._write(add)

    @staticmethod
    def _arch_of(s: Session, trial: Trial) -> Any:
        text = s.scalar(
            sa.select(Architecture.arch_json)
            .join(Study, Study.space_fingerprint == Architecture.space_fingerprint)
            .where(Study.id == trial.study_id, Architecture.arch_id == trial.arch_id)
        )
        return {} if text is None else json.loads(text)

    @staticmethod
    def _trial_record(trial: Trial, architecture: Any) -> TrialRecord:
        return TrialRecord(
            id=trial.id, study_id=trial.study_id, number=trial.number,
            state=TrialState(trial.state), arch_id=trial.arch_id, architecture=architecture,
            metrics=metrics_from_json(trial.metrics), predicted=list(trial.predicted or []),
            error=trial.error, started_at=trial.started_at, finished_at=trial.finished_at,
            duration_s=trial.duration_s, worker=trial.worker, host=trial.host,
            device=trial.device, extra=dict(trial.extra or {}),
        )

    def _select_trials(self, study_id: int, *where: Any) -> list[TrialRecord]:
        def select(s: Session) -> list[TrialRecord]:
            self._get_study_row(s, study_id)
            # Plain columns, not ORM entities: building 10,000 Trial objects took most of the read.
            rows = s.execute(
                sa.select(*_TRIAL_COLUMNS, Architecture.arch_json)
                .join(Study, Study.id == Trial.study_id)
                .outerjoin(
                    Architecture,
                    sa.and_(Architecture.space_fingerprint == Study.space_fingerprint,
                            Architecture.arch_id == Trial.arch_id),
                )
                .where(Trial.study_id == study_id, *where)
                .order_by(Trial.number)
            )
            decoded: dict[str, Any] = {}
            out = []
            for row in rows:
                t = row._mapping
                if t["arch_id"] not in decoded:
                    text = t["arch_json"]
                    decoded[t["arch_id"]] = {} if text is None else json.loads(text)
                out.append(TrialRecord(
                    id=t["id"], study_id=t["study_id"], number=t["number"],
                    state=TrialState(t["state"]), arch_id=t["arch_id"],
                    architecture=decoded[t["arch_id"]], metrics=metrics_from_json(t["metrics"]),
                    predicted=list(t["predicted"] or []), error=t["error"],
                    started_at=t["started_at"], finished_at=t["finished_at"],
                    duration_s=t["duration_s"], worker=t["worker"], host=t["host"],
                    device=t["device"], extra=dict(t["extra"] or {})))
            return out

        return self._read(select)

    def trials(
        self, study_id: int, states: Iterable[TrialState] | None = None
    ) -> list[TrialRecord]:
        """Return the study's trials in number order, optionally only those in `states`."""
        if states is None:
            return self._select_trials(study_id)
        wanted = [TrialState(x).value for x in states]
        return self._select_trials(study_id, Trial.state.in_(wanted))

    def get_trial(self, study_id: int, number: int) -> TrialRecord:
        """Return trial `number` of the study; StoreError if it has no such trial."""
        found = self._select_trials(study_id, Trial.number == number)
        if not found:
            raise StoreError(f"study id {study_id} has no trial number {number!r}")
        return found[0]

    def find_complete(self, study_id: int, arch_id: str) -> TrialRecord | None:
        """Return the first COMPLETE trial of `arch_id` in the study, or None (for dedupe)."""
        found = self._select_trials(
            study_id, Trial.arch_id == arch_id, Trial.state == TrialState.COMPLETE.value
        )
        return found[0] if found else None

    def fail_running(self, study_id: int, reason: str) -> int:
        """Mark the study's RUNNING trials FAILED with `reason`; return how many there were."""

        def fail(s: Session) -> int:
            self._get_study_row(s, study_id, lock=True)
            running = s.scalars(
                sa.select(Trial).where(
                    Trial.study_id == study_id, Trial.state == TrialState.RUNNING.value
                ).with_for_update()
            ).all()
            now = utcnow()
            for trial in running:
                trial.state, trial.error, trial.finished_at = TrialState.FAILED.value, reason, now
                trial.duration_s = (now - trial.started_at).total_seconds()
            return len(running)

        return self._write(fail)

    def curve(self, trial_id: int) -> list[dict]:
        """Return the trial's learning curve: one dict per epoch, with "epoch" and its values."""

        def get(s: Session) -> list[dict]:
            rows = s.execute(
                sa.select(Curve.epoch, Curve.values)
                .where(Curve.trial_id == trial_id)
                .order_by(Curve.epoch)
            )
            return [{"epoch": epoch, **metrics_from_json(values)} for epoch, values in rows]

        return self._read(get)

    # -- caches ---------------------------------------------------------------------------

    def put_weights(self, fingerprint: str, arch_id: str, key: str, data: bytes) -> None:
        """Store (or replace) the weights blob for (fingerprint, arch_id, key); returns None."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StoreError(f"weights for {arch_id}/{key} must be bytes, not {type(data)}")
        blob = bytes(data)
        ident = {"space_fingerprint": checks.text(fingerprint, "fingerprint", 128),
                 "arch_id": checks.text(arch_id, "arch_id", 128), "key": checks.text(key, "key")}

        def put(s: Session) -> None:
            row = s.scalar(sa.select(Weights).filter_by(**ident))
            if row is None:
                s.add(Weights(**ident, data=blob, created_at=utcnow()))
            else:
                row.data, row.created_at = blob, utcnow()

        self._write(put)

    def get_weights(self, fingerprint: str, arch_id: str, key: str) -> bytes | None:
        """Return the stored weights blob, or None if there is none."""
        query = sa.select(Weights.data).filter_by(
            space_fingerprint=fingerprint, arch_id=arch_id, key=key
        )
        data = self._read(lambda s: s.scalar(query))
        return None if data is None else bytes(data)

    def add_measurements(self, rows: list[dict]) -> int:
        """Store raw latency measurements in one transaction; return how many were added."""
        now = utcnow()
        values = [checks.measurement_columns(row, i, now) for i, row in enumerate(rows)]
        if values:
            self._write(lambda s: s.execute(sa.insert(Measurement), values))
        return len(values)

    def measurements(
        self, *, device_id: str | None = None, kind: str | None = None
    ) -> list[dict]:
        """Return stored measurements (all columns as a dict), oldest first, optionally filtered."""
        query = sa.select(Measurement).order_by(Measurement.id)
        if device_id is not None:
            query = query.where(Measurement.device_id == device_id)
        if kind is not None:
            query = query.where(Measurement.kind == kind)
        return self._read(
            lambda s: [{f: getattr(m, f) for f in _MEASUREMENT_FIELDS} for m in s.scalars(query)]
        )


def _reopen(url: str, readonly: bool) -> Store:
    """Return Store.open(url) in this process (the unpickling side of Store.__reduce__)."""
    return Store.open(url, readonly=readonly)
