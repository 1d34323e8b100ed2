"""Slide viewer: open a case's whole-slide image (or an uploaded one), pan and zoom through its
DeepZoom levels, see which tiles tissue QC flags, and overlay how similar each tile is to a
query in any language; upload a slide or a tile image and see its QC and nearest cases.

The page collects input and draws; `workbench.slide_service` checks the role, audits views and
uploads, reads tiles (cached) and computes QC and the heatmap. The search page may open a case
here by setting `slides.case_id` (and `slides.query`, `slides.lang`) in session state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.data.lexicon import default_lexicon
from core.data.schema import LANGUAGES
from core.errors import CmkdError, InputError
from core.slides import IMAGE_SUFFIXES, SLIDE_SUFFIXES, SlideReader, View, Viewport
from workbench.i18n import UI_LANGUAGES, session_language, translator
from workbench.roles import User
from workbench.search_service import concept_term
from workbench.slide_service import Heatmap, SlideQC, SlideRef, SlideService, TileReport
from workbench.ui import page_user
from workbench.workspace import Workspace

# Set by the search page: the case to open, the query and its language.
CASE_REQUEST_KEY = "slides.case_id"
QUERY_KEY = "slides.query"
LANG_KEY = "slides.lang"
OPENED_KEY = "slides.opened"  # (slide key, SlideRef): audited once per slide opened
UPLOADED_KEY = "slides.uploaded"  # (file id, Upload or error message) of the last upload
MY_SLIDES_KEY = "slides.my_uploads"  # {upload id: file name} of this session's slide uploads
VIEW_SIZE = (960, 640)  # viewport px
THUMB_PX = 480  # overview edge
OVERVIEW_HEIGHT = 420  # px
MATCHES = 5  # nearest cases shown for an uploaded tile


@st.cache_resource(show_spinner=False)
def _service(root: str) -> SlideService:
    return SlideService(Workspace(Path(root)))


def _once(key: str, ident: object, make: Callable[[], Any]) -> Any:
    """`make()` kept in session state until `ident` changes, so reruns repeat no audit."""
    held = st.session_state.get(key)
    if held is None or held[0] != ident:
        held = st.session_state[key] = (ident, make())
    return held[1]


def _query_inputs(t: Callable[..., str], ui_lang: str) -> tuple[str, str]:
    if st.session_state.get(LANG_KEY) not in LANGUAGES:
        st.session_state[LANG_KEY] = ui_lang
    left, right = st.columns([3, 1])
    query = left.text_input(t("slides.query"), key=QUERY_KEY, help=t("slides.query_help"))
    lang = right.selectbox(
        t("slides.lang"), LANGUAGES, key=LANG_KEY, format_func=UI_LANGUAGES.__getitem__
    )
    return query, lang


def _pick_slide(service: SlideService, user: User, t: Callable[..., str]) -> str | None:
    """The chosen slide's key: "case:<id>" or "upload:<id>"; None when there is none."""
    requested = st.session_state.pop(CASE_REQUEST_KEY, None)
    mine: dict[str, str] = st.session_state.get(MY_SLIDES_KEY, {})
    sources = ("case", "upload") if mine else ("case",)
    if requested:
        st.session_state["slides.source"] = "case"
    source = st.radio(
        t("slides.source"), sources, key="slides.source", horizontal=True,
        format_func=lambda s: t(f"slides.source_{s}"),
    )  # fmt: skip
    if source == "upload":
        upload_id = st.selectbox(
            t("slides.uploaded_slide"), tuple(mine), key="slides.upload_pick",
            format_func=mine.__getitem__,
        )  # fmt: skip
        return f"upload:{upload_id}"
    cases = {c.case_id: c for c in service.slide_cases(user)}
    if requested and requested not in cases:
        cases[requested] = service.case(user, requested)  # a case with tile images only
    if not cases:
        st.info(t("slides.no_slides"), icon=":material/build:")
        return None
    if requested:
        st.session_state["slides.case"] = requested
    case_id = st.selectbox(
        t("slides.case"), tuple(cases), key="slides.case",
        format_func=lambda cid: f"{cid} · {cases[cid].cancer_type}",
    )  # fmt: skip
    return f"case:{case_id}"


