"""How much the student's encoder carries on its own: its accuracy and recall@10 with its note
facts read as usual, and with them hidden (as for a note whose terms the lexicon lacks).

    .venv/bin/python benchmarks/facts_hidden.py --workspace /tmp/wsg [--limit 200]

Same held-out test notes, galleries and recall@10 as `cmkd evaluate` (`--limit` test cases).
Prints one line per language: (accuracy, recall@10) with facts and with facts hidden.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from core.data.cohort_io import load_cases
from core.data.lexicon import default_lexicon
from core.data.schema import LANGUAGES
from core.eval import evaluate as ev
from core.train.distill import embed_texts, load_distilled, reserved_template_ids


def scores(student, notes, shared, lang: str, hide_facts: bool) -> tuple[float, float]:
    """(accuracy, recall@10) of the student on `notes` in `lang`."""

    def batcher(texts, langs):
        batch = student.batcher(texts, langs)
        if hide_facts:
            batch["note_facts"] = torch.zeros_like(batch["note_facts"])
        return batch

    device = torch.device("cpu")
    z, logits, _ = embed_texts(student.model, batcher, notes.texts[lang], lang, device)
    accuracy = float((logits.argmax(1) == notes.truth).float().mean())
    return accuracy, ev.embedding_metrics(z, notes, shared, 10)["recall_at_10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True, help="cohort + models/")
    parser.add_argument("--limit", type=int, default=200, help="test cases (0: all)")
    args = parser.parse_args()
    ws = args.workspace
    teacher = ev._load_teacher_side(ws / "models" / "teacher")
    student = load_distilled(ws / "models" / "student")
    if student.model.facts is None:
        raise SystemExit(f"{ws}/models/student reads no facts: nothing to hide")
    cases = load_cases(ws / "cohort")
    langs = list(LANGUAGES)
    notes = ev.select_test_notes(cases, teacher, langs, reserved_template_ids(langs), args.limit, 0)
    rows = sorted({int(r) for r in notes.rows})
    probe = ev.fit_probe(cases, teacher, ev.ProbeConfig())
    shared = ev._Shared(teacher, ev._anchor_galleries(teacher, rows), probe, default_lexicon())
    print(f"{notes.n_cases} test cases, {len(notes.truth)} notes per language")
    print("lang  with facts (acc, R@10)  facts hidden (acc, R@10)")
    for lang in langs:
        shown = scores(student, notes, shared, lang, hide_facts=False)
        hidden = scores(student, notes, shared, lang, hide_facts=True)
        print(f"{lang:4}  {shown[0]:.3f}, {shown[1]:.3f}          {hidden[0]:.3f}, {hidden[1]:.3f}")


if __name__ == "__main__":
    main()
