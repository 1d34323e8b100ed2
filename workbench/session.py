"""Who acts in a Streamlit session, and for how long.

`current_user` is the one place that reads the signed-in user: a `User`, or None before
sign-in (every protected service then refuses). Sign-in, sign-out and inactivity expiry change
the session state only through the functions here; the shell audits them. The functions take
a plain mapping (st.session_state in the app) and the current time, so tests drive them with
a dict and an injected clock.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, MutableMapping
from datetime import datetime, timedelta
from typing import Literal

from workbench.i18n import SESSION_KEY
from workbench.roles import User

USER_KEY = "user"  # the signed-in `User`
METHOD_KEY = "auth.method"  # how they signed in: "password" or "oidc"
ACTIVITY_KEY = "auth.last_activity"  # datetime (UTC) of the last script run while signed in
NOTICE_KEY = "auth.notice"  # i18n key of a notice for the sign-in page (expired, signed out)
KEPT_ON_SIGN_OUT = (SESSION_KEY, NOTICE_KEY)  # everything else belongs to the user who left

Method = Literal["password", "oidc"]


def current_user(state: Mapping[str, object]) -> User | None:
    """The signed-in user of a session state, or None."""
    user = state.get(USER_KEY)
    return user if isinstance(user, User) else None


def sign_in(state: MutableMapping[str, object], user: User, method: Method, now: datetime) -> None:
    state[USER_KEY] = user
    state[METHOD_KEY] = method
    state[ACTIVITY_KEY] = now


def sign_out(state: MutableMapping[str, object], notice: str | None = None) -> User | None:
    """Forget the user and every page's state (uploads, drafts, jobs), so the next person at
    this browser starts clean; return who was signed in."""
    user = current_user(state)
    for key in [k for k in state.keys() if k not in KEPT_ON_SIGN_OUT]:
        del state[key]
    if notice is not None:
        state[NOTICE_KEY] = notice
    return user


def expire_if_idle(
    state: MutableMapping[str, object], now: datetime, idle_minutes: float
) -> User | None:
    """Sign out a user idle for longer than `idle_minutes` and return them; otherwise record
    this run as activity and return None."""
    if current_user(state) is None:
        return None
    last = state.get(ACTIVITY_KEY)
    if isinstance(last, datetime) and now - last > timedelta(minutes=idle_minutes):
        return sign_out(state, notice="auth.notice_expired")
    state[ACTIVITY_KEY] = now
    return None


def signed_in_with(state: Mapping[str, object]) -> Method | None:
    method = state.get(METHOD_KEY)
    return method if method in ("password", "oidc") else None  # type: ignore[return-value]


def cli_user(role: str) -> User:
    """Who a `cmkd` command acts as: the operating-system login, `cli:<login>`, in the role the
    command needs (whoever runs it on the server can read the workspace files anyway)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name or passwd entry (some containers)
        login = "unknown"
    return User(f"cli:{login}", role)
