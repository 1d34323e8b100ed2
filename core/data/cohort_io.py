"""Reading a cohort folder and counting what is in it.

Kept apart from the generator so that the UI can show a cohort's status without importing
pysam, Pillow or the renderers.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.data.schema import CANCER_TYPES, LANGUAGES, MODALITIES, SPLITS, STAGES, Case
from core.errors import CohortError

CASES_FILE = "cases.jsonl"  # the generated cases, one JSON object per line
IMPORTED_FILE = "imported.jsonl"  # cases imported from manifests
COHORT_META = "cohort.json"  # the config that generated the cohort


def load_cases(cohort_dir: Path) -> tuple[Case, ...]:
    """Every case of a cohort: the generated ones, then the imported ones."""
    cohort_dir = Path(cohort_dir)
    main = cohort_dir / CASES_FILE
    if not main.exists():
        raise CohortError(f"{main}: no cohort here; run `cmkd cohort generate` or `cmkd demo`")
    cases: list[Case] = []
    for path in (main, cohort_dir / IMPORTED_FILE):
        if not path.exists():
            continue
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    cases.append(Case.from_dict(json.loads(line)))
                except (ValueError, TypeError) as e:
                    raise CohortError(f"{path}: line {lineno}: {e}") from e
    return tuple(cases)


def cohort_stats(cases: Iterable[Case]) -> dict[str, Any]:
    """Counts of a cohort by type, split, language, modality and stage (for `cmkd cohort stats`
    and the home page)."""
    by_type: Counter[str] = Counter()
    by_split: Counter[str] = Counter()
    by_stage: Counter[str] = Counter()
    by_modality: Counter[str] = Counter()
    notes_by_language: Counter[str] = Counter()
    by_type_split: dict[str, Counter[str]] = defaultdict(Counter)
    by_type_modality: dict[str, Counter[str]] = defaultdict(Counter)
    n = 0
    for case in cases:
        n += 1
        by_type[case.cancer_type] += 1
        by_split[case.split] += 1
        by_stage[case.stage or "unknown"] += 1
        by_type_split[case.cancer_type][case.split] += 1
        for m in case.modalities:
            by_modality[m] += 1
            by_type_modality[case.cancer_type][m] += 1
        notes_by_language.update(note.lang for note in case.notes)

    def ordered(counter: Counter[str], order: tuple[str, ...]) -> dict[str, int]:
        keys = [k for k in order if k in counter] + sorted(k for k in counter if k not in order)
        return {k: counter[k] for k in keys}

    return {
        "n_cases": n,
        "by_type": ordered(by_type, CANCER_TYPES),
        "by_split": ordered(by_split, SPLITS),
        "by_type_split": {
            t: ordered(by_type_split[t], SPLITS) for t in ordered(by_type, CANCER_TYPES)
        },
        "notes_by_language": ordered(notes_by_language, LANGUAGES),
        "by_modality": ordered(by_modality, MODALITIES),
        "by_type_modality": {
            t: ordered(by_type_modality[t], MODALITIES) for t in ordered(by_type, CANCER_TYPES)
        },
        "by_stage": ordered(by_stage, STAGES),
    }
