"""Cohort generation: determinism, splits, template hygiene, valid files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pysam
import pytest
from PIL import Image

from core.data.cohort import CohortConfig, assign_splits, cohort_stats, generate_cohort, load_cases
from core.data.notes import list_templates
from core.data.schema import CANCER_TYPES, LANGUAGES, NOTE_KINDS, STAGES, SUBTYPES
from core.errors import CohortError, ConfigError


def test_every_case_is_well_formed(tiny_cohort: Path) -> None:
    cases = load_cases(tiny_cohort)
    assert len(cases) == 48
    assert len({c.case_id for c in cases}) == len(cases)
    for c in cases:
        assert c.cancer_type in CANCER_TYPES
        assert c.subtype in SUBTYPES[c.cancer_type]
        assert c.stage in STAGES or (c.cancer_type == "GBM" and c.stage == "")
        assert {(n.lang, n.kind) for n in c.notes} == {
            (lang, k) for lang in LANGUAGES for k in NOTE_KINDS
        }
        assert all(n.text.strip() for n in c.notes)
        # Histology is drawn with the tiles and only then.
        assert len(c.histology) == (2 if c.tile_paths else 0)


def test_test_cases_use_only_test_templates(tiny_cohort: Path) -> None:
    test_ids = {
        t.template_id
        for lang in LANGUAGES
        for k in NOTE_KINDS
        for t in list_templates(lang, k, "test")
    }
    train_ids = {
        t.template_id
        for lang in LANGUAGES
        for k in NOTE_KINDS
        for t in list_templates(lang, k, "train")
    }
    assert test_ids and train_ids and not (test_ids & train_ids)
    for c in load_cases(tiny_cohort):
        used = {n.template_id for n in c.notes}
        if c.split == "test":
            assert used <= test_ids
        else:
            assert not (used & test_ids), f"{c.case_id} ({c.split}) uses a test template"


def test_every_vcf_parses_and_matches_the_case(tiny_cohort: Path) -> None:
    cases = [c for c in load_cases(tiny_cohort) if c.vcf_path]
    assert cases
    for c in cases:
        path = tiny_cohort / c.vcf_path
        assert Path(str(path) + ".tbi").exists()
        with pysam.VariantFile(str(path)) as vf:
            records = list(vf)
        assert len(records) >= len([v for v in c.variants if v.role == "driver"])


def test_tiles_are_rgb_images_in_range(tiny_cohort: Path) -> None:
    case = next(c for c in load_cases(tiny_cohort) if c.tile_paths)
    for rel in case.tile_paths:
        arr = np.asarray(Image.open(tiny_cohort / rel))
        assert arr.shape == (128, 128, 3) and arr.dtype == np.uint8
        assert 0 < arr.mean() < 255


def test_slides_open_in_openslide(tiny_cohort: Path) -> None:
    import openslide

    slides = [c.slide_path for c in load_cases(tiny_cohort) if c.slide_path]
    assert slides, "the tiny cohort should hold at least one slide"
    with openslide.OpenSlide(str(tiny_cohort / slides[0])) as s:
        assert s.level_count >= 3


def test_generation_is_deterministic(tmp_path: Path) -> None:
    cfg = CohortConfig(n_cases=12, seed=3, workers=1, slide_fraction=0.0)
    a = generate_cohort(tmp_path / "a", cfg)
    b = generate_cohort(
        tmp_path / "b", CohortConfig(n_cases=12, seed=3, workers=2, slide_fraction=0.0)
    )
    assert (a / "cases.jsonl").read_bytes() == (b / "cases.jsonl").read_bytes()
    case = json.loads((a / "cases.jsonl").read_text().splitlines()[0])
    if case["vcf_path"]:
        assert (a / case["vcf_path"]).read_bytes() == (b / case["vcf_path"]).read_bytes()
    c = generate_cohort(
        tmp_path / "c", CohortConfig(n_cases=12, seed=4, workers=1, slide_fraction=0.0)
    )
    assert (a / "cases.jsonl").read_bytes() != (c / "cases.jsonl").read_bytes()


def test_regenerating_replaces_the_cohort_atomically(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    generate_cohort(out, CohortConfig(n_cases=4, seed=1, workers=1, slide_fraction=0.0))
    generate_cohort(out, CohortConfig(n_cases=6, seed=1, workers=1, slide_fraction=0.0))
    assert len(load_cases(out)) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["cohort"], "no temp folders left behind"


def test_splits_are_stratified_and_cover_the_rare_class() -> None:
    types = ["SARC"] * 20 + ["BRCA"] * 200
    splits = assign_splits(types, CohortConfig(n_cases=220))
    sarc = [s for t, s in zip(types, splits, strict=True) if t == "SARC"]
    assert sarc.count("test") == 4 and sarc.count("val") == 2 and sarc.count("train") == 14


def test_stats_count_what_is_there(tiny_cohort: Path) -> None:
    cases = load_cases(tiny_cohort)
    stats = cohort_stats(cases)
    assert stats["n_cases"] == len(cases) == sum(stats["by_type"].values())
    assert sum(stats["by_split"].values()) == len(cases)
    assert stats["notes_by_language"] == {lang: len(cases) * len(NOTE_KINDS) for lang in LANGUAGES}
    assert stats["by_modality"]["note"] == len(cases)
    assert stats["by_modality"]["slide"] == sum(1 for c in cases if c.tile_paths)
    assert stats["by_modality"]["genomic"] == sum(1 for c in cases if c.vcf_path)


def test_missing_cohort_and_bad_config_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CohortError, match="cmkd cohort generate"):
        load_cases(tmp_path)
    with pytest.raises(ConfigError, match="unknown"):
        CohortConfig.from_dict({"n_cases": 3, "nope": 1})
