"""The model registry: every distillation run is a version, one of them is production.

A version is a folder `models/runs/<version>/`: the distillation output (config.json, weights,
tokenizer, metrics.jsonl) plus `run.json` (request, DistillConfig, data hash, validation and
held-out metrics, the comparison with the production student of its day, who ran it, when).
A folder without run.json is unfinished and not a version.

Production is `models/student`, a symlink to `runs/<version>` swapped atomically (a new link
under a temporary name, then os.replace), so every loader that reads models/student keeps
working and never sees a half-swapped model. A `models/student` built by `cmkd demo` (a plain
folder, or a link to a folder outside runs/) is adopted on the first promotion: registered as
a version and replaced by the link.

The `model_history` table records each change of production (adopt, promote, rollback); a
rollback undoes promotions in order, as a stack. What depends on the student: only the
services holding a loaded student (classify, search), which compare `production_version()`
with the version they loaded. The retrieval index holds teacher embeddings only, so a
promotion never needs to rebuild it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.io import write_atomic
from workbench.commands.train import STUDENT_RUN
from workbench.roles import User, require
from workbench.store import Store
from workbench.workspace import Workspace

RUNS_DIR = "runs"  # models/runs/<version>/
RUN_FILE = "run.json"
PRODUCTION = STUDENT_RUN  # models/student, what every loader reads
USABLE = frozenset({"succeeded", "adopted"})  # run.json statuses that may go to production
COMPARE_NOTES = 128  # held-out notes per language in a comparison (same cases in each)
RECALL_K = 10

_DDL = """
CREATE TABLE IF NOT EXISTS model_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,          -- UTC ISO-8601
    actor TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('adopt', 'promote', 'rollback')),
    version TEXT NOT NULL,     -- production after this change
    previous TEXT              -- production before it; NULL when there was none
);
"""


@dataclass(frozen=True)
class RunInfo:
    version: str
    created_at: str
    user: str
    status: str  # "succeeded", or "adopted" for a student built outside the registry
    languages: tuple[str, ...]
    job_id: int | None
    heldout: dict[str, dict[str, float]]  # language -> accuracy, recall_at_10 (test notes)
    production: bool
    path: Path


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    at: str
    actor: str
    action: str
    version: str
    previous: str | None


def production_version(ws: Workspace) -> str | None:
    """The production student's version (cheap: one readlink, or one small JSON read for an
    unregistered student); None when there is none. Services that cache a loaded student
    compare this with the version they loaded."""
    link = ws.models_dir / PRODUCTION
    if link.is_symlink() and Path(os.readlink(link)).parent == Path(RUNS_DIR):
        return Path(os.readlink(link)).name
    try:
        version = json.loads((link / "config.json").read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    return str(version) if version else None


def _read_run(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Registry:
    """Versions, production and its history for one workspace. Every public method but
    `production_version` and `register` (the job worker's) checks the `retrain` permission."""

    def __init__(self, ws: Workspace, store: Store | None = None) -> None:
        self.ws = ws
        self.store = store or Store(ws.db_path)
        self.runs_dir = ws.models_dir / RUNS_DIR
        self.link = ws.models_dir / PRODUCTION

    def production_version(self) -> str | None:
        return production_version(self.ws)

    def register(self, version: str, record: dict[str, Any]) -> Path:
        """Worker: write run.json into runs/<version> (the distillation output), making it a
        version."""
        folder = self.runs_dir / version
        if not (folder / "config.json").is_file():
            raise InputError(f"{folder}: no distilled student to register")
        write_atomic(folder / RUN_FILE, (json.dumps(record, indent=2) + "\n").encode())
        return folder

    def versions(self, user: User | None) -> list[RunInfo]:
        """Every registered version, newest first."""
        require(user, "retrain")
        current = self.production_version()
        infos = []
        for folder in self.runs_dir.glob("*/"):
            run = None if folder.name.startswith(".") else _read_run(folder)
            if run is not None:
                infos.append(_info(folder, run, current))
        return sorted(infos, key=lambda i: (i.created_at, i.version), reverse=True)

    def show(self, user: User | None, version: str) -> dict[str, Any]:
        """run.json of `version` with `production` added; InputError when unknown."""
        require(user, "retrain")
        return {**self._run(version), "production": version == self.production_version()}

    def history(self, user: User | None) -> list[HistoryEntry]:
        """Changes of production, oldest first."""
        require(user, "retrain")
        self.store.ensure(_DDL)
        with self.store.connect() as conn:
            rows = conn.execute("SELECT * FROM model_history ORDER BY id").fetchall()
        return [HistoryEntry(r["id"], r["at"], r["actor"], r["action"], r["version"],
                             r["previous"]) for r in rows]  # fmt: skip

    def promote(self, user: User | None, version: str) -> str | None:
        """Make `version` production; returns the previous production version."""
        user = require(user, "retrain")
        run = self._run(version)
        if run.get("status") not in USABLE:
            raise InputError(f"version {version} is {run.get('status')!r}, not promotable")
        previous = self._adopt(user)
        if previous == version:
            raise InputError(f"version {version} is already production")
        with self.store.connect() as conn:  # one promotion or rollback at a time
            self._swap(version)
            self._record(conn, user, "promote", version, previous)
        self.store.audit(user.name, "promote_model", version, previous=previous)
        return previous

    def rollback(self, user: User | None, to: str | None = None) -> str:
        """Undo promotions back to `to` (default: the production version before the current
        one); returns the new production version. InputError when there is none."""
        user = require(user, "retrain")
        current = self._adopt(user)
        with self.store.connect() as conn:
            stack = _stack(conn)
            earlier = stack[:-1] if stack and stack[-1] == current else stack
            target = to or (earlier[-1] if earlier else None)
            if target is None or target not in earlier:
                raise InputError(
                    f"cannot roll back to {to}: not an earlier production version"
                    if to
                    else "no earlier production version to roll back to"
                )
            self._run(target)  # still registered
            self._swap(target)
            self._record(conn, user, "rollback", target, current)
        self.store.audit(user.name, "rollback_model", target, previous=current)
        return target

    # ------------------------------------------------------------------------ internals

    def _run(self, version: str) -> dict[str, Any]:
        if not version or Path(version).name != version or version.startswith("."):
            raise InputError(f"not a version name: {version!r}")
        run = _read_run(self.runs_dir / version)
        if run is None:
            raise InputError(f"no registered version {version}")
        return run

    def _swap(self, version: str) -> None:
        tmp = self.link.with_name(f".{PRODUCTION}.{uuid.uuid4().hex[:8]}.link")
        os.symlink(Path(RUNS_DIR) / version, tmp)
        os.replace(tmp, self.link)

    def _record(
        self, conn: Any, user: User, action: str, version: str, previous: str | None
    ) -> None:
        conn.execute(
            "INSERT INTO model_history (at, actor, action, version, previous)"
            " VALUES (?, ?, ?, ?, ?)",
            (datetime.now(UTC).isoformat(timespec="seconds"), user.name, action, version,
             previous),
        )  # fmt: skip

    def _adopt(self, user: User) -> str | None:
        """Register a production student built outside the registry (moved when it is a
        folder of this workspace, copied when a link points elsewhere) and link to it;
        returns the production version (None when there is no student)."""
        self.store.ensure(_DDL)
        with self.store.connect() as conn:  # one adoption, even with two admins at once
            return self._adopt_locked(conn, user)

    def _adopt_locked(self, conn: Any, user: User) -> str | None:
        link = self.link
        if link.is_symlink() and Path(os.readlink(link)).parent == Path(RUNS_DIR):
            return self.production_version()
        config_path = link / "config.json"
        if not config_path.is_file():
            return None
        config = json.loads(config_path.read_text(encoding="utf-8"))
        version = str(config.get("version") or f"adopted-{uuid.uuid4().hex[:8]}")
        target = self.runs_dir / version
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            tmp = self.runs_dir / f".{version}.adopt"
            shutil.copytree(link.resolve(), tmp)
            tmp.rename(target)
        else:
            # The only moment without models/student: one rename, then the link.
            link.rename(target)
        record = {
            "version": version, "status": "adopted", "user": user.name,
            "created_at": config.get("created_at", ""), "job_id": None,
            "languages": config.get("languages", []), "config": config.get("distill", {}),
            "metrics": {"validation": config.get("metrics", {})},
        }  # fmt: skip
        self.register(version, record)
        self._swap(version)
        self._record(conn, user, "adopt", version, None)
        return version


def _stack(conn: Any) -> list[str]:
    """Production versions in the order they were made production, undone ones removed."""
    stack: list[str] = []
    for r in conn.execute("SELECT action, version FROM model_history ORDER BY id"):
        if r["action"] == "rollback":
            while stack and stack[-1] != r["version"]:
                stack.pop()
        else:
            stack.append(r["version"])
    return stack


def _info(folder: Path, run: dict[str, Any], current: str | None) -> RunInfo:
    heldout = run.get("metrics", {}).get("heldout", {})
    return RunInfo(
        version=folder.name, created_at=str(run.get("created_at", "")),
        user=str(run.get("user", "")), status=str(run.get("status", "")),
        languages=tuple(run.get("languages", ())), job_id=run.get("job_id"),
        heldout=heldout if isinstance(heldout, dict) else {},
        production=folder.name == current, path=folder,
    )  # fmt: skip


# -------------------------------------------------------------------------- comparison


def heldout_scores(
    student_dir: Path,
    cohort_dir: Path,
    teacher_dir: Path,
    languages: tuple[str, ...],
    per_language: int = COMPARE_NOTES,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per language: the student's cancer-type accuracy and recall@10 (the note's own English
    teacher embedding among the teacher's embeddings of every test note) on test-split notes,
    which come from templates never used in training. The same (case, kind) pairs in every
    language, a seeded sample of `per_language`."""
    import numpy as np
    import torch

    from core.data.cohort import load_cases
    from core.data.schema import CANCER_TYPES
    from core.train.distill import load_distilled, load_targets

    targets = load_targets(teacher_dir, "note")
    pairs = []  # (case, teacher row, kind index)
    for case in sorted(load_cases(cohort_dir), key=lambda c: c.case_id):
        row = targets.case_index.get(case.case_id)
        if case.split != "test" or row is None:
            continue
        for k, kind in enumerate(targets.note_kinds):
            if targets.note_present[row, k] and all(case.note(lg, kind) for lg in languages):
                pairs.append((case, row, k))
    if not pairs:
        raise InputError(f"{cohort_dir}: no test-split notes in {', '.join(languages)}")
    gallery = torch.stack([targets.notes[row, k] for _, row, k in pairs])  # (G, D)
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(pairs), min(per_language, len(pairs)), replace=False))
    truth = torch.tensor([CANCER_TYPES.index(pairs[i][0].cancer_type) for i in picked])
    own = torch.tensor(picked)
    student = load_distilled(student_dir)
    scores = {}
    for lang in languages:
        texts = [pairs[i][0].note(lang, targets.note_kinds[pairs[i][2]]).text for i in picked]
        z, logits = student.predict(texts, lang)
        top = (z @ gallery.T).topk(min(RECALL_K, len(gallery)), dim=1).indices  # (N, k)
        scores[lang] = {
            "accuracy": round(float((logits.argmax(1) == truth).float().mean()), 4),
            "recall_at_10": round(float((top == own.unsqueeze(1)).any(1).float().mean()), 4),
        }
    return scores
