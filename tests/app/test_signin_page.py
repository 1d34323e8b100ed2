"""AppTest of sign-in through the shell: first-run admin and forced password change, wrong
passwords and lockout (same message for unknown names), sign-out, inactivity expiry, OIDC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.auth import AuthConfig, AuthService
from workbench.i18n import catalog
from workbench.roles import User
from workbench.session import ACTIVITY_KEY
from workbench.store import Store
from workbench.workspace import Workspace

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
TIMEOUT_S = 30
EN = catalog("en")
GOOD = "a long enough passphrase"
ADMIN = User("root", "admin")


@pytest.fixture()
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    monkeypatch.setenv("CMKD_WORKSPACE", str(root))
    return root


def account(ws: Path, name: str, role: str, email: str | None = None) -> None:
    """An account with the password GOOD (cheap hashes: the test checks behaviour, not cost)."""
    auth = AuthService.from_workspace(Workspace(ws), AuthConfig(bcrypt_rounds=4))
    otp = auth.add_user(ADMIN, name, role, email)
    auth.change_password(name, otp, GOOD)


def run(target: AppTest | object) -> AppTest:
    """Run the app (or the app a widget belongs to, after an interaction) and check it."""
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="auth.name").input(name)
    at.text_input(key="auth.password").input(password)
    return run(at.button(key=f"FormSubmitter:auth.sign_in-{EN['auth.submit']}").click())


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_first_run_admin_must_set_a_password(ws: Path, capsys: pytest.CaptureFixture) -> None:
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT_S))
    assert titles(at) == [EN["auth.title"]]
    otp = re.search(r"one-time password\n\s+(\S+)", capsys.readouterr().err)[1]  # the terminal

    at = sign_in(at, "admin", otp)
    assert EN["auth.must_change"].format(name="admin") in [i.value for i in at.info]
    submit = f"FormSubmitter:auth.change-{EN['auth.change_submit']}"

    def change(current: str, new: str, again: str) -> AppTest:
        at.text_input(key="auth.current").input(current)
        at.text_input(key="auth.new").input(new)
        at.text_input(key="auth.again").input(again)
        return run(at.button(key=submit).click())

    assert [e.value for e in change(otp, GOOD, GOOD + "x").error] == [EN["auth.mismatch"]]
    short = change(otp, "short", "short")
    assert [e.value for e in short.error] == [EN["auth.policy.too_short"].format(n=12)]
    assert "user" not in at.session_state
    at = change(otp, GOOD, GOOD)
    assert at.session_state["user"] == User("admin", "admin")
    assert titles(at) == [EN["home.title"]]
    assert "**admin**" in at.sidebar.markdown[0].value
    # No password is left in session state.
    assert not any(GOOD in str(v) for v in at.session_state.values())


def test_wrong_password_and_unknown_name_read_the_same_then_lock(ws: Path) -> None:
    account(ws, "nadia", "nurse")
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT_S))
    for _ in range(4):
        assert [e.value for e in sign_in(at, "nadia", "wrong").error] == [EN["auth.invalid"]]
        assert [e.value for e in sign_in(at, "nobody", "wrong").error] == [EN["auth.invalid"]]
    assert [e.value for e in sign_in(at, "nadia", "wrong").error] == [EN["auth.locked"]]
    assert [e.value for e in sign_in(at, "nobody", "wrong").error] == [EN["auth.locked"]]
    assert [e.value for e in sign_in(at, "nadia", GOOD).error] == [EN["auth.locked"]]
    assert "user" not in at.session_state


def test_sign_in_then_sign_out(ws: Path) -> None:
    account(ws, "nadia", "nurse")
    at = sign_in(run(AppTest.from_file(APP, default_timeout=TIMEOUT_S)), "nadia", GOOD)
    assert titles(at) == [EN["home.title"]]
    role = EN["auth.role.nurse"]
    assert at.sidebar.markdown[0].value == EN["auth.signed_in_as"].format(name="nadia", role=role)
    at = run(at.sidebar.button(key="auth.sign_out").click())
    assert titles(at) == [EN["auth.title"]]
    assert EN["auth.notice_signed_out"] in [i.value for i in at.info]
    actions = [e.action for e in Store(ws / "store.sqlite").audit_entries(actor="nadia")]
    assert actions[:2] == ["sign_out", "sign_in"]


def test_an_idle_session_expires_with_a_notice(ws: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["user"] = User("olga", "oncologist")
    at.session_state[ACTIVITY_KEY] = datetime.now(UTC) - timedelta(minutes=20)
    assert titles(run(at)) == [EN["home.title"]]  # 20 minutes: still signed in
    at.session_state[ACTIVITY_KEY] = datetime.now(UTC) - timedelta(minutes=31)
    at = run(at)
    assert titles(at) == [EN["auth.title"]] and "user" not in at.session_state
    assert EN["auth.notice_expired"] in [i.value for i in at.info]
    assert Store(ws / "store.sqlite").audit_entries(limit=1)[0].action == "session_expired"


def test_idle_limit_comes_from_the_environment(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMKD_SESSION_IDLE_MIN", "5")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["user"] = User("olga", "oncologist")
    at.session_state[ACTIVITY_KEY] = datetime.now(UTC) - timedelta(minutes=6)
    assert titles(run(at)) == [EN["auth.title"]]


OIDC = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "not-a-real-secret",
        "hospital": {"client_id": "x", "client_secret": "y",
                     "server_metadata_url": "https://idp.invalid/.well-known/openid-configuration"},
    }
}  # fmt: skip


def test_oidc_button_and_identity_mapping(ws: Path) -> None:
    account(ws, "oscar", "oncologist", email="oscar@hospital.org")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.secrets = OIDC
    at.user = {"is_logged_in": False}
    at = run(at)
    assert at.button(key="auth.oidc.hospital").label == EN["auth.oidc_button"].format(
        provider="Hospital"
    )

    at.user = {"is_logged_in": True, "email": "stranger@hospital.org"}
    at = run(at)
    assert "user" not in at.session_state  # an identity without an account gets no role
    expected = EN["auth.oidc_unknown"].format(email="stranger@hospital.org")
    assert [w.value for w in at.warning] == [expected]

    at.user = {"is_logged_in": True, "email": "Oscar@hospital.org", "email_verified": True}
    at = run(at)
    assert at.session_state["user"] == User("oscar", "oncologist")
    assert titles(at) == [EN["home.title"]]
    entries = Store(ws / "store.sqlite").audit_entries(limit=2)
    assert [(e.action, e.details.get("method")) for e in entries] == [
        ("sign_in", "oidc"), ("sign_in_failed", "oidc"),
    ]  # fmt: skip


def test_without_auth_secrets_there_is_no_oidc_button(ws: Path) -> None:
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT_S))
    assert not [b for b in at.button if b.key and b.key.startswith("auth.oidc")]
