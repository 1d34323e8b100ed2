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
