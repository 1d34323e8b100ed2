"""The retraining worker: `python -m workbench.job_worker WORKSPACE JOB_ID`.

Started by `JobService.submit` in a session of its own. It waits its turn in the queue,
exports the reviewers' verdicts with kept query texts into the job folder when the job asks
for review feedback (hard negatives, core/train/distill.py rows (d)), then distils (through
torchrun when the job asks for several processes) into the job's version folder, one sub-run
per temperature of a grid (the best on validation becomes the version), scores the new
student and the production one on the same held-out notes, registers the version (run.json
"data" records the review feedback used and hashes it with the cohort) and marks the job
succeeded. Every progress event goes to the job's logs.jsonl, every epoch's metrics to its
metrics.jsonl.

SIGTERM (a cancel) ends it through SystemExit, so the distillation removes its temporary
folder; whatever way the job ends short of success, the worker removes its unfinished
registry folders and production is untouched.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import CmkdError
from core.io import atomic_path
from workbench.commands.train import STUDENT_RUN, TEACHER_RUN, run_record, training_data
from workbench.jobs import HARD_NEGATIVES_FILE, LOG_FILE, METRICS_FILE, Job, JobService
from workbench.registry import Registry, heldout_scores, production_version
from workbench.review_service import ReviewService
from workbench.roles import User
from workbench.workspace import Workspace


class _Log:
    """Appends the job's progress events and epoch metrics as JSON lines."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.logs = folder / LOG_FILE
        self.metrics = folder / METRICS_FILE
        self.start = time.monotonic()

    def _append(self, path: Path, record: dict[str, Any]) -> None:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def event(self, **event: Any) -> None:
        self._append(self.logs, {"t": round(time.monotonic() - self.start, 3), **event})

    def progress(self, run: int, runs: int, temperature: float) -> Callable[[dict], None]:
        """A distillation progress callback for sub-run `run` of `runs`."""

        def callback(event: dict[str, Any]) -> None:
            metrics = event.pop("metrics", None)
            self.event(run=run, runs=runs, **event)
            if metrics is not None:
                self._append(self.metrics, {"run": run, "temperature": temperature, **metrics})

        return callback


def _score(validation: dict[str, dict[str, float]]) -> tuple[float, float]:
    """Mean validation accuracy over languages, then mean recall@10 (to break ties)."""
    if not validation:
        return (0.0, 0.0)
    n = len(validation)
    return (
        sum(m.get("accuracy", 0.0) for m in validation.values()) / n,
        sum(m.get("recall_at_10", 0.0) for m in validation.values()) / n,
    )


def _review_feedback(service: JobService, job: Job) -> tuple[str, int]:
    """(path of the exported hard negatives, lines exported); ("", 0) when the job did not ask
    for review feedback. The export runs as the admin who submitted the job (only admins
    may), and the store audits it."""
    if not job.request.use_review_feedback:
        return "", 0
    path = service.job_dir(job.id) / HARD_NEGATIVES_FILE
    reviews = ReviewService(service.store)
    count = reviews.export_hard_negatives(User(job.user, "admin"), path)
    return str(path), count


def _distill(
    ws: Workspace, job: Job, cohort: Path, target: Path, log: _Log, hard_negatives: str
) -> list[dict[str, Any]]:
    """Every sub-run of the job; the best lands in `target`. Returns the grid's results
    (empty without a grid)."""
    from core.train.distill import DistillConfig, launch_distill

    base = dataclasses.replace(DistillConfig.from_dict(job.config), hard_negatives=hard_negatives)
    temperatures = job.request.temperatures
    grid_dir = target.with_name(f".{target.name}.grid")
    results = []
    for i, temperature in enumerate(temperatures):
        loss = dataclasses.replace(base.loss, temperature=temperature)
        cfg = dataclasses.replace(base, loss=loss)
        out = target if len(temperatures) == 1 else grid_dir / f"T{temperature:g}"
        log.event(stage="start", run=i, runs=len(temperatures), temperature=temperature)
        launch_distill(cohort, ws.models_dir / TEACHER_RUN, out, cfg, job.request.processes,
                       log.progress(i, len(temperatures), temperature))  # fmt: skip
        metrics = json.loads((out / "config.json").read_text(encoding="utf-8"))["metrics"]
        results.append({"temperature": temperature, "validation": metrics})
    if len(temperatures) > 1:
        best = max(range(len(results)), key=lambda i: _score(results[i]["validation"]))
        (grid_dir / f"T{temperatures[best]:g}").rename(target)
        shutil.rmtree(grid_dir, ignore_errors=True)
        return [{**r, "chosen": i == best} for i, r in enumerate(results)]
    return []


def _compare(ws: Workspace, cohort: Path, target: Path, languages: tuple[str, ...]) -> dict:
    """The new student and the production one on the same held-out notes."""
    teacher = ws.models_dir / TEACHER_RUN
    comparison: dict[str, Any] = {
        "production_version": production_version(ws),
        "new": heldout_scores(target, cohort, teacher, languages),
        "production": None,
        "error": "",
    }
    if comparison["production_version"] is not None:
        try:
            comparison["production"] = heldout_scores(
                ws.models_dir / STUDENT_RUN, cohort, teacher, languages
            )
        except (CmkdError, RuntimeError) as exc:  # e.g. a student of another teacher
            comparison["error"] = f"{type(exc).__name__}: {exc}"
    return comparison


def _run(service: JobService, job: Job, log: _Log) -> None:
    ws = service.ws
    registry = Registry(ws, service.store)
    target = registry.runs_dir / job.version
    cohort = Path(job.request.cohort_dir) if job.request.cohort_dir else ws.cohort_dir
    hard_negatives, exported = _review_feedback(service, job)
    grid = _distill(ws, job, cohort, target, log, hard_negatives)
    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    log.event(stage="compare")
    comparison = _compare(ws, cohort, target, tuple(config["languages"]))
    with atomic_path(target / LOG_FILE) as tmp:
        shutil.copyfile(service.job_dir(job.id) / LOG_FILE, tmp)
    data = training_data(cohort, config)
    data["review_feedback"] = {
        "requested": job.request.use_review_feedback, "used": False, "count": exported,
        **data.get("review_feedback", {}),
    }  # fmt: skip
    record = run_record(
        job.version, config, job.user, data, job_id=job.id, request=job.request.to_dict(),
        comparison=comparison, grid=grid,
    )  # fmt: skip
    record["metrics"]["heldout"] = comparison["new"]
    registry.register(job.version, record)
    log.event(stage="done")


def main(argv: list[str]) -> int:
    ws, job_id = Workspace(Path(argv[0]).resolve()), int(argv[1])
    # A cancel: unwind (the distillation deletes its temporary folder on the way out).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    service = JobService(ws)
    job = service.claim(job_id)
    if job is None:  # cancelled while queued
        return 0
    log = _Log(service.job_dir(job_id))
    try:
        _run(service, job, log)
    except BaseException as exc:
        service.remove_partial(job.version)
        if isinstance(exc, SystemExit):
            error = "worker terminated"  # kept "cancelled" when a cancel sent the signal
        elif isinstance(exc, CmkdError):
            error = str(exc)
        else:
            traceback.print_exc()
            error = f"internal error: {type(exc).__name__}: {exc} (see {service.job_dir(job_id)})"
        service.finish(job_id, "failed", error)
        log.event(stage="failed", error=error)
        return 1
    service.finish(job_id, "succeeded")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
