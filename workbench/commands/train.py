"""`cmkd train-teacher` and `cmkd distill`: the two training runs, from JSON configs."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

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


def cmd_distill(args: argparse.Namespace) -> int:
    from core.train.distill import DistillConfig, launch_distill

    ws = Workspace.from_env()
    cfg = DistillConfig.from_dict(_read_json(args.config))
    if args.languages:
        cfg = dataclasses.replace(cfg, languages=tuple(args.languages.split(",")))
    out = launch_distill(
        Path(args.cohort) if args.cohort else ws.cohort_dir,
        Path(args.teacher) if args.teacher else ws.models_dir / TEACHER_RUN,
        Path(args.out) if args.out else ws.models_dir / STUDENT_RUN,
        cfg,
        nproc=args.nproc,
    )
    print(f"student written to {out}")
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
    d.add_argument("--out", help="run folder (default: $CMKD_WORKSPACE/models/student)")
    d.set_defaults(func=cmd_distill)
