"""`cmkd runs list|show|promote|rollback`: the model registry from the command line.

The CLI acts as an administrator named after the operating-system user: whoever can run cmkd
on the workspace can already write its files. Promotions and rollbacks are audited as in the
page.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from workbench.registry import Registry, RunInfo
from workbench.session import cli_user
from workbench.workspace import Workspace


def _mean(info: RunInfo, metric: str) -> float | None:
    values = [m[metric] for m in info.heldout.values() if metric in m]
    return round(sum(values) / len(values), 4) if values else None


def _info_json(info: RunInfo) -> dict[str, Any]:
    return {**dataclasses.asdict(info), "path": str(info.path)}


def cmd_list(args: argparse.Namespace) -> int:
    registry = Registry(Workspace.from_env())
    infos = registry.versions(cli_user("admin"))
    if args.json:
        print(json.dumps({"production": registry.production_version(),
                          "versions": [_info_json(i) for i in infos]}, indent=2))  # fmt: skip
        return 0
    print(f"production: {registry.production_version() or 'none'}")
    print(f"  {'version':36} {'created':25} {'status':9} {'acc':>6} {'r@10':>6}  user")
    for i in infos:
        acc, rec = _mean(i, "accuracy"), _mean(i, "recall_at_10")
        print(f"{'*' if i.production else ' '} {i.version:36} {i.created_at:25} {i.status:9} "
              f"{'-' if acc is None else f'{acc:.3f}':>6} {'-' if rec is None else f'{rec:.3f}':>6}"
              f"  {i.user}")  # fmt: skip
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    run = Registry(Workspace.from_env()).show(cli_user("admin"), args.version)
    if args.json:
        print(json.dumps(run, indent=2))
        return 0
    print(f"version: {run['version']}{' (production)' if run['production'] else ''}")
    for key in ("status", "user", "created_at", "job_id", "teacher_version"):
        print(f"{key}: {run.get(key)}")
    print(f"languages: {', '.join(run.get('languages', []))}")
    data = run.get("data", {})
    if data:
        print(f"cohort: {data.get('cohort_dir')} (sha256 {data.get('cohort_hash', '')[:16]})")
    comparison = run.get("comparison") or {}
    new, prod = comparison.get("new") or {}, comparison.get("production") or {}
    if new:
        print(f"held-out test notes: this version vs production "
              f"{comparison.get('production_version') or '(none)'}")  # fmt: skip
        print(f"  {'lang':5} {'acc':>6} {'prod':>6} {'r@10':>6} {'prod':>6}")
        for lang, m in new.items():
            p = prod.get(lang, {})
            cells = [m["accuracy"], p.get("accuracy"), m["recall_at_10"], p.get("recall_at_10")]
            print(f"  {lang:5} " + " ".join("     -" if v is None else f"{v:6.3f}" for v in cells))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    registry = Registry(Workspace.from_env())
    previous = registry.promote(cli_user("admin"), args.version)
    if args.json:
        print(json.dumps({"production": args.version, "previous": previous}))
    else:
        print(f"production: {args.version} (was {previous or 'none'})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    registry = Registry(Workspace.from_env())
    before = registry.production_version()
    version = registry.rollback(cli_user("admin"), args.to)
    if args.json:
        print(json.dumps({"production": version, "previous": before}))
    else:
        print(f"production: {version} (was {before})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    runs = sub.add_parser("runs", help="model registry: list, show, promote, roll back")
    rsub = runs.add_subparsers(dest="runs_command", required=True)
    ls = rsub.add_parser("list", help="every registered student version, newest first")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    show = rsub.add_parser("show", help="one version: config, data hash, metrics, comparison")
    show.add_argument("version")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)
    promote = rsub.add_parser("promote", help="make a version the production student")
    promote.add_argument("version")
    promote.add_argument("--json", action="store_true")
    promote.set_defaults(func=cmd_promote)
    rollback = rsub.add_parser("rollback", help="back to the previous production version")
    rollback.add_argument("--to", help="an earlier production version (default: the last one)")
    rollback.add_argument("--json", action="store_true")
    rollback.set_defaults(func=cmd_rollback)
