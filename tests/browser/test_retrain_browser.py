"""The retraining page in a real Chromium: an admin signs in, starts a tiny retraining from the
form and watches its progress to the end, then sees the comparison with production.

Needs Debian's Chromium at /usr/bin/chromium; skips with instructions when it is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workbench.i18n import catalog

SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "retrain_done.png"
SHELL = "streamlit_app.py"
UI_TIMEOUT_MS = 60_000  # first run imports plotly; the submit imports torch
JOB_TIMEOUT_MS = 60_000  # the tiny job: worker start-up, a few steps, the comparison

pytestmark = pytest.mark.browser


@pytest.fixture()
def app_url(streamlit_server, built_workspace: Path, make_account) -> str:
    make_account(built_workspace, "ada", "admin")
    return streamlit_server(SHELL, built_workspace)


def test_start_a_tiny_retraining_and_watch_it_finish(open_app, app_url: str, sign_in) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)  # expect's own default is 5 s
    en = catalog("en")
    page = open_app(app_url, UI_TIMEOUT_MS, height=1400)
    sign_in(page, "ada")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=en["nav.retrain"]).click()
    expect(page.get_by_role("heading", name=en["retrain.title"], level=1)).to_be_visible()

    page.get_by_role("combobox", name=en["retrain.profile"]).click()
    page.get_by_role("option", name=en["retrain.profile_tiny"]).click()
    page.get_by_role("button", name=en["retrain.submit"]).click()
    expect(page.get_by_text(en["retrain.submitted"].format(id=1))).to_be_visible()

    def progress(state: str) -> re.Pattern[str]:
        return re.compile("^" + re.escape(en[f"retrain.state_{state}"]) + " · ")

    # The panel polls every second: first the job waiting or training, then its end.
    started = page.get_by_text(progress("queued")).or_(page.get_by_text(progress("running")))
    expect(started.first).to_be_visible()
    done = page.get_by_text(progress("succeeded"))
    expect(done).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(done).to_contain_text("step 2 of 2")
    expect(page.get_by_role("heading", name=en["retrain.compare_header"])).to_be_visible()
    expect(page.get_by_role("button", name=en["retrain.promote_this"])).to_be_visible()
    expect(page.get_by_text(en["retrain.chart_loss"]).first).to_be_visible()

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
