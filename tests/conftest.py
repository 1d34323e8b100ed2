"""Shared fixtures and test tiers.

Tiers by marker: the default run is fast and offline; `slow` opts in with --run-slow; `gpu`
skips without CUDA; `browser` tests skip themselves when Debian Chromium is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
TINY_COHORT_CASES = 48


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_slow = config.getoption("--run-slow")
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow test: run with --run-slow"))
        if "browser" in item.keywords and not CHROMIUM.exists():
            item.add_marker(pytest.mark.skip(
                reason="browser test needs Debian Chromium at /usr/bin/chromium: as root run "
                "`apt-get install -y chromium chromium-driver` (or `make chromium`)"
            ))  # fmt: skip
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA: run on a machine with a GPU"))


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic cohort (every modality, every split), generated once per session."""
    from core.data.cohort import CohortConfig, generate_cohort

    out = tmp_path_factory.mktemp("cohort") / "cohort"
    cfg = CohortConfig(n_cases=TINY_COHORT_CASES, seed=7, slide_fraction=0.05, workers=1,
                       slide_width=1024, slide_height=768)  # fmt: skip
    return generate_cohort(out, cfg)


@pytest.fixture()
def tiny_workspace(tiny_cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace whose cohort is the tiny cohort; $CMKD_WORKSPACE points at it."""
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "cohort").symlink_to(tiny_cohort, target_is_directory=True)
    monkeypatch.setenv("CMKD_WORKSPACE", str(root))
    return root


@pytest.fixture(scope="session")
def tiny_models(tiny_cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only built workspace over the tiny cohort: a tiny teacher (models/teacher), a
    tiny pt+hi student (models/student) and the index of the teacher's embeddings. Built once
    per session; tests that write use `built_workspace`."""
    from core.index import build_from_teacher_run
    from core.models.student import StudentConfig
    from core.train.distill import DistillConfig, distill
    from core.train.teacher import TeacherTrainConfig, train_teacher

    root = tmp_path_factory.mktemp("built")
    (root / "cohort").symlink_to(tiny_cohort, target_is_directory=True)
    teacher = train_teacher(
        tiny_cohort, root / "models/teacher",
        TeacherTrainConfig.from_dict({"epochs": 1, "max_minutes": 0.5}),
    )  # fmt: skip
    student = StudentConfig(
        hidden=32, n_heads=2, ffn=64, n_layers=2, init_layers=(0, 1), max_length=48
    )
    cfg = DistillConfig(
        languages=("pt", "hi"), student=student, init_from_minilm=False, init_from_teacher=False,
        epochs=1, notes_per_epoch=24, batch_size=8, max_length=48, parallel_rows=8,
        extra_vocab=100, val_per_language=6, eval_batch_size=16, show_progress_bar=False,
        threads=1, cache_dir=str(root / "cache"),
    )  # fmt: skip
    distill(tiny_cohort, teacher, root / "models/student", cfg)
    build_from_teacher_run(teacher, tiny_cohort).save(root / "index")
    return root


@pytest.fixture()
def built_workspace(tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace (own store) over `tiny_models`' cohort, models and index, which it
    links, not copies: write new models next to them, never into them."""
    root = tmp_path / "workspace"
    (root / "models").mkdir(parents=True)
    for part in ("cohort", "index", "models/teacher", "models/student"):
        (root / part).symlink_to(tiny_models / part, target_is_directory=True)
    monkeypatch.setenv("CMKD_WORKSPACE", str(root))
    return root
