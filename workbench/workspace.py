"""Where the workspace lives and what is in it.

The workspace (cohort, checkpoints, index, database) is `$CMKD_WORKSPACE`, default
`./workspace`. Nothing here touches the disk at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def from_env(cls) -> Workspace:
        return cls(Path(os.environ.get("CMKD_WORKSPACE", "workspace")).resolve())

    @property
    def cohort_dir(self) -> Path:  # cases.jsonl, tiles/, vcf/, slides/, reference/
        return self.root / "cohort"

    @property
    def models_dir(self) -> Path:  # one folder per model version: config.json + *.safetensors
        return self.root / "models"

    @property
    def index_dir(self) -> Path:  # FAISS index + meta.json
        return self.root / "index"

    @property
    def db_path(self) -> Path:  # SQLite store: reviews, audit, jobs, registry
        return self.root / "store.sqlite"
