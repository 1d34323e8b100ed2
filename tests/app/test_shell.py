"""AppTest of the shell: the pages each role sees, every protected page refusing a role
without its permission, and the incident id instead of a traceback."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.i18n import catalog, translate
from workbench.roles import PERMISSIONS, ROLES, User

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
TIMEOUT_S = 30
EN = catalog("en")


def shell_pages() -> tuple:
    """(path, permission) of every page the shell lists, read from the shell's source (the
    shell itself cannot be imported: importing it would run it)."""
    tree = ast.parse((ROOT / "streamlit_app.py").read_text(encoding="utf-8"))
    specs = {
        (args[0], args[3] if len(args) > 3 else None)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "PageSpec"
        for args in [[ast.literal_eval(a) for a in node.args]]
    }
    return tuple(sorted(specs, key=str))


@pytest.fixture()
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws"


def app(user: User | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    if user is not None:
        at.session_state["user"] = user
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def reachable(at: AppTest, path: str) -> bool:
    try:
        at.switch_page(path)
    except ValueError:  # not in this session's navigation
        return False
    return True


def test_the_shell_lists_the_pages_this_test_expects() -> None:
    pages = dict(shell_pages())
    assert pages["app_pages/audit.py"] == "view_audit"
    assert pages["app_pages/users.py"] == "manage_users"
    assert pages["app_pages/signin.py"] is None and pages["app_pages/home.py"] is None


def test_signed_out_visitors_see_only_sign_in_and_about(ws: Path) -> None:
    at = app(None)
    assert at.title[0].value == EN["auth.title"]
    visible = {path for path, _ in shell_pages() if reachable(at, path)}
    assert visible == {"app_pages/signin.py", "app_pages/about.py"}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_exactly_its_pages(ws: Path, role: str) -> None:
    at = app(User("someone", role))
    assert at.title[0].value == EN["home.title"]  # the default page, not sign-in
    for path, permission in shell_pages():
        if path == "app_pages/signin.py":
            assert not reachable(at, path)
        else:
            expected = permission is None or role in PERMISSIONS[permission]
            assert reachable(at, path) == expected, (role, path)


@pytest.mark.parametrize(
    ("path", "permission"), [(p, perm) for p, perm in shell_pages() if perm is not None]
)
def test_a_page_refuses_a_role_without_its_permission(ws: Path, path: str, permission: str) -> None:
    # Pages must refuse on their own (a deep link, a stale tab), with a message.
    role = next(r for r in ROLES if r not in PERMISSIONS[permission])
    at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT_S)
    at.session_state["user"] = User("someone", role)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    refusal = translate(f"{Path(path).stem}.not_allowed", "en", role=role)
    assert refusal in [m.value for m in (*at.warning, *at.info, *at.error)]
    assert not at.dataframe and not at.get("file_uploader") and not at.get("download_button")


def test_an_unexpected_error_shows_an_incident_id_not_a_traceback(
    ws: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_ws: object) -> None:
        raise RuntimeError("secret detail /srv/data")

    monkeypatch.setattr("workbench.status.workspace_status", broken)
    with caplog.at_level(logging.ERROR, logger="cmkd.app"):
        at = app(User("olga", "oncologist"))
    shown = at.error[0].value
    incident = re.search(r"\b([0-9a-f]{8})$", shown)[1]
    assert shown == EN["app.incident"].format(incident=incident)
    assert "secret detail" not in shown
    assert at.sidebar.button(key="auth.sign_out")  # the shell itself still works
    logged = [r for r in caplog.records if incident in r.getMessage()]
    assert logged and "secret detail" in str(logged[0].exc_info[1])
