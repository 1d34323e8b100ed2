"""What a workspace holds: cohort, models, retrieval index and database.

Reading is tolerant: an absent part is reported as absent, and a part that exists but
cannot be read is reported as unreadable instead of raising, so the home page always
renders. Cohort statistics (the only costly part) are cached by the mtimes and sizes of the
cohort's case files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.data.cohort_io import CASES_FILE, IMPORTED_FILE, cohort_stats, load_cases
from core.errors import CmkdError
from workbench.workspace import Workspace

COMPONENTS: tuple[str, ...] = ("cohort", "models", "index")


@dataclass(frozen=True)
class ModelInfo:
    name: str  # folder name under models/
    kind: str  # e.g. "teacher" or "student"; "" when config.json does not say
    version: str  # "" when config.json does not say
    created_at: str  # as written in config.json (ISO 8601); "" when absent
    readable: bool  # False when config.json is not a readable JSON object


@dataclass(frozen=True)
class IndexInfo:
    teacher_version: str  # teacher model version whose embeddings were indexed
    n_vectors: int
    index_type: str  # e.g. "flat", "hnsw", "ivf"
    readable: bool  # False when meta.json is missing fields or not readable


@dataclass(frozen=True)
class WorkspaceStatus:
    root: Path
    cohort_present: bool  # cohort/cases.jsonl exists
    cohort_error: str  # why the cohort could not be read; "" when it could (or is absent)
    cohort_stats: Mapping[str, Any] | None  # read-only core.data.cohort_io.cohort_stats output
    models: tuple[ModelInfo, ...]  # sorted by folder name
    index: IndexInfo | None  # None when there is no index/meta.json
    db_present: bool
    db_size_bytes: int  # 0 when absent

    @property
    def missing(self) -> tuple[str, ...]:
        """Components of COMPONENTS that are absent or unusable, in that order."""
        usable = {
            "cohort": self.cohort_stats is not None,
            "models": any(m.readable for m in self.models),
            "index": self.index is not None and self.index.readable,
        }
        return tuple(c for c in COMPONENTS if not usable[c])


def workspace_status(ws: Workspace) -> WorkspaceStatus:
    """A snapshot of `ws`; cheap enough to call on every page run."""
    stats, error = None, ""
    cohort_present = (ws.cohort_dir / CASES_FILE).is_file()
    if cohort_present:
        try:
            stats = _cached_cohort_stats(ws.cohort_dir, _file_versions(ws.cohort_dir))
        except (CmkdError, OSError) as exc:
            error = str(exc)
    db_present = ws.db_path.is_file()
    return WorkspaceStatus(
        root=ws.root,
        cohort_present=cohort_present,
        cohort_error=error,
        cohort_stats=stats,
        models=_models(ws.models_dir),
        index=_index(ws.index_dir / "meta.json"),
        db_present=db_present,
        db_size_bytes=ws.db_path.stat().st_size if db_present else 0,
    )


def _file_versions(cohort_dir: Path) -> tuple[tuple[int, int] | None, ...]:
    """(mtime_ns, size) of each file load_cases reads; None for an absent one."""
    versions = []
    for name in (CASES_FILE, IMPORTED_FILE):
        try:
            st = (cohort_dir / name).stat()
        except FileNotFoundError:
            versions.append(None)
        else:
            versions.append((st.st_mtime_ns, st.st_size))
    return tuple(versions)


@lru_cache(maxsize=4)
def _cached_cohort_stats(
    cohort_dir: Path, versions: tuple[tuple[int, int] | None, ...]
) -> Mapping[str, Any]:
    # `versions` is only a cache key: rewriting or importing cases changes it.
    return _freeze(cohort_stats(load_cases(cohort_dir)))


def _freeze(value: Any) -> Any:
    # The cached stats are shared by every caller, so nested dicts are made read-only.
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    return value


def _read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _models(models_dir: Path) -> tuple[ModelInfo, ...]:
    if not models_dir.is_dir():
        return ()
    infos = []
    for config_path in sorted(models_dir.glob("*/config.json")):
        config = _read_json_object(config_path)
        fields = {k: str((config or {}).get(k, "")) for k in ("kind", "version", "created_at")}
        infos.append(ModelInfo(name=config_path.parent.name, readable=config is not None, **fields))
    return tuple(infos)


def _index(meta_path: Path) -> IndexInfo | None:
    if not meta_path.exists():
        return None
    meta = _read_json_object(meta_path) or {}
    n_vectors = meta.get("n_vectors")
    readable = (
        isinstance(n_vectors, int)
        and not isinstance(n_vectors, bool)
        and all(meta.get(k) not in (None, "") for k in ("teacher_version", "index_type"))
    )
    return IndexInfo(
        teacher_version=str(meta.get("teacher_version", "")),
        n_vectors=n_vectors if readable else 0,
        index_type=str(meta.get("index_type", "")),
        readable=readable,
    )
