"""AppTest of the retraining page: admins only; submit a tiny job from the form, see it
finish with the comparison, promote it and roll back; add a language from two uploads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.i18n import catalog
from workbench.jobs import JobService
from workbench.registry import production_version
from workbench.roles import User
from workbench.workspace import Workspace

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "retrain.py")
TIMEOUT_S = 90  # the submit imports torch; the job's worker starts its own Python
EN = catalog("en")


def page(role: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    at.session_state["user"] = User("tester", role)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, column_key: str):
    """The dataframe with that column (AppTest's dataframes carry no key)."""
    return next(d.value for d in at.dataframe if EN[column_key] in d.value.columns)


def button(at: AppTest, label_key: str):
    return next(b for b in at.button if b.label == EN[label_key])


@pytest.mark.parametrize("role", ["nurse", "oncologist", "reviewer", "genetic_counsellor"])
def test_only_admins_reach_the_page(role: str, built_workspace: Path) -> None:
    at = page(role)
    assert [w.value for w in at.warning] == [EN["retrain.not_allowed"].format(role=role)]
    assert [t.value for t in at.title] == [EN["retrain.title"]]
    assert not at.button and not at.selectbox and not at.text_input and not at.dataframe
    assert not at.multiselect and not at.number_input and not at.caption
    assert not (built_workspace / "store.sqlite").exists()  # no service was even asked


def test_signed_out_visitors_are_refused(built_workspace: Path) -> None:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [w.value for w in at.warning] == [EN["app.sign_in_required"]]
    assert not at.button and not at.dataframe


def test_submit_follow_compare_promote_and_roll_back(built_workspace: Path) -> None:
    ws = Workspace(built_workspace)
    original = production_version(ws)
    at = page("admin")
    assert not at.warning
    at.selectbox(key="retrain.profile").set_value("tiny")
    at.multiselect(key="retrain.languages").set_value(["pt"])
    at.number_input(key="retrain.epochs").set_value(1)
    button(at, "retrain.submit").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.success] == [EN["retrain.submitted"].format(id=1)]

    service = JobService(ws)
    job = service.wait(User("tester", "admin"), 1, TIMEOUT_S)
    assert job.state == "succeeded", job.error
    assert job.request.profile == "tiny" and job.request.languages == ("pt",)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    compare = table(at, "retrain.col_new_accuracy")
    assert list(compare[EN["retrain.col_language"]]) == ["en", "pt"]
    assert compare[EN["retrain.col_prod_accuracy"]].notna().all()
    assert len(at.get("plotly_chart")) == 4  # losses, validation, two comparison bars

    button(at, "retrain.promote_this").click()
    at.run()
    assert production_version(ws) == job.version
    assert [s.value for s in at.success] == [EN["retrain.promoted"].format(version=job.version)]
    registry = table(at, "retrain.col_production")
    assert set(registry[EN["retrain.col_version"]]) == {job.version, original}

    button(at, "retrain.rollback").click()
    at.run()
    assert production_version(ws) == original


def test_add_a_language_from_uploads_then_pick_it(built_workspace: Path) -> None:
    pack = Path(__file__).resolve().parents[1] / "data" / "language_pack_it"
    phrases, lexicon = (pack / "phrases.tsv").read_bytes(), (pack / "lexicon.tsv").read_bytes()
    at = page("admin")
    assert "it · Italiano" not in at.multiselect(key="retrain.languages").options
    at.text_input(key="retrain.pack_code").set_value("it")
    at.text_input(key="retrain.pack_name").set_value("Italiano")
    at.file_uploader(key="retrain.pack_phrases").set_value(("phrases.tsv", phrases, "text/plain"))
    bad = lexicon.replace(b"TYPE:LUAD", b"TYPE:NOPE")
    at.file_uploader(key="retrain.pack_lexicon").set_value(("lexicon.tsv", bad, "text/plain"))
    button(at, "retrain.pack_install").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [EN["retrain.pack_rejected"].format(
        error="lexicon.tsv: line 3: unknown concept id 'TYPE:NOPE' (not in the shipped lexicon)"
    )]  # fmt: skip
    assert not (built_workspace / "languages" / "it").exists()

    at.file_uploader(key="retrain.pack_lexicon").set_value(("lexicon.tsv", lexicon, "text/plain"))
    button(at, "retrain.pack_install").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [s.value for s in at.success] == [EN["retrain.pack_installed"].format(
        name="Italiano", code="it", phrases=61, concepts=32,
    )]  # fmt: skip
    options = at.multiselect(key="retrain.languages").options
    assert "it · Italiano" in options  # AppTest lists the formatted labels
    installed = JobService(Workspace(built_workspace)).languages(User("a", "admin"))
    assert installed["it"].name == "Italiano"


def test_a_new_session_reattaches_to_a_running_job_and_cancels_it(built_workspace: Path) -> None:
    # A browser reload or an app restart is a new session: the job lives in the store and
    # its folder, so the page finds it running and can still cancel it.
    from workbench.jobs import JobRequest

    ws = Workspace(built_workspace)
    admin = User("tester", "admin")
    endless = JobRequest(profile="tiny", languages=("pt",), epochs=100_000, max_minutes=3.0)
    job_id = JobService(ws).submit(admin, endless)
    service = JobService(ws)  # as after a restart: nothing in memory
    deadline = time.monotonic() + TIMEOUT_S
    while service.job(admin, job_id).state != "running":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    at = page("admin")
    assert at.selectbox(key="retrain.job").value == job_id
    at.button(key="retrain.cancel").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert service.wait(admin, job_id, TIMEOUT_S).state == "cancelled"
