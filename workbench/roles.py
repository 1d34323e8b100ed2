"""Roles and what each may do. Services call `require(user, permission)` before acting, so a
hidden page is never the only guard.

Sign-in (local bcrypt accounts, OIDC) is layered on top of this; until a user signs in, the
workbench has no user and every protected service refuses.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.errors import PermissionDenied

ROLES: tuple[str, ...] = ("oncologist", "genetic_counsellor", "nurse", "reviewer", "admin")

# permission -> roles allowed. Admins may do everything.
PERMISSIONS: dict[str, frozenset[str]] = {
    "search": frozenset({"oncologist", "genetic_counsellor", "reviewer", "admin"}),
    "view_slides": frozenset({"oncologist", "reviewer", "admin"}),
    "review": frozenset({"reviewer", "oncologist", "admin"}),
    "interpret_vcf": frozenset({"genetic_counsellor", "admin"}),
    "write_summary": frozenset({"nurse", "oncologist", "admin"}),
    "approve_summary": frozenset({"oncologist", "admin"}),  # a clinician signs off
    "retrain": frozenset({"admin"}),
    "view_audit": frozenset({"admin"}),
    "manage_users": frozenset({"admin"}),
}


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; roles: {', '.join(ROLES)}")

    def can(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def require(user: User | None, permission: str) -> User:
    """Return `user` if it may do `permission`; raise PermissionDenied otherwise."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    if user is None:
        raise PermissionDenied(f"sign in to {permission.replace('_', ' ')}")
    if not user.can(permission):
        raise PermissionDenied(f"{user.name} ({user.role}) may not {permission.replace('_', ' ')}")
    return user
