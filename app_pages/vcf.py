"""VCF interpretation: a genetic counsellor uploads a VCF, picks the sample and the tumour type,
and reads every variant's class, oncogenicity and tier with the evidence behind it.

The page only collects input and shows results: `workbench.vcf_service` checks the role and
the size, audits with pseudonyms and runs the interpretation in a worker process, which a
fragment polls for progress.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from core.errors import CmkdError, InputError
from core.genomics.classes import CLASSES, ONCOGENICITY, TIERS
from core.genomics.interpret import (
    DEFAULT_PANEL_MB,
    NOT_AVAILABLE,
    VariantInterpretation,
    VcfReport,
)
from workbench import vcf_service
from workbench.i18n import label, session_language, translator
from workbench.session import current_user
from workbench.store import Store
from workbench.ui import page_user
from workbench.workspace import Workspace

# Session-state keys (the page's own; widget keys are listed where the widgets are made).
JOB_KEY = "vcf.job"  # the running or finished VcfJob
REPORT_KEY = "vcf.report"  # the VcfReport shown
ERROR_KEY = "vcf.failure"  # (i18n key, message) of the last failed upload
SAMPLES_KEY = "vcf.samples"  # (file id, Samples) of the current upload
EXAMPLE_KEY = "vcf.example"  # case id of the demo-cohort example chosen, when no upload
POLL_S = 1.0  # how often the progress fragment asks the worker
CHART_HEIGHT = 320  # px
MAX_EVIDENCE_ROWS = 20  # CIViC rows shown per variant (the report keeps the best ones)
LIMITS = vcf_service.UploadLimits()
MB = 1024 * 1024


@dataclass(frozen=True)
class _File:
    """What the page interprets: an upload, or an example read from the cohort."""

    file_id: str
    name: str
    read: Callable[[], bytes]

    @classmethod
    def uploaded(cls, f: UploadedFile) -> _File:
        return cls(f.file_id, f.name, f.getvalue)

    @classmethod
    def example(cls, e: vcf_service.ExampleVcf) -> _File:
        return cls(f"example:{e.case_id}", e.filename, e.path.read_bytes)


def _samples(file: _File) -> vcf_service.Samples:
    """The file's samples, read once per file."""
    cached = st.session_state.get(SAMPLES_KEY)
    if cached is None or cached[0] != file.file_id:
        samples = vcf_service.upload_samples(file.read(), file.name, LIMITS)
        st.session_state[SAMPLES_KEY] = cached = (file.file_id, samples)
    return cached[1]


@st.cache_data(show_spinner=False)
def _examples(root: str) -> tuple[vcf_service.ExampleVcf, ...]:
    return vcf_service.example_vcfs(Workspace(Path(root)))


def _use_example(example: vcf_service.ExampleVcf) -> None:
    st.session_state[EXAMPLE_KEY] = example.case_id
    st.session_state["vcf.tumor_type"] = example.tumor_type  # the case's own type


def _example_file(t: Callable[..., str]) -> _File | None:
    """With no upload: the demo cohort's examples to try, and the one chosen, if any."""
    examples = _examples(str(Workspace.from_env().root))
    if not examples:
        return None
    by_id = {e.case_id: e for e in examples}
    with st.expander(t("vcf.example_header"), expanded=EXAMPLE_KEY not in st.session_state):
        st.caption(t("vcf.example_intro"))
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        chosen = left.selectbox(
            t("vcf.example_case"), tuple(by_id), key="vcf.example_choice",
            format_func=lambda c: t("vcf.example_label", case=c, type=by_id[c].tumor_type,
                                    drivers=", ".join(by_id[c].drivers)),
        )  # fmt: skip
        right.button(t("vcf.example_use"), key="vcf.example_use", on_click=_use_example,
                     args=(by_id[chosen],))  # fmt: skip
    example = by_id.get(st.session_state.get(EXAMPLE_KEY, ""))
    return _File.example(example) if example else None


def _sample_name(samples: vcf_service.Samples, t: Callable[..., str]) -> Callable[[str], str]:
    def name(s: str) -> str:
        if s == samples.tumor:
            return t("vcf.sample_tumor", name=s)
        return t("vcf.sample_normal", name=s) if s == samples.normal else s

    return name


def _start(file: _File, sample: str | None, tumor_type: str, panel_mb: float) -> None:
    old = st.session_state.pop(JOB_KEY, None)
    if old is not None:
        old.cleanup()
    st.session_state.pop(REPORT_KEY, None)
    st.session_state.pop(ERROR_KEY, None)
    ws = Workspace.from_env()
    st.session_state[JOB_KEY] = vcf_service.start_upload(
        current_user(st.session_state),
        file.read(),
        file.name,
        Store(ws.db_path),
        ws,
        tumor_type or None,
        sample,
        LIMITS,
        panel_mb,
    )


