"""`cmkd evaluate`: the distilled student against its teacher on held-out cases and templates.

The metrics and their definitions are in core/eval/evaluate.py; the temperature, alpha and
ablation runs are benchmarks/ablations.py (docs/evaluation.md has both). Progress goes to
stderr; `--json` prints one object on stdout whose `languages` maps each student language
to its metrics.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from workbench.commands.train import STUDENT_RUN, TEACHER_RUN
from workbench.workspace import Workspace

QUANTUM_RUN = "student-quantum"  # models/<name> of an optional quantum-head student
CACHE_DIR = ".cache"  # under the workspace: MiniLM embeddings of the baseline, by text

SUMMARY_KEYS: tuple[tuple[str, str], ...] = (
    ("zero_shot_accuracy", "zero-shot"),
    ("baseline_accuracy", "baseline"),
    ("baseline_accuracy_without_facts", "base no facts"),
    ("recall_at_10", "R@10"),
    ("recall_at_10_slide", "R@10 slide"),
    ("recall_at_10_genomic", "R@10 genomic"),
    ("alteration_f1", "alt. F1"),
    ("sarc_accuracy", "SARC"),
    ("ece", "ECE"),
    ("ece_uncalibrated", "ECE uncal."),
    ("abstention_rate", "abstain"),
    ("accuracy_non_abstained", "acc. kept"),
)


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_text(report: dict[str, Any]) -> None:
    print(
        f"student {report['student_version']} on {report['n_test_cases']} held-out cases, "
        f"{report['n_notes_per_language']} notes per language (test templates only)"
    )
    rows = {**report["languages"], "en (ref.)": report["english_reference"]}
    print(f"{'lang':10}" + "".join(f"{title:>14}" for _, title in SUMMARY_KEYS))
    for lang, m in rows.items():
        print(f"{lang:10}" + "".join(f"{_fmt(m.get(key)):>14}" for key, _ in SUMMARY_KEYS))
    cal = "calibrated" if report["abstention_calibrated"] else "uncalibrated, fixed"
    print(
        f"temperature {report['temperature']:.3f}; abstains below a top probability of "
        f"{report['abstention_threshold']:.2f} ({cal})"
    )
    q = report["quantum"]
    retention = report["quantum_retention"]
    print(
        "quantum retention: "
        + (f"{retention:.3f} ({q['compression']})" if retention is not None else q["note"])
    )
    for name, value in report["ceilings"].items():
        print(f"ceiling {name}: {_fmt(value)}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.eval.evaluate import EvalConfig, evaluate
    from core.eval.metrics import CLASSIFY_ABSTENTION

    ws = Workspace.from_env()
    student = Path(args.student) if args.student else ws.models_dir / STUDENT_RUN
    teacher = Path(args.teacher) if args.teacher else ws.models_dir / TEACHER_RUN
    cohort = Path(args.cohort) if args.cohort else ws.cohort_dir
    quantum = Path(args.quantum_student) if args.quantum_student else ws.models_dir / QUANTUM_RUN
    if args.quantum_student and not quantum.is_dir():
        raise InputError(f"{quantum}: no such quantum-head student")
    if args.limit < 0:
        raise InputError(f"--limit must be >= 0, got {args.limit}")
    cfg = EvalConfig(CLASSIFY_ABSTENTION, limit=args.limit)
    report = evaluate(
        cohort, teacher, student, cfg,
        quantum_dir=quantum if quantum.is_dir() else None,
        cache_dir=ws.root / CACHE_DIR,
        progress=lambda msg: print(f"evaluate: {msg}", file=sys.stderr, flush=True),
    )  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_text(report)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="held-out evaluation of the student (per language)")
    e.add_argument("--json", action="store_true", help="one JSON object on stdout")
    e.add_argument("--student", help="student run (default: $CMKD_WORKSPACE/models/student)")
    e.add_argument("--teacher", help="teacher run (default: $CMKD_WORKSPACE/models/teacher)")
    e.add_argument("--cohort", help="cohort folder (default: $CMKD_WORKSPACE/cohort)")
    e.add_argument(
        "--quantum-student",
        help=f"quantum-head student for quantum_retention (default: models/{QUANTUM_RUN} "
        "when present)",
    )
    e.add_argument(
        "--limit", type=int, default=0, help="evaluate the notes of N test cases (0: all)"
    )
    e.set_defaults(func=cmd_evaluate)
