"""The real app in a real Chromium: home page, language switch through the sidebar picker.

Needs Debian's Chromium at /usr/bin/chromium (Playwright's own browser download does not
work here); the test skips with instructions when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.i18n import UI_LANGUAGES, catalog

SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "home_pt.png"
UI_TIMEOUT_MS = 30_000  # a cold first script run imports plotly and reads the cohort


pytestmark = pytest.mark.browser


@pytest.fixture()
def app_url(streamlit_server, tiny_workspace: Path, make_account) -> str:
    make_account(tiny_workspace, "olga", "oncologist")
    return streamlit_server("streamlit_app.py", tiny_workspace)


def test_home_page_switches_to_portuguese(open_app, app_url: str, sign_in) -> None:
    from playwright.sync_api import expect

    en, pt = catalog("en"), catalog("pt")
    page = open_app(app_url, UI_TIMEOUT_MS)
    sign_in(page, "olga")
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
