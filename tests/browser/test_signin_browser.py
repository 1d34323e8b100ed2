"""Sign-in in a real Chromium: a nurse signs in, sees only her pages, and cannot reach the
retraining page, neither from the navigation nor by a deep link; signing out hides them again.

Needs Debian's Chromium at /usr/bin/chromium; skips with instructions when it is missing.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from workbench.i18n import catalog

SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "signin_nurse.png"
UI_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.browser


@pytest.fixture()
def app_url(streamlit_server, tmp_path: Path, make_account) -> str:
    workspace = tmp_path / "ws"
    make_account(workspace, "nadia", "nurse")
    make_account(workspace, "olga", "oncologist")
    return streamlit_server("streamlit_app.py", workspace)


def nav_paths(page) -> set[str]:
    """URL paths of the sidebar navigation; "" is the default page (sign-in or home)."""
    links = page.get_by_test_id("stSidebarNav").get_by_role("link")
    hrefs = links.evaluate_all("els => els.map(e => e.getAttribute('href'))")
    return {urlparse(href).path.strip("/") for href in hrefs}


def test_a_nurse_cannot_reach_retraining(open_app, app_url: str, sign_in) -> None:
    from playwright.sync_api import expect

    en = catalog("en")
    retrain_title = en.get("retrain.title", "Retrain")
    # A deep link before sign-in asks to sign in at that address, not on retraining, and
    # lists only the signed-out pages.
    page = open_app(f"{app_url}/retrain", UI_TIMEOUT_MS, height=1000)
    expect(page.get_by_role("heading", name=en["auth.title"], level=1)).to_be_visible()
    assert nav_paths(page) == {"", "about"}
    expect(page.get_by_role("dialog")).to_have_count(0)  # no "page not found" notice

    page.get_by_label(en["auth.name"]).fill("nadia")
    page.get_by_label(en["auth.password"], exact=True).fill("wrong password")
    page.get_by_role("button", name=en["auth.submit"], exact=True).click()
    expect(page.get_by_text(en["auth.invalid"])).to_be_visible()

    sign_in(page, "nadia")
    # Her role may not open the address she came to: she lands on home.
    expect(page.get_by_role("heading", name=en["home.title"], level=1)).to_be_visible()
    paths = nav_paths(page)
    assert paths == {"", "summary", "about"}  # home, summaries, about: nothing else
    assert not paths & {"retrain", "audit", "users", "vcf", "signin"}
    expect(page.get_by_role("heading", name=retrain_title, level=1)).to_have_count(0)

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.get_by_test_id("stSidebar").get_by_role("button", name=en["auth.sign_out"]).click()
    expect(page.get_by_role("heading", name=en["auth.title"], level=1)).to_be_visible()
    expect(page.get_by_text(en["auth.notice_signed_out"])).to_be_visible()
    assert nav_paths(page) == {"", "about"}


def test_a_bookmarked_page_opens_after_sign_in(open_app, app_url: str, sign_in) -> None:
    from playwright.sync_api import expect

    en = catalog("en")
    page = open_app(f"{app_url}/search", UI_TIMEOUT_MS, height=1000)
    expect(page.get_by_role("heading", name=en["auth.title"], level=1)).to_be_visible()
    sign_in(page, "olga")
    expect(page.get_by_role("heading", name=en["search.title"], level=1)).to_be_visible()
    assert urlparse(page.url).path.strip("/") == "search"
