"""AppTest of the search page over the tiny real models: search, results per modality with
evidence, escaping, review buttons, more like this, the slide hand-off, bad input, roles."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from workbench.i18n import catalog
from workbench.review_service import ReviewService
from workbench.roles import User
from workbench.store import Store

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "search.py")
TIMEOUT_S = 120  # first run loads the models, the index and the cohort
ONCOLOGIST = User("olga", "oncologist")


def run(target) -> AppTest:  # noqa: ANN001 - an AppTest or one of its widgets
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page(user: User, ui_lang: str = "en") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    at.session_state["ui_lang"] = ui_lang
    at.session_state["user"] = user
    return run(at)


def search(at: AppTest, query: str) -> AppTest:
    at.text_area(key="search.query").input(query)
    submit = catalog(at.session_state["ui_lang"])["search.submit"]
    return run(at.button(key=f"FormSubmitter:search.form-{submit}").click())


def test_search_review_and_more_like_this(built_workspace: Path) -> None:
    at = search(page(ONCOLOGIST, "pt"), "Paciente com câncer de mama, HER2 positivo $x$ <b>")
    result = at.session_state["search.result"]
    assert result.lang == "pt" and result.hits
    assert [t.label.split(" (")[0] for t in at.tabs] == ["Lâminas", "Perfis genômicos", "Notas"]
    assert at.get("plotly_chart")  # the oncoprint
    markdown = "\n".join(m.value for m in at.markdown)
    assert "HER2" in markdown and "<b>" not in markdown  # escaped, never raw HTML
    hit = result.groups["note"][0]
    if hit.highlights:
        assert ":orange-background[" in markdown
    # A review from the page lands in the store and leaves the queue; the form opens on demand.
    assert not [b for b in at.button if b.key.startswith("search.verdict.")]
    at = run(at.button(key=f"search.review.{hit.query_id}.{hit.row}").click())
    at = run(at.button(key=f"search.verdict.{hit.query_id}.{hit.row}.relevant").click())
    store = ReviewService(Store(built_workspace / "store.sqlite"))
    assert [(r.row, r.verdict) for r in store.reviews(ONCOLOGIST)] == [(hit.row, "relevant")]
    assert hit.row not in {p.row for p in store.pending(ONCOLOGIST) if p.query_id == hit.query_id}
    assert not [
        b for b in at.button if b.key.startswith(f"search.verdict.{hit.query_id}.{hit.row}.")
    ]
    # More like this: the case's neighbours, never the case itself.
    at = run(at.button(key=f"search.like.{hit.query_id}.{hit.row}").click())
    like = at.session_state["search.result"]
    assert like.like_case == hit.case_id and hit.case_id not in {h.case_id for h in like.hits}


def test_open_slide_hands_the_case_to_the_slide_page(built_workspace: Path) -> None:
    at = search(page(ONCOLOGIST), "breast carcinoma with HER2 amplification")
    result = at.session_state["search.result"]
    slide = result.groups["slide"][0]
    button = at.button(key=f"search.open.{slide.query_id}.{slide.row}")
    at = button.click().run()  # switch_page may fail here when the slide page is missing
    assert at.session_state["slides.case_id"] == slide.case_id
    assert at.session_state["slides.query"] == result.query
    assert at.session_state["slides.lang"] == "en"


def test_bad_query_and_roles(built_workspace: Path) -> None:
    en = catalog("en")
    at = search(page(ONCOLOGIST), "!!! 🙂")
    assert at.error and at.error[0].value.startswith(en["search.invalid"].split("{")[0])
    assert "search.result" not in at.session_state
    nurse = page(User("nina", "nurse"))
    assert nurse.warning[0].value == en["search.not_allowed"].format(role="nurse")
    counsellor = search(page(User("gus", "genetic_counsellor")), "câncer de mama HER2")
    assert counsellor.session_state["search.result"].hits
    assert not [
        b for b in counsellor.button if b.key.startswith(("search.verdict.", "search.review."))
    ]
