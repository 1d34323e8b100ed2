"""Local accounts and sign-in (bcrypt, lockout, first-run admin, forced change, OIDC mapping),
session expiry, and role enforcement per role in the existing services."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import ConfigError, InputError
from workbench import session
from workbench.auth import (
    AuthConfig,
    AuthService,
    auth_section,
    check_password,
    hash_password,
    oidc_providers,
    password_problems,
)
from workbench.errors import PermissionDenied
from workbench.roles import PERMISSIONS, ROLES, User
from workbench.store import Store, pseudonym

FAST = AuthConfig(bcrypt_rounds=4, max_failures=3, lockout_minutes=15)
ADMIN = User("root", "admin")
GOOD = "correct horse battery"  # 21 characters: passes the policy


class Clock:
    """A settable clock for lockout tests."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.sqlite")


@pytest.fixture()
def auth(store: Store, clock: Clock) -> AuthService:
    return AuthService(store, "salt", FAST, clock)


def nurse(auth: AuthService, name: str = "nadia") -> User:
    """An account whose one-time password has been replaced by GOOD."""
    otp = auth.add_user(ADMIN, name, "nurse")
    assert auth.change_password(name, otp, GOOD).user == User(name, "nurse")
    return User(name, "nurse")


def test_only_bcrypt_hashes_are_stored(auth: AuthService, store: Store) -> None:
    otp = auth.add_user(ADMIN, "Nadia ", "nurse")  # names are normalised
    auth.change_password("nadia", otp, GOOD)
    dump = "\n".join(sqlite3.connect(store.path).iterdump())
    assert otp not in dump and GOOD not in dump
    with sqlite3.connect(store.path) as conn:
        (digest,) = conn.execute("SELECT password_hash FROM users WHERE name='nadia'").fetchone()
    assert digest.startswith("$2b$04$")
    assert check_password(GOOD, digest) and not check_password(GOOD + "!", digest)
    # bcrypt reads 72 bytes; the SHA-256 step keeps longer passphrases fully significant.
    long = "ष" * 30  # 90 bytes of UTF-8
    assert not check_password(long + "a", hash_password(long + "b", 4))


def test_first_run_creates_one_admin_who_must_change_the_password(auth: AuthService) -> None:
    otp = auth.ensure_first_admin()
    assert otp is not None and len(otp) >= FAST.min_password_length
    assert auth.ensure_first_admin() is None  # only once
    assert auth.sign_in("admin", otp).outcome == "must_change"
    assert auth.sign_in("admin", "wrong password!").outcome == "invalid"
    with pytest.raises(InputError, match="at least 12"):
        auth.change_password("admin", otp, "short")
    with pytest.raises(InputError, match="differ"):
        auth.change_password("admin", otp, otp)
    assert auth.change_password("admin", "not the otp", GOOD).outcome == "invalid"
    assert auth.change_password("admin", otp, GOOD).user == User("admin", "admin")
    assert auth.sign_in("admin", otp).outcome == "invalid"
    assert auth.sign_in("ADMIN", GOOD).user == User("admin", "admin")
    actions = [e.action for e in auth.store.audit_entries()][::-1]
    assert actions[0] == "create_user"
    assert actions[-4:] == ["change_password", "sign_in", "sign_in_failed", "sign_in"]


def test_password_policy() -> None:
    cfg = AuthConfig()
    assert password_problems("ana", GOOD, cfg) == ()
    assert password_problems("ana", "short", cfg) == ("too_short",)
    assert password_problems("ana.maria.costa", "Ana.Maria.Costa", cfg) == ("same_as_name",)
    assert password_problems("ana", "a" * 12, cfg) == ("one_character",)
    assert password_problems("ana", "x" * 2000 + "y", cfg) == ("too_long",)


