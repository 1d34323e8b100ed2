"""`cmkd user add|list|disable|enable|reset` and `cmkd audit verify|list|export`.

Whoever can run the CLI on the server can read the database file anyway, so these commands act
as a local operator with the admin role (`cli:<login name>` in the audit log). The first
`cmkd user` command on an empty store creates the `admin` account and prints its one-time
password on stderr, as the Streamlit server does.

Exit codes: 0 success; 2 invalid input (unknown user or role, bad dates) or a broken audit
chain, with one `error: ...` line; 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from core.io import write_atomic
from workbench import audit_service
from workbench.audit_service import AuditFilter
from workbench.auth import AuthService
from workbench.errors import StoreError
from workbench.roles import ROLES
from workbench.session import cli_user
from workbench.store import Store
from workbench.workspace import Workspace

EXIT_OK, EXIT_INVALID = 0, 2


def announce_first_admin(auth: AuthService) -> None:
    """Create the first admin when the store has no account, printing its password on stderr."""
    password = auth.ensure_first_admin()
    if password is not None:
        print(first_admin_banner(password), file=sys.stderr, flush=True)


def first_admin_banner(password: str) -> str:
    return (
        "cmkd: first run, created the account 'admin' with the one-time password\n"
        f"    {password}\n"
        "Sign in with it; the workbench then asks for a new password. It is shown only once."
    )


def _auth() -> AuthService:
    auth = AuthService.from_workspace(Workspace.from_env())
    announce_first_admin(auth)
    return auth


def _print_password(name: str, password: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"name": name, "one_time_password": password}))
    else:
        print(f"one-time password for {name}: {password}")
        print("It is shown only once; the user must change it at the first sign-in.")


def cmd_user_add(args: argparse.Namespace) -> int:
    password = _auth().add_user(cli_user("admin"), args.name, args.role, args.email)
    _print_password(args.name.strip().lower(), password, args.json)
    return EXIT_OK


def cmd_user_list(args: argparse.Namespace) -> int:
    accounts = _auth().accounts(cli_user("admin"))
    if args.json:
        print(json.dumps([asdict(a) for a in accounts], indent=2))
        return EXIT_OK
    print(f"{'name':20} {'role':19} {'state':9} {'last sign-in':25} email")
    for a in accounts:
        state = "disabled" if a.disabled else "locked" if a.locked_until else "active"
        if a.must_change_password and not a.disabled:
            state = "new"  # still on a one-time password
        print(f"{a.name:20} {a.role:19} {state:9} {a.last_sign_in or '-':25} {a.email or '-'}")
    return EXIT_OK


def cmd_user_disable(args: argparse.Namespace) -> int:
    _auth().set_disabled(cli_user("admin"), args.name, disabled=args.user_command == "disable")
    print(f"{args.user_command}d {args.name}")
    return EXIT_OK


def cmd_user_reset(args: argparse.Namespace) -> int:
    password = _auth().reset_password(cli_user("admin"), args.name)
    _print_password(args.name.strip().lower(), password, args.json)
    return EXIT_OK


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _filter(args: argparse.Namespace) -> AuditFilter:
    return AuditFilter(args.actor, args.action, args.since, args.until, args.limit)


def _store() -> Store:
    return Store(Workspace.from_env().db_path)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    try:
        n = audit_service.verify(cli_user("admin"), _store())
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"audit chain intact: {n} entries")
    return EXIT_OK


def cmd_audit_list(args: argparse.Namespace) -> int:
    rows = audit_service.entries(cli_user("admin"), _store(), _filter(args))
    if args.json:
        print(json.dumps([asdict(e) for e in rows], indent=2, ensure_ascii=False))
        return EXIT_OK
    for e in rows:
        details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
        print(f"{e.id:6d} {e.at} {e.actor} {e.action} {e.target or '-'} {details}")
    return EXIT_OK


def cmd_audit_export(args: argparse.Namespace) -> int:
    data = audit_service.export_csv(cli_user("admin"), _store(), _filter(args))
    if args.out:
        write_atomic(Path(args.out), data)
        print(f"audit log exported to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("utf-8"))
    return EXIT_OK


def _filter_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", help="only this actor (name or pseudonym)")
    p.add_argument("--action", help="only this action, e.g. sign_in")
    p.add_argument("--since", type=_day, help="first day, YYYY-MM-DD (UTC)")
    p.add_argument("--until", type=_day, help="last day, YYYY-MM-DD (UTC)")
    p.add_argument("--limit", type=int, default=1000, help="most recent N entries (default 1000)")


def register(subparsers: Any) -> None:
    user = subparsers.add_parser("user", help="local accounts: add, list, disable, reset")
    usub = user.add_subparsers(dest="user_command", required=True)
    add = usub.add_parser("add", help="create an account; prints a one-time password")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--email", help="OIDC identity (email) mapped to this account")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_user_add)
    lst = usub.add_parser("list", help="every account with its role and state")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_user_list)
    for verb, text in (("disable", "refuse sign-in"), ("enable", "allow sign-in again")):
        p = usub.add_parser(verb, help=f"{text} for an account")
        p.add_argument("name")
        p.set_defaults(func=cmd_user_disable)
    reset = usub.add_parser("reset", help="new one-time password; clears a lockout")
    reset.add_argument("name")
    reset.add_argument("--json", action="store_true")
    reset.set_defaults(func=cmd_user_reset)

    audit = subparsers.add_parser("audit", help="the hash-chained audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    verify = asub.add_parser("verify", help="check the hash chain (exit 2 when broken)")
    verify.set_defaults(func=cmd_audit_verify)
    alist = asub.add_parser("list", help="entries, most recent first")
    _filter_arguments(alist)
    alist.add_argument("--json", action="store_true")
    alist.set_defaults(func=cmd_audit_list)
    export = asub.add_parser("export", help="entries as CSV (the export is audited)")
    _filter_arguments(export)
    export.add_argument("--out", help="CSV file to write (default: stdout)")
    export.set_defaults(func=cmd_audit_export)
