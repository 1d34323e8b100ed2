"""Tumour-board search: a query in any workbench language, filters, and the matching slides,
genomic profiles and notes side by side, with the evidence for each match, an oncoprint of
the result cases, "more like this", the slide viewer, and review buttons.

The page collects input and shows results; `workbench.search_service` checks the role, reads
the query, ranks, audits and queues the shown matches for review. Text from users and notes
is shown escaped (markdown specials escaped, HTML never enabled).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from core.data.schema import CANCER_TYPES, LANGUAGES, MODALITIES, STAGES
from core.errors import CmkdError, InputError
from workbench.i18n import UI_LANGUAGES, session_language, translator
from workbench.review_service import VERDICTS, ReviewService
from workbench.roles import User
from workbench.search_service import (
    ALTERATION_OTHER,
    VARIANT_KINDS,
    SearchHit,
    SearchResult,
    concept_term,
    service_for,
)
from workbench.ui import escape_markdown, page_user
from workbench.workspace import Workspace

RESULT_KEY = "search.result"  # the SearchResult shown
LIKE_KEY = "search.like"  # case id whose "more like this" was asked for
REVIEWED_KEY = "search.reviewed"  # {(query_id, row): verdict} recorded in this session
# The one card whose review form is open: a form on each of 30 cards made every search page
# run create ~120 more widgets, the largest share of its CPU time (see benchmarks/load.py).
REVIEWING_KEY = "search.reviewing"
SLIDES_PAGE = "app_pages/slides.py"
AUTO = "auto"
THUMB_PX = 160
ONCOPRINT_MAX_CASES = 30
KINDS = (*dict.fromkeys(VARIANT_KINDS.values()), ALTERATION_OTHER)


def highlighted(snippet: str, spans: tuple[tuple[int, int], ...]) -> str:
    """`snippet` escaped, with the spans naming shared concepts on an orange background."""
    out, pos = [], 0
    for start, end in sorted(spans):
        out += [
            escape_markdown(snippet[pos:start]),
            f":orange-background[{escape_markdown(snippet[start:end])}]",
        ]
        pos = end
    return "".join([*out, escape_markdown(snippet[pos:])])


def _form(t: Callable[..., str]) -> dict | None:
    """The query form; the search arguments when submitted."""
    with st.form("search.form"):
        query = st.text_area(t("search.query"), key="search.query", height=90,
                             placeholder=t("search.query_placeholder"))  # fmt: skip
        left, mid, right, last = st.columns(4)
        lang = left.selectbox(
            t("search.lang"), (AUTO, *LANGUAGES), key="search.lang",
            format_func=lambda c: t("search.lang_auto") if c == AUTO else UI_LANGUAGES[c],
        )  # fmt: skip
        modalities = mid.multiselect(
            t("search.modalities"), MODALITIES, key="search.modalities",
            format_func=lambda m: t(f"search.modality.{m}"), placeholder=t("search.all"),
        )  # fmt: skip
        types = right.multiselect(
            t("search.cancer_types"), CANCER_TYPES, key="search.cancer_types",
            placeholder=t("search.all"),
        )  # fmt: skip
        stages = last.multiselect(t("search.stages"), STAGES, key="search.stages",
                                  placeholder=t("search.all"))  # fmt: skip
        k = st.slider(t("search.k"), 1, 30, 10, key="search.k")
        if not st.form_submit_button(t("search.submit"), type="primary"):
            return None
    return {"query": query, "lang": None if lang == AUTO else lang, "k": k,
            "modalities": tuple(modalities), "cancer_types": tuple(types),
            "stages": tuple(stages)}  # fmt: skip


def _summary(result: SearchResult, t: Callable[..., str]) -> None:
    for notice in result.notices:
        st.info(t(f"search.notice.{notice.code}", **notice.params), icon=":material/info:")
    if result.like_case:
        st.subheader(t("search.like_header", case=result.like_case))
    else:
        lang = UI_LANGUAGES.get(result.lang, result.lang)
        key = "search.lang_detected" if result.lang_detected else "search.lang_given"
        st.caption(t(key, language=lang))
        st.markdown(t("search.predicted", type=result.predicted_type,
                      p=f"{result.type_probability:.2f}"))  # fmt: skip
    if result.abstained:
        st.warning(t("search.abstained", reason=result.abstain_reason), icon=":material/help:")
    if result.weak:
        st.warning(t("search.weak", score=f"{result.best_similarity:.2f}"),
                   icon=":material/signal_cellular_1_bar:")  # fmt: skip
    if result.entities:
        terms = " · ".join(escape_markdown(e.term) for e in result.entities)
        st.markdown(f"{escape_markdown(t('search.entities'))}: {terms}")


def _oncoprint(result: SearchResult, t: Callable[..., str], lang: str, lexicon) -> None:  # noqa: ANN001
    """Genes (rows) x result cases (columns), coloured by the kind of driver event."""
    cases: dict[str, SearchHit] = {}
    for hit in result.hits:
        cases.setdefault(hit.case_id, hit)
    cases = dict(list(cases.items())[:ONCOPRINT_MAX_CASES])
    genes = sorted({a.gene for h in cases.values() for a in h.alterations},
                   key=lambda g: -sum(g in {a.gene for a in h.alterations}
                                      for h in cases.values()))  # fmt: skip
    if not genes:
        st.caption(t("search.oncoprint_empty"))
        return
    names = {k: (t("search.alteration_other") if k == ALTERATION_OTHER
                 else concept_term(lexicon, k, lang)) for k in KINDS}  # fmt: skip
    z, text = [], []
    for gene in genes:
        kinds = [next((a.kind for a in h.alterations if a.gene == gene), None)
                 for h in cases.values()]  # fmt: skip
        z.append([None if k is None else KINDS.index(k) for k in kinds])
        text.append(["" if k is None else names[k] for k in kinds])
    fig = go.Figure(go.Heatmap(
        z=z, x=list(cases), y=genes, text=text, hovertemplate="%{y} · %{x}: %{text}<extra></extra>",
        colorscale="Turbo", zmin=0, zmax=len(KINDS) - 1, showscale=False, xgap=2, ygap=2,
    ))  # fmt: skip
    fig.update_layout(title_text=t("search.oncoprint"), height=120 + 18 * len(genes),
                      margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      yaxis={"autorange": "reversed"})  # fmt: skip
    st.plotly_chart(fig, key="search.oncoprint", width="stretch")


def _review_buttons(
    hit: SearchHit, result: SearchResult, user: User, t: Callable[..., str]
) -> None:
    reviewed = st.session_state.setdefault(REVIEWED_KEY, {})
    done = reviewed.get((hit.query_id, hit.row))
    if done:
        st.caption(t("search.reviewed_as", verdict=t(f"search.verdict.{done}")))
        return
    if not user.can("review"):
        return
    scope = f"{hit.query_id}.{hit.row}"
    if st.session_state.get(REVIEWING_KEY) != (hit.query_id, hit.row):
        if st.button(
            t("search.review"), key=f"search.review.{scope}", icon=":material/rate_review:"
        ):
            st.session_state[REVIEWING_KEY] = (hit.query_id, hit.row)
            st.rerun()
        return
    comment = st.text_input(t("search.comment"), key=f"search.comment.{scope}",
                            max_chars=1000, label_visibility="collapsed",
                            placeholder=t("search.comment"))  # fmt: skip
    for column, verdict in zip(st.columns(len(VERDICTS)), VERDICTS, strict=True):
        if column.button(t(f"search.verdict.{verdict}"), key=f"search.verdict.{scope}.{verdict}"):
            ws = Workspace.from_env()
            # The searcher has the query text at hand: keeping it lets retraining learn from
            # this verdict (a pseudonym alone cannot train the student).
            ReviewService.from_workspace(ws).review(
                user, hit.query_id, hit.row, verdict, comment, query_text=result.query
            )
            reviewed[(hit.query_id, hit.row)] = verdict
            st.session_state.pop(REVIEWING_KEY, None)
            st.rerun()


def _hit(hit: SearchHit, result: SearchResult, user: User, t: Callable[..., str]) -> None:
    with st.container(border=True, key=f"search.hit.{hit.query_id}.{hit.row}"):
        if hit.modality == "slide" and hit.tile_path and Path(hit.tile_path).is_file():
            st.image(hit.tile_path, width=THUMB_PX)
        source = "" if hit.type_source == "teacher" else f" ({t('search.recorded_type')})"
        st.markdown(
            f"**{hit.rank}. {escape_markdown(hit.case_id)}** · {hit.cancer_type}{source} · "
            f"{escape_markdown(hit.subtype or '-')} · {escape_markdown(hit.stage or '-')}  \n"
            f"{t('search.score', score=f'{hit.score:.3f}', cos=f'{hit.similarity:.3f}')}"
        )
        if hit.snippet:
            st.markdown(highlighted(hit.snippet, hit.highlights))
        if hit.shared:
            st.caption(t("search.shared", terms=", ".join(e.term for e in hit.shared)))
        left, right = st.columns(2)
        if left.button(t("search.more_like_this"), key=f"search.like.{hit.query_id}.{hit.row}"):
            st.session_state[LIKE_KEY] = hit.case_id
            st.rerun()
        if (hit.modality == "slide" and user.can("view_slides")
                and right.button(t("search.open_slide"),
                                 key=f"search.open.{hit.query_id}.{hit.row}")):  # fmt: skip
            st.session_state["slides.case_id"] = hit.case_id
            st.session_state["slides.query"] = result.query
            st.session_state["slides.lang"] = result.lang
            st.switch_page(SLIDES_PAGE)
        _review_buttons(hit, result, user, t)


def _results(result: SearchResult, user: User, t: Callable[..., str], lang: str, lexicon) -> None:  # noqa: ANN001
    _summary(result, t)
    if not result.hits:
        st.info(t("search.no_results"), icon=":material/search_off:")
        return
    _oncoprint(result, t, lang, lexicon)
    groups = [m for m in MODALITIES if m in result.groups]
    tabs = st.tabs([f"{t(f'search.modality.{m}')} ({len(result.groups[m])})" for m in groups])
    for tab, modality in zip(tabs, groups, strict=True):
        with tab:
            for hit in result.groups[modality]:
                _hit(hit, result, user, t)


def render() -> None:
    lang = session_language(st.session_state)
    t = translator(lang)
    st.title(t("search.title"))
    st.caption(t("search.intro"))
    user = page_user("search", "search", t)
    if user is None:
        return
    try:
        service = service_for(Workspace.from_env().root)
    except CmkdError as e:  # no models or index yet, or a stale index
        st.error(t("search.unavailable", error=e), icon=":material/error:")
        return
    args = _form(t)
    like = st.session_state.pop(LIKE_KEY, None)
    try:
        if args is not None:
            st.session_state[RESULT_KEY] = service.search(user, ui_lang=lang, **args)
        elif like is not None:
            st.session_state[RESULT_KEY] = service.more_like_this(user, like, ui_lang=lang)
    except InputError as e:
        st.session_state.pop(RESULT_KEY, None)
        st.error(t("search.invalid", error=e), icon=":material/error:")
        return
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        _results(result, user, t, lang, service.lexicon)


render()
