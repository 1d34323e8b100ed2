"""Atomic writes and strict config loading, shared by every layer (no torch import).

Files and run folders are written beside their target and renamed into place, so a crash
never leaves a half-written file or run behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import ConfigError


@contextlib.contextmanager
def atomic_path(path: Path, mode: int | None = None) -> Iterator[Path]:
    """A temporary file beside `path` for the block to write; it replaces `path` when the
    block succeeds and is removed when it fails. `mode` sets its permissions (mkstemp makes
    files private, 0600; documents to hand out or shipped assets want 0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of `target`; on success it replaces `target`.

    On an exception the temporary folder is removed and `target` is left as it was, so
    readers never see a half-written run.
    """
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def config_from_dict(cls: type, d: dict[str, Any]) -> Any:
    """Build the frozen dataclass `cls` from `d`, rejecting unknown keys (ConfigError).

    JSON has no tuples, so lists become tuples (configs hold tuples to stay hashable).
    """
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {unknown}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from exc
