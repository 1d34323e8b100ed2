"""Retraining (admins only): submit a distillation job, follow it live, compare the new
student with the production one, promote a version or roll back.

The page only collects input and shows state: `workbench.jobs` runs each job in a worker
process and keeps its state in the store and its progress in files, so a reload or an app
restart finds the job again; `workbench.registry` holds the versions and production. Both
check the `retrain` permission themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from core.data.schema import STUDENT_LANGUAGES
from core.errors import CmkdError
from workbench.i18n import UI_LANGUAGES, session_language, translator
from workbench.jobs import DEVICES, PROFILES, Job, JobProgress, JobRequest, JobService
from workbench.registry import Registry
from workbench.roles import User
from workbench.ui import page_user
from workbench.workspace import Workspace

POLL_S = 1.0  # how often the job panel re-reads the store and the progress files
CHART_HEIGHT = 320  # px
GRID_CHOICES: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)  # the article's grid and a sharper T
MESSAGE_KEY = "retrain.message"  # (kind, text) shown once after the rerun an action causes
STATES_KEY = "retrain.seen_states"  # job states at the last panel run, to notice one finish
DEFAULTS = JobRequest()


@st.cache_resource(show_spinner=False)
def _services(root: str) -> tuple[JobService, Registry]:
    ws = Workspace(Path(root))
    service = JobService(ws)
    return service, Registry(ws, service.store)


def _add_language(service: JobService, user: User, t: Callable[..., str]) -> dict[str, str]:
    """The "Add a language" expander: install a language pack from two uploaded files.
    Returns code -> name of the installed packs."""
    packs = {code: pack.name for code, pack in service.languages(user).items()}
    with st.expander(t("retrain.add_language")):
        st.caption(t("retrain.add_language_intro"))
        if packs:
            st.caption(t("retrain.packs_installed",
                         packs=", ".join(f"{c} · {n}" for c, n in packs.items())))  # fmt: skip
        left, right = st.columns(2)
        code = left.text_input(t("retrain.pack_code"), key="retrain.pack_code",
                               help=t("retrain.pack_code_help"), max_chars=2)  # fmt: skip
        name = right.text_input(t("retrain.pack_name"), key="retrain.pack_name")
        phrases = left.file_uploader(t("retrain.pack_phrases"), type=["tsv", "txt"],
                                     key="retrain.pack_phrases",
                                     help=t("retrain.pack_phrases_help"))  # fmt: skip
        lexicon = right.file_uploader(t("retrain.pack_lexicon"), type=["tsv", "txt"],
                                      key="retrain.pack_lexicon",
                                      help=t("retrain.pack_lexicon_help"))  # fmt: skip
        if not st.button(t("retrain.pack_install"), key="retrain.pack_install"):
            return packs
        if phrases is None or lexicon is None or not code.strip():
            st.error(t("retrain.pack_missing"))
            return packs
        try:
            pack = service.add_language(user, code.strip(), phrases.getvalue(),
                                        lexicon.getvalue(), name)  # fmt: skip
        except CmkdError as exc:
            st.error(t("retrain.pack_rejected", error=exc))
            return packs
    st.session_state[MESSAGE_KEY] = ("success", t(
        "retrain.pack_installed", code=pack.code, name=pack.name, phrases=len(pack.phrases),
        concepts=len(pack.terms),
    ))  # fmt: skip
    st.rerun()


def _request_form(
    service: JobService, user: User, packs: dict[str, str], t: Callable[..., str]
) -> None:
    def language_name(code: str) -> str:
        return f"{code} · {UI_LANGUAGES.get(code) or packs.get(code, code)}"

    with st.form("retrain.form"):
        st.subheader(t("retrain.form_header"))
        left, middle, right = st.columns(3)
        profile = left.selectbox(
            t("retrain.profile"), PROFILES, key="retrain.profile",
            format_func=lambda p: t(f"retrain.profile_{p}"),
        )  # fmt: skip
        languages = middle.multiselect(
            t("retrain.languages"), [*STUDENT_LANGUAGES, *packs],
            default=list(STUDENT_LANGUAGES), key="retrain.languages", format_func=language_name,
            help=t("retrain.languages_help"),
        )  # fmt: skip
        cohort = left.text_input(
            t("retrain.cohort"), key="retrain.cohort", help=t("retrain.cohort_help")
        )
        feedback = middle.checkbox(
            t("retrain.review_feedback"), key="retrain.review_feedback",
            help=t("retrain.review_feedback_help"),
        )  # fmt: skip
        device = right.selectbox(t("retrain.device"), DEVICES, key="retrain.device")
        alpha = left.slider(t("retrain.alpha"), 0.0, 1.0, DEFAULTS.alpha, 0.05,
                            key="retrain.alpha", help=t("retrain.alpha_help"))  # fmt: skip
        temperature = middle.number_input(
            t("retrain.temperature"), 0.1, 50.0, DEFAULTS.temperature, 0.5,
            key="retrain.temperature",
        )  # fmt: skip
        grid = right.multiselect(
            t("retrain.grid"), GRID_CHOICES, key="retrain.grid", help=t("retrain.grid_help")
        )
        epochs = left.number_input(t("retrain.epochs"), 1, 1000, DEFAULTS.epochs,
                                   key="retrain.epochs")  # fmt: skip
        batch_size = middle.number_input(t("retrain.batch_size"), 4, 1024, DEFAULTS.batch_size,
                                         key="retrain.batch_size")  # fmt: skip
        threshold = right.number_input(
            t("retrain.threshold"), 0.001, 0.25, DEFAULTS.uncertainty_threshold, 0.005,
            format="%.3f", key="retrain.threshold", help=t("retrain.threshold_help"),
        )  # fmt: skip
        unsure_percent = left.number_input(
            t("retrain.quantile"), 0, 50, round(100 * (1 - DEFAULTS.uncertainty_quantile)),
            key="retrain.quantile", help=t("retrain.quantile_help"),
        )  # fmt: skip
        processes = middle.number_input(t("retrain.processes"), 1, 64, DEFAULTS.processes,
                                        key="retrain.processes")  # fmt: skip
        max_minutes = right.number_input(
            t("retrain.max_minutes"), 0.1, 24 * 60.0, DEFAULTS.max_minutes, 0.5,
            key="retrain.max_minutes",
        )  # fmt: skip
        entity = right.checkbox(t("retrain.entity_attention"), DEFAULTS.entity_attention,
                                key="retrain.entity_attention")  # fmt: skip
        quantum = right.checkbox(t("retrain.quantum_head"), DEFAULTS.quantum_head,
                                 key="retrain.quantum_head")  # fmt: skip
        submitted = st.form_submit_button(t("retrain.submit"), type="primary")
    if not submitted:
        return
    try:
        request = JobRequest(
            languages=tuple(languages), cohort_dir=cohort.strip(),
            use_review_feedback=feedback, alpha=alpha, temperature=temperature,
            epochs=int(epochs), batch_size=int(batch_size), uncertainty_threshold=threshold,
            uncertainty_quantile=1 - unsure_percent / 100 if unsure_percent else 0.0,
            entity_attention=entity, quantum_head=quantum, temperature_grid=tuple(sorted(grid)),
            device=device, processes=int(processes), max_minutes=max_minutes, profile=profile,
        )  # fmt: skip
        job_id = service.submit(user, request)
    except CmkdError as exc:
        st.error(t("retrain.rejected", error=exc))
        return
    st.session_state["retrain.job"] = job_id
    st.session_state[MESSAGE_KEY] = ("success", t("retrain.submitted", id=job_id))
    st.rerun()


def _loss_chart(progress: JobProgress, t: Callable[..., str]) -> None:
    names = sorted({name for _, _, parts in progress.losses for name in parts})
    fig = go.Figure()
    x = [f"{run + 1}:{step}" if progress.runs > 1 else step for run, step, _ in progress.losses]
    for name in names:
        y = [parts.get(name) for _, _, parts in progress.losses]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name))
    fig.update_layout(title_text=t("retrain.chart_loss"), height=CHART_HEIGHT,
                      margin={"t": 48, "b": 8}, xaxis_title=t("retrain.axis_step"))  # fmt: skip
    st.plotly_chart(fig, key="retrain.chart_loss")


def _validation_chart(progress: JobProgress, t: Callable[..., str]) -> None:
    fig = go.Figure()
    langs = sorted({lang for _, r in progress.epochs for lang in r.get("val", {})})
    for metric in ("accuracy", "recall_at_10"):
        for lang in langs:
            points = [(run, r) for run, r in progress.epochs if lang in r.get("val", {})]
            fig.add_trace(go.Scatter(
                x=[r["step"] if progress.runs == 1 else f"{run + 1}:{r['step']}"
                   for run, r in points],
                y=[r["val"][lang][metric] for _, r in points], mode="lines+markers",
                name=f"{lang} {t(f'retrain.metric_{metric}')}",
                line={"dash": "solid" if metric == "accuracy" else "dot"},
            ))  # fmt: skip
    fig.update_layout(title_text=t("retrain.chart_validation"), height=CHART_HEIGHT,
                      margin={"t": 48, "b": 8}, xaxis_title=t("retrain.axis_step"),
                      yaxis_range=[0, 1.05])  # fmt: skip
    st.plotly_chart(fig, key="retrain.chart_validation")


def _comparison(run: dict[str, Any], t: Callable[..., str]) -> None:
    comparison = run.get("comparison") or {}
    new, prod = comparison.get("new") or {}, comparison.get("production") or {}
    st.subheader(t("retrain.compare_header"))
    st.caption(t("retrain.compare_caption",
                 production=comparison.get("production_version") or t("retrain.none")))  # fmt: skip
    if comparison.get("error"):
        st.warning(t("retrain.compare_error", error=comparison["error"]))
    rows = [
        {
            t("retrain.col_language"): lang,
            t("retrain.col_new_accuracy"): m["accuracy"],
            t("retrain.col_prod_accuracy"): prod.get(lang, {}).get("accuracy"),
            t("retrain.col_new_recall"): m["recall_at_10"],
            t("retrain.col_prod_recall"): prod.get(lang, {}).get("recall_at_10"),
        }
        for lang, m in new.items()
    ]
    st.dataframe(rows, hide_index=True, key="retrain.compare_table")
    columns = st.columns(2)
    for column, metric in zip(columns, ("accuracy", "recall_at_10"), strict=True):
        fig = go.Figure([
            go.Bar(name=t("retrain.new_student"), x=list(new),
                   y=[m[metric] for m in new.values()]),
            go.Bar(name=t("retrain.production_student"), x=list(new),
                   y=[prod.get(lang, {}).get(metric) for lang in new]),
        ])  # fmt: skip
        fig.update_layout(barmode="group", title_text=t(f"retrain.metric_{metric}"),
                          height=CHART_HEIGHT, margin={"t": 48, "b": 8},
                          yaxis_range=[0, 1.05])  # fmt: skip
        with column:
            st.plotly_chart(fig, key=f"retrain.compare_{metric}")


def _job_detail(
    job: Job, service: JobService, registry: Registry, user: User, t: Callable[..., str]
) -> None:
    progress = service.progress(user, job.id)
    fraction = 1.0 if job.state == "succeeded" else progress.fraction
    st.progress(fraction, text=t("retrain.progress", state=t(f"retrain.state_{job.state}"),
                                 step=progress.step, total=progress.total,
                                 run=progress.run + 1, runs=progress.runs))  # fmt: skip
    if job.state == "failed":
        st.error(t("retrain.failed", error=job.error))
    if not job.done and st.button(t("retrain.cancel"), key="retrain.cancel"):
        service.cancel(user, job.id)
        # App scope: a fragment-scoped rerun raises when the click arrives in a full run.
        st.rerun()
    if progress.losses:
        left, right = st.columns(2)
        with left:
            _loss_chart(progress, t)
        with right:
            _validation_chart(progress, t)
    if job.state != "succeeded":
        return
    try:
        run = registry.show(user, job.version)
    except CmkdError as exc:  # removed since
        st.caption(str(exc))
        return
    _comparison(run, t)
    if run["production"]:
        st.caption(t("retrain.is_production"))
    elif st.button(t("retrain.promote_this"), key="retrain.promote_job", type="primary"):
        _promote(registry, user, job.version, t)


def _promote(registry: Registry, user: User, version: str, t: Callable[..., str]) -> None:
    try:
        registry.promote(user, version)
    except CmkdError as exc:
        st.session_state[MESSAGE_KEY] = ("error", t("retrain.action_failed", error=exc))
    else:
        st.session_state[MESSAGE_KEY] = ("success", t("retrain.promoted", version=version))
    st.rerun(scope="app")


@st.fragment(run_every=POLL_S)
def _jobs_panel(service: JobService, registry: Registry, user: User, t: Callable[..., str]) -> None:
    st.subheader(t("retrain.jobs_header"))
    jobs = service.jobs(user)
    states = {j.id: j.state for j in jobs}
    seen = st.session_state.get(STATES_KEY, {})
    st.session_state[STATES_KEY] = states
    if any(j.done and seen.get(j.id, j.state) != j.state for j in jobs):
        st.rerun(scope="app")  # a job finished: the registry panel shows its version
    if not jobs:
        st.caption(t("retrain.no_jobs"))
        return
    st.dataframe([{
        t("retrain.col_job"): j.id, t("retrain.col_state"): t(f"retrain.state_{j.state}"),
        t("retrain.col_user"): j.user, t("retrain.col_created"): j.created_at,
        t("retrain.col_finished"): j.finished_at or "", t("retrain.col_version"): j.version,
        t("retrain.col_error"): j.error,
    } for j in jobs], hide_index=True, key="retrain.jobs_table")  # fmt: skip
    by_id = {j.id: j for j in jobs}
    if st.session_state.get("retrain.job") not in by_id:
        st.session_state["retrain.job"] = jobs[0].id
    picked = st.selectbox(
        t("retrain.pick_job"), list(by_id), key="retrain.job",
        format_func=lambda i: f"#{i} · {t(f'retrain.state_{by_id[i].state}')}",
    )  # fmt: skip
    _job_detail(by_id[picked], service, registry, user, t)


def _registry_panel(registry: Registry, user: User, t: Callable[..., str]) -> None:
    st.subheader(t("retrain.registry_header"))
    production = registry.production_version()
    st.caption(t("retrain.production", version=production or t("retrain.none")))
    versions = registry.versions(user)
    if not versions:
        st.caption(t("retrain.no_versions"))
    else:

        def mean(values: list[float]) -> float | None:
            return round(sum(values) / len(values), 4) if values else None

        st.dataframe([{
            t("retrain.col_version"): v.version,
            t("retrain.col_production"): "★" if v.production else "",
            t("retrain.col_created"): v.created_at, t("retrain.col_user"): v.user,
            t("retrain.col_status"): v.status, t("retrain.col_languages"): ", ".join(v.languages),
            t("retrain.col_accuracy"): mean([m["accuracy"] for m in v.heldout.values()]),
            t("retrain.col_recall"): mean([m["recall_at_10"] for m in v.heldout.values()]),
        } for v in versions], hide_index=True, key="retrain.registry_table")  # fmt: skip
        left, right = st.columns([3, 1])
        version = left.selectbox(t("retrain.pick_version"), [v.version for v in versions],
                                 key="retrain.version")  # fmt: skip
        if right.button(
            t("retrain.promote"), key="retrain.promote", disabled=version == production
        ):
            _promote(registry, user, version, t)
    if st.button(t("retrain.rollback"), key="retrain.rollback", help=t("retrain.rollback_help")):
        try:
            version = registry.rollback(user)
        except CmkdError as exc:
            st.session_state[MESSAGE_KEY] = ("error", t("retrain.action_failed", error=exc))
        else:
            message = t("retrain.rolled_back", version=version)
            st.session_state[MESSAGE_KEY] = ("success", message)
        st.rerun()


def render() -> None:
    t = translator(session_language(st.session_state))
    st.title(t("retrain.title"))
    user = page_user("retrain", "retrain", t)
    if user is None:
        return
    st.caption(t("retrain.intro"))
    if message := st.session_state.pop(MESSAGE_KEY, None):
        kind, text = message
        (st.success if kind == "success" else st.error)(text)
    service, registry = _services(str(Workspace.from_env().root))
    _request_form(service, user, _add_language(service, user, t), t)
    _jobs_panel(service, registry, user, t)
    _registry_panel(registry, user, t)


render()
