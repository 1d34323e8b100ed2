"""`cmkd index build|info`: the retrieval index over the teacher's embeddings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.index import INDEX_KINDS, IndexConfig, build_from_teacher_run, read_index_info
from workbench.workspace import Workspace

TEACHER_GLOB = "teacher*"  # models/teacher (cmkd demo) and versioned runs


def newest_teacher(models_dir: Path) -> Path:
    """The most recently written teacher run under `models_dir` (by its config.json's mtime)."""
    runs = [p.parent for p in Path(models_dir).glob(f"{TEACHER_GLOB}/config.json")]
    if not runs:
        raise InputError(
            f"no teacher in {models_dir} ({TEACHER_GLOB}/config.json): train one with "
            "`cmkd train-teacher` or pass --teacher DIR"
        )
    return max(runs, key=lambda p: ((p / "config.json").stat().st_mtime_ns, p.name))


def index_summary(directory: Path) -> dict[str, Any]:
    """What `cmkd index info` reports, from meta.json and file sizes (vectors stay on disk)."""
    info = read_index_info(directory)
    size = sum(p.stat().st_size for p in Path(directory).iterdir() if p.is_file())
    n = info["n_vectors"]
    return {
        "path": str(directory),
        "n_vectors": n,
        "by_modality": info.get("by_modality", {}),
        "by_cancer_type": info.get("by_cancer_type", {}),
        "dim": info["dim"],
        "index_type": info["index_type"],
        "teacher_version": info["teacher_version"],
        "created_at": info["created_at"],
        "bytes": size,
        "bytes_per_vector": round(size / n, 1) if n else 0.0,
    }


def _print_summary(s: dict[str, Any]) -> None:
    print(f"index: {s['path']}")
    print(f"vectors: {s['n_vectors']} x {s['dim']}-d, {s['index_type']}")
    print("by modality: " + ", ".join(f"{k} {v}" for k, v in s["by_modality"].items()))
    print("by cancer type: " + ", ".join(f"{k} {v}" for k, v in s["by_cancer_type"].items()))
    print(f"teacher: {s['teacher_version']}")
    print(f"created: {s['created_at']}")
    print(f"size: {s['bytes']} bytes ({s['bytes_per_vector']} bytes/vector)")


def cmd_index_build(args: argparse.Namespace) -> int:
    ws = Workspace.from_env()
    teacher = Path(args.teacher) if args.teacher else newest_teacher(ws.models_dir)
    cohort = Path(args.cohort) if args.cohort else ws.cohort_dir
    out = Path(args.out) if args.out else ws.index_dir
    index = build_from_teacher_run(teacher, cohort, IndexConfig(kind=args.kind))
    index.save(out)
    summary = {"teacher_dir": str(teacher), **index_summary(out)}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"index built from {teacher}")
        _print_summary(summary)
    return 0


def cmd_index_info(args: argparse.Namespace) -> int:
    index_dir = Path(args.index) if args.index else Workspace.from_env().index_dir
    summary = index_summary(index_dir)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = IndexConfig()
    index = subparsers.add_parser("index", help="the retrieval index over teacher embeddings")
    isub = index.add_subparsers(dest="index_command", required=True)
    build = isub.add_parser("build", help="index every case's embeddings from a teacher run")
    build.add_argument("--teacher", help=f"teacher run (default: newest models/{TEACHER_GLOB})")
    build.add_argument("--cohort", help="cohort folder (default: $CMKD_WORKSPACE/cohort)")
    build.add_argument("--out", help="index folder (default: $CMKD_WORKSPACE/index)")
    build.add_argument(
        "--kind",
        choices=INDEX_KINDS,
        default="auto",
        help=f"auto: exact below {defaults.exact_threshold} vectors, {defaults.approx} above",
    )
    build.add_argument("--json", action="store_true")
    build.set_defaults(func=cmd_index_build)
    info = isub.add_parser("info", help="size, type and teacher version of the index")
    info.add_argument("--index", help="index folder (default: $CMKD_WORKSPACE/index)")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_index_info)
