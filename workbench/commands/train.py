"""`cmkd train-teacher` and `cmkd distill`: the two training runs, from JSON configs.

`cmkd distill` without --out writes models/student, unless that is the model registry's
production link (workbench/registry.py): then the run becomes a new version,
models/runs/<version>/, registered but not promoted, so production is never replaced in
place. --out never writes into a registered version.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from workbench.workspace import Workspace

TEACHER_RUN = "teacher"  # models/<name> of the default runs
STUDENT_RUN = "student"


def _read_json(path: str | None) -> dict:
    if not path:
        return {}
    from core.errors import ConfigError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the config: {e}") from e


def cmd_train_teacher(args: argparse.Namespace) -> int:
    from core.train.teacher import TeacherTrainConfig, train_teacher

    ws = Workspace.from_env()
    cfg = TeacherTrainConfig.from_dict(_read_json(args.config))
    cohort = Path(args.cohort) if args.cohort else ws.cohort_dir
    out = train_teacher(cohort, Path(args.out) if args.out else ws.models_dir / TEACHER_RUN, cfg)
    print(f"teacher written to {out}")
    return 0


def training_data(cohort: Path, student_config: dict[str, Any]) -> dict[str, Any]:
    """run.json's "data" of a distillation output: the cohort, its hash, the review feedback
    it trained on (from the student's config.json) and `hash`, over both."""
    from core.train.teacher import cohort_hash

    data: dict[str, Any] = {"cohort_dir": str(cohort.resolve()), "cohort_hash": cohort_hash(cohort)}
    data["hash"] = data["cohort_hash"]
    feedback = student_config.get("hard_negatives")
    if feedback:
        data["review_feedback"] = {"used": feedback["negatives"] > 0, **feedback}
        both = f"{data['cohort_hash']}\n{feedback['sha256']}".encode()
        data["hash"] = hashlib.sha256(both).hexdigest()
    return data


def run_record(
    version: str, config: dict[str, Any], user: str, data: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """run.json of a distillation output (`config`: its config.json) as registry version
    `version`; `extra` adds (or replaces) top-level fields."""
    return {
        "version": version, "status": "succeeded", "job_id": None, "user": user,
        "created_at": config["created_at"], "languages": config["languages"],
        "config": config["distill"], "teacher_version": config["teacher_version"], "data": data,
        "metrics": {"validation": config["metrics"]}, "steps": config["steps"],
        "stopped_early": config["stopped_early"], "timings_s": config["timings_s"], **extra,
    }  # fmt: skip


def _registered(out: Path) -> str | None:
    """The registry version folder `out` is (or links to), None when it is none."""
    from workbench.registry import RUN_FILE

    folder = out.resolve()
    return folder.name if (folder / RUN_FILE).is_file() else None


def cmd_distill(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.train import common
    from core.train.distill import DistillConfig, launch_distill
    from workbench.registry import RUNS_DIR, Registry
    from workbench.session import cli_user

    ws = Workspace.from_env()
    cfg = DistillConfig.from_dict(_read_json(args.config))
    if args.languages:
        from core.data.language_packs import PACKS_DIR, installed_packs

        languages = tuple(args.languages.split(","))
        packs = installed_packs(ws.root / PACKS_DIR)  # `cmkd language add` puts them there
        cfg = dataclasses.replace(
            cfg,
            languages=languages,
            language_packs=tuple(str(packs[lang]) for lang in languages if lang in packs),
        )
    cohort = Path(args.cohort) if args.cohort else ws.cohort_dir
    production = ws.models_dir / STUDENT_RUN
    version = None
    if args.out:
        out = Path(args.out)
        if (taken := _registered(out)) is not None:
            raise InputError(
                f"{out} is registered version {taken}; distilling there would replace it in "
                "place: choose a new folder, or leave out --out to register a new version"
            )
    elif production.is_symlink():
        # The registry's production link: writing through it would replace the production
        # version in place (run.json included). A new version instead, not promoted.
        version = common.new_version_id("student")
        out = ws.models_dir / RUNS_DIR / version
    else:
        out = production
    out = launch_distill(
        cohort,
        Path(args.teacher) if args.teacher else ws.models_dir / TEACHER_RUN,
        out,
        cfg,
        nproc=args.nproc,
    )
    print(f"student written to {out}")
    if version is not None:
        config = json.loads((out / "config.json").read_text(encoding="utf-8"))
        record = run_record(version, config, cli_user("admin").name, training_data(cohort, config))
        Registry(ws).register(version, record)
        print(f"registered as version {version}, not in production: `cmkd runs promote {version}`")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train-teacher", help="train the multimodal English teacher")
    t.add_argument("--config", help="TeacherTrainConfig as JSON (unknown keys are refused)")
    t.add_argument("--cohort", help="cohort folder (default: $CMKD_WORKSPACE/cohort)")
    t.add_argument("--out", help="run folder (default: $CMKD_WORKSPACE/models/teacher)")
    t.set_defaults(func=cmd_train_teacher)

    d = sub.add_parser("distill", help="distil the teacher into the multilingual student")
    d.add_argument("--languages", help="comma-separated, e.g. pt,sw,hi (default: all six)")
    d.add_argument("--config", help="DistillConfig as JSON (unknown keys are refused)")
    d.add_argument("--nproc", type=int, default=1, help="processes (torchrun; gloo on CPU)")
    d.add_argument("--cohort", help="cohort folder (default: $CMKD_WORKSPACE/cohort)")
    d.add_argument("--teacher", help="teacher run (default: $CMKD_WORKSPACE/models/teacher)")
    d.add_argument(
        "--out",
        help="run folder (default: $CMKD_WORKSPACE/models/student, or a new registry version "
        "under models/runs/ when models/student is the registry's production link)",
    )
    d.set_defaults(func=cmd_distill)
