"""Streamlit entry point: `streamlit run streamlit_app.py`.

The shell only: page config, the UI language picker, the decision-support notice and the
page list. Each page lives in app_pages/ and reads the chosen language from session state.

The folder must not be called `pages/`: Streamlit then falls back to its legacy automatic
pages whenever st.navigation has not run yet in the server process, so a deep link such as
/about on a fresh server (and every AppTest rerun) runs the page without this shell, i.e.
without the disclaimer and the language picker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st

from workbench.i18n import DEFAULT_LANGUAGE, SESSION_KEY, UI_LANGUAGES, session_language, translate
from workbench.session import current_user


@dataclass(frozen=True)
class PageSpec:
    path: str  # script under app_pages/, relative to this file
    title_key: str  # i18n key of the navigation title
    icon: str  # Material icon shown in the navigation
    permission: str | None = None  # workbench.roles permission needed to see it; None: all


# Navigation order; the first page is the default. Adding a page is one line here.
PAGES: tuple[PageSpec, ...] = (
    PageSpec("app_pages/home.py", "nav.home", ":material/monitor_heart:"),
    PageSpec("app_pages/vcf.py", "nav.vcf", ":material/genetics:", "interpret_vcf"),
    PageSpec("app_pages/summary.py", "nav.summary", ":material/description:", "write_summary"),
    PageSpec("app_pages/about.py", "nav.about", ":material/info:"),
)


def main() -> None:
    # Models are loaded from local files only; a hospital deployment must not phone out.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    st.set_page_config(page_title="CMKD Oncology Workbench", page_icon="🧬", layout="wide")

    # Seeding session state (not `index=`) keeps the choice when the user switches pages.
    if st.session_state.get(SESSION_KEY) not in UI_LANGUAGES:
        st.session_state[SESSION_KEY] = DEFAULT_LANGUAGE
    lang = session_language(st.session_state)
    st.sidebar.selectbox(
        f":material/translate: {translate('app.language', lang)}",
        options=tuple(UI_LANGUAGES),
        format_func=UI_LANGUAGES.__getitem__,
        key=SESSION_KEY,
    )

    # Each role sees only its pages; the services check the same permissions again.
    user = current_user(st.session_state)
    visible = [spec for spec in PAGES if spec.permission is None or user.can(spec.permission)]
    pages = [
        st.Page(spec.path, title=translate(spec.title_key, lang), icon=spec.icon, default=i == 0)
        for i, spec in enumerate(visible)
    ]
    current = st.navigation(pages)
    st.sidebar.caption(translate("app.name", lang))
    st.caption(f":material/health_and_safety: {translate('app.disclaimer', lang)}")
    current.run()


main()
