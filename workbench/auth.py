"""Local accounts and sign-in: bcrypt hashes in the store, lockout, one-time passwords, and the
mapping of an OIDC identity (st.login) to a local account's role.

Accounts live in the `users` table of the workspace store. A password is never stored: only
bcrypt(base64(sha256(password))), the SHA-256 step because bcrypt reads at most 72 bytes and a
Hindi or Swahili passphrase reaches that quickly. Every sign-in attempt runs exactly one bcrypt
check (against a dummy hash for unknown names) and unknown names are locked out like real
ones, so neither the message nor the timing tells whether an account exists. Every outcome is
audited; unknown names appear in the audit log only as pseudonyms.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

import bcrypt

from core.errors import ConfigError, InputError
from workbench.roles import ROLES, User, require
from workbench.store import Store, pseudonym
from workbench.workspace import Workspace

FIRST_ADMIN = "admin"  # the account the first run creates
IDLE_ENV = "CMKD_SESSION_IDLE_MIN"  # minutes of inactivity before a session is signed out
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_PASSWORD_CHARS = 1024  # beyond any passphrase; bounds the work of one attempt

_DDL = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,            -- lower case, NAME_RE
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,      -- bcrypt of base64(sha256(password)); never the password
    email TEXT UNIQUE,                -- OIDC identity mapped to this account (lower case)
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_count INTEGER NOT NULL DEFAULT 0,  -- failed sign-ins since the last success/lockout
    locked_until TEXT,                -- UTC ISO-8601; NULL when not locked
    must_change_password INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_sign_in TEXT
);
CREATE TABLE IF NOT EXISTS sign_in_unknown (
    name_psn TEXT PRIMARY KEY,        -- pseudonym of a name that has no account
    failed_count INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT
);
"""
# Shared settings of Streamlit's [auth] secrets section; any other table in it is a named
# provider (st.login("<name>")).
_AUTH_SHARED_KEYS = frozenset(
    {"redirect_uri", "cookie_secret", "expose_tokens", "client_id", "client_secret",
     "server_metadata_url", "client_kwargs"}
)  # fmt: skip

_UNKNOWN = "sign_in_unknown"  # failure counts of names without an account
Outcome = Literal["ok", "must_change", "invalid", "locked", "disabled"]


