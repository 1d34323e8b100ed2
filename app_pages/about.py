"""About: what the workbench is for, the decision-support notice, data sources and licences."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from workbench.i18n import session_language, translator

ATTRIBUTION_PATH = Path(__file__).resolve().parent.parent / "ATTRIBUTION.md"

# (source as cited, i18n key of what it is used for, licence). Names and licences are
# proper names and legal identifiers, so they are not translated.
SOURCES: tuple[tuple[str, str, str], ...] = (
    ("CIViC, release 01-Aug-2024", "about.source.civic", "CC0 1.0"),
    (
        "OncoTree 2025-10-03, Memorial Sloan Kettering Cancer Center",
        "about.source.oncotree",
        "CC BY 4.0",
    ),
    (
        "3D mutation hotspots, 3dhotspots.org (Gao et al., Genome Med 2017)",
        "about.source.hotspots",
        "ODbL 1.0",
    ),
    ("CancerMine (Lever et al., Nat Methods 2019)", "about.source.cancermine", "CC0 1.0"),
    ("NTREX-128 (Microsoft Translator)", "about.source.ntrex", "CC BY-SA 4.0"),
    (
        "FLORES-200, via SIB-200",
        "about.source.flores",
        "CC BY-SA 4.0 (text); Apache-2.0 (SIB-200 topic labels)",
    ),
    ("all-MiniLM-L6-v2 (sentence-transformers)", "about.source.minilm", "Apache-2.0"),
)


def render() -> None:
    t = translator(session_language(st.session_state))
    columns = (t("about.col_source"), t("about.col_use"), t("about.col_licence"))
    st.title(t("about.title"))

    st.subheader(t("about.purpose_header"))
    st.write(t("about.purpose"))
    st.write(t("about.users"))

    st.subheader(t("about.disclaimer_header"))
    st.warning(t("about.disclaimer"), icon=":material/health_and_safety:")
    st.info(t("about.privacy"), icon=":material/lock:")

    st.subheader(t("about.sources_header"))
    st.table(
        [
            dict(zip(columns, (name, t(use_key), licence), strict=True))
            for name, use_key, licence in SOURCES
        ],
        hide_index=True,
    )
    with st.expander(t("about.attribution_header"), key="about_attribution"):
        if ATTRIBUTION_PATH.is_file():
            st.caption(t("about.attribution_language"))
            # Markdown, rendered with HTML escaped (never unsafe_allow_html).
            st.markdown(ATTRIBUTION_PATH.read_text(encoding="utf-8"))
        else:
            st.caption(t("about.attribution_missing"))


render()
