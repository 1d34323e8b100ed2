"""The real app in a real Chromium: home page, language switch through the sidebar picker.

Needs Debian's Chromium at /usr/bin/chromium (Playwright's own browser download does not
work here); the test skips with instructions when it is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.i18n import UI_LANGUAGES, catalog

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "test-artifacts" / "home_pt.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 60
UI_TIMEOUT_MS = 30_000  # a cold first script run imports plotly and reads the cohort

# A skipif marker (not pytest.skip in a fixture) so the session cohort is not generated
# for nothing when the browser is missing.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser test needs Debian Chromium at /usr/bin/chromium: "
        "as root run `apt-get install -y chromium chromium-driver` (or `make chromium`)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"streamlit did not become healthy in {STARTUP_TIMEOUT_S}s:\n{log.read_text()}")


@pytest.fixture()
def app_url(tiny_workspace: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "streamlit.log"
    env = {**os.environ, "CMKD_WORKSPACE": str(tiny_workspace), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--browser.gatherUsageStats", "false"]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_health(url, server, log)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_home_page_switches_to_portuguese(app_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    en, pt = catalog("en"), catalog("pt")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(app_url)
            page.wait_for_selector('[data-testid="stApp"]')
            expect(page.get_by_role("heading", name=en["home.title"], level=1)).to_be_visible()
            expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible()

            sidebar = page.get_by_test_id("stSidebar")
            sidebar.get_by_test_id("stSelectbox").click()
            page.get_by_role("option", name=UI_LANGUAGES["pt"]).click()

            expect(page.get_by_role("heading", name=pt["home.title"], level=1)).to_be_visible()
            expect(page.get_by_text(pt["app.disclaimer"])).to_be_visible()
            expect(sidebar.get_by_text(pt["nav.about"])).to_be_visible()
            expect(page.get_by_role("heading", name=en["home.title"])).to_have_count(0)

            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
