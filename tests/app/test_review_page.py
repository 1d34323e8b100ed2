"""AppTest of the review page: queue, verdict form, precision chart, CSV download, roles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from workbench.i18n import catalog
from workbench.review_service import ReviewService, Shown
from workbench.roles import User
from workbench.store import Store

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "review.py")
REVIEWER = User("rita", "reviewer")


def run(target) -> AppTest:  # noqa: ANN001 - an AppTest or one of its widgets
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page(user: User) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["ui_lang"] = "en"
    at.session_state["user"] = user
    return run(at)


def test_queue_verdict_precision_and_download(tiny_workspace: Path) -> None:
    en = catalog("en")
    service = ReviewService(Store(tiny_workspace / "store.sqlite"))
    shown = [Shown("C1", "slide", 7, 1, 0.4), Shown("C2", "note", 8, 1, 0.9)]
    vector = np.ones(3, np.float32)
    service.record_search(REVIEWER, "q1", "psn-x", "pt", ["TYPE:BRCA"], "BRCA", vector, shown)
    at = page(REVIEWER)
    assert en["review.no_reviews"] in [c.value for c in at.caption]
    assert "breast invasive carcinoma" in "\n".join(c.value for c in at.caption)  # the concepts
    at.radio(key="review.verdict.q1.7").set_value("not_relevant")
    at.text_input(key="review.comment.q1.7").input("stroma only")
    at = run(at.button(key="FormSubmitter:review.form.q1.7-" + en["review.save"]).click())
    assert at.success[0].value == en["review.saved"]
    assert [(r.row, r.verdict, r.comment) for r in service.reviews(REVIEWER)] == [
        (7, "not_relevant", "stroma only")
    ]
    assert [p.row for p in service.pending(REVIEWER)] == [8]
    assert at.get("plotly_chart") and at.get("download_button")


def test_roles(tiny_workspace: Path) -> None:
    at = page(User("gus", "genetic_counsellor"))
    assert at.warning[0].value == catalog("en")["review.not_allowed"].format(
        role="genetic_counsellor"
    )
    assert not at.get("download_button")
