"""Audit log (admin): the state of the hash chain, entries filtered by actor, action and date
range, and a CSV export, which is itself audited. `workbench.audit_service` checks the role."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.errors import InputError
from workbench import audit_service
from workbench.audit_service import AuditFilter
from workbench.errors import StoreError
from workbench.i18n import session_language, translator
from workbench.roles import User
from workbench.store import AuditEntry, Store
from workbench.ui import page_user
from workbench.workspace import Workspace

EXPORT_KEY = "audit.export_data"  # (filter, CSV bytes) prepared by the export button
MAX_ROWS = 1000  # entries shown; the export takes the same filter


def _chain(user: User, store: Store, t: Callable[..., str]) -> None:
    try:
        n = audit_service.verify(user, store)
    except StoreError as exc:
        st.error(t("audit.chain_broken", error=exc), icon=":material/gpp_bad:")
    else:
        st.success(t("audit.chain_ok", n=n), icon=":material/verified_user:")


def _filter(user: User, store: Store, t: Callable[..., str]) -> AuditFilter:
    actor_col, action_col, since_col, until_col = st.columns(4)
    anyone = ""  # the "all" choice of a picker
    actor = actor_col.selectbox(
        t("audit.filter_actor"), [anyone, *audit_service.distinct(user, store, "actor")],
        key="audit.actor", format_func=lambda a: a or t("audit.any"),
    )  # fmt: skip
    action = action_col.selectbox(
        t("audit.filter_action"), [anyone, *audit_service.distinct(user, store, "action")],
        key="audit.action", format_func=lambda a: a or t("audit.any"),
    )  # fmt: skip
    since = since_col.date_input(t("audit.filter_since"), value=None, key="audit.since")
    until = until_col.date_input(t("audit.filter_until"), value=None, key="audit.until")
    return AuditFilter(actor or None, action or None, since, until, MAX_ROWS)


def _rows(entries: list[AuditEntry], t: Callable[..., str]) -> list[dict[str, object]]:
    return [
        {
            t("audit.col_id"): e.id,
            t("audit.col_at"): e.at,
            t("audit.col_actor"): e.actor,
            t("audit.col_action"): e.action,
            t("audit.col_target"): e.target,
            t("audit.col_details"): ", ".join(f"{k}={v}" for k, v in sorted(e.details.items())),
        }
        for e in entries
    ]


def _export(user: User, store: Store, flt: AuditFilter, t: Callable[..., str]) -> None:
    prepared = st.session_state.get(EXPORT_KEY)
    if prepared is None or prepared[0] != flt:
        if st.button(t("audit.prepare_export"), key="audit.prepare", icon=":material/download:"):
            st.session_state[EXPORT_KEY] = prepared = (
                flt,
                audit_service.export_csv(user, store, flt),
            )
    if prepared is not None and prepared[0] == flt:
        st.download_button(
            t("audit.download"), prepared[1], "audit.csv", "text/csv", key="audit.download",
            on_click="ignore",
        )  # fmt: skip


def render() -> None:
    t = translator(session_language(st.session_state))
    st.title(t("audit.title"))
    st.caption(t("audit.intro"))
    user = page_user("view_audit", "audit", t)
    if user is None:
        return
    store = Store(Workspace.from_env().db_path)
    _chain(user, store, t)
    try:
        flt = _filter(user, store, t)
    except InputError:
        st.error(t("audit.bad_range"))
        return
    entries = audit_service.entries(user, store, flt)
    st.caption(t("audit.shown", n=len(entries), limit=MAX_ROWS))
    if entries:
        st.dataframe(_rows(entries, t), hide_index=True, key="audit.table")
    else:
        st.info(t("audit.empty"))
    _export(user, store, flt, t)


render()
