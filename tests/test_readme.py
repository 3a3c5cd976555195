"""The README is a front door: short, and its Python API example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_readme_stays_under_ten_thousand_characters():
    assert len(README) <= 10_000, f"README.md has {len(README)} characters"


def test_the_python_api_example_runs_as_written(tmp_path):
    api = README[README.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", api, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = out.stdout.splitlines()
    budget = int(re.search(r"budget=(\d+)", code).group(1))
    assert len(rows) == budget and all(" COMPLETE " in r for r in rows), out.stdout
    assert (tmp_path / "api.db").is_file()
