"""Home: what the workspace holds and how to build what is missing."""

from __future__ import annotations

import math
from collections.abc import Mapping

import plotly.graph_objects as go
import streamlit as st

from workbench.i18n import UI_LANGUAGES, label, session_language, translate, translator
from workbench.status import WorkspaceStatus, workspace_status
from workbench.workspace import Workspace

CHART_HEIGHT = 340  # px; two charts side by side stay readable on a laptop screen


def bar(x: list[str], y: list[int], x_title: str, y_title: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=x, y=y, text=y, textposition="auto"))
    return fig.update_layout(xaxis_title=x_title, yaxis_title=y_title)


def type_split_chart(stats: Mapping, lang: str) -> go.Figure:
    by_type_split = stats["by_type_split"]
    types, splits = list(by_type_split), list(stats["by_split"])  # both in schema order
    fig = go.Figure(
        [
            go.Bar(
                name=label("split", split, lang),
                x=types,
                y=[by_type_split[t].get(split, 0) for t in types],
            )
            for split in splits
        ]
    )
    t = translator(lang)
    return fig.update_layout(
        barmode="stack",
        xaxis_title=t("home.axis_cancer_type"),
        yaxis_title=t("home.axis_cases"),
        legend_title_text=t("home.axis_split"),
    )


def type_modality_heatmap(stats: Mapping, lang: str) -> go.Figure:
    t = translator(lang)
    by_type_modality = stats["by_type_modality"]
    types, modalities = list(by_type_modality), list(stats["by_modality"])
    fig = go.Figure(
        go.Heatmap(
            z=[[by_type_modality[t].get(m, 0) for m in modalities] for t in types],
            x=[label("modality", m, lang) for m in modalities],
            y=types,
            colorscale="Blues",
            texttemplate="%{z}",
            colorbar_title_text=t("home.axis_cases"),
        )
    )
    return fig.update_layout(
        xaxis_title=t("home.axis_modality"),
        yaxis_title=t("home.axis_cancer_type"),
        yaxis_autorange="reversed",  # schema order top to bottom, like the bar chart's x axis
    )


def stage_name(stage: str, lang: str) -> str:
    if stage == "unknown":  # cohort_stats' bucket for cases without a recorded stage
        return translate("home.stage_unknown", lang)
    return translate("home.stage_value", lang, stage=stage)


def show_chart(title_key: str, fig: go.Figure, lang: str) -> None:
    title = translate(title_key, lang)
    fig.update_layout(title_text=title, height=CHART_HEIGHT, margin={"t": 48, "b": 8})
    # The i18n key is the element key: stable across languages and reruns.
    st.plotly_chart(fig, key=title_key, alt=title)


def show_cohort(stats: Mapping, lang: str) -> None:
    t = translator(lang)
    show_chart("home.chart_type_split", type_split_chart(stats, lang), lang)
    left, right = st.columns(2)
    with left:
        langs = list(stats["notes_by_language"])
        fig = bar(
            [UI_LANGUAGES.get(code, code) for code in langs],
            [stats["notes_by_language"][code] for code in langs],
            t("home.axis_language"),
            t("home.axis_notes"),
        )
        show_chart("home.chart_language", fig, lang)
        show_chart("home.chart_type_modality", type_modality_heatmap(stats, lang), lang)
    with right:
        modalities = list(stats["by_modality"])
        fig = bar(
            [label("modality", m, lang) for m in modalities],
            [stats["by_modality"][m] for m in modalities],
            t("home.axis_modality"),
            t("home.axis_cases"),
        )
        show_chart("home.chart_modality", fig, lang)
        stages = list(stats["by_stage"])
        fig = bar(
            [stage_name(s, lang) for s in stages],
            [stats["by_stage"][s] for s in stages],
            t("home.axis_stage"),
            t("home.axis_cases"),
        )
        show_chart("home.chart_stage", fig, lang)


def show_models_and_index(status: WorkspaceStatus, lang: str) -> None:
    t = translator(lang)
    st.subheader(t("home.models_header"))
    if status.models:
        rows = [
            {
                t("home.col_name"): m.name,
                t("home.col_kind"): label("model_kind", m.kind, lang),
                t("home.col_version"): m.version,
                t("home.col_created"): m.created_at,
                t("home.col_state"): t("home.model_ok" if m.readable else "home.model_unreadable"),
            }
            for m in status.models
        ]
        st.dataframe(rows, hide_index=True, key="home_models_table")
    else:
        st.caption(t("home.models_missing"))

    index = status.index
    if index is None:
        st.caption(t("home.index_missing"))
    elif not index.readable:
        st.warning(t("home.index_unreadable"))
    else:
        st.markdown(
            t(
                "home.index_ready",
                n_vectors=index.n_vectors,
                index_type=f"`{index.index_type}`",
                teacher_version=f"`{index.teacher_version}`",
            )
        )
    if status.db_present:
        st.caption(t("home.db_present", size_kib=math.ceil(status.db_size_bytes / 1024)))
    else:
        st.caption(t("home.db_missing"))


def render() -> None:
    lang = session_language(st.session_state)
    t = translator(lang)
    status = workspace_status(Workspace.from_env())
    stats = status.cohort_stats
    st.title(t("home.title"))
    st.caption(t("home.workspace_path", path=f"`{status.root}`"))

    index = status.index if status.index and status.index.readable else None
    cases, notes, models, vectors = st.columns(4)
    cases.metric(t("home.metric_cases"), stats["n_cases"] if stats else "—")
    notes.metric(t("home.metric_notes"), sum(stats["notes_by_language"].values()) if stats else "—")
    models.metric(t("home.metric_models"), sum(m.readable for m in status.models))
    vectors.metric(t("home.metric_vectors"), index.n_vectors if index else "—")

    if status.missing:
        parts = ", ".join(t(f"component.{c}") for c in status.missing)
        hint = f"{t('home.missing', parts=parts)}\n\n{t('home.build_hint')}"
        st.info(hint, icon=":material/build:")
    else:
        st.success(t("home.ready"), icon=":material/check_circle:")
    if status.cohort_error:
        st.error(t("home.cohort_error", error=status.cohort_error))

    if stats:
        st.subheader(t("home.cohort_header"))
        show_cohort(stats, lang)
    show_models_and_index(status, lang)


render()
