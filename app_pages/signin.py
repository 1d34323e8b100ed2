"""Sign-in: a local account's name and password, the forced change of a one-time password, and
"Sign in with <provider>" buttons when OIDC is configured ([auth] in st.secrets).

The page only collects input: `workbench.auth` checks passwords, counts failures and audits;
`workbench.session` records the signed-in user. The forms clear on submit, so no password
stays in session state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import streamlit as st

from core.errors import InputError
from workbench import session
from workbench.auth import (
    AuthConfig,
    AuthService,
    SignIn,
    auth_section,
    normalise_name,
    oidc_providers,
    password_problems,
)
from workbench.i18n import session_language, translator
from workbench.workspace import Workspace

PENDING_KEY = "auth.pending_change"  # name whose one-time password must be replaced


def _signed_in(result: SignIn) -> None:
    if result.user is not None:
        session.sign_in(st.session_state, result.user, "password", datetime.now(UTC))
        st.session_state.pop(PENDING_KEY, None)
        st.rerun()  # the shell now shows this user's pages


def _refusal(result: SignIn, t: Callable[..., str]) -> None:
    if result.outcome in ("invalid", "locked", "disabled"):
        st.error(t(f"auth.{result.outcome}"), icon=":material/block:")


def _sign_in_form(auth: AuthService, t: Callable[..., str]) -> None:
    with st.form("auth.sign_in", clear_on_submit=True):
        name = st.text_input(t("auth.name"), key="auth.name", autocomplete="username")
        password = st.text_input(
            t("auth.password"), type="password", key="auth.password",
            autocomplete="current-password",
        )  # fmt: skip
        submitted = st.form_submit_button(t("auth.submit"), type="primary")
    if not submitted:
        return
    result = auth.sign_in(name, password)
    if result.outcome == "must_change":
        st.session_state[PENDING_KEY] = normalise_name(name)
        st.rerun()
    _signed_in(result)
    _refusal(result, t)


def _change_form(auth: AuthService, name: str, t: Callable[..., str]) -> None:
    config = auth.config
    st.info(t("auth.must_change", name=name), icon=":material/password:")
    with st.form("auth.change", clear_on_submit=True):
        current = st.text_input(t("auth.current_password"), type="password", key="auth.current")
        new = st.text_input(
            t("auth.new_password"), type="password", key="auth.new", autocomplete="new-password",
            help=t("auth.policy_hint", n=config.min_password_length),
        )  # fmt: skip
        again = st.text_input(t("auth.confirm_password"), type="password", key="auth.again")
        submitted = st.form_submit_button(t("auth.change_submit"), type="primary")
    if st.button(t("auth.cancel"), key="auth.cancel"):
        st.session_state.pop(PENDING_KEY, None)
        st.rerun()
    if not submitted:
        return
    problems = password_problems(name, new, config)
    if new != again:
        st.error(t("auth.mismatch"))
    elif problems:
        for p in problems:
            st.error(t(f"auth.policy.{p}", n=config.min_password_length))
    else:
        try:
            result = auth.change_password(name, current, new)
        except InputError:  # the policy passed, so: new equals current
            st.error(t("auth.same_password"))
            return
        _signed_in(result)
        _refusal(result, t)


def _oidc(t: Callable[..., str]) -> None:
    providers = oidc_providers(auth_section(st.secrets))
    if not providers:
        return
    st.divider()
    if st.user.get("is_logged_in"):
        # Signed in at the provider, but the shell found no account for this identity.
        st.warning(t("auth.oidc_unknown", email=st.user.get("email") or "?"))
        if st.button(t("auth.oidc_sign_out"), key="auth.oidc_sign_out"):
            st.logout()
        return
    for provider in providers:
        label = t("auth.oidc_button", provider=provider.label)
        if st.button(label, key=f"auth.oidc.{provider.key or 'default'}", icon=":material/key:"):
            st.login(*(() if provider.key is None else (provider.key,)))


def render() -> None:
    t = translator(session_language(st.session_state))
    st.title(t("auth.title"))
    if notice := st.session_state.pop(session.NOTICE_KEY, None):
        st.info(t(str(notice)), icon=":material/info:")
    auth = AuthService.from_workspace(Workspace.from_env(), AuthConfig.from_env())
    pending = st.session_state.get(PENDING_KEY)
    if isinstance(pending, str):
        _change_form(auth, pending, t)
    else:
        st.caption(t("auth.intro"))
        _sign_in_form(auth, t)
    _oidc(t)


render()