def test_lockout_after_failures_then_unlock_after_the_period(
    auth: AuthService, clock: Clock
) -> None:
    nurse(auth)
    assert [auth.sign_in("nadia", "wrong").outcome for _ in range(3)] == [
        "invalid", "invalid", "locked",
    ]  # fmt: skip
    assert auth.sign_in("nadia", GOOD).outcome == "locked"  # even the right password
    clock.now += timedelta(minutes=14)
    assert auth.sign_in("nadia", GOOD).outcome == "locked"
    clock.now += timedelta(minutes=2)
    assert auth.sign_in("nadia", GOOD).user == User("nadia", "nurse")
    actions = [(e.actor, e.action, e.details.get("reason")) for e in auth.store.audit_entries()]
    assert ("nadia", "lockout", None) in actions
    assert actions.count(("nadia", "sign_in_failed", "locked")) == 2


def test_unknown_names_look_like_real_ones(auth: AuthService, store: Store) -> None:
    nurse(auth)
    real = [auth.sign_in("nadia", "wrong").outcome for _ in range(4)]
    ghost = [auth.sign_in("nobody", "wrong").outcome for _ in range(4)]
    assert real == ghost == ["invalid", "invalid", "locked", "locked"]
    # The unknown name is audited only as a pseudonym.
    actors = {e.actor for e in store.audit_entries()}
    assert pseudonym("nobody", "salt") in actors
    assert not any("nobody" in a for a in actors)


def test_disabled_accounts_and_reset(auth: AuthService) -> None:
    nurse(auth)
    auth.set_disabled(ADMIN, "nadia", disabled=True)
    assert auth.sign_in("nadia", "wrong").outcome == "invalid"  # no hint without the password
    assert auth.sign_in("nadia", GOOD).outcome == "disabled"
    auth.set_disabled(ADMIN, "nadia", disabled=False)
    otp = auth.reset_password(ADMIN, "nadia")
    assert auth.sign_in("nadia", GOOD).outcome == "invalid"
    assert auth.sign_in("nadia", otp).outcome == "must_change"
    with pytest.raises(InputError, match="no user"):
        auth.reset_password(ADMIN, "ghost")
    with pytest.raises(InputError, match="own account"):
        auth.set_disabled(ADMIN, "root", disabled=True)


def test_account_management_needs_manage_users(auth: AuthService) -> None:
    for role in ROLES:
        user = User("someone", role)
        if user.can("manage_users"):
            auth.add_user(user, f"made-by-{role}", "nurse")
            continue
        with pytest.raises(PermissionDenied):
            auth.add_user(user, "x1", "nurse")
        with pytest.raises(PermissionDenied):
            auth.accounts(user)
        with pytest.raises(PermissionDenied):
            auth.reset_password(user, "made-by-admin")
    with pytest.raises(PermissionDenied, match="sign in"):
        auth.set_disabled(None, "made-by-admin", disabled=True)
    with pytest.raises(InputError, match="unknown role"):
        auth.add_user(ADMIN, "x2", "surgeon")
    with pytest.raises(InputError, match="user name"):
        auth.add_user(ADMIN, "x y", "nurse")
    with pytest.raises(InputError, match="already exists"):
        auth.add_user(ADMIN, "made-by-admin", "nurse")


def test_oidc_identity_maps_to_a_local_account(auth: AuthService) -> None:
    auth.add_user(ADMIN, "oscar", "oncologist", email="Oscar@Hospital.org")
    assert auth.user_for_identity("oscar@hospital.org") == User("oscar", "oncologist")
    assert auth.user_for_identity(" OSCAR@hospital.org", email_verified=True) is not None
    assert auth.user_for_identity("oscar@hospital.org", email_verified=False) is None
    assert auth.user_for_identity("stranger@hospital.org") is None
    assert auth.user_for_identity(None) is None
    with pytest.raises(InputError, match="another account"):
        auth.add_user(ADMIN, "oscar2", "nurse", email="oscar@hospital.org")
    auth.set_disabled(ADMIN, "oscar", disabled=True)
    assert auth.user_for_identity("oscar@hospital.org") is None
    auth.record_oidc_sign_in("stranger@hospital.org", None)
    last = auth.store.audit_entries(limit=1)[0]
    assert last.action == "sign_in_failed" and last.details["reason"] == "unmapped_identity"
    assert "stranger" not in last.actor


