"""The synthetic cohort: generation, storage and statistics.

A cohort folder holds `cases.jsonl` (one `schema.Case` per line), `cohort.json` (the config
that made it), `reference/` (synthetic FASTA), `tiles/`, `vcf/` and `slides/`. Generation
writes into a temporary sibling folder and renames it at the end, so a crash never leaves a
half-written cohort behind.

Every case draws from its own generator seeded by (seed, case index), so the output does not
depend on the number of worker processes or their scheduling.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.data import genomics, notes, oncology, pathology
from core.data.cohort_io import CASES_FILE, COHORT_META, IMPORTED_FILE, cohort_stats, load_cases
from core.data.lexicon import default_lexicon
from core.data.schema import CANCER_TYPES, Case
from core.errors import ConfigError
from core.io import config_from_dict

# The cohort's reading side lives in cohort_io (light imports); it is part of this API too.
__all__ = [
    "CASES_FILE", "IMPORTED_FILE", "CohortConfig", "assign_splits", "cohort_stats",
    "generate_cohort", "load_cases",
]  # fmt: skip


# Sites a stage IV tumour commonly spreads to; notes name one or two of them.
METASTATIC_SITES = (
    "SITE:LIVER", "SITE:BONE", "SITE:BRAIN", "SITE:LUNG", "SITE:LYMPH_NODE",
    "SITE:PLEURA", "SITE:PERITONEUM", "SITE:ADRENAL",
)  # fmt: skip


@dataclass(frozen=True)
class CohortConfig:
    n_cases: int = 3000  # the default demo cohort
    seed: int = 0  # everything is a function of this seed
    tiles_per_case: int = 4  # H&E tiles rendered per case
    tile_size: int = 128  # tile edge in pixels
    slide_fraction: float = 0.01  # share of cases that also get a pyramidal TIFF slide
    slide_width: int = 2048  # whole-slide image size (pixels at level 0)
    slide_height: int = 1536
    val_fraction: float = 0.1  # split by case, stratified by cancer type
    test_fraction: float = 0.2
    label_noise: float = 0.03  # share of training cases whose recorded label is wrong
    missing_slide: float = 0.05  # share of cases without tiles (real cases often lack one)
    missing_genomic: float = 0.05  # share of cases without a VCF
    annotation_fraction: float = 0.1  # cases whose VCF drivers carry German/Chinese free text
    distractor_prob: float = 0.15  # notes mention an unrelated prior cancer
    workers: int = 0  # worker processes; 0 = one per CPU core

    def __post_init__(self) -> None:
        if self.n_cases < 1:
            raise ConfigError("n_cases must be at least 1")
        if not 0 <= self.val_fraction + self.test_fraction < 1:
            raise ConfigError("val_fraction + test_fraction must be in [0, 1)")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CohortConfig:
        return config_from_dict(cls, d)


def assign_splits(cancer_types: list[str], cfg: CohortConfig) -> list[str]:
    """Split by case, stratified by cancer type so that the rare class reaches every split."""
    rng = np.random.default_rng([cfg.seed, 0])
    splits = [""] * len(cancer_types)
    by_type: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(cancer_types):
        by_type[t].append(i)
    for t in sorted(by_type):
        idx = rng.permutation(by_type[t])
        n_test = round(len(idx) * cfg.test_fraction)
        n_val = round(len(idx) * cfg.val_fraction)
        for j, i in enumerate(idx):
            splits[i] = "test" if j < n_test else "val" if j < n_test + n_val else "train"
    return splits


def _note_facts(
    profile: oncology.ClinicalProfile, histology: tuple[str, ...], cfg: CohortConfig, rng
) -> notes.NoteFacts:
    altered = {d.gene for d in profile.drivers}
    tested = [g for g in oncology.TESTED_GENES.get(profile.cancer_type, ()) if g not in altered]
    n_neg = int(rng.integers(0, min(3, len(tested)) + 1)) if tested else 0
    negative = tuple(sorted(rng.choice(tested, size=n_neg, replace=False))) if n_neg else ()
    distractor = ""
    if rng.random() < cfg.distractor_prob:
        others = [t for t in CANCER_TYPES if t != profile.cancer_type]
        distractor = str(rng.choice(others))
    mets: tuple[str, ...] = ()
    if profile.stage == "IV":
        mets = tuple(rng.choice(METASTATIC_SITES, size=int(rng.integers(1, 3)), replace=False))
    return notes.NoteFacts(
        cancer_type=profile.cancer_type,
        subtype=profile.subtype,
        stage=profile.stage,
        grade=profile.grade,
        age=profile.age,
        sex=profile.sex,
        # Fusions carry no protein change; notes name the partner instead ("EML4::ALK").
        drivers=tuple(
            (d.gene, d.kind, d.protein_change or (f"{d.partner}::{d.gene}" if d.partner else ""))
            for d in profile.drivers
        ),
        negative_genes=negative,
        biomarkers=profile.biomarkers,
        distractor_type=distractor,
        histology=histology,
        metastatic_sites=mets,
    )


@dataclass(frozen=True)
class _CaseJob:
    index: int
    cancer_type: str
    split: str


def _generate_case(job: _CaseJob, cfg: CohortConfig, out: Path, ref: genomics.Reference) -> Case:
    rng = np.random.default_rng([cfg.seed, 1, job.index])
    case_id = f"SYN-{job.index:05d}"
    profile = oncology.sample_profile(job.cancer_type, rng)

    label = profile.cancer_type
    if job.split == "train" and rng.random() < cfg.label_noise:
        label = str(rng.choice([t for t in CANCER_TYPES if t != profile.cancer_type]))

    tile_paths: list[str] = []
    histology: tuple[str, ...] = ()
    if rng.random() >= cfg.missing_slide:
        histology = pathology.sample_histology(profile.subtype, profile.grade, rng)
        tiles = pathology.render_tiles(
            profile.cancer_type, profile.subtype, profile.grade, rng,
            cfg.tiles_per_case, cfg.tile_size, histology,
        )  # fmt: skip
        for k, tile in enumerate(tiles):
            rel = f"tiles/{case_id}_{k}.jpg"
            pathology.save_tile(out / rel, tile)
            tile_paths.append(rel)

    slide_path = ""
    if tile_paths and rng.random() < cfg.slide_fraction:
        image = pathology.render_slide(
            profile.cancer_type, profile.subtype, profile.grade, rng,
            cfg.slide_width, cfg.slide_height, pen_marks=bool(rng.random() < 0.3),
            histology=histology,
        )  # fmt: skip
        slide_path = f"slides/{case_id}.tiff"
        pathology.write_pyramidal_tiff(out / slide_path, image, mpp=pathology.NOMINAL_MPP)

    variants = genomics.draw_variants(profile, ref, rng)
    if rng.random() < cfg.annotation_fraction:
        variants = genomics.annotate_drivers(variants, rng)
    vcf_path = ""
    if rng.random() >= cfg.missing_genomic:
        vcf_path = f"vcf/{case_id}.vcf.gz"
        genomics.write_vcf(out / vcf_path, variants, ref, sample=f"{case_id}-T")
    else:
        variants = ()

    template_split = "test" if job.split == "test" else "train"
    facts = _note_facts(profile, histology, cfg, rng)
    case_notes = notes.render_case_notes(facts, template_split, rng, default_lexicon())

    return Case(
        case_id=case_id,
        cancer_type=profile.cancer_type,
        label=label,
        subtype=profile.subtype,
        stage=profile.stage,
        grade=profile.grade,
        age=profile.age,
        sex=profile.sex,
        split=job.split,
        drivers=tuple(sorted({d.gene for d in profile.drivers})),
        biomarkers=profile.biomarkers,
        variants=variants,
        notes=case_notes,
        tile_paths=tuple(tile_paths),
        histology=histology,
        slide_path=slide_path,
        vcf_path=vcf_path,
    )


def _generate_chunk(args: tuple[list[_CaseJob], CohortConfig, str]) -> list[dict[str, Any]]:
    jobs, cfg, out = args
    out_path = Path(out)
    ref = genomics.Reference.load(out_path / "reference")
    return [_generate_case(job, cfg, out_path, ref).to_dict() for job in jobs]


def _chunks(jobs: list[_CaseJob], size: int) -> Iterator[list[_CaseJob]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


def generate_cohort(
    out_dir: Path,
    cfg: CohortConfig = CohortConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Generate a cohort into `out_dir` (replaced atomically). Returns `out_dir`.

    `progress(done, total)` is called as cases complete.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        for sub in ("tiles", "vcf", "slides"):
            (tmp / sub).mkdir()
        genomics.build_reference(tmp / "reference", seed=cfg.seed)

        type_rng = np.random.default_rng([cfg.seed, 2])
        types = [oncology.sample_cancer_type(type_rng) for _ in range(cfg.n_cases)]
        splits = assign_splits(types, cfg)
        jobs = [_CaseJob(i, t, s) for i, (t, s) in enumerate(zip(types, splits, strict=True))]

        workers = cfg.workers or os.cpu_count() or 1
        chunk = max(1, min(50, cfg.n_cases // (workers * 4) or 1))
        tasks = [(c, cfg, str(tmp)) for c in _chunks(jobs, chunk)]
        done = 0
        with (tmp / CASES_FILE).open("w", encoding="utf-8") as f:
            for rows in _map(tasks, workers):
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                done += len(rows)
                if progress:
                    progress(done, cfg.n_cases)
        meta = {"format": 1, "config": asdict(cfg), "n_cases": cfg.n_cases}
        (tmp / COHORT_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

        old = out_dir.with_name(f".{out_dir.name}.old")
        if out_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _map(tasks: list, workers: int) -> Iterable[list[dict[str, Any]]]:
    """Run chunks in order, in worker processes when there is more than one core to use."""
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_generate_chunk, tasks)
        return
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        yield from pool.map(_generate_chunk, tasks)
