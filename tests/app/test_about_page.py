"""AppTest of the About page: purpose, disclaimer, sources, language kept across pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.i18n import catalog
from workbench.roles import User

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
TIMEOUT_S = 30
N_SOURCES = 7  # CIViC, OncoTree, 3D hotspots, CancerMine, NTREX, FLORES, MiniLM


@pytest.fixture()
def at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "workspace"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["user"] = User("tester", "nurse")  # starts on home, like a signed-in user
    return at.run()


def open_about(at: AppTest) -> AppTest:
    at.switch_page("app_pages/about.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_about_page_renders_purpose_disclaimer_and_sources(at: AppTest) -> None:
    en = catalog("en")
    open_about(at)
    assert at.title[0].value == en["about.title"]
    assert at.warning[0].value == en["about.disclaimer"]
    assert any(en["app.disclaimer"] in c.value for c in at.caption)
    table = at.table[0].value
    assert len(table) == N_SOURCES
    assert list(table.columns) == [
        en["about.col_source"],
        en["about.col_use"],
        en["about.col_licence"],
    ]
    assert "CC0 1.0" in set(table[en["about.col_licence"]])


def test_attribution_file_is_rendered_as_markdown(at: AppTest) -> None:
    open_about(at)
    attribution = ROOT / "ATTRIBUTION.md"
    texts = [m.value for m in at.expander[0].markdown]
    if attribution.is_file():
        assert attribution.read_text(encoding="utf-8").strip() in texts
    else:
        assert catalog("en")["about.attribution_missing"] in texts


def test_about_is_open_before_sign_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "workspace"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert at.title[0].value == catalog("en")["auth.title"]
    assert open_about(at).title[0].value == catalog("en")["about.title"]


def test_language_chosen_on_home_carries_over_to_about(at: AppTest) -> None:
    at.selectbox(key="ui_lang").set_value("sw").run()
    open_about(at)
    sw = catalog("sw")
    assert at.title[0].value == sw["about.title"]
    assert at.warning[0].value == sw["about.disclaimer"]
    assert sw["about.col_licence"] in at.table[0].value.columns
