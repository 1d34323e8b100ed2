"""Fuzz pass over the input surfaces that take files or text from users (the VCF reader has
its own, tests/core/genomics/test_vcf_fuzz.py): whatever the input, the outcome is a result
or one of the workbench's clean errors, never another exception, and a rejected import
leaves the cohort exactly as it was."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.data.manifest import COLUMNS, import_manifest
from core.errors import CmkdError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

# Cells mix plausible values, hostile ones and raw noise.
CELL = st.one_of(
    st.sampled_from(["", "H-1", "BRCA", "XXXX", "IV", "pt", "tile.png", "../../etc/passwd",
                     "missing.vcf", "test", "train", "a;b;c", "=cmd|' /C calc'!A0"]),
    st.text(max_size=40),
)  # fmt: skip
ROW = st.lists(CELL, min_size=0, max_size=len(COLUMNS) + 2)


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@FUZZ
@given(
    header=st.lists(st.sampled_from([*COLUMNS, "junk", ""]), min_size=0, max_size=8),
    rows=st.lists(ROW, max_size=5),
    raw_tail=st.binary(max_size=64),
)
def test_manifest_import_never_crashes_and_never_half_imports(
    header: list[str], rows: list[list[str]], raw_tail: bytes
) -> None:
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        Image.fromarray(np.full((16, 16, 3), 180, np.uint8)).save(base / "tile.png")
        cohort = base / "cohort"
        cohort.mkdir()
        before = _tree_digest(cohort)
        text = "\n".join(",".join(_csv_field(c) for c in row) for row in [header, *rows])
        manifest = base / "manifest.csv"
        manifest.write_bytes(text.encode("utf-8", "surrogatepass") + raw_tail)
        try:
            cases = import_manifest(manifest, cohort)
        except CmkdError as e:
            assert str(e).strip(), "a clean error says why"
            assert _tree_digest(cohort) == before, "a rejected manifest changed the cohort"
        else:
            assert all(c.case_id for c in cases)