def _collect() -> None:
    """Move a finished job's report (or error) into session state."""
    job = st.session_state.get(JOB_KEY)
    if job is None or not job.done() or REPORT_KEY in st.session_state:
        return
    try:
        st.session_state[REPORT_KEY] = job.result()
    except CmkdError as exc:  # InputError: the file; otherwise the worker failed
        key = "vcf.error" if isinstance(exc, InputError) else "vcf.internal_error"
        st.session_state[ERROR_KEY] = (key, str(exc))
        st.session_state.pop(JOB_KEY).cleanup()


@st.fragment(run_every=POLL_S)
def _progress(t: Callable[..., str]) -> None:
    job = st.session_state.get(JOB_KEY)
    if job is None or REPORT_KEY in st.session_state:
        return
    if job.done():
        st.rerun(scope="app")
    p = job.progress()
    with st.status(t("vcf.running", file=job.filename), expanded=True):
        st.progress(p.fraction or 0.0, text=t("vcf.progress", records=p.records))


def _bar(
    counts: dict[str, int], names: Callable[[str], str], title: str, t: Callable[..., str], key: str
) -> None:
    fig = go.Figure(
        go.Bar(
            x=[names(k) for k in counts],
            y=list(counts.values()),
            text=list(counts.values()),
            textposition="auto",
        )
    )
    fig.update_layout(
        title_text=title,
        height=CHART_HEIGHT,
        margin={"t": 48, "b": 8},
        yaxis_title=t("vcf.axis_count"),
    )
    st.plotly_chart(fig, key=key)


def _charts(report: VcfReport, lang: str, t: Callable[..., str]) -> None:
    st.subheader(t("vcf.charts_header"))
    counts = report.counts()
    left, middle, right = st.columns(3)
    with left:
        _bar(counts["consequence"], str, t("vcf.chart_consequence"), t, "vcf.chart_consequence")
    with middle:
        _bar(
            counts["oncogenicity"],
            lambda o: label("vcf.oncogenicity", o, lang),
            t("vcf.chart_oncogenicity"),
            t,
            "vcf.chart_oncogenicity",
        )
    with right:
        vafs = [v.vaf for v in report.variants if v.vaf is not None]
        if not vafs:
            st.caption(f"**{t('vcf.chart_vaf')}**: {t('vcf.no_vaf')}")
            return
        fig = go.Figure(go.Histogram(x=vafs, xbins={"start": 0, "end": 1, "size": 0.05}))
        fig.update_layout(
            title_text=t("vcf.chart_vaf"),
            height=CHART_HEIGHT,
            margin={"t": 48, "b": 8},
            xaxis_title=t("vcf.axis_vaf"),
            yaxis_title=t("vcf.axis_count"),
        )
        st.plotly_chart(fig, key="vcf.chart_vaf")


def _variant_rows(
    variants: Iterable[VariantInterpretation], lang: str, t: Callable[..., str]
) -> list[dict[str, object]]:
    return [
        {
            t("vcf.col_variant"): v.key,
            t("vcf.col_gene"): v.gene,
            t("vcf.col_change"): v.protein_change,
            t("vcf.col_consequence"): v.consequence,
            t("vcf.col_vaf"): v.vaf,
            t("vcf.col_class"): label("vcf.class", v.variant_class, lang),
            t("vcf.col_oncogenicity"): label("vcf.oncogenicity", v.oncogenicity, lang),
            t("vcf.col_points"): v.points,
            t("vcf.col_tier"): label("vcf.tier", v.tier, lang),
            t("vcf.col_criteria"): v.criteria_codes,
            t("vcf.col_therapies"): ", ".join(v.therapies[:5]),
        }
        for v in variants
    ]


def _multiselect(
    key: str, options: Sequence[str], names: Callable[[str], str], t: Callable[..., str]
) -> list[str]:
    return st.multiselect(t(key), options, format_func=names, key=key)


