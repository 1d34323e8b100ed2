"""Where the workspace lives and what is in it.

The workspace (cohort, checkpoints, index, database) is `$CMKD_WORKSPACE`, default
`./workspace`. Nothing here touches the disk at import time.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

SALT_FILE = "pseudonym.salt"  # in the workspace root; 0600, created on first use


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

    @property
    def cache_dir(self) -> Path:  # derived data that can be rebuilt (tile embeddings, ...)
        return self.root / "cache"

    @property
    def uploads_dir(self) -> Path:  # validated user uploads (slides, tiles)
        return self.root / "uploads"

    @property
    def jobs_dir(self) -> Path:  # one folder per retraining job: logs and metrics
        return self.root / "jobs"


def workspace_salt(ws: Workspace) -> str:
    """The workspace's pseudonymisation salt, created (0600, exclusively) on first use."""
    path = ws.root / SALT_FILE
    if not path.exists():
        ws.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=ws.root, prefix=f".{SALT_FILE}.")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(32))
            os.link(tmp, path)  # fails if another process created it first: theirs is kept
        except FileExistsError:
            pass
        finally:
            Path(tmp).unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()
