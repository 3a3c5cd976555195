"""What every page shares: the database URL, the read-only store, cached reads, and selection."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from nas.dashboard import data
from nas.errors import NasError
from nas.store import Store, StudyRecord
from nas.store.db import shown

DEFAULT_DB = "nas.db"
TRUST_FLAG = "--trust-spaces"
RUN_HINT = ("nas search search_spaces.convnet:space --dataset digits --budget 20 --epochs 2 "
            "--db {db}")


def _app_args(argv: Sequence[str] | None) -> list[str]:
    """Return the arguments after `--` (what `nas dashboard` passes to the app through Streamlit)."""
    argv = list(sys.argv if argv is None else argv)
    return argv[argv.index("--") + 1:] if "--" in argv else argv


def db_url(argv: Sequence[str] | None = None) -> str:
    """Return the --db value given after `--` on the command line (default nas.db)."""
    argv = _app_args(argv)
    for i, arg in enumerate(argv):
        if arg == "--db" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--db="):
            return arg[len("--db="):]
    return DEFAULT_DB


def trusts_spaces(argv: Sequence[str] | None = None) -> bool:
    """Return whether the user started the dashboard with --trust-spaces (after `--`).

    A database is data: only with this flag may a page import and run the space code that the
    database names (to rebuild models for TorchScript and ONNX downloads).
    """
    return TRUST_FLAG in _app_args(argv)


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    return Store.open(url, readonly=True)


def store() -> Store:
    """Return the read-only store for this dashboard's URL, or stop the page with a clear error."""
    url = db_url()
    try:
        return _store(url)
    except (NasError, SQLAlchemyError, OSError) as exc:
        fail(url, exc)
        raise  # unreachable: fail() stops the script


def fail(url: str, exc: BaseException) -> None:
    """Show why the database cannot be read and stop the page; returns never."""
    st.error(f"Cannot read the results database {shown(url)!r}: {exc}")
    st.info("Start the dashboard on a nas results database: `nas dashboard --db PATH_OR_URL`.")
    st.stop()


def studies() -> list[StudyRecord]:
    """Return every study (uncached: one cheap query that also gives the change markers)."""
    try:
        return store().list_studies()
    except (NasError, SQLAlchemyError) as exc:
        fail(db_url(), exc)
        raise


@st.cache_data(show_spinner="Reading trials...", max_entries=32)
def _study_data(url: str, study_id: int, marker: tuple) -> data.StudyData:
    st_rec = next(s for s in _store(url).list_studies() if s.id == study_id)
    return data.load_study(_store(url), st_rec)


def study_data(study: StudyRecord) -> data.StudyData:
    """Return the study's trial table, cached until its trial counts change."""
    try:
        return _study_data(db_url(), study.id, data.study_marker(study))
    except (NasError, SQLAlchemyError) as exc:
        fail(db_url(), exc)
        raise


@st.cache_data(show_spinner=False, max_entries=8, ttl=30)
def _studies_table(url: str, markers: tuple) -> pd.DataFrame:
    studies = _store(url).list_studies()
    return data.studies_table(studies, [_study_data(url, s.id, data.study_marker(s)) for s in studies])


def studies_table(all_studies: list[StudyRecord]) -> pd.DataFrame:
    """Return the Studies page's table, cached until a study changes (at most 30 s, for 'died')."""
    markers = tuple((s.id, data.study_marker(s)) for s in all_studies)
    try:
        return _studies_table(db_url(), markers)
    except (NasError, SQLAlchemyError) as exc:
        fail(db_url(), exc)
        raise


@st.cache_data(show_spinner=False, max_entries=512)
def curve(url: str, trial_id: int) -> list[dict]:
    """Return a trial's learning curve (cached: a finished trial's curve never changes)."""
    return _store(url).curve(trial_id)


def empty_state() -> None:
    """Say there is nothing to show yet and what to run; returns None."""
    st.info("No studies in this database yet. Run a search, for example:\n\n"
            f"`{RUN_HINT.format(db=db_url())}`")


def synced_select(label: str, options: list, param: str, key: str, default: int = -1) -> object:
    """Return the option chosen in a selectbox kept in step with the `param` query parameter.

    A link that arrives with ?param=value selects that value even when the widget remembers
    another choice from earlier in the session; choosing in the widget updates the URL.
    """
    text = [str(o) for o in options]
    wanted = st.query_params.get(param)
    seen = f"{key}__from_url"
    if key not in st.session_state or st.session_state[key] not in options or (
            wanted in text and st.session_state.get(seen) != wanted):
        st.session_state[key] = options[text.index(wanted)] if wanted in text else options[default]
        st.session_state[seen] = wanted
    choice = st.sidebar.selectbox(label, options, key=key)
    if st.query_params.get(param) != str(choice):
        st.query_params[param] = str(choice)
        st.session_state[seen] = str(choice)
    return choice


def pick_study(all_studies: list[StudyRecord], key: str) -> StudyRecord | None:
    """Return the study chosen in a selectbox (default: the `study` query parameter, else the newest)."""
    if not all_studies:
        empty_state()
        return None
    names = [s.name for s in all_studies]
    return all_studies[names.index(synced_select("Study", names, "study", key))]
