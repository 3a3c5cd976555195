"""The dashboard's entry: `streamlit run nas/dashboard/app.py -- --db URL` (what `nas dashboard` runs)."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts only nas/dashboard/ on sys.path; the pages import the nas package above it.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from nas.dashboard import common  # noqa: E402
from nas.store.db import shown  # noqa: E402

HERE = Path(__file__).resolve().parent
PAGES = [
    st.Page(HERE / "views" / "studies.py", title="Studies", icon=":material/table_chart:",
            url_path="studies", default=True),
    st.Page(HERE / "views" / "study.py", title="Study", icon=":material/query_stats:",
            url_path="study"),
    st.Page(HERE / "views" / "architecture.py", title="Architecture", icon=":material/account_tree:",
            url_path="architecture"),
    st.Page(HERE / "views" / "compare.py", title="Compare", icon=":material/compare_arrows:",
            url_path="compare"),
    st.Page(HERE / "views" / "hardware.py", title="Hardware", icon=":material/memory:",
            url_path="hardware"),
]

st.set_page_config(page_title="nas results", page_icon=":material/neurology:", layout="wide")
page = st.navigation(PAGES)
st.sidebar.caption(f"database: `{shown(common.db_url())}` (read-only)")
common.store()  # an unreadable or foreign database stops here with a clear message
page.run()
