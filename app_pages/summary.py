"""Patient summary: pick a case (or enter its facts), pick the patient's language, read the
summary beside the same summary in your own language with the trace of every sentence, add
free text, approve, export.

The page collects input and shows results; `workbench.summary_service` checks roles, stores
edits and approvals, and audits exports (downloads are generated, and audited, on click).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from core.data.schema import BIOMARKERS, CANCER_TYPES, LANGUAGES, STAGES, SUBTYPES
from core.errors import CmkdError, InputError
from core.summaries.facts import BIOMARKER_STATUS, Driver, FactsInput, SummaryFacts, parse_change
from core.summaries.render import LIST_SECTIONS, PhraseBank, Summary
from workbench.i18n import UI_LANGUAGES, session_language, translator
from workbench.roles import User
from workbench.summary_service import MEDIA_TYPES, SummaryDraft, SummaryService
from workbench.ui import escape_markdown, page_user
from workbench.workspace import Workspace

DEFAULT_PATIENT_LANGUAGE = "sw"  # the languages the issue puts first: Swahili, then Portuguese
EXPORTS = (("pdf", "summary.download_pdf"), ("txt", "summary.download_txt"),
           ("md", "summary.download_md"))  # fmt: skip
AUDIO_KEY = "summary.audio_bytes"  # (draft hash, WAV) made on request


@st.cache_resource(show_spinner=False)
def _service(root: str) -> SummaryService:
    return SummaryService.from_workspace(Workspace(Path(root)))


def _manual_facts(service: SummaryService, t: Callable[..., str], lang: str) -> SummaryFacts:
    """Facts entered by hand; InputError when they are not valid."""
    names = PhraseBank.load(lang)
    st.subheader(t("summary.manual_header"))
    left, mid, right = st.columns(3)
    cancer_type = left.selectbox(
        t("summary.cancer_type"), CANCER_TYPES, key="summary.manual.type",
        format_func=lambda c: f"{c} · {names.phrase(f'type.{c}')}",
    )  # fmt: skip
    subtype = mid.selectbox(
        t("summary.subtype"), ("", *SUBTYPES[cancer_type]),
        key=f"summary.manual.subtype.{cancer_type}",  # subtypes differ per type
        format_func=lambda s: names.phrase(f"subtype.{s}") if s else t("summary.unknown"),
    )  # fmt: skip
    stage = right.selectbox(
        t("summary.stage"), ("", *STAGES), key="summary.manual.stage",
        format_func=lambda s: s or t("summary.unknown"),
    )  # fmt: skip
    grade = left.selectbox(
        t("summary.grade"), (0, 1, 2, 3), key="summary.manual.grade",
        format_func=lambda g: str(g) if g else t("summary.unknown"),
    )  # fmt: skip
    age = mid.number_input(t("summary.age"), 0, 120, 0, key="summary.manual.age")
    st.caption(t("summary.biomarkers"))
    columns = st.columns(3)
    biomarkers = []
    for i, name in enumerate(BIOMARKERS):
        status = columns[i % 3].selectbox(
            name, ("", *BIOMARKER_STATUS[name]), key=f"summary.manual.biomarker.{name}",
            format_func=lambda s: t(f"summary.status.{s}") if s else t("summary.not_tested"),
        )  # fmt: skip
        if status:
            biomarkers.append((name, status))
    lines = st.text_area(
        t("summary.drivers"), key="summary.manual.drivers", help=t("summary.drivers_help")
    )
    drivers = []
    for line in lines.splitlines():
        gene, _, change = line.strip().partition(" ")
        if gene:
            drivers.append(Driver(gene.upper(), parse_change(change)))
    entry = FactsInput(
        cancer_type=cancer_type, subtype=subtype, stage=stage, grade=grade, age=int(age),
        biomarkers=tuple(biomarkers), drivers=tuple(dict.fromkeys(drivers)),
    )  # fmt: skip
    return service.facts_for_entry(entry)


def _show_summary(summary: Summary, heading: str) -> None:
    st.subheader(heading)
    # Markdown with HTML escaped (never unsafe_allow_html); "  " ends a line inside a paragraph.
    st.markdown(f"**{summary.title}**  \n{summary.intro.text}")
    for section in summary.sections:
        st.markdown(f"##### {section.heading}")
        if section.key == "image" and summary.tile is not None:
            st.image(str(summary.tile.path), width=256)
        bullet = "- " if section.key in LIST_SECTIONS else ""
        lines = [s.text if s.generated else escape_markdown(s.text) for s in section.sentences]
        st.markdown(("\n" if bullet else "  \n").join(bullet + line for line in lines))
    st.caption(summary.disclaimer.text)


def _show_trace(patient: Summary, mine: Summary, t: Callable[..., str]) -> None:
    facts = dict(patient.facts)
    rows = [
        {
            t("summary.trace_section"): p.section,
            t("summary.trace_sentence"): p.text,
            t("summary.trace_translation"): m.text,
            t("summary.trace_facts"): "; ".join(facts.get(f, f) for f in p.trace),
        }
        for p, m in zip(patient.sentences(), mine.sentences(), strict=True)
    ]
    with st.expander(t("summary.trace"), expanded=False, key="summary.trace"):
        st.dataframe(rows, hide_index=True, key="summary.trace_table")


def _edit_free_text(service: SummaryService, user: User, draft: SummaryDraft, t) -> None:  # noqa: ANN001
    st.subheader(t("summary.edit_header"))
    scope = f"{draft.case_key}.{draft.lang}"  # one pair of text boxes per case and language
    with st.form(key=f"summary.edit.{scope}", border=False):
        note = st.text_area(
            t("summary.clinician_note"), value=draft.facts.clinician_note,
            help=t("summary.clinician_note_help"), key=f"summary.note.{scope}",
        )  # fmt: skip
        prognosis = st.text_area(
            t("summary.prognosis"), value=draft.facts.prognosis,
            help=t("summary.prognosis_help"), key=f"summary.prognosis.{scope}",
        )  # fmt: skip
        if st.form_submit_button(t("summary.save")):
            service.save_free_text(user, draft, note, prognosis)
            st.session_state["summary.flash"] = "summary.saved"
            st.rerun()


def _approval(service: SummaryService, user: User, draft: SummaryDraft, t) -> None:  # noqa: ANN001
    st.subheader(t("summary.approval_header"))
    if flash := st.session_state.pop("summary.flash", None):
        st.info(t(flash), icon=":material/edit_note:")
    if draft.approval is not None:
        a = draft.approval
        st.success(
            t("summary.approved", name=a.approved_by, role=a.role, date=a.approved_at[:10]),
            icon=":material/verified:",
        )
        return
    st.warning(t("summary.not_approved"), icon=":material/pending:")
    if user.can("approve_summary"):
        if st.button(t("summary.approve"), key="summary.approve", help=t("summary.approve_help")):
            service.approve(user, draft)
            st.rerun()
    else:
        st.caption(t("summary.approve_not_allowed"))


def _export(service: SummaryService, user: User, draft: SummaryDraft, t) -> None:  # noqa: ANN001
    st.subheader(t("summary.export_header"))
    if not draft.approved:
        st.caption(t("summary.export_locked"))
        return
    stem = f"summary_{draft.case_key}_{draft.lang}"
    columns = st.columns(len(EXPORTS) + 1)
    for column, (fmt, label_key) in zip(columns, EXPORTS, strict=False):
        column.download_button(
            t(label_key),
            data=lambda fmt=fmt: service.export(user, draft, fmt),  # made (and audited) on click
            file_name=f"{stem}.{fmt}", mime=MEDIA_TYPES[fmt], key=f"summary.download.{fmt}",
            on_click="ignore",
        )  # fmt: skip
    with columns[-1]:
        if not service.audio_available(draft.lang):
            st.caption(t("summary.audio_unavailable"))
            return
        made = st.session_state.get(AUDIO_KEY)
        if made is None or made[0] != draft.summary_hash:
            if st.button(t("summary.audio"), key="summary.audio"):
                st.session_state[AUDIO_KEY] = (
                    draft.summary_hash,
                    service.export_audio(user, draft),
                )
                st.rerun()
            return
        st.audio(made[1], format="audio/wav")
        st.download_button(
            t("summary.download_audio"), data=made[1], file_name=f"{stem}.wav",
            mime=MEDIA_TYPES["wav"], key="summary.download.wav", on_click="ignore",
        )  # fmt: skip


def render() -> None:
    lang = session_language(st.session_state)
    t = translator(lang)
    st.title(t("summary.title"))
    st.caption(t("summary.intro"))
    st.warning(t("summary.decision_support"), icon=":material/health_and_safety:")
    user = page_user("write_summary", "summary", t)
    if user is None:
        return

    ws = Workspace.from_env()
    service = _service(str(ws.root))
    source = st.radio(
        t("summary.source"), ("case", "manual"), key="summary.source", horizontal=True,
        format_func=lambda s: t(f"summary.source_{s}"),
    )  # fmt: skip
    patient_lang = st.selectbox(
        t("summary.patient_language"), LANGUAGES, key="summary.lang",
        index=LANGUAGES.index(DEFAULT_PATIENT_LANGUAGE), format_func=UI_LANGUAGES.__getitem__,
    )  # fmt: skip
    try:
        if source == "manual":
            facts = _manual_facts(service, t, lang)
        else:
            try:
                case_ids = service.case_ids()
            except CmkdError:
                st.info(t("summary.no_cohort"), icon=":material/build:")
                return
            case_id = st.selectbox(t("summary.case"), case_ids, key="summary.case")
            facts = service.facts_for_case(case_id)
        draft = service.draft(user, facts, patient_lang)
        mine = service.view_in(draft, lang)
    except InputError as e:
        st.error(t("summary.invalid_facts", error=e), icon=":material/error:")
        return
    except CmkdError as e:
        st.error(t("summary.error", error=e), icon=":material/error:")
        return

    left, right = st.columns(2)
    with left:
        _show_summary(
            draft.summary, t("summary.preview_patient", language=UI_LANGUAGES[patient_lang])
        )
    with right:
        if patient_lang == lang:
            st.caption(t("summary.same_language"))
        else:
            _show_summary(mine, t("summary.preview_clinician", language=UI_LANGUAGES[lang]))
    if draft.summary.tile is not None:
        source_key = "summary.image_own" if draft.summary.tile.own else "summary.image_reference"
        st.caption(t("summary.image_caption_note", source=t(source_key)))
    _show_trace(draft.summary, mine, t)
    _edit_free_text(service, user, draft, t)
    _approval(service, user, draft, t)
    _export(service, user, draft, t)


render()
