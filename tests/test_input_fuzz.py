"""Fuzz pass over the input surfaces that take files or text from users (the VCF reader has
its own, tests/core/genomics/test_vcf_fuzz.py): whatever the input, the outcome is a result
or one of the workbench's clean errors, never another exception, and a rejected import
leaves the cohort exactly as it was."""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
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


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 24, 3), np.uint8)).save(
        buf, format="PNG"
    )
    return buf.getvalue()


PNG = _png_bytes()


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=256),
        # A real PNG with a few bytes overwritten or cut short: corrupt, truncated, bad CRC.
        st.tuples(
            st.lists(st.tuples(st.integers(0, len(PNG) - 1), st.integers(0, 255)), max_size=6),
            st.integers(8, len(PNG)),
        ).map(lambda m: _mutate(PNG, *m)),
    ),
    suffix=st.sampled_from([".png", ".jpg", ".tif", ""]),
)
def test_tile_upload_is_an_image_or_a_clean_error(data: bytes, suffix: str) -> None:
    from core.slides import read_image

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            image = read_image(path, path.name)
        except CmkdError as e:
            assert path.name in str(e)
        else:
            assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


def _mutate(data: bytes, edits: list[tuple[int, int]], keep: int) -> bytes:
    out = bytearray(data[:keep])
    for pos, value in edits:
        if pos < len(out):
            out[pos] = value
    return bytes(out)


QUERY = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(categories=["P", "S", "Z"]), max_size=40),  # no letters
    st.sampled_from(["", " ", "HER2", "🙂" * 50, "x" * 10_000, "a\x00b", "Лёгкое",
                     "मेटास्टेटिक स्तन कैंसर HER2", "<script>alert(1)</script>"]),
)  # fmt: skip


@FUZZ
@given(query=QUERY, lang=st.sampled_from([None, "pt", "hi", "en", "xx"]))
def test_search_query_is_answered_or_refused_cleanly(
    search_service: object, query: str, lang: str | None
) -> None:
    from workbench.roles import User

    try:
        result = search_service.search(User("fuzz", "oncologist"), query, lang=lang, k=3)
    except CmkdError as e:
        assert str(e).strip()
    else:
        assert all(h.case_id for h in result.hits)


@pytest.fixture(scope="module")
def search_service(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    from workbench.search_service import SearchService
    from workbench.workspace import Workspace

    root = tmp_path_factory.mktemp("fuzz-ws")
    (root / "models").mkdir()
    for part in ("cohort", "index", "models/teacher", "models/student"):
        (root / part).symlink_to(tiny_models / part, target_is_directory=True)
    return SearchService(Workspace(root))