def _filtered(report: VcfReport, lang: str, t: Callable[..., str]) -> list[VariantInterpretation]:
    vs = report.variants
    cols = st.columns(5)
    with cols[0]:
        classes = _multiselect(
            "vcf.filter_class", CLASSES, lambda c: label("vcf.class", c, lang), t
        )
    with cols[1]:
        oncogenicity = _multiselect(
            "vcf.filter_oncogenicity", ONCOGENICITY, lambda o: label("vcf.oncogenicity", o, lang), t
        )
    with cols[2]:
        tiers = _multiselect("vcf.filter_tier", TIERS, lambda x: label("vcf.tier", x, lang), t)
    with cols[3]:
        genes = _multiselect("vcf.filter_gene", sorted({v.gene for v in vs if v.gene}), str, t)
    with cols[4]:
        consequences = _multiselect(
            "vcf.filter_consequence", sorted({v.consequence for v in vs if v.consequence}), str, t
        )
    return [
        v
        for v in vs
        if (not classes or v.variant_class in classes)
        and (not oncogenicity or v.oncogenicity in oncogenicity)
        and (not tiers or v.tier in tiers)
        and (not genes or v.gene in genes)
        and (not consequences or v.consequence in consequences)
    ]


def _variant_title(v: VariantInterpretation) -> str:
    return f"{v.gene} {v.protein_change or v.consequence} ({v.key})".strip()


def _evidence(v: VariantInterpretation, lang: str, t: Callable[..., str]) -> None:
    with st.expander(t("vcf.evidence_title", variant=_variant_title(v)), expanded=True):
        st.markdown(
            f"**{label('vcf.class', v.variant_class, lang)}** · "
            f"{label('vcf.oncogenicity', v.oncogenicity, lang)} ({v.points:+d}) · "
            f"{label('vcf.tier', v.tier, lang)}"
        )
        st.markdown(f"**{t('vcf.criteria')}**")
        if v.criteria:
            st.markdown("\n".join(f"- `{c.code}` ({c.points:+d}): {c.reason}" for c in v.criteria))
        else:
            st.caption(t("vcf.no_criteria"))
        st.markdown(t("vcf.tier_reason", reason=v.tier_reason))
        if v.abstention:
            st.markdown(t("vcf.abstention", reason=v.abstention))
        na = t("vcf.not_available")
        af = t("vcf.not_annotated") if v.population_af is None else f"{v.population_af:g}"
        facts = [
            t("vcf.hotspot", value=v.hotspot or t("vcf.none")),
            t("vcf.gene_role", value=v.gene_role or t("vcf.none")),
            t("vcf.population", value=af),
            t("vcf.score", value=na if v.score is None else f"{v.score:.2f}"),
            *(
                t("vcf.annotation_text", lang=ft.lang or "?", text=ft.text)
                for ft in v.annotation_text
            ),
            t(
                "vcf.annotation_reading",
                value=na if v.annotation_reading == NOT_AVAILABLE else v.annotation_reading,
            ),
        ]
        st.markdown(f"**{t('vcf.knowledge')}**\n\n" + "\n".join(f"- {f}" for f in facts))
        if v.evidence:
            st.markdown(t("vcf.civic", shown=len(v.evidence), total=v.n_evidence))
            rows = [
                {
                    t("vcf.col_eid"): f"EID{e.evidence_id}",
                    t("vcf.col_level"): e.level,
                    t("vcf.col_type"): e.evidence_type,
                    t("vcf.col_direction"): e.direction,
                    t("vcf.col_significance"): e.significance,
                    t("vcf.col_disease"): e.disease,
                    t("vcf.col_therapies"): ", ".join(e.therapies),
                    t("vcf.col_match"): e.match,
                }
                for e in v.evidence[:MAX_EVIDENCE_ROWS]
            ]
            st.dataframe(rows, hide_index=True, key="vcf.evidence_table")


def _downloads(report: VcfReport, t: Callable[..., str]) -> None:
    st.subheader(t("vcf.downloads_header"))
    stem = Path(report.file_name).name.split(".")[0] or "report"
    left, middle, right = st.columns(3)
    left.download_button(
        t("vcf.download_json"),
        report.to_json,
        f"{stem}.cmkd.json",
        "application/json",
        key="vcf.download_json",
    )
    middle.download_button(
        t("vcf.download_tsv"),
        report.to_tsv,
        f"{stem}.cmkd.tsv",
        "text/tab-separated-values",
        key="vcf.download_tsv",
    )
    job = st.session_state.get(JOB_KEY)
    annotated = job.annotated_vcf if job is not None else None
    if annotated is not None and annotated.exists():
        right.download_button(
            t("vcf.download_vcf"),
            annotated.read_bytes,
            f"{stem}.cmkd.vcf.gz",
            "application/gzip",
            key="vcf.download_vcf",
        )
    else:
        right.caption(t("vcf.no_annotated_vcf"))


