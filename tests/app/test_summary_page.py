"""AppTest of the summary page: preview beside the clinician's language, trace, free text,
approval (by role), exports only after approval, facts entered by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.summaries.render import PhraseBank
from workbench.i18n import catalog
from workbench.roles import User

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "summary.py")
TIMEOUT_S = 60  # first run loads the knowledge base and the lexicon
ONCOLOGIST = User("olga", "oncologist")  # may write and approve


def run(target: AppTest | object) -> AppTest:
    """Run the app (or the app a widget belongs to, after an interaction) and check it."""
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page(user: User = ONCOLOGIST, ui_lang: str = "en") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    at.session_state["ui_lang"] = ui_lang
    at.session_state["user"] = user
    return run(at)


def texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_swahili_preview_beside_english_then_approve_and_export(tiny_workspace: Path) -> None:
    en, sw = catalog("en"), PhraseBank.load("sw")
    at = page()
    assert at.title[0].value == en["summary.title"]
    assert any(en["summary.decision_support"] in w.value for w in at.warning)
    assert at.selectbox(key="summary.lang").value == "sw"
    headings = [h.value for h in at.subheader]
    assert headings[:2] == ["For the patient: Kiswahili", "For you: English"]
    assert sw.phrase("title") in texts(at) and PhraseBank.load("en").phrase("title") in texts(at)
    assert at.get("dataframe")  # the trace, one row per sentence
    assert not at.get("download_button") and en["summary.export_locked"] in [
        c.value for c in at.caption
    ]

    at = run(at.button(key="summary.approve").click())
    assert at.success[0].value.startswith("Approved by olga (oncologist)")
    keys = {b.key for b in at.get("download_button")}
    assert {"summary.download.pdf", "summary.download.txt", "summary.download.md"} <= keys

    # Saving free text removes the approval, and the downloads with it.
    case = at.selectbox(key="summary.case").value
    scope = f"{case}.sw"
    at.text_area(key=f"summary.note.{scope}").input("Rudi kliniki Jumanne.")
    at = run(at.button(key=f"FormSubmitter:summary.edit.{scope}-{en['summary.save']}").click())
    assert r"Rudi kliniki Jumanne\." in texts(at)  # free text is shown literally, escaped
    assert not at.success and not at.get("download_button")
    assert at.info[0].value == en["summary.saved"]


def test_nurse_cannot_approve_and_reviewer_cannot_write(tiny_workspace: Path) -> None:
    en = catalog("en")
    nurse = page(User("nadia", "nurse"))
    assert not [b for b in nurse.button if b.key == "summary.approve"]
    assert en["summary.approve_not_allowed"] in [c.value for c in nurse.caption]
    reviewer = page(User("rita", "reviewer"))
    refusal = en["summary.not_allowed"].format(role="reviewer")
    assert refusal in [w.value for w in reviewer.warning]
    assert not reviewer.subheader and not reviewer.get("dataframe")


def test_facts_by_hand_in_portuguese_ui(tiny_workspace: Path) -> None:
    pt = catalog("pt")
    at = page(ui_lang="pt")
    at = run(at.radio(key="summary.source").set_value("manual"))
    at = run(at.selectbox(key="summary.lang").set_value("pt"))
    at = run(at.selectbox(key="summary.manual.type").set_value("LUAD"))
    at = run(at.selectbox(key="summary.manual.stage").set_value("IV"))
    at = run(at.text_area(key="summary.manual.drivers").input("EGFR L858R"))
    assert pt["summary.same_language"] in [c.value for c in at.caption]
    body = texts(at)
    assert "Você tem câncer de pulmão do tipo adenocarcinoma." in body
    assert "EGFR" in body and ("osimertinibe" in body or "erlotinibe" in body)
    at = run(at.text_area(key="summary.manual.drivers").input("braf! V600E"))
    assert at.error and at.error[0].value.startswith(pt["summary.invalid_facts"].split("{")[0])


def test_empty_workspace_offers_entry_by_hand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "empty"))
    at = page()
    assert at.info[0].value == catalog("en")["summary.no_cohort"]
    at = run(at.radio(key="summary.source").set_value("manual"))
    assert "Una saratani ya matiti." in texts(at)  # the first type (BRCA), in Swahili