def test_oidc_providers_from_the_auth_secrets_section() -> None:
    assert oidc_providers(None) == oidc_providers({}) == ()
    shared = {"redirect_uri": "http://x/oauth2callback", "cookie_secret": "s"}
    one = oidc_providers({**shared, "client_id": "id", "server_metadata_url": "https://idp"})
    assert [(p.key, p.label) for p in one] == [(None, "single sign-on")]
    named = oidc_providers({**shared, "microsoft": {"client_id": "a"}, "hospital_idp": {}})
    assert [(p.key, p.label) for p in named] == [
        ("microsoft", "Microsoft"), ("hospital_idp", "Hospital Idp"),
    ]  # fmt: skip

    class Secrets(dict):
        def load_if_toml_exists(self) -> bool:
            return bool(self)

    assert auth_section(Secrets()) is None
    assert auth_section(Secrets(auth=shared)) == shared


def test_config_from_env() -> None:
    assert AuthConfig.from_env({}).idle_minutes == 30
    assert AuthConfig.from_env({"CMKD_SESSION_IDLE_MIN": "5"}).idle_minutes == 5
    with pytest.raises(ConfigError, match="CMKD_SESSION_IDLE_MIN"):
        AuthConfig.from_env({"CMKD_SESSION_IDLE_MIN": "soon"})
    with pytest.raises(ConfigError):
        AuthConfig.from_env({"CMKD_SESSION_IDLE_MIN": "0"})


def test_session_expires_after_inactivity() -> None:
    start = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    state: dict[str, object] = {"ui_lang": "pt", "vcf.job": object()}
    assert session.current_user(state) is None
    session.sign_in(state, User("nadia", "nurse"), "password", start)
    assert session.expire_if_idle(state, start + timedelta(minutes=29), 30) is None
    # Activity moved the deadline: 29 + 29 minutes is still within 30 of the last run.
    assert session.expire_if_idle(state, start + timedelta(minutes=58), 30) is None
    expired = session.expire_if_idle(state, start + timedelta(minutes=89), 30)
    assert expired == User("nadia", "nurse")
    assert session.current_user(state) is None
    # Everything of the user's is gone; the language and the notice stay.
    assert state == {"ui_lang": "pt", session.NOTICE_KEY: "auth.notice_expired"}


def test_sign_out_returns_the_user_and_clears_the_state() -> None:
    state: dict[str, object] = {}
    session.sign_in(state, User("a", "admin"), "oidc", datetime.now(UTC))
    assert session.signed_in_with(state) == "oidc"
    assert session.sign_out(state) == User("a", "admin")
    assert state == {} and session.sign_out(state) is None


# --- roles are enforced in the services, per role -------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_vcf_service_enforces_interpret_vcf(role: str, tmp_path: Path) -> None:
    from workbench.vcf_service import start_upload
    from workbench.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    store = Store(ws.db_path)
    user = User("u", role)
    if role in PERMISSIONS["interpret_vcf"]:
        with pytest.raises(InputError):  # past the role check, refused for its content
            start_upload(user, b"not a vcf", "x.vcf", store, ws)
    else:
        with pytest.raises(PermissionDenied, match=role):
            start_upload(user, b"not a vcf", "x.vcf", store, ws)


@pytest.mark.parametrize("role", ROLES)
def test_summary_service_enforces_write_and_approve(
    role: str, tiny_cohort: Path, tmp_path: Path
) -> None:
    from workbench.summary_service import SummaryService

    service = SummaryService(Store(tmp_path / "store.sqlite"), tiny_cohort)
    case_id = service.case_ids()[0]
    user = User("u", role)
    if role not in PERMISSIONS["write_summary"]:
        with pytest.raises(PermissionDenied, match=role):
            service.draft_for_case(user, case_id, "sw")
        return
    draft = service.draft_for_case(user, case_id, "sw")
    if role in PERMISSIONS["approve_summary"]:
        assert service.approve(user, draft).approved_by == "u"
    else:
        with pytest.raises(PermissionDenied, match=role):
            service.approve(user, draft)
