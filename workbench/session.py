"""Who acts in a Streamlit session.

Sign-in does not exist yet (issue 8): until it does, a session without a signed-in user acts
as a local development administrator. `current_user` is the one place that decides this, so
sign-in replaces it here and every page and service follows.
"""

from __future__ import annotations

from collections.abc import Mapping

from workbench.roles import User

USER_KEY = "user"  # session-state key sign-in will fill with a `User`
DEVELOPMENT_USER = User("local", "admin")  # stand-in until sign-in exists


def current_user(state: Mapping[str, object]) -> User:
    """The signed-in user of a session state, else the local development user."""
    user = state.get(USER_KEY)
    return user if isinstance(user, User) else DEVELOPMENT_USER
