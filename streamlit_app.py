"""Streamlit entry point: `streamlit run streamlit_app.py`.

The shell only: page config, the UI language picker, the decision-support notice, sign-in
state (first-run admin, OIDC mapping, inactivity expiry, sign-out) and the page list, which
shows each role only its pages (the services check the same permissions again). A page that
fails shows a plain message with an incident id; the traceback goes to the server log.

The folder must not be called `pages/`: Streamlit then falls back to its legacy automatic
pages whenever st.navigation has not run yet in the server process, so a deep link such as
/about on a fresh server (and every AppTest rerun) runs the page without this shell, i.e.
without the disclaimer, the language picker and the sign-in check.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from workbench import session
from workbench.auth import AuthConfig, AuthService, auth_section, oidc_providers
from workbench.commands.users import first_admin_banner
from workbench.i18n import DEFAULT_LANGUAGE, SESSION_KEY, UI_LANGUAGES, session_language, translate
from workbench.roles import User
from workbench.workspace import Workspace

LOG = logging.getLogger("cmkd.app")
OIDC_REFUSED_KEY = "auth.oidc_refused"  # identity already refused (audited once per session)


@dataclass(frozen=True)
class PageSpec:
    path: str  # script under app_pages/, relative to this file
    title_key: str  # i18n key of the navigation title
    icon: str  # Material icon shown in the navigation
    permission: str | None = None  # workbench.roles permission needed to see it; None: any user


# Navigation order for signed-in users; the first page is the default. Adding a page is one
# line here.
PAGES: tuple[PageSpec, ...] = (
    PageSpec("app_pages/home.py", "nav.home", ":material/monitor_heart:"),
    PageSpec("app_pages/search.py", "nav.search", ":material/search:", "search"),
    PageSpec("app_pages/review.py", "nav.review", ":material/rate_review:", "review"),
    PageSpec("app_pages/slides.py", "nav.slides", ":material/biotech:", "view_slides"),
    PageSpec("app_pages/vcf.py", "nav.vcf", ":material/genetics:", "interpret_vcf"),
    PageSpec("app_pages/summary.py", "nav.summary", ":material/description:", "write_summary"),
    PageSpec("app_pages/retrain.py", "nav.retrain", ":material/model_training:", "retrain"),
    PageSpec("app_pages/audit.py", "nav.audit", ":material/policy:", "view_audit"),
    PageSpec("app_pages/users.py", "nav.users", ":material/manage_accounts:", "manage_users"),
    PageSpec("app_pages/about.py", "nav.about", ":material/info:"),
)
# What a visitor who has not signed in may open.
SIGNED_OUT_PAGES: tuple[PageSpec, ...] = (
    PageSpec("app_pages/signin.py", "nav.signin", ":material/login:"),
    PageSpec("app_pages/about.py", "nav.about", ":material/info:"),
)


def visible_pages(user: User | None) -> tuple[PageSpec, ...]:
    if user is None:
        return SIGNED_OUT_PAGES
    return tuple(spec for spec in PAGES if spec.permission is None or user.can(spec.permission))


def sign_in_at_page_addresses(lang: str) -> list[StreamlitPage]:
    """Hidden pages that show the sign-in form at each signed-in page's address, so that a
    bookmark or a session that expired on a page asks to sign in (not "page not found"), and
    the rerun after signing in lands on the page asked for when the role may open it."""
    signed_out = {spec.path for spec in SIGNED_OUT_PAGES}
    return [
        st.Page(SIGNED_OUT_PAGES[0].path, title=translate(spec.title_key, lang),
                url_path=Path(spec.path).stem, visibility="hidden")
        for spec in PAGES[1:]  # the first is the default page, at the root address
        if spec.path not in signed_out
    ]  # fmt: skip


@st.cache_resource(show_spinner=False)
def _auth_service(root: str, config: AuthConfig) -> AuthService:
    """One service per workspace; the first call creates the first admin if there is none and
    prints its one-time password on the server's terminal (stderr), never in the browser."""
    auth = AuthService.from_workspace(Workspace(Path(root)), config)
    if (password := auth.ensure_first_admin()) is not None:
        print(first_admin_banner(password), file=sys.stderr, flush=True)
    return auth


def _configure_logging() -> None:
    if not LOG.handlers:  # once per server process; reruns keep the handler
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        LOG.addHandler(handler)
        LOG.setLevel(logging.INFO)


def _oidc_sign_in(auth: AuthService, now: datetime) -> None:
    """Map an identity signed in through st.login to its local account, once per session."""
    if not oidc_providers(auth_section(st.secrets)) or not st.user.get("is_logged_in"):
        return
    email = st.user.get("email")
    email = email if isinstance(email, str) else None
    verified = st.user.get("email_verified")
    user = auth.user_for_identity(email, verified if isinstance(verified, bool) else None)
    if user is not None:
        session.sign_in(st.session_state, user, "oidc", now)
        auth.record_oidc_sign_in(email, user)
    elif st.session_state.get(OIDC_REFUSED_KEY) != email:
        st.session_state[OIDC_REFUSED_KEY] = email
        auth.record_oidc_sign_in(email, None)


def _sign_out(auth: AuthService) -> None:
    method = session.signed_in_with(st.session_state)
    user = session.sign_out(st.session_state, notice="auth.notice_signed_out")
    if user is not None:
        auth.record_sign_out(user)
    if method == "oidc":
        st.logout()  # else the provider's cookie would sign the user straight back in


def _sidebar_user(user: User, auth: AuthService, lang: str) -> None:
    role = translate(f"auth.role.{user.role}", lang)
    st.sidebar.markdown(translate("auth.signed_in_as", lang, name=user.name, role=role))
    st.sidebar.button(
        translate("auth.sign_out", lang),
        key="auth.sign_out",
        icon=":material/logout:",
        on_click=_sign_out,
        args=(auth,),
    )


def _run_page(page: StreamlitPage, lang: str) -> None:
    """Run the page; an unexpected error becomes a plain message with an incident id.

    Only Exception is caught: st.rerun, st.stop and st.switch_page raise Streamlit's
    ScriptControlException, a BaseException, which must reach Streamlit.
    """
    try:
        page.run()
    except Exception:
        incident = secrets.token_hex(4)
        LOG.exception("incident %s on page %s", incident, page.url_path or "(default)")
        st.error(translate("app.incident", lang, incident=incident), icon=":material/error:")


def main() -> None:
    # Models are loaded from local files only; a hospital deployment must not phone out.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    st.set_page_config(page_title="CMKD Oncology Workbench", page_icon="🧬", layout="wide")
    _configure_logging()

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

    config = AuthConfig.from_env()
    auth = _auth_service(str(Workspace.from_env().root), config)
    now = datetime.now(UTC)
    method = session.signed_in_with(st.session_state)
    if (expired := session.expire_if_idle(st.session_state, now, config.idle_minutes)) is not None:
        auth.record_sign_out(expired, expired=True)
        if method == "oidc":
            st.logout()
    if session.current_user(st.session_state) is None:
        _oidc_sign_in(auth, now)

    user = session.current_user(st.session_state)
    pages = [
        st.Page(spec.path, title=translate(spec.title_key, lang), icon=spec.icon, default=i == 0)
        for i, spec in enumerate(visible_pages(user))
    ]
    if user is None:
        pages += sign_in_at_page_addresses(lang)
    current = st.navigation(pages)
    if user is not None:
        _sidebar_user(user, auth, lang)
    st.sidebar.caption(translate("app.name", lang))
    st.caption(f":material/health_and_safety: {translate('app.disclaimer', lang)}")
    _run_page(current, lang)


main()
