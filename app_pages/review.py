"""Review of search matches: the queue of matches nobody has judged, a verdict form for each,
precision@k from the reviews so far per language and modality, and a CSV export.

`workbench.review_service` checks the `review` role, stores verdicts and audits the export.
"""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

from core.data.lexicon import default_lexicon
from core.errors import CmkdError
from workbench.i18n import UI_LANGUAGES, session_language, translator
from workbench.review_service import VERDICTS, Pending, ReviewService
from workbench.roles import User
from workbench.search_service import concept_term
from workbench.ui import page_user
from workbench.workspace import Workspace

QUEUE_SHOWN = 20  # pending matches listed at once
CHART_HEIGHT = 320  # px


def _precision(service: ReviewService, user: User, t: Callable[..., str]) -> None:
    st.subheader(t("review.precision_header"))
    k = st.number_input(t("review.k"), 1, 100, 10, key="review.k")
    rows = service.precision_at_k(user, int(k))
    if not rows:
        st.caption(t("review.no_reviews"))
        return
    labels = [f"{UI_LANGUAGES.get(p.lang, p.lang)} · {t(f'search.modality.{p.modality}')}"
              for p in rows]  # fmt: skip
    fig = go.Figure(go.Bar(
        x=labels, y=[p.precision for p in rows], text=[f"{p.precision:.2f}" for p in rows],
        customdata=[[p.queries, p.reviewed] for p in rows], textposition="auto",
        hovertemplate=t("review.hover") + "<extra></extra>",
    ))  # fmt: skip
    fig.update_layout(
        title_text=t("review.precision_title", k=int(k)), height=CHART_HEIGHT,
        yaxis={"range": [0, 1]}, margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )  # fmt: skip
    st.plotly_chart(fig, key="review.chart", width="stretch")


def _item(service: ReviewService, user: User, p: Pending, t: Callable[..., str], lang: str) -> None:
    lexicon = default_lexicon()
    concepts = ", ".join(concept_term(lexicon, c, lang) for c in p.concepts) or "-"
    scope = f"{p.query_id}.{p.row}"
    with st.form(key=f"review.form.{scope}"):
        st.markdown(
            f"**{p.case_id}** · {t(f'search.modality.{p.modality}')} · "
            f"{t('review.rank', rank=p.rank, score=f'{p.score:.3f}')}"
        )
        st.caption(t("review.query_info", lang=p.lang, type=p.predicted_type or "-",
                     concepts=concepts, query=p.query_pseudonym))  # fmt: skip
        verdict = st.radio(
            t("review.verdict"), VERDICTS, key=f"review.verdict.{scope}", horizontal=True,
            format_func=lambda v: t(f"search.verdict.{v}"),
        )  # fmt: skip
        comment = st.text_input(t("search.comment"), key=f"review.comment.{scope}", max_chars=1000)
        if st.form_submit_button(t("review.save")):
            service.review(user, p.query_id, p.row, verdict, comment)
            st.session_state["review.flash"] = True
            st.rerun()


def render() -> None:
    lang = session_language(st.session_state)
    t = translator(lang)
    st.title(t("review.title"))
    st.caption(t("review.intro"))
    user = page_user("review", "review", t)
    if user is None:
        return
    service = ReviewService.from_workspace(Workspace.from_env())
    try:
        if st.session_state.pop("review.flash", False):
            st.success(t("review.saved"), icon=":material/check:")
        _precision(service, user, t)
        st.download_button(
            t("review.download"), data=lambda: service.csv_bytes(user),  # audited on click
            file_name="reviews.csv", mime="text/csv", key="review.download", on_click="ignore",
        )  # fmt: skip
        st.subheader(t("review.queue_header"))
        pending = service.pending(user, limit=QUEUE_SHOWN)
        if not pending:
            st.caption(t("review.queue_empty"))
        for p in pending:
            _item(service, user, p, t, lang)
    except CmkdError as e:
        st.error(t("review.error", error=e), icon=":material/error:")


render()
