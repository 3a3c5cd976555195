"""Studies: every study at a glance, refreshed live while a search runs."""

from __future__ import annotations

import streamlit as st

from nas.dashboard import common

REFRESH_S = 5

st.title("Studies")
all_studies = common.studies()
if not all_studies:
    common.empty_state()
    st.stop()

table = common.studies_table(all_studies)
live = st.toggle(f"Live: refresh every {REFRESH_S} s", value=bool((table["state"] == "running").any()),
                 help="On while a search is running, so you can watch it.")


@st.fragment(run_every=REFRESH_S if live else None)
def overview() -> None:
    """Draw the studies table and links (re-run alone every few seconds when live)."""
    fresh = common.studies()
    tbl = common.studies_table(fresh)
    cols = st.columns(4)
    cols[0].metric("studies", len(tbl))
    cols[1].metric("running", int((tbl["state"] == "running").sum()))
    cols[2].metric("trials", sum(s.n_trials for s in fresh))
    cols[3].metric("failed trials", int(tbl["failed"].sum()))
    event = st.dataframe(
        tbl, hide_index=True, on_select="rerun", selection_mode="single-row", key="studies_table",
        column_config={
            "started": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "duration_s": st.column_config.NumberColumn("duration [s]", format="%.0f"),
            "trials": st.column_config.TextColumn("trials done / budget"),
        })
    rows = event.selection.rows if event is not None else []
    if rows:
        st.switch_page("views/study.py", query_params={"study": tbl["study"].iloc[rows[0]]})
    st.caption("Select a row, or follow a link, to open a study.")
    for name in tbl["study"].head(50):
        st.page_link("views/study.py", label=f"Open study {name}", icon=":material/query_stats:",
                     query_params={"study": name})


overview()
