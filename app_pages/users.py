"""User accounts (admin): list accounts, add one (a one-time password is shown once), disable
or enable one, reset a password. `workbench.auth` checks the role and audits every change."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.errors import InputError
from workbench.auth import Account, AuthConfig, AuthService
from workbench.i18n import session_language, translator
from workbench.roles import ROLES, User
from workbench.ui import page_user
from workbench.workspace import Workspace

ISSUED_KEY = "users.issued"  # (name, one-time password) to show once


def _state(a: Account, t: Callable[..., str]) -> str:
    if a.disabled:
        return t("users.state_disabled")
    if a.locked_until:
        return t("users.state_locked", until=a.locked_until)
    return t("users.state_new") if a.must_change_password else t("users.state_active")


def _table(accounts: list[Account], t: Callable[..., str]) -> None:
    rows = [
        {
            t("users.col_name"): a.name,
            t("users.col_role"): t(f"auth.role.{a.role}"),
            t("users.col_state"): _state(a, t),
            t("users.col_email"): a.email or "",
            t("users.col_last"): a.last_sign_in or "",
        }
        for a in accounts
    ]
    st.dataframe(rows, hide_index=True, key="users.table")


def _add(auth: AuthService, user: User, t: Callable[..., str]) -> None:
    st.subheader(t("users.add_header"))
    with st.form("users.add", clear_on_submit=True):
        name_col, role_col, email_col = st.columns(3)
        name = name_col.text_input(t("users.name"), key="users.name")
        role = role_col.selectbox(
            t("users.role"), ROLES, key="users.role", format_func=lambda r: t(f"auth.role.{r}")
        )
        email = email_col.text_input(t("users.email"), key="users.email")
        if st.form_submit_button(t("users.add"), type="primary"):
            try:
                password = auth.add_user(user, name, role, email or None)
            except InputError as exc:
                st.error(t("users.error", error=exc))
            else:
                st.session_state[ISSUED_KEY] = (name.strip().lower(), password)
                st.rerun()


def _manage(auth: AuthService, user: User, accounts: list[Account], t: Callable[..., str]) -> None:
    if not accounts:
        return
    st.subheader(t("users.manage_header"))
    name = st.selectbox(t("users.pick"), [a.name for a in accounts], key="users.pick")
    account = next((a for a in accounts if a.name == name), None)
    if account is None:
        return
    toggle, reset = st.columns(2)
    verb = "enable" if account.disabled else "disable"
    if toggle.button(t(f"users.{verb}"), key="users.toggle"):
        try:
            auth.set_disabled(user, account.name, disabled=not account.disabled)
        except InputError as exc:
            st.error(t("users.error", error=exc))
        else:
            st.rerun()
    if reset.button(t("users.reset"), key="users.reset"):
        st.session_state[ISSUED_KEY] = (account.name, auth.reset_password(user, account.name))
        st.rerun()


def render() -> None:
    t = translator(session_language(st.session_state))
    st.title(t("users.title"))
    user = page_user("manage_users", "users", t)
    if user is None:
        return
    auth = AuthService.from_workspace(Workspace.from_env(), AuthConfig.from_env())
    if issued := st.session_state.pop(ISSUED_KEY, None):
        st.success(
            t("users.one_time", name=issued[0], password=f"`{issued[1]}`"), icon=":material/key:"
        )
    accounts = auth.accounts(user)
    _table(accounts, t)
    _add(auth, user, t)
    _manage(auth, user, accounts, t)


render()