def _overview(
    thumb: np.ndarray,
    view: View,
    slide_qc: SlideQC | None,
    heatmap: Heatmap | None,
    t: Callable[..., str],
) -> go.Figure:
    """The whole slide with the viewport's outline, the heatmap and the QC marks on top."""
    th, tw = thumb.shape[:2]
    fig = go.Figure(go.Image(z=thumb, hoverinfo="skip"))
    if heatmap is not None:
        g = heatmap.grid
        step_x, step_y = g.cell * tw / g.width, g.cell * th / g.height
        fig.add_trace(
            go.Heatmap(
                z=heatmap.scores, x0=step_x / 2, dx=step_x, y0=step_y / 2, dy=step_y,
                opacity=0.55, colorscale="Inferno", hoverongaps=False,
                colorbar={"title": {"text": t("slides.similarity")}, "thickness": 12},
                hovertemplate=t("slides.similarity") + ": %{z:.3f}<extra></extra>",
            )
        )  # fmt: skip
    if slide_qc is not None:
        g = slide_qc.grid
        for flags, name, colour in ((slide_qc.qc.background, "slides.qc_background", "#9e9e9e"),
                                    (slide_qc.qc.pen, "slides.qc_pen", "#00bcd4")):  # fmt: skip
            rows, cols = np.divmod(np.flatnonzero(flags), g.cols)
            fig.add_trace(
                go.Scatter(
                    x=(cols + 0.5) * g.cell * tw / g.width, y=(rows + 0.5) * g.cell * th / g.height,
                    mode="markers", name=t(name), hoverinfo="name",
                    marker={"symbol": "x-thin", "size": 9, "line": {"width": 2, "color": colour}},
                )
            )  # fmt: skip
    x0, y0, x1, y1 = view.fraction_box()
    fig.add_shape(type="rect", x0=x0 * tw, x1=x1 * tw, y0=y0 * th, y1=y1 * th,
                  line={"color": "#1e88e5", "width": 2})  # fmt: skip
    fig.update_layout(
        height=OVERVIEW_HEIGHT, margin={"l": 0, "r": 0, "t": 0, "b": 0},
        legend={"orientation": "h", "y": -0.02}, showlegend=slide_qc is not None,
    )  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _zoom(reader: SlideReader, ref: SlideRef, t: Callable[..., str]) -> int:
    """The DeepZoom level picked with the zoom slider, from "whole slide fits" to full size."""
    levels = tuple(range(reader.fit_level(*VIEW_SIZE), reader.levels))
    if len(levels) == 1:
        return levels[0]
    top = reader.levels - 1
    return st.select_slider(
        t("slides.zoom"), levels, key=f"slides.level.{ref.key}",
        format_func=lambda level: f"1:{2 ** (top - level)}",
    )  # fmt: skip


def _show_slide(
    service: SlideService, user: User, ref: SlideRef, query: str, lang: str, t: Callable[..., str]
) -> None:
    reader = service.reader(user, ref)
    w, h = reader.dimensions
    st.caption(t("slides.slide_info", width=w, height=h, mpp=f"{reader.mpp:.2f}",
                 vendor=reader.vendor or "?"))  # fmt: skip
    controls = st.columns([2, 1, 1, 1, 1])
    with controls[0]:
        level = _zoom(reader, ref, t)
    x = controls[1].slider(t("slides.pan_x"), 0, 100, 50, key="slides.x")
    y = controls[2].slider(t("slides.pan_y"), 0, 100, 50, key="slides.y")
    show_qc = controls[3].toggle(t("slides.show_qc"), key="slides.show_qc")
    show_heat = controls[4].toggle(t("slides.show_heatmap"), value=True, key="slides.show_heat")
    view = service.view(user, ref, Viewport(level, x / 100, y / 100, *VIEW_SIZE))
    slide_qc = service.qc(user, ref)
    heatmap = None
    if show_heat and query.strip():
        try:
            heatmap = service.heatmap(user, ref, query, lang)
        except InputError as exc:
            st.warning(t("slides.heatmap_error", error=exc), icon=":material/warning:")
    left, right = st.columns([3, 2])
    left.image(view.image, caption=t("slides.view_caption", x0=view.box[0], y0=view.box[1]))
    with right:
        fig = _overview(reader.thumbnail(THUMB_PX), view, slide_qc if show_qc else None,
                        heatmap, t)  # fmt: skip
        st.plotly_chart(fig, key="slides.overview", config={"displayModeBar": False})
        counts = slide_qc.counts()
        cols = st.columns(3)
        for col, name in zip(cols, ("tissue", "background", "pen"), strict=True):
            col.metric(t(f"slides.qc_{name}"), counts[name])
        if heatmap is not None:
            st.caption(t("slides.heatmap_caption", encoder=t(f"slides.encoder_{heatmap.encoder}")))
        elif query.strip() == "":
            st.caption(t("slides.heatmap_hint"))


