"""Retraining jobs: request validation, the worker's lifecycle (submit, progress, succeed,
compare, promote, rollback), cancel, a killed worker, the queue and a 2-process gloo job.

Every job uses the tiny profile over the shared tiny teacher and student (`built_workspace`),
a few seconds each, most of it the worker's Python and torch start-up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist

from core.data.cohort import load_cases
from core.errors import ConfigError
from core.train.distill import DistillConfig, load_distilled
from workbench.cli import main as cli_main
from workbench.errors import PermissionDenied
from workbench.jobs import (
    HARD_NEGATIVES_FILE,
    LOG_FILE,
    WORKER_DIED,
    JobRequest,
    JobService,
    distill_config,
    read_jsonl,
)
from workbench.registry import RUN_FILE, Registry, production_version
from workbench.review_service import ReviewService, Shown
from workbench.roles import User
from workbench.store import pseudonym
from workbench.workspace import Workspace, workspace_salt

ADMIN = User("ada", "admin")
TIMEOUT_S = 120
TINY = JobRequest(profile="tiny", languages=("pt", "hi"), epochs=2)
# Runs until cancelled or killed: every epoch is one step plus a tiny validation.
ENDLESS = dataclasses.replace(TINY, languages=("pt",), epochs=100_000, max_minutes=3.0)


@pytest.fixture()
def service(built_workspace: Path) -> JobService:
    return JobService(Workspace(built_workspace))


def wait_until(predicate, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def worker_gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap our own child once it exits
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def leftovers(ws: Path, version: str) -> list[str]:
    runs = ws / "models" / "runs"
    return sorted(p.name for p in runs.glob(f"*{version}*")) if runs.exists() else []


def test_request_defaults_are_distill_config_defaults() -> None:
    req, cfg = JobRequest(), DistillConfig()
    assert req.languages == cfg.languages and req.epochs == cfg.epochs
    assert req.batch_size == cfg.batch_size and req.max_minutes == cfg.max_minutes
    assert (req.alpha, req.temperature, req.uncertainty_threshold) == (
        cfg.loss.alpha, cfg.loss.temperature, cfg.loss.uncertainty_threshold,
    )  # fmt: skip
    assert req.uncertainty_quantile == cfg.loss.uncertainty_quantile
    assert req.entity_attention == cfg.use_entity_attention and req.device == cfg.device


def test_request_maps_onto_distill_config(tmp_path: Path) -> None:
    req = JobRequest(profile="tiny", languages=("sw",), alpha=0.5, temperature=2.0,
                     uncertainty_threshold=0.1, uncertainty_quantile=0.0, epochs=3,
                     batch_size=16, entity_attention=False,
                     quantum_head=True, device="cpu", max_minutes=1.5)  # fmt: skip
    cfg = distill_config(req, tmp_path)
    assert cfg.languages == ("sw",) and cfg.epochs == 3 and cfg.batch_size == 16
    assert (cfg.loss.alpha, cfg.loss.temperature, cfg.loss.uncertainty_threshold) == (
        0.5, 2.0, 0.1,
    )  # fmt: skip
    assert cfg.loss.uncertainty_quantile == 0.0
    assert not cfg.use_entity_attention and cfg.head == "quantum" and cfg.device == "cpu"
    assert cfg.student.hidden == 32 and not cfg.use_parallel  # the tiny profile
    assert cfg.cache_dir == str(tmp_path) and not cfg.show_progress_bar
    assert distill_config(JobRequest(), tmp_path).student.hidden == 384  # demo: MiniLM's width
    grid = JobRequest(temperature_grid=(2.0, 8.0))
    assert grid.temperatures == (2.0, 8.0) and JobRequest().temperatures == (4.0,)


def test_a_language_not_installed_is_refused_with_how_to_add_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        distill_config(JobRequest(languages=("pt", "yo")), tmp_path, tmp_path / "languages")
    message = str(err.value)
    assert "yo" in message and "phrase bank" in message and "lexicon" in message
    assert "cmkd language add" in message
    with pytest.raises(ConfigError, match="yoruba"):
        JobRequest(languages=("pt", "yoruba"))  # not an ISO 639-1 code at all
    for bad in ({"languages": ()}, {"profile": "huge"}, {"device": "tpu"}, {"processes": 0},
                {"temperature_grid": (2.0, 2.0)}):  # fmt: skip
        with pytest.raises(ConfigError):
            JobRequest(**bad)
    assert JobRequest.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ConfigError, match="unknown"):
        JobRequest.from_dict({**TINY.to_dict(), "learning_rate": 1})


def test_an_installed_pack_language_maps_to_language_packs(
    service: JobService, built_workspace: Path
) -> None:
    pack = Path(__file__).resolve().parents[1] / "data" / "language_pack_it"
    with pytest.raises(PermissionDenied):
        service.add_language(User("n", "nurse"), "it", b"", b"")
    service.add_language(ADMIN, "it", (pack / "phrases.tsv").read_bytes(),
                         (pack / "lexicon.tsv").read_bytes(), "Italiano")  # fmt: skip
    assert list(service.languages(ADMIN)) == ["it"]
    request = dataclasses.replace(TINY, languages=("pt", "it"))
    cfg = distill_config(request, built_workspace / "cache", service.packs_dir)
    assert cfg.languages == ("pt", "it") and cfg.cohort_languages == ("pt",)
    assert cfg.language_packs == (str(built_workspace / "languages" / "it"),)
    assert DistillConfig.from_dict(cfg.to_dict()) == cfg  # as the worker reads it back
    assert distill_config(TINY, built_workspace / "cache", service.packs_dir).language_packs == ()

    job = service.wait(ADMIN, service.submit(ADMIN, request), TIMEOUT_S)
    assert job.state == "succeeded", job.error
    run = Registry(Workspace(built_workspace), service.store).show(ADMIN, job.version)
    assert set(run["comparison"]["new"]) == {"en", "pt"}  # held-out notes: cohort languages
    student = load_distilled(built_workspace / "models" / "runs" / job.version)
    assert student.languages == ("en", "pt", "it") and "it" in student.lexicon.languages


def test_only_admins_submit_or_list(service: JobService) -> None:
    nurse = User("n", "nurse")
    with pytest.raises(PermissionDenied):
        service.submit(nurse, TINY)
    with pytest.raises(PermissionDenied):
        service.jobs(nurse)
    assert service.jobs(ADMIN) == []
    with pytest.raises(ConfigError, match="batch_size"):  # DistillConfig's own check, at once
        service.submit(ADMIN, dataclasses.replace(TINY, batch_size=1))
    assert service.jobs(ADMIN) == []


def test_lifecycle_submit_progress_compare_promote_rollback(
    service: JobService, built_workspace: Path
) -> None:
    ws = Workspace(built_workspace)
    original = production_version(ws)
    job_id = service.submit(ADMIN, TINY)
    seen = [service.job(ADMIN, job_id).state]
    while seen[-1] not in ("succeeded", "failed"):
        time.sleep(0.05)
        if (state := service.job(ADMIN, job_id).state) != seen[-1]:
            seen.append(state)
    job = service.job(ADMIN, job_id)
    assert job.state == "succeeded", (job.error, service.job_dir(job_id))
    assert seen[0] in ("queued", "running") and set(seen) <= {"queued", "running", "succeeded"}
    assert job.started_at and job.finished_at and job.started_at <= job.finished_at

    progress = service.progress(ADMIN, job_id)
    assert progress.step == progress.total == 2 and progress.stage == "done"
    assert [step for _, step, _ in progress.losses] == [1, 2]
    assert all(parts["loss"] > 0 for _, _, parts in progress.losses)
    assert [r["epoch"] for _, r in progress.epochs] == [0, 1]
    assert set(progress.epochs[-1][1]["val"]) == {"en", "pt", "hi"}

    registry = Registry(ws, service.store)
    run = registry.show(ADMIN, job.version)
    assert run["status"] == "succeeded" and run["user"] == "ada" and not run["production"]
    assert JobRequest.from_dict(run["request"]) == TINY
    assert run["config"]["loss"]["temperature"] == 4.0
    assert len(run["data"]["cohort_hash"]) == 64
    assert run["data"]["review_feedback"] == {"requested": False, "used": False, "count": 0}
    comparison = run["comparison"]
    assert comparison["production_version"] == original
    for side in ("new", "production"):
        assert set(comparison[side]) == {"en", "pt", "hi"}
        assert all(0 <= m["accuracy"] <= 1 and 0 <= m["recall_at_10"] <= 1
                   for m in comparison[side].values())  # fmt: skip
    folder = ws.models_dir / "runs" / job.version
    copied = (folder / LOG_FILE).read_text()  # the logs up to the registration
    assert '"loss"' in copied and (service.job_dir(job_id) / LOG_FILE).read_text().startswith(
        copied
    )
    assert production_version(ws) == original  # a job never touches production

    assert registry.promote(ADMIN, job.version) == original
    assert production_version(ws) == job.version
    student = ws.models_dir / "student"
    assert student.is_symlink() and student.resolve() == folder.resolve()
    z, _ = load_distilled(student).predict(["carcinoma ductal invasivo"], "pt")
    assert z.shape == (1, load_distilled(folder).config["shared_dim"])

    assert registry.rollback(ADMIN) == original
    assert production_version(ws) == original
    assert json.loads((student / "config.json").read_text())["version"] == original
    assert [h.action for h in registry.history(ADMIN)] == ["adopt", "promote", "rollback"]
    actions = [e.action for e in service.store.audit_entries()]
    assert {"submit_retrain", "promote_model", "rollback_model"} <= set(actions)


def test_cancel_a_running_job_and_a_queued_one(service: JobService, built_workspace: Path) -> None:
    ws = Workspace(built_workspace)
    before = (production_version(ws), os.readlink(ws.models_dir / "student"))
    first = service.submit(ADMIN, ENDLESS)
    second = service.submit(ADMIN, TINY)  # waits for the first: one job at a time
    wait_until(lambda: service.progress(ADMIN, first).step >= 2, "the first job's steps")
    assert service.job(ADMIN, second).state == "queued"

    assert service.cancel(ADMIN, second).state == "cancelled"
    job = service.cancel(ADMIN, first)
    assert job.state == "cancelled" and job.error == "cancelled by ada"
    for jid in (first, second):
        pid = service.job(ADMIN, jid).pid
        wait_until(lambda pid=pid: worker_gone(pid), f"worker of job {jid} to exit", 30)
    assert [service.job(ADMIN, j).state for j in (first, second)] == ["cancelled"] * 2
    assert service.job(ADMIN, first).finished_at
    assert leftovers(built_workspace, job.version) == []  # the temporary folder went too
    assert service.progress(ADMIN, second).losses == ()  # never ran
    assert (production_version(ws), os.readlink(ws.models_dir / "student")) == before
    assert service.cancel(ADMIN, first).state == "cancelled"  # finished: unchanged


def test_a_killed_worker_fails_the_job_and_leaves_the_workspace_intact(
    service: JobService, built_workspace: Path
) -> None:
    ws = Workspace(built_workspace)
    student = ws.models_dir / "student"
    before = (production_version(ws), os.readlink(student), sorted(os.listdir(ws.models_dir)))
    runs = ws.models_dir / "runs"
    job_id = service.submit(ADMIN, ENDLESS)
    wait_until(lambda: service.progress(ADMIN, job_id).step >= 2, "training steps")
    job = service.job(ADMIN, job_id)
    assert job.state == "running"
    assert any(p.name.startswith(f".{job.version}.tmp") for p in runs.iterdir())

    os.killpg(job.pid, signal.SIGKILL)
    wait_until(lambda: worker_gone(job.pid), "the worker to die", 30)
    job = service.job(ADMIN, job_id)
    assert job.state == "failed" and job.error == WORKER_DIED and job.finished_at
    assert list(runs.iterdir()) == [] and Registry(ws, service.store).versions(ADMIN) == []
    runs.rmdir()  # the (now empty) registry folder is the only trace of the job
    after = (production_version(ws), os.readlink(student), sorted(os.listdir(ws.models_dir)))
    assert after == before
    load_distilled(student)  # production still loads


@pytest.mark.skipif(not dist.is_gloo_available(), reason="torch was built without gloo")
def test_a_two_process_gloo_job_finishes(service: JobService, built_workspace: Path) -> None:
    job_id = service.submit(ADMIN, dataclasses.replace(TINY, processes=2, epochs=1))
    job = service.wait(ADMIN, job_id, TIMEOUT_S)
    assert job.state == "succeeded", (job.error, service.job_dir(job_id))
    run = Registry(Workspace(built_workspace), service.store).show(ADMIN, job.version)
    assert run["request"]["processes"] == 2 and run["steps"] >= 1
    events = list(read_jsonl(service.job_dir(job_id) / LOG_FILE))
    assert any("loss" in e for e in events)  # relayed from rank 0 through torchrun
    assert (Workspace(built_workspace).models_dir / "runs" / job.version / RUN_FILE).is_file()


def test_a_temperature_grid_keeps_the_best_sub_run(
    service: JobService, built_workspace: Path
) -> None:
    request = dataclasses.replace(TINY, epochs=1, temperature_grid=(2.0, 8.0))
    job = service.wait(ADMIN, service.submit(ADMIN, request), TIMEOUT_S)
    assert job.state == "succeeded", job.error
    run = Registry(Workspace(built_workspace), service.store).show(ADMIN, job.version)
    assert [g["temperature"] for g in run["grid"]] == [2.0, 8.0]
    chosen = [g for g in run["grid"] if g["chosen"]]
    assert len(chosen) == 1 and run["config"]["loss"]["temperature"] == chosen[0]["temperature"]
    assert leftovers(built_workspace, job.version) == [job.version]  # the grid folder is gone
    progress = service.progress(ADMIN, job.id)
    assert progress.runs == 2 and {run for run, _, _ in progress.losses} == {0, 1}


def test_review_feedback_trains_as_hard_negatives_and_is_recorded(
    service: JobService, built_workspace: Path
) -> None:
    ws = Workspace(built_workspace)
    cases = sorted((c for c in load_cases(ws.cohort_dir) if c.split == "train"),
                   key=lambda c: c.case_id)  # fmt: skip
    asked = cases[0]
    wrong = next(c for c in cases if c.cancer_type != asked.cancer_type)
    text = next(n.text for n in asked.notes if n.lang == "pt")
    reviews = ReviewService.from_workspace(ws)
    reviews.record_search(
        ADMIN, "q1", pseudonym(text, workspace_salt(ws)), "pt", [], asked.cancer_type,
        np.ones(4, np.float32), [Shown(wrong.case_id, "note", 0, 1, 0.6),
                                 Shown(asked.case_id, "note", 1, 2, 0.5)],
    )  # fmt: skip
    reviews.review(ADMIN, "q1", 0, "not_relevant", query_text=text)
    reviews.review(ADMIN, "q1", 1, "relevant", query_text=text)

    request = dataclasses.replace(TINY, epochs=1, use_review_feedback=True)
    job = service.wait(ADMIN, service.submit(ADMIN, request), TIMEOUT_S)
    assert job.state == "succeeded", (job.error, service.job_dir(job.id))
    exported = service.job_dir(job.id) / HARD_NEGATIVES_FILE
    assert [json.loads(x)["verdict"] for x in exported.read_text().splitlines()] == [
        "not_relevant", "relevant",
    ]  # fmt: skip
    run = Registry(ws, service.store).show(ADMIN, job.version)
    feedback, data = run["data"]["review_feedback"], run["data"]
    assert feedback["requested"] and feedback["used"] and feedback["count"] == 2
    assert (feedback["negatives"], feedback["with_positive"]) == (1, 1)
    digest = hashlib.sha256(exported.read_bytes()).hexdigest()
    assert feedback["sha256"] == digest and run["config"]["hard_negatives"] == str(exported)
    combined = f"{data['cohort_hash']}\n{digest}".encode()
    assert data["hash"] == hashlib.sha256(combined).hexdigest() != data["cohort_hash"]
    assert any("hard_negative" in parts for _, _, parts in service.progress(ADMIN, job.id).losses)
    assert service.store.audit_entries(action="export_hard_negatives")[0].actor == "ada"


def test_cmkd_distill_registers_a_new_version_instead_of_overwriting_production(
    built_workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(built_workspace)
    registry = Registry(ws)
    shutil.copytree(ws.models_dir / "student", ws.models_dir / "runs" / "v1")
    registry.register("v1", {"version": "v1", "status": "succeeded"})
    registry.promote(ADMIN, "v1")  # models/student is now the registry's link to runs/v1
    before = {p.name: p.stat().st_mtime_ns for p in (ws.models_dir / "runs/v1").iterdir()}
    cfg = distill_config(dataclasses.replace(TINY, languages=("pt",), epochs=1),
                         built_workspace / "cache")  # fmt: skip
    config = built_workspace / "distill.json"
    config.write_text(json.dumps(cfg.to_dict()))

    assert cli_main(["distill", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    version = out.split("registered as version ")[1].split(",")[0]
    assert production_version(ws) == "v1" and version != "v1"
    assert {p.name: p.stat().st_mtime_ns for p in (ws.models_dir / "runs/v1").iterdir()} == before
    run = registry.show(ADMIN, version)
    assert run["status"] == "succeeded" and not run["production"]
    assert run["user"].startswith("cli:") and run["data"]["hash"] == run["data"]["cohort_hash"]
    assert load_distilled(ws.models_dir / "runs" / version).config["languages"] == ["en", "pt"]

    for target in (ws.models_dir / "student", ws.models_dir / "runs" / version):
        code = cli_main(["distill", "--config", str(config), "--out", str(target)])
        err = capsys.readouterr().err
        assert code == 2 and "would replace it in place" in err
    assert production_version(ws) == "v1"
