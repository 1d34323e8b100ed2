"""Small pieces every Streamlit page shares: the permission gate and safe Markdown.

Pages stay thin and say the same thing the same way; the services check the permission
again, so the gate only decides what is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import streamlit as st

from workbench.roles import User
from workbench.session import current_user

# Markdown and Streamlit directive syntax (":" starts :material/…: icons and :color[…]).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|$<>~:])")


def escape_markdown(text: str) -> str:
    """User or data text shown literally by st.markdown: no emphasis, links, HTML, LaTeX or
    directives (st.markdown never renders raw HTML here: unsafe_allow_html stays off)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def page_user(permission: str, feature: str, t: Callable[..., str]) -> User | None:
    """The signed-in user when they may `permission`; otherwise the page's refusal
    (`<feature>.not_allowed`, or a sign-in request) is shown and None returned, and the page
    renders nothing else."""
    user = current_user(st.session_state)
    if user is not None and user.can(permission):
        return user
    message = (
        t("app.sign_in_required") if user is None else t(f"{feature}.not_allowed", role=user.role)
    )
    st.warning(message, icon=":material/lock:")
    return None
