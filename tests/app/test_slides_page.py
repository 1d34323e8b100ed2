"""AppTest of the slide viewer: roles, a case opened from the search page with its query,
zoom and pan, the QC overlay, and a rejected and an accepted upload."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.data.cohort_io import load_cases
from workbench.i18n import catalog
from workbench.roles import User
from workbench.store import Store
from workbench.workspace import Workspace

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "slides.py")
TIMEOUT_S = 120  # the first heatmap loads the teacher and the student


def page(role: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    at.session_state["user"] = User("tester", role)
    return at


def test_a_nurse_is_told_she_may_not_view_slides(built_workspace: Path) -> None:
    at = page("nurse").run()
    assert not at.exception
    assert any("nurse" in i.value for i in at.warning) and not at.selectbox


def test_open_a_case_from_search_zoom_pan_and_upload(built_workspace: Path) -> None:
    en = catalog("en")
    ws = Workspace(built_workspace)
    cases = load_cases(ws.cohort_dir)
    with_slide = [c for c in cases if c.slide_path]
    if not with_slide:
        pytest.fail("the tiny cohort (seed 7) should hold whole slides")
    case = with_slide[-1]
    at = page("oncologist")
    at.session_state["slides.case_id"] = case.case_id  # what the search page sets
    at.session_state["slides.query"] = "adenocarcinoma do pulmão"
    at.session_state["slides.lang"] = "pt"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == en["slides.title"]
    assert at.selectbox(key="slides.case").value == case.case_id
    assert at.text_input(key="slides.query").value == "adenocarcinoma do pulmão"
    assert any(en["slides.encoder_student"] in c.value for c in at.caption)  # heatmap drawn
    zoom = at.select_slider(key=f"slides.level.case:{case.case_id}")
    assert zoom.options[-1] == "1:1"  # full size, from the level where the slide fits
    full = zoom.value + len(zoom.options) - 1
    zoom.set_value(full).run()
    assert at.select_slider(key=f"slides.level.case:{case.case_id}").value == full
    at.slider(key="slides.x").set_value(100).run()
    at.toggle(key="slides.show_qc").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: int(m.value) for m in at.metric}
    assert metrics[en["slides.qc_tissue"]] + metrics[en["slides.qc_background"]] > 0
    views = Store(ws.db_path).audit_entries(action="view_slide")
    assert [e.target for e in views] == [case.case_id]  # opened once, however often redrawn

    at.file_uploader(key="slides.upload").set_value(("scan.png", b"hello", "image/png")).run()
    assert any("scan.png: not an image" in e.value for e in at.error)
    tile = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 170)).save(tile, format="PNG")  # eosin-pink
    at.file_uploader(key="slides.upload").set_value(("t.png", tile.getvalue(), "image/png")).run()
    assert not at.exception and not at.error
    (matches,) = (d.value for d in at.dataframe)
    assert len(matches) == 5 and set(matches[en["slides.col_case"]]) <= {c.case_id for c in cases}
    # TILs and necrosis in words: "brisk tumour-infiltrating lymphocytes; focal necrosis"
    assert all(";" in h for h in matches[en["slides.col_histology"]])
