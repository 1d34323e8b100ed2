"""Retraining jobs: distillation runs an admin submits, run by a worker process.

A job's state lives in the store's `retrain_jobs` table (queued -> running -> succeeded,
failed or cancelled); its progress and metrics go to JSONL files in its folder
(`<workspace>/jobs/<id>/logs.jsonl`, `metrics.jsonl`), so a reloaded page or a restarted app
re-attaches by reading both. The distillation output cannot hold them while it runs: it is
written to a temporary folder renamed into `models/runs/<version>` only when complete, and the
worker copies the logs there at the end.

The worker (`python -m workbench.job_worker`) runs in its own session, never in a Streamlit
thread, so cancelling signals its whole process group. Jobs run one at a time in submission
order (a queued worker waits for those before it): two trainings on the same cores would each
run at half speed. A worker that dies without a word (killed, out of memory, machine
restarted) is noticed on read: a queued or running job whose process is gone becomes failed
("worker died") and the half-written folders it left in the registry are removed; the
production student is never touched by a job.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.data.cohort_io import CASES_FILE
from core.data.language_packs import (
    PACKS_DIR,
    LanguagePack,
    install_pack,
    installed_packs,
    is_pack_code,
    load_pack,
)
from core.data.schema import STUDENT_LANGUAGES
from core.errors import ConfigError, InputError
from core.io import config_from_dict
from workbench.commands.train import TEACHER_RUN
from workbench.roles import User, require
from workbench.store import Store
from workbench.workspace import Workspace

STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
PROFILES: tuple[str, ...] = ("demo", "tiny")
DEVICES: tuple[str, ...] = ("auto", "cuda", "cpu")
JOBS_DIR = "jobs"  # <workspace>/jobs/<id>/: the job's logs while it runs
LOG_FILE = "logs.jsonl"  # every progress event of the worker
METRICS_FILE = "metrics.jsonl"  # one line per epoch of every (sub-)run, with validation
WORKER_LOG = "worker.log"  # the worker's stderr (tracebacks, torchrun's output)
HARD_NEGATIVES_FILE = "hard_negatives.jsonl"  # the review feedback a job trains on
WORKER_MODULE = "workbench.job_worker"
WORKER_DIED = "worker died"
STARTUP_GRACE_S = 60.0  # a queued job with no recorded process after this is abandoned
_REPO = Path(__file__).resolve().parents[1]

_DDL = """
CREATE TABLE IF NOT EXISTS retrain_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL CHECK (state IN
        ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    request TEXT NOT NULL,      -- JobRequest as JSON
    config TEXT NOT NULL,       -- the resolved DistillConfig as JSON
    user TEXT NOT NULL,
    version TEXT NOT NULL,      -- the registry version it writes: models/runs/<version>
    created_at TEXT NOT NULL,   -- UTC ISO-8601
    started_at TEXT,
    finished_at TEXT,
    pid INTEGER,                -- the worker, leader of its process group
    error TEXT NOT NULL DEFAULT ''
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class JobRequest:
    """What an admin asks for. Defaults equal DistillConfig's (a test keeps them so)."""

    # Student languages to distil: built-in ones and installed language packs' codes.
    languages: tuple[str, ...] = STUDENT_LANGUAGES
    cohort_dir: str = ""  # cohort folder; "" = the workspace's (demo or imported cases)
    # Reviewers' verdicts on search matches (those with a kept query text) as hard negatives:
    # the worker exports them into the job folder for the distillation (run.json "data").
    use_review_feedback: bool = False
    alpha: float = 0.7  # alignment share: alpha*align + (1-alpha)*KD
    temperature: float = 4.0  # KD temperature T
    epochs: int = 2
    batch_size: int = 32  # rows per step and process
    uncertainty_threshold: float = 0.05  # teacher variance above which a sample counts as unsure
    # > 0: the threshold is this quantile of the teacher's variance over the training notes
    uncertainty_quantile: float = 0.9
    entity_attention: bool = True
    quantum_head: bool = False  # the 4-qubit PennyLane projection head instead of the linear one
    temperature_grid: tuple[float, ...] = ()  # one sub-run per T; the best on validation wins
    device: str = "auto"  # "auto" (CUDA when present), "cuda" or "cpu"
    processes: int = 1  # > 1: torchrun data parallel (gloo on CPU, nccl on CUDA)
    max_minutes: float = 4.5  # wall-clock cap of each (sub-)run
    # "demo": the demo student (MiniLM-initialised); "tiny": a 32-wide student trained from
    # scratch on a few notes, in seconds (smoke tests, trying the page out).
    profile: str = "demo"

    def __post_init__(self) -> None:
        problems = []
        unknown = [
            lang for lang in self.languages if lang not in STUDENT_LANGUAGES
            and not is_pack_code(lang)
        ]  # fmt: skip
        if unknown:
            problems.append(
                f"language(s) {', '.join(unknown)} cannot be trained: use one of "
                f"{', '.join(STUDENT_LANGUAGES)} or the ISO 639-1 code of a new language "
                "installed as a language pack"
            )
        elif not self.languages or len(set(self.languages)) != len(self.languages):
            problems.append("languages must be distinct and at least one")
        if self.profile not in PROFILES:
            problems.append(f"profile must be one of {PROFILES}")
        if self.device not in DEVICES:
            problems.append(f"device must be one of {DEVICES}")
        if not 1 <= self.processes <= 64:
            problems.append("processes must be in [1, 64]")
        if any(t <= 0 for t in self.temperature_grid) or len(set(self.temperature_grid)) != len(
            self.temperature_grid
        ):
            problems.append("temperature_grid must hold distinct temperatures > 0")
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def temperatures(self) -> tuple[float, ...]:
        """The KD temperature of each sub-run."""
        return self.temperature_grid or (self.temperature,)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobRequest:
        """From parsed JSON; unknown keys raise ConfigError."""
        return config_from_dict(cls, d)


def distill_config(request: JobRequest, cache_dir: Path, packs_dir: Path | None = None) -> Any:
    """The DistillConfig of `request` (its first temperature); ConfigError when invalid.
    `cache_dir`: the MiniLM embedding cache shared with the demo build. `packs_dir`: the
    workspace's installed language packs, which languages outside the built-in ones need."""
    from core.models.student import StudentConfig
    from core.train.distill import DistillConfig

    base = DistillConfig()
    if request.profile == "tiny":
        base = dataclasses.replace(
            base, init_from_minilm=False, init_from_teacher=False, notes_per_epoch=24,
            max_length=48, use_parallel=False, extra_vocab=100, val_per_language=6,
            eval_batch_size=16, threads=1,
            student=StudentConfig(hidden=32, n_heads=2, ffn=64, n_layers=2, init_layers=(0, 1),
                                  max_length=48),
        )  # fmt: skip
    loss = dataclasses.replace(
        base.loss,
        alpha=request.alpha,
        temperature=request.temperatures[0],
        uncertainty_threshold=request.uncertainty_threshold,
        uncertainty_quantile=request.uncertainty_quantile,
    )
    packs = installed_packs(packs_dir) if packs_dir is not None else {}
    missing = [lang for lang in request.languages if is_pack_code(lang) and lang not in packs]
    if missing:
        raise ConfigError(
            f"language(s) {', '.join(missing)} not installed: add each as a language pack "
            "first, a phrase bank (phrases.tsv: English<TAB>translation, at least 50 rows) and "
            "a lexicon column (lexicon.tsv: concept id<TAB>terms), with `cmkd language add "
            "CODE --phrases phrases.tsv --lexicon lexicon.tsv` or the retraining page's "
            "'Add a language'"
        )
    return dataclasses.replace(
        base,
        languages=request.languages,
        language_packs=tuple(str(packs[lang]) for lang in request.languages if lang in packs),
        loss=loss,
        epochs=request.epochs,
        batch_size=request.batch_size,
        use_entity_attention=request.entity_attention,
        head="quantum" if request.quantum_head else "classical",
        device=request.device,
        max_minutes=request.max_minutes,
        show_progress_bar=False,
        cache_dir=str(cache_dir),
    )


@dataclass(frozen=True)
class Job:
    id: int
    state: str
    request: JobRequest
    config: dict[str, Any]  # the DistillConfig as a dict
    user: str
    version: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    pid: int | None
    error: str

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class JobProgress:
    """What the worker reported so far, read from the job's JSONL files."""

    step: int = 0  # steps done in the current sub-run
    total: int = 0  # its planned steps (the time budget may stop it earlier)
    run: int = 0  # index of the current sub-run
    runs: int = 1  # sub-runs (temperatures)
    stage: str = ""  # last stage reported: "start", "distill", "compare", "done", "failed"
    # (sub-run, step, {loss name: value}) for every training step
    losses: tuple[tuple[int, int, dict[str, float]], ...] = ()
    # (sub-run, epoch record with "val": {lang: {"accuracy", "recall_at_10"}})
    epochs: tuple[tuple[int, dict[str, Any]], ...] = ()

    @property
    def fraction(self) -> float:
        within = self.step / self.total if self.total else 0.0
        return min(1.0, (self.run + within) / max(1, self.runs))


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The complete JSON lines of a file being appended to (a half-written last line and an
    absent file yield nothing)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    for line in text.splitlines(keepends=True):
        if line.endswith("\n"):
            with suppress(ValueError):
                yield json.loads(line)


def _proc_alive(pid: int, job_id: int) -> bool:
    """Whether `pid` is still the worker of job `job_id` (not gone, not a zombie, not a
    reused pid)."""
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # no procfs: only ask whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        args = (proc / "cmdline").read_bytes().split(b"\0")
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":  # exited, not yet reaped; reap it if it is our own child
        with suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return WORKER_MODULE.encode() in args and str(job_id).encode() in args


class JobService:
    """Submit, list, follow and cancel retraining jobs of one workspace. Every public method
    but those marked "worker" checks the `retrain` permission."""

    def __init__(self, ws: Workspace, store: Store | None = None) -> None:
        self.ws = ws
        self.store = store or Store(ws.db_path)

    def job_dir(self, job_id: int) -> Path:
        return self.ws.root / JOBS_DIR / str(job_id)

    @property
    def runs_dir(self) -> Path:
        from workbench.registry import RUNS_DIR

        return self.ws.models_dir / RUNS_DIR

    @property
    def packs_dir(self) -> Path:
        return self.ws.root / PACKS_DIR

    # ------------------------------------------------------------------------ admin API

    def add_language(
        self, user: User | None, code: str, phrases: bytes, lexicon: bytes, name: str = ""
    ) -> LanguagePack:
        """Validate and install a language pack (replacing one of the same code); InputError
        naming the file and line of the first problem."""
        user = require(user, "retrain")
        pack = install_pack(self.packs_dir, code, phrases, lexicon, name)
        self.store.audit(user.name, "add_language", f"language-{pack.code}", name=pack.name,
                         phrases=len(pack.phrases), concepts=len(pack.terms))  # fmt: skip
        return pack

    def languages(self, user: User | None) -> dict[str, LanguagePack]:
        """Code -> installed language pack (a broken folder is left out)."""
        require(user, "retrain")
        out = {}
        for code, folder in installed_packs(self.packs_dir).items():
            with suppress(InputError):
                out[code] = load_pack(folder)
        return out

    def submit(self, user: User | None, request: JobRequest) -> int:
        """Validate `request`, record the job and start its worker; returns the job id.
        Raises PermissionDenied, or ConfigError/InputError for a request that cannot run."""
        from core.train import common

        user = require(user, "retrain")
        cohort = Path(request.cohort_dir) if request.cohort_dir else self.ws.cohort_dir
        if not (cohort / CASES_FILE).is_file():
            raise InputError(f"{cohort}: no cohort here ({CASES_FILE} missing)")
        teacher = self.ws.models_dir / TEACHER_RUN
        if not (teacher / "embeddings.safetensors").is_file():
            raise InputError(f"{teacher}: no trained teacher; run `cmkd demo` first")
        cfg = distill_config(request, self.ws.models_dir / ".cache", self.packs_dir)
        for folder in cfg.language_packs:  # refuse a broken pack now, not in the worker
            load_pack(Path(folder))
        common.resolve_device(request.device)  # "cuda" without a GPU is refused now
        version = common.new_version_id("student")
        self.store.ensure(_DDL)
        with self.store.connect() as conn:
            job_id = conn.execute(
                "INSERT INTO retrain_jobs (state, request, config, user, version, created_at)"
                " VALUES ('queued', ?, ?, ?, ?, ?)",
                (json.dumps(request.to_dict()), json.dumps(cfg.to_dict()), user.name, version,
                 _now()),
            ).lastrowid  # fmt: skip
        folder = self.job_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with open(folder / WORKER_LOG, "ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", WORKER_MODULE, str(self.ws.root), str(job_id)],
                    cwd=_REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True,
                )  # fmt: skip
        except OSError as exc:
            self.finish(job_id, "failed", f"cannot start the worker: {exc}")
            raise
        with self.store.connect() as conn:
            conn.execute("UPDATE retrain_jobs SET pid = ? WHERE id = ?", (process.pid, job_id))
        self.store.audit(user.name, "submit_retrain", f"job-{job_id}", version=version,
                         request=request.to_dict())  # fmt: skip
        return job_id

    def jobs(self, user: User | None, limit: int = 50) -> list[Job]:
        """The latest jobs, newest first (a dead worker's job is marked failed first)."""
        require(user, "retrain")
        self.reap()
        with self.store.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM retrain_jobs ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_to_job(r) for r in rows]

    def job(self, user: User | None, job_id: int) -> Job:
        require(user, "retrain")
        self.reap()
        return self._get(job_id)

    def cancel(self, user: User | None, job_id: int) -> Job:
        """Stop a queued or running job (SIGTERM to its process group); a finished job is
        returned unchanged."""
        user = require(user, "retrain")
        self.reap()
        with self.store.connect() as conn:
            updated = conn.execute(
                "UPDATE retrain_jobs SET state = 'cancelled', finished_at = ?, error = ?"
                " WHERE id = ? AND state IN ('queued', 'running')",
                (_now(), f"cancelled by {user.name}", job_id),
            ).rowcount
        job = self._get(job_id)
        if updated and job.pid is not None and _proc_alive(job.pid, job_id):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(job.pid, signal.SIGTERM)
        if updated:
            self.store.audit(user.name, "cancel_retrain", f"job-{job_id}", version=job.version)
        return job

    def progress(self, user: User | None, job_id: int) -> JobProgress:
        require(user, "retrain")
        folder = self.job_dir(job_id)
        last: dict[str, Any] = {}
        losses: list[tuple[int, int, dict[str, float]]] = []
        for event in read_jsonl(folder / LOG_FILE):
            last.update(event)
            if "loss" in event:
                parts = {k: v for k, v in event.items() if isinstance(v, float) and k != "t"}
                losses.append((event.get("run", 0), event["step"], parts))
        epochs = tuple((r.pop("run", 0), r) for r in read_jsonl(folder / METRICS_FILE))
        return JobProgress(
            step=last.get("step", 0), total=last.get("total", 0), run=last.get("run", 0),
            runs=last.get("runs", 1), stage=last.get("stage", ""), losses=tuple(losses),
            epochs=epochs,
        )  # fmt: skip

    def wait(self, user: User | None, job_id: int, timeout: float, poll: float = 0.2) -> Job:
        """The job once it has finished; TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not (job := self.job(user, job_id)).done:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout:g} s")
            time.sleep(poll)
        return job

    # ---------------------------------------------------------------------- worker API

    def reap(self) -> None:
        """Mark queued or running jobs whose worker is gone failed, and remove what they left
        half-written in the registry folder."""
        self.store.ensure(_DDL)
        with self.store.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM retrain_jobs WHERE state IN ('queued', 'running')"
            ).fetchall()
        for row in rows:
            job = _to_job(row)
            if job.pid is None:
                age = time.time() - datetime.fromisoformat(job.created_at).timestamp()
                if age < STARTUP_GRACE_S:
                    continue
            elif _proc_alive(job.pid, job.id):
                continue
            if self.finish(job.id, "failed", WORKER_DIED):
                self.remove_partial(job.version)

    def claim(self, job_id: int) -> Job | None:
        """Worker: mark the job running once no earlier job is queued or running (polls);
        None when it was cancelled meanwhile."""
        while True:
            self.reap()
            with self.store.connect() as conn:
                row = conn.execute(
                    "SELECT state FROM retrain_jobs WHERE id = ?", (job_id,)
                ).fetchone()
                if row is None or row["state"] != "queued":
                    return None
                claimed = conn.execute(
                    "UPDATE retrain_jobs SET state = 'running', started_at = ? WHERE id = ?"
                    " AND NOT EXISTS (SELECT 1 FROM retrain_jobs WHERE id != ? AND"
                    " (state = 'running' OR (state = 'queued' AND id < ?)))",
                    (_now(), job_id, job_id, job_id),
                ).rowcount
            if claimed:
                return self._get(job_id)
            time.sleep(1.0)

    def finish(self, job_id: int, state: str, error: str = "") -> bool:
        """Worker: move a queued or running job to a final state; False when it already had
        one (e.g. it was cancelled)."""
        assert state in FINAL_STATES
        with self.store.connect() as conn:
            return bool(
                conn.execute(
                    "UPDATE retrain_jobs SET state = ?, finished_at = ?, error = ?"
                    " WHERE id = ? AND state IN ('queued', 'running')",
                    (state, _now(), error, job_id),
                ).rowcount
            )

    def remove_partial(self, version: str) -> None:
        """Delete what a job that did not succeed left in the registry folder: the
        distillation's temporary folders, the grid's sub-runs and its version folder (never
        production, which only a finished job's version can become)."""
        from workbench.registry import production_version

        for path in self.runs_dir.glob(f".{version}.*"):
            shutil.rmtree(path, ignore_errors=True)
        if production_version(self.ws) != version:
            shutil.rmtree(self.runs_dir / version, ignore_errors=True)

    def _get(self, job_id: int) -> Job:
        self.store.ensure(_DDL)
        with self.store.connect() as conn:
            row = conn.execute("SELECT * FROM retrain_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise InputError(f"no retraining job {job_id}")
        return _to_job(row)


def _to_job(r: Any) -> Job:
    return Job(
        id=r["id"], state=r["state"], request=JobRequest.from_dict(json.loads(r["request"])),
        config=json.loads(r["config"]), user=r["user"], version=r["version"],
        created_at=r["created_at"], started_at=r["started_at"], finished_at=r["finished_at"],
        pid=r["pid"], error=r["error"],
    )  # fmt: skip