@dataclass(frozen=True)
class AuthConfig:
    max_failures: int = 5  # failed sign-ins in a row before a lockout
    lockout_minutes: float = 15.0  # how long a lockout lasts
    min_password_length: int = 12  # characters, not bytes
    idle_minutes: float = 30.0  # inactivity before a session is signed out
    bcrypt_rounds: int = 12  # log2 cost; about 0.3 s per check on this machine kind

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.lockout_minutes <= 0 or self.idle_minutes <= 0:
            raise ConfigError(f"AuthConfig: limits must be positive: {self}")
        if not 4 <= self.bcrypt_rounds <= 31:
            raise ConfigError(f"AuthConfig: bcrypt_rounds must be 4..31, got {self.bcrypt_rounds}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AuthConfig:
        """Defaults, with the idle limit from $CMKD_SESSION_IDLE_MIN when set."""
        raw = environ.get(IDLE_ENV, "").strip()
        if not raw:
            return cls()
        try:
            return cls(idle_minutes=float(raw))
        except ValueError:
            raise ConfigError(f"{IDLE_ENV}={raw!r}: expected a number of minutes") from None


@dataclass(frozen=True)
class Account:
    """A row of the users table, without its hash."""

    name: str
    role: str
    email: str | None
    disabled: bool
    failed_count: int
    locked_until: str | None
    must_change_password: bool
    created_at: str
    last_sign_in: str | None


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt gave: `user` only when `outcome` is "ok"."""

    outcome: Outcome
    user: User | None = None


@dataclass(frozen=True)
class OidcProvider:
    key: str | None  # argument of st.login; None for the unnamed provider
    label: str  # shown as "Sign in with <label>"


def normalise_name(name: str) -> str:
    return name.strip().lower()


def password_problems(name: str, password: str, config: AuthConfig) -> tuple[str, ...]:
    """Codes of the policy rules `password` breaks (empty when it is acceptable); the page
    translates them as `auth.policy.<code>`."""
    problems = []
    if len(password) < config.min_password_length:
        problems.append("too_short")
    if len(password) > MAX_PASSWORD_CHARS:
        problems.append("too_long")
    if password.strip().lower() == normalise_name(name):
        problems.append("same_as_name")
    if password and len(set(password)) == 1:
        problems.append("one_character")
    return tuple(problems)


_POLICY_TEXT = {
    "too_short": "must have at least {n} characters",
    "too_long": f"must have at most {MAX_PASSWORD_CHARS} characters",
    "same_as_name": "must differ from the user name",
    "one_character": "must not repeat a single character",
}


def _check_policy(name: str, password: str, config: AuthConfig) -> None:
    if problems := password_problems(name, password, config):
        rules = "; ".join(_POLICY_TEXT[p].format(n=config.min_password_length) for p in problems)
        raise InputError(f"password {rules}")


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def check_password(password: str, hashed: str) -> bool:
    return bcrypt.checkpw(_prehash(password[:MAX_PASSWORD_CHARS]), hashed.encode("ascii"))


@cache
def _dummy_hash(rounds: int) -> str:
    """A hash nobody's password matches, checked for unknown names so they cost the same."""
    return hash_password(secrets.token_urlsafe(16), rounds)


def one_time_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 bits


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def _now() -> datetime:
    return datetime.now(UTC)


def auth_section(secrets: Any) -> Mapping[str, Any] | None:
    """The [auth] section of st.secrets (Streamlit's st.login settings), None without one."""
    return secrets.get("auth") if secrets.load_if_toml_exists() else None


def oidc_providers(auth_section: Mapping[str, Any] | None) -> tuple[OidcProvider, ...]:
    """The providers an [auth] secrets section configures, for "Sign in with ..." buttons."""
    if not auth_section:
        return ()
    named = tuple(
        OidcProvider(key, key.replace("_", " ").title())
        for key, value in auth_section.items()
        if key not in _AUTH_SHARED_KEYS and isinstance(value, Mapping)
    )
    if named:
        return named
    return (OidcProvider(None, "single sign-on"),) if "client_id" in auth_section else ()


class AuthService:
    """Accounts, sign-in and OIDC mapping over one store. Account changes need
    `manage_users`; sign-in itself needs nobody."""

    def __init__(
        self,
        store: Store,
        salt: str,
        config: AuthConfig | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.salt = salt  # pseudonymises unknown names in the audit log
        self.config = config or AuthConfig()
        self.clock = clock

    @classmethod
    def from_workspace(cls, ws: Workspace, config: AuthConfig | None = None) -> AuthService:
        from workbench.workspace import workspace_salt

        return cls(Store(ws.db_path), workspace_salt(ws), config)

    def _connect(self) -> Any:
        self.store.ensure(_DDL)
        return self.store.connect()

    # --- accounts ----------------------------------------------------------------------

    def ensure_first_admin(self) -> str | None:
        """Create the `admin` account with a one-time password when there is no account at
        all; return that password (for the terminal), or None when accounts exist."""
        with self._connect() as conn:
            if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return None  # the usual case: no bcrypt work
        password = one_time_password()
        digest = hash_password(password, self.config.bcrypt_rounds)
        with self._connect() as conn:
            if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                return None  # another process created the first account meanwhile
            self._insert(conn, FIRST_ADMIN, "admin", digest, None)
        self.store.audit("system", "create_user", FIRST_ADMIN, role="admin", first_run=True)
        return password

    def _insert(
        self, conn: sqlite3.Connection, name: str, role: str, digest: str, email: str | None
    ) -> None:
        conn.execute(
            "INSERT INTO users (name, role, password_hash, email, must_change_password,"
            " created_at) VALUES (?, ?, ?, ?, 1, ?)",
            (name, role, digest, email, _iso(self.clock())),
        )

    def add_user(self, actor: User | None, name: str, role: str, email: str | None = None) -> str:
        """Create an account; return its one-time password (to be changed at first sign-in)."""
        actor = require(actor, "manage_users")
        name = normalise_name(name)
        if not NAME_RE.fullmatch(name):
            raise InputError(
                f"user name {name!r}: 2-32 characters a-z, 0-9, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        email = self._valid_email(email)
        password = one_time_password()
        digest = hash_password(password, self.config.bcrypt_rounds)
        with self._connect() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise InputError(f"user {name!r} already exists")
            if email and conn.execute("SELECT 1 FROM users WHERE email = ?", (email,)).fetchone():
                raise InputError(f"email {email!r} already belongs to another account")
            self._insert(conn, name, role, digest, email)
        self.store.audit(actor.name, "create_user", name, role=role, oidc=bool(email))
        return password

    @staticmethod
    def _valid_email(email: str | None) -> str | None:
        if email is None or not email.strip():
            return None
        email = email.strip().lower()
        if not EMAIL_RE.fullmatch(email):
            raise InputError(f"not an email address: {email!r}")
        return email

    def accounts(self, actor: User | None) -> list[Account]:
        require(actor, "manage_users")
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [
            Account(r["name"], r["role"], r["email"], bool(r["disabled"]), r["failed_count"],
                    r["locked_until"], bool(r["must_change_password"]), r["created_at"],
                    r["last_sign_in"])
            for r in rows
        ]  # fmt: skip

    @staticmethod
    def _update_existing(conn: sqlite3.Connection, name: str, sql: str, args: tuple) -> None:
        if conn.execute(sql, args).rowcount == 0:
            raise InputError(f"no user named {name!r}")

    def set_disabled(self, actor: User | None, name: str, disabled: bool) -> None:
        actor = require(actor, "manage_users")
        name = normalise_name(name)
        if disabled and name == actor.name:
            raise InputError("you cannot disable your own account")
        with self._connect() as conn:
            self._update_existing(
                conn, name, "UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name)
            )
        self.store.audit(actor.name, "disable_user" if disabled else "enable_user", name)

    def reset_password(self, actor: User | None, name: str) -> str:
        """A new one-time password for `name` (lockout cleared, change forced at sign-in)."""
        actor = require(actor, "manage_users")
        name = normalise_name(name)
        password = one_time_password()
        digest = hash_password(password, self.config.bcrypt_rounds)
        with self._connect() as conn:
            self._update_existing(
                conn, name,
                "UPDATE users SET password_hash = ?, must_change_password = 1, failed_count = 0,"
                " locked_until = NULL WHERE name = ?",
                (digest, name),
            )  # fmt: skip
        self.store.audit(actor.name, "reset_password", name)
        return password

    # --- sign-in -----------------------------------------------------------------------

    def sign_in(self, name: str, password: str) -> SignIn:
        """Check a name and password. "must_change" means the password was right but must be
        replaced (change_password) before the account may be used."""
        name = normalise_name(name)
        now = self.clock()
        dummy = _dummy_hash(self.config.bcrypt_rounds)
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        # Exactly one bcrypt check whatever the name, so timing does not tell who exists.
        password_ok = check_password(password, row["password_hash"] if row else dummy)
        # Unknown names are counted and locked out like accounts, under a pseudonym.
        actor, table, column = (
            (name, "users", "name") if row else (pseudonym(name, self.salt), _UNKNOWN, "name_psn")
        )
        if self._locked(table, column, actor, now):
            self.store.audit(actor, "sign_in_failed", "", reason="locked")
            return SignIn("locked")
        if row is None or not password_ok:
            locked = self._record_failure(table, column, actor, now)
            reason = "password" if row else "unknown_user"
            self.store.audit(actor, "sign_in_failed", "", reason=reason)
            if locked:
                self.store.audit(actor, "lockout", actor, minutes=self.config.lockout_minutes)
            return SignIn("locked" if locked else "invalid")
        if row["disabled"]:
            self.store.audit(name, "sign_in_failed", "", reason="disabled")
            return SignIn("disabled")
        if row["must_change_password"]:
            return SignIn("must_change")
        with self._connect() as conn:
            conn.execute(
                "UPDATE users SET failed_count = 0, locked_until = NULL, last_sign_in = ?"
                " WHERE name = ?",
                (_iso(now), name),
            )
        self.store.audit(name, "sign_in", "", method="password")
        return SignIn("ok", User(name, row["role"]))

    def _locked(self, table: str, column: str, key: str, now: datetime) -> bool:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT locked_until FROM {table} WHERE {column} = ?", (key,)
            ).fetchone()
        return bool(row and row[0] and datetime.fromisoformat(row[0]) > now)

    def _record_failure(self, table: str, column: str, key: str, now: datetime) -> bool:
        """Count one failed sign-in of `key`; lock it at the limit. True when it locked."""
        with self._connect() as conn:
            if table == _UNKNOWN:
                conn.execute(f"INSERT OR IGNORE INTO {_UNKNOWN} (name_psn) VALUES (?)", (key,))
            (count,) = conn.execute(
                f"SELECT failed_count FROM {table} WHERE {column} = ?", (key,)
            ).fetchone()
            locked = count + 1 >= self.config.max_failures
            until = _iso(now + timedelta(minutes=self.config.lockout_minutes)) if locked else None
            conn.execute(
                f"UPDATE {table} SET failed_count = ?, locked_until = ? WHERE {column} = ?",
                (0 if locked else count + 1, until, key),
            )
        return locked

    def change_password(self, name: str, current: str, new: str) -> SignIn:
        """Replace a password after checking the current one (the one-time password at first
        sign-in); success signs the user in. A wrong `current` counts as a failed sign-in."""
        name = normalise_name(name)
        _check_policy(name, new, self.config)
        if new == current:
            raise InputError("the new password must differ from the current one")
        checked = self.sign_in(name, current)
        if checked.outcome not in ("ok", "must_change"):
            return checked
        digest = hash_password(new, self.config.bcrypt_rounds)
        with self._connect() as conn:
            conn.execute(
                "UPDATE users SET password_hash = ?, must_change_password = 0, failed_count = 0,"
                " locked_until = NULL, last_sign_in = ? WHERE name = ?",
                (digest, _iso(self.clock()), name),
            )
            (role,) = conn.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
        forced = checked.outcome == "must_change"
        self.store.audit(name, "change_password", name, forced=forced)
        if forced:  # sign_in held back its audit entry until the password was replaced
            self.store.audit(name, "sign_in", "", method="password")
        return SignIn("ok", User(name, role))

    def user_for_identity(
        self, email: str | None, email_verified: bool | None = None
    ) -> User | None:
        """The local account an OIDC identity maps to (by email), or None: no email, an email
        the provider says is unverified, no such account, or a disabled one."""
        if not email or email_verified is False:
            return None
        with self._connect() as conn:
            row = conn.execute(
                "SELECT name, role FROM users WHERE email = ? AND disabled = 0",
                (email.strip().lower(),),
            ).fetchone()
        return User(row["name"], row["role"]) if row else None

    def record_oidc_sign_in(self, email: str | None, user: User | None) -> None:
        """Audit an OIDC sign-in: the account it mapped to, or a pseudonym of the identity."""
        if user is None:
            actor = pseudonym((email or "").lower(), self.salt)
            self.store.audit(actor, "sign_in_failed", "", reason="unmapped_identity", method="oidc")
            return
        with self._connect() as conn:
            conn.execute(
                "UPDATE users SET last_sign_in = ? WHERE name = ?", (_iso(self.clock()), user.name)
            )
        self.store.audit(user.name, "sign_in", "", method="oidc")

    def record_sign_out(self, user: User, expired: bool = False) -> None:
        self.store.audit(user.name, "session_expired" if expired else "sign_out", "")
