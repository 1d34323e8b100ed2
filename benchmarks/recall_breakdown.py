"""Where a teacher's cross-modal recall@10 fails: what its slide embedding reads of the slides'
histology, and which notes miss their slide or genomic profile.

    .venv/bin/python benchmarks/recall_breakdown.py --teacher WS/models/teacher --cohort WS/cohort

Prints one JSON object: (1) a logistic probe (train -> test cases with a slide) of the TIL
level and of the necrosis level from the teacher's slide embedding, beside the majority-
class share; (2) per-note English recall@10 to the test slides, split by whether the note
states histology (the lexicon finds a TIL or necrosis finding in it), beside the ceiling of
a perfect reader of what each note states (type, and subtype, grade, TIL and necrosis levels
where the lexicon finds them), which ranks the slides that agree first; (3) per-note English
recall@10 to the test genomic profiles by the case's number of driver variants, beside the
ceiling of a perfect reader that tells profiles apart by driver variants and TMB class; and
the share of cases whose nearest genomic profile has the same driver set. Reads the run's
`embeddings.safetensors`; the cohort must be the one the teacher was trained on (cohorts
before histology: no histology figures).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from sklearn.linear_model import LogisticRegression

from core.data.cohort import load_cases
from core.data.lexicon import default_lexicon
from core.data.schema import MODALITIES, NECROSIS_LEVELS, NOTE_KINDS, TIL_LEVELS
from core.eval.evaluate import genomic_group, slide_agrees_with_note, statement_ceiling


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _ranks(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Rank (0 = first) of each query's own gallery row (row i for query i)."""
    sims = _unit(queries) @ _unit(gallery).T  # (G, G)
    return (sims > np.diag(sims)[:, None]).sum(axis=1)


def _genomic_breakdown(emb: dict[str, np.ndarray], cases: list, k: int) -> dict[str, float]:
    has = emb["present"][:, MODALITIES.index("genomic")]
    rows = np.array([i for i, c in enumerate(cases) if c.split == "test" and has[i]])
    groups = [genomic_group(cases[r]) for r in rows]
    size = Counter(groups)
    driver_sets = [drivers for drivers, _tmb in groups]
    found: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    for kind in range(len(NOTE_KINDS)):
        present = emb["note_present"][rows, kind]
        ranks = _ranks(emb["notes"][rows, kind], emb["genomic"][rows])
        for j in np.flatnonzero(present):
            n = min(len(driver_sets[j]), 2)
            found[("no", "one", "two_or_more")[n]].append(
                (bool(ranks[j] < k), min(1.0, k / size[groups[j]]))
            )
    report: dict[str, float] = {}
    for name, pairs in found.items():
        hits, ceiling = np.array(pairs).T
        report[f"genomic_notes_{name}_driver"] = len(pairs)
        report[f"genomic_recall_at_{k}_{name}_driver"] = round(float(hits.mean()), 3)
        report[f"genomic_ceiling_{name}_driver"] = round(float(ceiling.mean()), 3)
    sims = _unit(emb["genomic"][rows]) @ _unit(emb["genomic"][rows]).T
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.argmax(axis=1)
    report["genomic_nearest_shares_driver_set"] = round(
        float(np.mean([driver_sets[i] == driver_sets[j] for i, j in enumerate(nearest)])), 3
    )
    return report


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
    report = _genomic_breakdown(emb, cases, args.k)
    if not test.any():  # a cohort from before histology: the genomic part only
        print(json.dumps(report))
        return
    for name, position, levels in (("til", 0, TIL_LEVELS), ("necrosis", 1, NECROSIS_LEVELS)):
        y = np.array([levels.index(c.histology[position]) if c.histology else -1 for c in cases])
        probe = LogisticRegression(max_iter=2000).fit(emb["slide"][train], y[train])
        report[f"{name}_probe_accuracy"] = round(probe.score(emb["slide"][test], y[test]), 3)
        report[f"{name}_majority_share"] = round(np.bincount(y[test]).max() / test.sum(), 3)

    lexicon, findings = default_lexicon(), {*TIL_LEVELS, *NECROSIS_LEVELS}
    rows = np.flatnonzero(test)
    hits: dict[bool, list[bool]] = {True: [], False: []}
    read: dict[bool, tuple[list, list[str]]] = {True: ([], []), False: ([], [])}  # case, text
    for k, kind in enumerate(NOTE_KINDS):
        ranks = _ranks(emb["notes"][rows, k], emb["slide"][rows])  # each case's English note
        for row, rank in zip(rows, ranks, strict=True):
            note = cases[row].note("en", kind)
            if note is None or not emb["note_present"][row, k]:
                continue
            states = bool({m.concept_id for m in lexicon.match(note.text, "en")} & findings)
            hits[states].append(bool(rank < args.k))
            read[states][0].append(cases[row])
            read[states][1].append(note.text)
    gallery = [cases[r] for r in rows]
    ceilings = {
        states: statement_ceiling(targets, texts, "en", gallery, slide_agrees_with_note, args.k)
        for states, (targets, texts) in read.items()
    }
    for states, name in ((True, "stating"), (False, "not_stating")):
        report[f"notes_{name}_histology"] = len(hits[states])
        report[f"recall_at_{args.k}_notes_{name}_histology"] = round(
            float(np.mean(hits[states])), 3
        )
        report[f"ceiling_notes_{name}_histology"] = round(ceilings[states], 3)
    every = sum(ceilings[s] * len(hits[s]) for s in hits) / sum(len(h) for h in hits.values())
    report[f"slide_ceiling_by_statement_at_{args.k}"] = round(every, 3)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