def _results(report: VcfReport, lang: str, t: Callable[..., str]) -> None:
    st.subheader(t("vcf.summary_header"))
    st.caption(
        t(
            "vcf.file_info",
            file=report.file_name,
            fileformat=report.fileformat,
            compression=report.compression,
            build=report.build,
            sample=report.sample or t("vcf.none"),
        )
    )
    n_variants, n_pathogenic, n_actionable, tmb = st.columns(4)
    n_variants.metric(t("vcf.metric_variants"), len(report.variants))
    n_pathogenic.metric(t("vcf.metric_pathogenic"), report.counts()["class"].get("pathogenic", 0))
    n_actionable.metric(t("vcf.metric_actionable"), len(report.actionable))
    tmb.metric(
        t("vcf.metric_tmb"),
        f"{report.tmb:.1f}",
        help=t("vcf.tmb_help", n=report.tmb_mutations, panel=f"{report.panel_mb:g}"),
    )
    if report.warnings:
        with st.expander(t("vcf.warnings", n=len(report.warnings))):
            st.markdown(
                "\n".join(
                    f"- {t('vcf.warning_line', line=w.line, message=w.message)}"
                    for w in report.warnings
                )
            )

    st.subheader(t("vcf.actionable_header"))
    if report.actionable:
        st.dataframe(
            _variant_rows(report.actionable, lang, t), hide_index=True, key="vcf.actionable_table"
        )
    else:
        st.caption(t("vcf.no_actionable"))

    st.subheader(t("vcf.variants_header"))
    shown = _filtered(report, lang, t)
    st.caption(t("vcf.shown", shown=len(shown), total=len(report.variants)))
    st.dataframe(_variant_rows(shown, lang, t), hide_index=True, key="vcf.table")
    if shown:
        keys = [v.key for v in shown]
        by_key = {v.key: v for v in shown}
        picked = st.selectbox(
            t("vcf.evidence_pick"),
            keys,
            key="vcf.variant",
            format_func=lambda k: _variant_title(by_key[k]),
        )
        _evidence(by_key[picked or keys[0]], lang, t)
    _charts(report, lang, t)
    _downloads(report, t)


def render() -> None:
    lang = session_language(st.session_state)
    t = translator(lang)
    st.title(t("vcf.title"))
    st.caption(t("vcf.intro"))
    st.info(t("vcf.disclaimer"), icon=":material/health_and_safety:")
    user = page_user("interpret_vcf", "vcf", t)
    if user is None:
        return

    uploaded = st.file_uploader(
        t("vcf.upload"),
        type=["vcf", "gz", "bgz", "bcf"],
        key="vcf.upload",
        help=t("vcf.upload_help", mb=LIMITS.max_bytes // MB),
        max_upload_size=LIMITS.max_bytes // MB,
    )
    if uploaded is not None:
        st.session_state.pop(EXAMPLE_KEY, None)  # an upload replaces the example
    file = _File.uploaded(uploaded) if uploaded is not None else _example_file(t)
    if file is not None:
        if uploaded is None:
            st.info(t("vcf.example_active", file=file.name), icon=":material/science:")
        try:
            samples = _samples(file)
        except InputError as exc:
            st.error(t("vcf.error", error=exc))
            return
        left, middle, right = st.columns(3)
        with left:
            if samples.names:
                sample = st.selectbox(
                    t("vcf.sample"),
                    samples.names,
                    key="vcf.sample",
                    index=samples.names.index(samples.default),
                    format_func=_sample_name(samples, t),
                )
            else:
                sample = None
                st.caption(t("vcf.no_samples"))
        with middle:
            types = vcf_service.tumor_types()
            tumor_type = st.selectbox(
                t("vcf.tumor_type"),
                ["", *types],
                key="vcf.tumor_type",
                format_func=lambda c: f"{c} · {types[c]}" if c else t("vcf.tumor_type_none"),
            )
        with right:
            panel_mb = st.number_input(
                t("vcf.panel_mb"),
                min_value=0.01,
                max_value=3000.0,
                value=DEFAULT_PANEL_MB,
                step=0.1,
                key="vcf.panel_mb",
            )
        if st.button(t("vcf.run"), type="primary", key="vcf.run"):
            try:
                _start(file, sample, tumor_type, panel_mb)
            except InputError as exc:
                st.session_state[ERROR_KEY] = ("vcf.error", str(exc))

    _collect()
    if error := st.session_state.get(ERROR_KEY):
        key, message = error
        st.error(t(key, error=message))
    _progress(t)
    if (report := st.session_state.get(REPORT_KEY)) is not None:
        _results(report, lang, t)


render()