def _show_tiles(
    service: SlideService, user: User, case_id: str, query: str, lang: str, t: Callable[..., str]
) -> None:
    """A case without a whole slide: its tile images with QC (and similarity to the query)."""
    st.info(t("slides.tiles_only", case=case_id), icon=":material/grid_view:")
    tiles, qc = _once(OPENED_KEY, f"tiles:{case_id}", lambda: service.tiles(user, case_id))
    scores = None
    if query.strip():
        try:
            scores = service.tile_scores(user, tiles, query, lang)
        except InputError as exc:
            st.warning(t("slides.heatmap_error", error=exc), icon=":material/warning:")
    for i, column in enumerate(st.columns(len(tiles))):
        flag = "background" if qc.background[i] else "pen" if qc.pen[i] else "tissue"
        caption = t(f"slides.qc_{flag}")
        if scores is not None:
            caption += f" · {t('slides.similarity')} {scores[i]:.3f}"
        column.image(tiles[i], caption=caption)


def _viewer(service: SlideService, user: User, t: Callable[..., str], ui_lang: str) -> None:
    query, lang = _query_inputs(t, ui_lang)
    key = _pick_slide(service, user, t)
    if key is None:
        return
    source, ident = key.split(":", 1)
    if source == "case" and not service.case(user, ident).slide_path:
        _show_tiles(service, user, ident, query, lang, t)
        return
    opener = service.open_case if source == "case" else service.open_upload
    ref = _once(OPENED_KEY, key, lambda: opener(user, ident))
    _show_slide(service, user, ref, query, lang, t)


def _upload(service: SlideService, user: User, t: Callable[..., str]) -> None:
    types = [s.lstrip(".") for s in SLIDE_SUFFIXES + IMAGE_SUFFIXES]
    st.caption(t("slides.upload_help", slide_mb=service.limits.max_slide_bytes // 2**20,
                 image_mb=service.limits.max_image_bytes // 2**20))  # fmt: skip
    uploaded = st.file_uploader(t("slides.upload"), type=types, key="slides.upload")
    if uploaded is None:
        return

    def store() -> Any:
        try:
            return service.upload(user, uploaded, uploaded.name)
        except InputError as exc:
            return str(exc)

    result = _once(UPLOADED_KEY, uploaded.file_id, store)
    if isinstance(result, str):
        st.error(t("slides.upload_rejected", error=result), icon=":material/error:")
        return
    if result.kind == "slide":
        st.session_state.setdefault(MY_SLIDES_KEY, {})[result.upload_id] = uploaded.name
        st.success(t("slides.upload_slide_ok", name=uploaded.name), icon=":material/check:")
        return
    try:
        report: TileReport = service.tile_report(user, result, MATCHES)
    except CmkdError as exc:  # no teacher or index yet, or a stale index
        st.warning(t("slides.tile_report_error", error=exc), icon=":material/warning:")
        return
    left, right = st.columns([1, 2])
    flag = "background" if report.qc.background[0] else "pen" if report.qc.pen[0] else "tissue"
    left.image(report.image, caption=t(f"slides.qc_{flag}"))
    left.caption(t("slides.tile_qc", glass=f"{report.qc.glass[0]:.0%}",
                   ink=f"{report.qc.ink[0]:.0%}"))  # fmt: skip
    right.subheader(t("slides.matches"))
    lexicon, lang = default_lexicon(), session_language(st.session_state)
    rows = [
        {t("slides.col_case"): m.case_id, t("slides.col_type"): m.cancer_type,
         t("slides.col_subtype"): m.subtype,
         t("slides.col_histology"): "; ".join(concept_term(lexicon, c, lang) for c in m.histology),
         t("slides.col_score"): round(m.score, 3)}
        for m in report.matches
    ]  # fmt: skip
    right.dataframe(rows, hide_index=True, key="slides.matches")


def render() -> None:
    ui_lang = session_language(st.session_state)
    t = translator(ui_lang)
    st.title(t("slides.title"))
    st.caption(t("slides.intro"))
    user = page_user("view_slides", "slides", t)
    if user is None:
        return
    service = _service(str(Workspace.from_env().root))
    viewer, upload = st.tabs([t("slides.tab_viewer"), t("slides.tab_upload")])
    try:
        with upload:  # first, so that a slide just uploaded is listed in the viewer
            _upload(service, user, t)
        with viewer:
            _viewer(service, user, t, ui_lang)
    except CmkdError as exc:
        st.error(t("slides.error", error=exc), icon=":material/error:")


render()
