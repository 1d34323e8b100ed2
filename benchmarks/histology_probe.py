"""What a teacher's slide embedding reads of the slides' histology, and what stating it buys.

    .venv/bin/python benchmarks/histology_probe.py --teacher WS/models/teacher --cohort WS/cohort

Prints (1) a logistic probe (train -> test cases with a slide) of the TIL level and of the
necrosis level from the teacher's slide embedding, beside the majority-class share, and (2)
per-note English recall@10 to the test slides, split by whether the note states histology
(the lexicon finds a TIL or necrosis finding in it). Reads the run's `embeddings.safetensors`;
the cohort must be the one the teacher was trained on (cohorts before histology: nothing to
probe).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from sklearn.linear_model import LogisticRegression

from core.data.cohort import load_cases
from core.data.lexicon import default_lexicon
from core.data.schema import MODALITIES, NECROSIS_LEVELS, NOTE_KINDS, TIL_LEVELS


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", type=Path, required=True)
    p.add_argument("--cohort", type=Path, required=True)
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args()
    emb = load_file(str(args.teacher / "embeddings.safetensors"))
    cases = load_cases(args.cohort)
    if len(cases) != len(emb["slide"]):
        raise SystemExit(f"error: {args.cohort} is not the cohort {args.teacher} was trained on")
    has_slide = emb["present"][:, MODALITIES.index("slide")]
    usable = np.array([bool(c.histology) for c in cases]) & has_slide
    split = np.array([c.split for c in cases])
    train, test = usable & (split == "train"), usable & (split == "test")
    if not test.any():
        raise SystemExit("error: no test case has a slide with histology (an older cohort?)")
    report: dict[str, float] = {}
    for name, position, levels in (("til", 0, TIL_LEVELS), ("necrosis", 1, NECROSIS_LEVELS)):
        y = np.array([levels.index(c.histology[position]) if c.histology else -1 for c in cases])
        probe = LogisticRegression(max_iter=2000).fit(emb["slide"][train], y[train])
        report[f"{name}_probe_accuracy"] = round(probe.score(emb["slide"][test], y[test]), 3)
        report[f"{name}_majority_share"] = round(np.bincount(y[test]).max() / test.sum(), 3)

    lexicon, findings = default_lexicon(), {*TIL_LEVELS, *NECROSIS_LEVELS}
    rows = np.flatnonzero(test)
    gallery = _unit(emb["slide"][rows])  # (G, D)
    hits: dict[bool, list[bool]] = {True: [], False: []}
    for k, kind in enumerate(NOTE_KINDS):
        queries = _unit(emb["notes"][rows, k])  # (G, D): each test case's English note
        sims = queries @ gallery.T  # (G, G); the diagonal is each note's own slide
        ranks = (sims > np.diag(sims)[:, None]).sum(axis=1)
        for row, rank in zip(rows, ranks, strict=True):
            note = cases[row].note("en", kind)
            if note is None or not emb["note_present"][row, k]:
                continue
            states = bool({m.concept_id for m in lexicon.match(note.text, "en")} & findings)
            hits[states].append(bool(rank < args.k))
    for states, name in ((True, "stating"), (False, "not_stating")):
        report[f"notes_{name}_histology"] = len(hits[states])
        report[f"recall_at_{args.k}_notes_{name}_histology"] = round(
            float(np.mean(hits[states])), 3
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
