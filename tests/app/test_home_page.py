"""AppTest of the shell and the home page: empty and built workspaces, language switch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.i18n import catalog
from workbench.roles import User

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
TIMEOUT_S = 30  # the first run imports plotly; generous for a loaded 2-core machine
CHART_KEYS = (
    "home.chart_type_split",
    "home.chart_language",
    "home.chart_modality",
    "home.chart_type_modality",
    "home.chart_stage",
)


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["user"] = User("tester", "oncologist")  # home needs a signed-in user
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def chart_titles(at: AppTest) -> set[str]:
    return {json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")}


def test_empty_workspace_explains_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "nothing-here"))
    at = run_app()
    en = catalog("en")
    assert at.title[0].value == en["home.title"]
    assert not at.get("plotly_chart")
    hint = at.info[0].value
    assert "make run" in hint and "cmkd demo" in hint
    assert en["component.cohort"] in hint and en["component.index"] in hint
    assert any(en["app.disclaimer"] in c for c in captions(at))
    assert en["home.models_missing"] in captions(at)


def test_built_cohort_shows_charts_and_counts(tiny_workspace: Path) -> None:
    from core.data.cohort_io import load_cases

    n_cases = len(load_cases(tiny_workspace / "cohort"))
    at = run_app()
    assert chart_titles(at) == {catalog("en")[k] for k in CHART_KEYS}
    cases = next(m for m in at.metric if m.label == catalog("en")["home.metric_cases"])
    assert cases.value == str(n_cases)


def test_switching_to_portuguese_translates_the_page(tiny_workspace: Path) -> None:
    at = run_app()
    en, pt = catalog("en"), catalog("pt")
    assert at.title[0].value == en["home.title"]

    at.selectbox(key="ui_lang").set_value("pt").run()
    assert not at.exception
    assert at.title[0].value == pt["home.title"] != en["home.title"]
    assert any(pt["app.disclaimer"] in c for c in captions(at))
    assert {m.label for m in at.metric} >= {pt["home.metric_cases"], pt["home.metric_notes"]}
    assert chart_titles(at) == {pt[k] for k in CHART_KEYS}
    # The choice survives a rerun (it lives in session state, not in the URL).
    at.run()
    assert at.selectbox(key="ui_lang").value == "pt"
    assert at.title[0].value == pt["home.title"]


def test_pages_do_not_live_in_a_folder_named_pages() -> None:
    # Streamlit's legacy auto-pages take over a `pages/` folder until st.navigation first
    # runs, so a deep link would render a page without the shell (no disclaimer, no picker).
    assert not (Path(APP).parent / "pages").exists()
