"""Manifest import: valid rows land in the cohort; any bad row rejects the whole file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.cohort import load_cases
from core.data.manifest import import_manifest
from core.errors import ManifestError


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    d = tmp_path / "incoming"
    d.mkdir()
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(d / "tile1.png")
    (d / "broken.png").write_bytes(b"not an image at all")
    (d / "sample.vcf").write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    )
    return d


def _write(d: Path, text: str) -> Path:
    p = d / "manifest.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_valid_manifest_is_imported_with_files_copied(files: Path, tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    m = _write(files, "case_id,label,tile_paths,vcf_path,note_text,note_lang\n"
                      "H-1,BRCA,tile1.png,sample.vcf,Carcinoma ductal invasivo HER2 positivo,pt\n"
                      "H-1,,,,Invasive ductal carcinoma,en\n"
                      "H-2,,,,Saratani ya mapafu,sw\n")  # fmt: skip
    cases = import_manifest(m, cohort)
    assert [c.case_id for c in cases] == ["H-1", "H-2"]
    loaded = {c.case_id: c for c in load_cases(cohort)}
    h1 = loaded["H-1"]
    assert h1.label == "BRCA" and h1.source == "imported"
    assert [n.lang for n in h1.notes] == ["pt", "en"]
    assert (cohort / h1.tile_paths[0]).is_file() and (cohort / h1.vcf_path).is_file()
    assert loaded["H-2"].label == ""


def test_every_bad_row_is_named_and_nothing_is_written(files: Path, tmp_path: Path) -> None:
    cohort = tmp_path / "cohort"
    m = _write(files, "case_id,label,tile_paths,note_text,note_lang\n"
                      "A,BRCA,tile1.png,ok,en\n"
                      "B,XXXX,,text,en\n"
                      "C,,missing.png,,\n"
                      "D,,broken.png,,\n"
                      ",LUAD,,,\n"
                      "E,,,texto,klingon\n")  # fmt: skip
    with pytest.raises(ManifestError) as err:
        import_manifest(m, cohort)
    msg = str(err.value)
    assert "manifest.csv: row 3: label 'XXXX'" in msg
    assert "row 4: tile 'missing.png' not found" in msg
    assert "row 5: broken.png: not a readable image" in msg
    assert "row 6: case_id is empty" in msg
    assert "row 7: note_lang 'klingon'" in msg
    assert not cohort.exists() or not any(cohort.iterdir()), "a rejected manifest wrote files"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("id,label\nA,BRCA\n", "header must contain a case_id"),
        ("case_id,colour\nA,red\n", "unknown column(s) colour"),
        ("case_id,label\n", "no rows"),
        ("case_id,label\nA,BRCA,extra\n", "row 2: more fields than the header"),
        (
            "case_id,label\nA,BRCA\nA,LUAD\n",
            "row 3: label 'LUAD' contradicts 'BRCA' given on row 2",
        ),
    ],
)
def test_structural_errors(files: Path, tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(ManifestError, match="manifest.csv"):
        try:
            import_manifest(_write(files, text), tmp_path / "cohort")
        except ManifestError as e:
            assert reason in str(e)
            raise


def test_non_utf8_and_duplicate_ids(files: Path, tmp_path: Path) -> None:
    p = files / "manifest.csv"
    p.write_bytes(b"case_id,note_text,note_lang\nA,\xff\xfe,en\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        import_manifest(p, tmp_path / "cohort")
    import_manifest(_write(files, "case_id\nA\n"), tmp_path / "cohort")
    with pytest.raises(ManifestError, match="already exists"):
        import_manifest(_write(files, "case_id\nA\n"), tmp_path / "cohort")
