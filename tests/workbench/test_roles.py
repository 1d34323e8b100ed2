from __future__ import annotations

import pytest

from workbench.errors import PermissionDenied
from workbench.roles import PERMISSIONS, ROLES, User, require


def test_each_role_gets_exactly_its_permissions() -> None:
    nurse = User("n", "nurse")
    assert require(nurse, "write_summary") is nurse
    for permission in ("retrain", "interpret_vcf", "view_audit", "approve_summary"):
        with pytest.raises(PermissionDenied, match="nurse"):
            require(nurse, permission)
    admin = User("a", "admin")
    assert all(admin.can(p) for p in PERMISSIONS)
    assert set().union(*PERMISSIONS.values()) == set(ROLES)


def test_no_user_and_bad_names_are_refused() -> None:
    with pytest.raises(PermissionDenied, match="sign in"):
        require(None, "search")
    with pytest.raises(KeyError):
        require(User("a", "admin"), "fly")
    with pytest.raises(ValueError, match="unknown role"):
        User("x", "surgeon")
