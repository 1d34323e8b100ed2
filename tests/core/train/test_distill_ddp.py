"""Two-process data-parallel distillation through torchrun (gloo, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch.distributed as dist
from test_distill import tiny_config, write_fake_teacher

from core.data.cohort import CohortConfig, generate_cohort
from core.train.distill import CONFIG_FILE, launch_distill, load_distilled


@pytest.mark.skipif(not dist.is_gloo_available(), reason="torch was built without gloo")
def test_two_gloo_processes_end_with_identical_weights(tmp_path: Path) -> None:
    cohort = generate_cohort(
        tmp_path / "cohort", CohortConfig(n_cases=30, workers=1, slide_fraction=0)
    )
    teacher = write_fake_teacher(cohort, tmp_path / "teacher")
    # 8 batches shared out by the DistributedSampler: 4 steps on each rank, each rank seeing
    # other rows, so only gradient averaging keeps the weights equal.
    cfg = tiny_config(tmp_path, notes_per_epoch=48, parallel_rows=4, threads=1)
    events: list[dict] = []
    out = launch_distill(
        cohort, teacher, tmp_path / "student", cfg, nproc=2, progress=events.append,
        state_hash_dir=tmp_path / "hashes",
    )  # fmt: skip

    hashes = {p.name: p.read_text() for p in (tmp_path / "hashes").iterdir()}
    assert set(hashes) == {"rank0.sha256", "rank1.sha256"}
    assert hashes["rank0.sha256"] == hashes["rank1.sha256"]
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["steps"] == 4 and not config["stopped_early"]
    assert [e["step"] for e in events if "loss" in e] == [1, 2, 3, 4]  # relayed from rank 0
    z, _ = load_distilled(out).predict(["carcinoma ductal invasivo"], "pt")
    assert z.shape[0] == 1


def test_a_rank_stops_when_its_torchrun_launcher_is_gone() -> None:
    # Ranks run in their own sessions: when a job's process group is SIGKILLed they outlive
    # torchrun and are re-parented; they must notice and stop, not save later.
    import os

    from core.errors import CmkdError
    from core.train.distill import _World

    _World(rank=1, size=2, launcher_pid=os.getppid()).check_launcher()  # launcher alive
    _World().check_launcher()  # not distributed: nothing to check
    with pytest.raises(CmkdError, match="launcher died"):
        _World(rank=1, size=2, launcher_pid=os.getppid() + 1).check_launcher()
