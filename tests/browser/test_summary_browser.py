"""The summary page in a real Chromium: produce a Swahili summary, approve it, download the PDF.

Needs Debian's Chromium at /usr/bin/chromium (Playwright's own browser download does not work
here); the test skips with instructions when it is missing. Until the shell lists the page
(streamlit_app.PAGES), the page script is served on its own.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import unicodedata
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.summaries.render import PhraseBank
from workbench.i18n import catalog

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "test-artifacts" / "summary_sw.png"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
STARTUP_TIMEOUT_S = 60
UI_TIMEOUT_MS = 45_000  # a cold first run loads the knowledge base, the lexicon and the cohort

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
def page_url(tiny_workspace: Path, tmp_path: Path) -> Iterator[str]:
    in_shell = "app_pages/summary.py" in (ROOT / "streamlit_app.py").read_text(encoding="utf-8")
    script, path = ("streamlit_app.py", "/summary") if in_shell else ("app_pages/summary.py", "")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "streamlit.log"
    env = {**os.environ, "CMKD_WORKSPACE": str(tiny_workspace), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", script,
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--browser.gatherUsageStats", "false"]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_health(url, server, log)
        yield url + path
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def flat(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFC", text) if not c.isspace())


def test_produce_approve_and_download_a_swahili_summary(page_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    en, sw = catalog("en"), PhraseBank.load("sw")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(page_url)
            page.wait_for_selector('[data-testid="stApp"]')
            expect(page.get_by_role("heading", name=en["summary.title"], level=1)).to_be_visible()
            expect(page.get_by_text(sw.phrase("title"), exact=True).first).to_be_visible()
            expect(page.get_by_text(en["summary.not_approved"])).to_be_visible()

            page.get_by_role("button", name=en["summary.approve"]).click()
            expect(page.get_by_text("Approved by local (admin)")).to_be_visible()
            download_button = page.get_by_role("button", name=en["summary.download_pdf"])
            expect(download_button).to_be_visible()
            with page.expect_download() as info:
                download_button.click()
            target = tmp_path / info.value.suggested_filename
            info.value.save_as(target)

            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()

    assert target.name.endswith("_sw.pdf")
    data = target.read_bytes()
    text = flat("".join(pg.extract_text() for pg in PdfReader(io.BytesIO(data)).pages))
    assert flat(sw.phrase("title")) in text and flat(sw.phrase("disclaimer")) in text
    assert "DRAFT" not in text
