"""Hardware: saved device profiles, stored latency measurements, predicted vs measured latency."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from nas.dashboard import charts, common
from nas.errors import NasError
from nas.hardware.profile import DeviceProfile, profile_dirs

st.title("Hardware")


@st.cache_data(show_spinner=False, ttl=30)
def profiles(folder: str) -> tuple[pd.DataFrame, list[str]]:
    """Return one row per device profile JSON in `folder`, and the files that could not be read."""
    rows, bad = [], []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            p = DeviceProfile.load(path)
        except NasError as exc:
            bad.append(str(exc))
            continue
        ident = p.identity.to_json()
        rows.append({"device_id": p.device_id, "file": path.name,
                     "device": ident.get("name") or ident.get("kind", ""),
                     "measurements": len(p.measurements), "models": len(p.models)})
    return pd.DataFrame(rows), bad


st.subheader("Device profiles")
folders = profile_dirs()
parts = [profiles(str(folder)) for folder in folders]
table = pd.concat([t for t, _ in parts], ignore_index=True)
bad = [message for _, messages in parts for message in messages]
if table.empty:
    st.info(f"No device profiles in {' or '.join(map(str, folders))}. Profile this machine with "
            "`nas profile --space SPACE`.")
else:
    st.dataframe(table, hide_index=True, key="profiles_table")
for message in bad:
    st.warning(message)

st.subheader("Latency measurements in the database")
rows = common.store().measurements()
if not rows:
    st.info("No latency measurements stored yet; profiling a device records them.")
else:
    m = pd.DataFrame(rows)
    summary = m.groupby(["device_id", "kind"]).agg(
        rows=("median_ms", "size"), median_ms=("median_ms", "median"),
        batch_sizes=("batch_size", lambda b: ", ".join(map(str, sorted(set(b)))))).reset_index()
    st.dataframe(summary, hide_index=True, key="measurements_table",
                 column_config={"median_ms": st.column_config.NumberColumn("median [ms]",
                                                                           format="%.3f")})

st.subheader("Predicted vs measured latency")
parts = []
for s in common.studies():
    df = common.study_data(s).df
    if {"latency_ms_measured", "latency_ms_predicted"} <= set(df.columns):
        both = df.dropna(subset=["latency_ms_measured", "latency_ms_predicted"])
        parts.append(both[["number", "latency_ms_measured", "latency_ms_predicted"]]
                     .assign(study=s.name))
pairs = pd.concat(parts) if parts else pd.DataFrame()
if pairs.empty:
    st.info("No trial has both a measured and a predicted latency yet. Run a search with a latency "
            "predictor and measurement (objective latency_ms) to fill this chart.")
else:
    ratio = pairs["latency_ms_predicted"] / pairs["latency_ms_measured"]
    inside = float(((ratio - 1).abs() <= charts.BAND).mean())
    st.metric("trials predicted within ±10%", f"{inside:.0%}", help=f"of {len(pairs)} trials")
    st.plotly_chart(charts.latency_band(pairs), key="latency_chart")
