"""The summary page in a real Chromium: produce a Swahili summary, approve it, download the PDF.

Needs Debian's Chromium at /usr/bin/chromium (Playwright's own browser download does not work
here); the test skips with instructions when it is missing.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.summaries.render import PhraseBank
from workbench.i18n import catalog

SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "summary_sw.png"
UI_TIMEOUT_MS = 45_000  # a cold first run loads the knowledge base, the lexicon and the cohort

pytestmark = pytest.mark.browser


@pytest.fixture()
def app_url(streamlit_server, tiny_workspace: Path, make_account) -> str:
    make_account(tiny_workspace, "olga", "oncologist")  # may write and approve summaries
    return streamlit_server("streamlit_app.py", tiny_workspace)


def flat(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFC", text) if not c.isspace())


def test_produce_approve_and_download_a_swahili_summary(
    open_app, app_url: str, sign_in, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    en, sw = catalog("en"), PhraseBank.load("sw")
    page = open_app(app_url, UI_TIMEOUT_MS, accept_downloads=True)
    # Sign-in lives in the browser session, so navigate inside it rather than by URL.
    sign_in(page, "olga")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=en["nav.summary"]).click()
    expect(page.get_by_role("heading", name=en["summary.title"], level=1)).to_be_visible()
    expect(page.get_by_text(sw.phrase("title"), exact=True).first).to_be_visible()
    expect(page.get_by_text(en["summary.not_approved"])).to_be_visible()

    page.get_by_role("button", name=en["summary.approve"]).click()
    expect(page.get_by_text("Approved by olga (oncologist)")).to_be_visible()
    download_button = page.get_by_role("button", name=en["summary.download_pdf"])
    expect(download_button).to_be_visible()
    with page.expect_download() as info:
        download_button.click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    assert target.name.endswith("_sw.pdf")
    data = target.read_bytes()
    text = flat("".join(pg.extract_text() for pg in PdfReader(io.BytesIO(data)).pages))
    assert flat(sw.phrase("title")) in text and flat(sw.phrase("disclaimer")) in text
    assert "DRAFT" not in text
