"""End to end: `nas dashboard` on a free port, driven by headless Chromium through Playwright.

Opens each page, clicks into a study and into an architecture, checks the charts and tables are
drawn and no exception box is shown, and takes a screenshot of each page. The screenshots go to
a temporary folder, or to docs/ (the README's pictures) when NAS_UPDATE_SCREENSHOTS=1. And the
issue's attack: a copied database whose study names `os:system` as its space shows its
architecture without running it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from tests.dashboard.fill import HANDMADE, HANDMADE_TRIAL, doctor
except ModuleNotFoundError:  # a bare `pytest` run from tests/
    from nas.dashboard.fill import HANDMADE, HANDMADE_TRIAL, doctor  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic"]
MAX_PNG = 300_000

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nas() -> list[str]:
    script = Path(sys.executable).parent / "nas"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nas.cli"]


def _need_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; CI must run the browser test (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")


@contextlib.contextmanager
def dashboard(db: str, *flags: str) -> Iterator[str]:
    """Run `nas dashboard` on `db` on a free port; yield its URL."""
    _need_chromium()
    port = _free_port()
    proc = subprocess.Popen([*_nas(), "dashboard", "--db", db, "--port", str(port), *flags],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
                pytest.fail(f"nas dashboard did not come up on port {port}: {out}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group: the CLI and its streamlit
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(dashboard_db: str) -> Iterator[str]:
    """Yield the URL of `nas dashboard` serving the test database."""
    with dashboard(dashboard_db) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Yield headless Debian Chromium under Playwright (one per module: Playwright's sync API nests not)."""
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _new_page(browser) -> object:
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.set_default_timeout(60_000)
    return page


@pytest.fixture(scope="module")
def browser_page(server: str, chromium) -> Iterator[object]:
    """Yield a Playwright page in headless Debian Chromium."""
    page = _new_page(chromium)
    yield page
    page.close()


def _settle(page) -> None:
    """Wait until Streamlit has finished running the script and drawing."""
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')")
    page.wait_for_timeout(800)  # plotly and graphviz draw after the script ends


def _check(page, shots: Path, name: str, selectors: list[str], focus: str | None = None) -> None:
    _settle(page)
    for sel in selectors:
        page.wait_for_selector(sel, state="visible")
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:2000]
    if focus:  # show the charts rather than the top of a long page
        page.locator(focus).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)
    path = shots / f"dashboard-{name}.png"
    page.screenshot(path=str(path))
    assert 0 < path.stat().st_size < MAX_PNG, f"{path} is {path.stat().st_size} bytes"


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return where screenshots go: docs/ when NAS_UPDATE_SCREENSHOTS=1, else a temporary folder."""
    if os.environ.get("NAS_UPDATE_SCREENSHOTS") == "1":
        return ROOT / "docs"
    return tmp_path_factory.mktemp("shots")


def test_every_page_in_a_real_browser(server, browser_page, shots):
    page = browser_page
    page.goto(server)
    _check(page, shots, "studies", ['[data-testid="stDataFrame"]', 'a:has-text("Open study nb201-random")'])

    page.get_by_role("link", name="Open study nb201-random").click()
    page.wait_for_selector("h1:has-text('Study nb201-random')")
    _check(page, shots, "study", ['[data-testid="stDataFrame"]', '[data-testid="stPlotlyChart"]',
                                  ".js-plotly-plot .scatterlayer"], focus="h3:has-text('Best so far')")
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 4

    page.get_by_role("link", name="Open the best architecture").click()
    page.wait_for_selector("h1:has-text('of nb201-random')")
    _settle(page)  # a tabular benchmark builds no model: there is no drawing to show
    page.wait_for_selector("text=No drawing of the model is stored")

    page.goto(f"{server}/architecture?study={HANDMADE}&trial={HANDMADE_TRIAL}")
    page.wait_for_selector(f"h1:has-text('of {HANDMADE}')")
    _check(page, shots, "architecture", ['[data-testid="stGraphVizChart"] svg',
                                         '[data-testid="stDataFrame"]'],
           focus="h3:has-text('Model')")
    assert page.locator('[data-testid="stDownloadButton"]').count() == 4

    page.get_by_role("link", name="Compare").first.click()
    page.wait_for_selector("h1:has-text('Compare studies')")
    _check(page, shots, "compare", ['[data-testid="stPlotlyChart"]'])

    page.get_by_role("link", name="Hardware").first.click()
    page.wait_for_selector("h1:has-text('Hardware')")
    _check(page, shots, "hardware", ['[data-testid="stPlotlyChart"]'])


def test_a_doctored_database_runs_no_code_when_its_architecture_is_shown(dashboard_db, chromium, tmp_path):
    """The issue's attack: space_ref='os:system' and space_args {"command": ...} in a copied database."""
    db, marker = tmp_path / "doctored.db", tmp_path / "pwned"
    doctor(dashboard_db, db, "digits-random", f"id > {marker}")
    with dashboard(str(db)) as url:
        page = _new_page(chromium)
        page.goto(f"{url}/architecture?study=digits-random&trial=0")
        page.wait_for_selector("h1:has-text('Trial 0 of digits-random')")
        _settle(page)
        page.wait_for_selector('[data-testid="stDataFrame"]', state="visible")  # decisions, metrics
        page.wait_for_selector("h3:has-text('Model')")
        assert not marker.exists(), marker.read_text()
        page.wait_for_selector('[data-testid="stGraphVizChart"] svg', state="visible")  # stored drawing
        assert "Conv2d" in page.inner_text('[data-testid="stGraphVizChart"]')
        assert page.locator('[data-testid="stException"]').count() == 0
        page.close()
    assert not marker.exists()
