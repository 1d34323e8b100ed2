"""The text models every service shares: input checks, the query language, the production
student (reloaded after a promotion) and the teacher's English text branch, and the
classification of one text with its entities and abstention.

Imports nothing heavy at import time; models load on first use.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from core.data.schema import CANCER_TYPES, DRIVER_GENES, LANGUAGES
from core.errors import InputError
from core.eval.calibration import abstention_rule
from core.eval.metrics import CLASSIFY_ABSTENTION
from workbench.commands.train import STUDENT_RUN
from workbench.registry import production_version
from workbench.workspace import Workspace


def checked_text(source: str, text: str) -> str:
    if not text.strip():
        raise InputError(f"{source}: empty text")
    if "\x00" in text or not any(ch.isalpha() for ch in text):
        raise InputError(f"{source}: no words to read (only digits, punctuation or symbols)")
    return text


def text_language(text: str, lang: str | None, lexicon, student_languages=()) -> str:
    """`lang` when it is a built-in language or one of `student_languages` (a student trained
    on a language pack); else the detected language (built-in only), English by default."""
    from core.data.langid import detect_language

    if lang:
        supported = (*LANGUAGES, *(x for x in student_languages if x not in LANGUAGES))
        if lang not in supported:
            raise InputError(f"unsupported language {lang!r}; supported: {', '.join(supported)}")
        return lang
    return detect_language(text, lexicon) or "en"


def classify_text(text: str, lang: str, student, lexicon, genes: bool = False) -> dict[str, Any]:
    """The classify result of one text (see the module docstring). The probabilities are the
    student's calibrated ones (its `predict` returns temperature-scaled logits) and it
    abstains below the calibrated threshold recorded with it (CLASSIFY_ABSTENTION's fixed
    one for students distilled before calibration). With `genes`, also
    "altered_genes": the driver genes the student's gene head predicts altered (probability at
    or above its threshold, most probable first), None when the student has no gene head."""
    import torch

    if genes:
        _, logits, gene_probs = student.predict_with_genes([text], lang)
    else:
        _, logits = student.predict([text], lang)
    probs = torch.softmax(logits[0], dim=-1).tolist()
    best = max(range(len(probs)), key=probs.__getitem__)
    entities = [
        {"concept_id": m.concept_id, "start": m.start, "end": m.end, "text": m.text,
         "category": lexicon.concept(m.concept_id).category,
         "term": lexicon.concept(m.concept_id).preferred(lang)}
        for m in lexicon.match(text, lang)
    ]  # fmt: skip
    rule = abstention_rule(getattr(student, "config", {}), CLASSIFY_ABSTENTION)
    reason = rule.reason(probs[best], (e["category"] for e in entities))
    result = {
        "lang": lang,
        "label": CANCER_TYPES[best],
        "probabilities": dict(zip(CANCER_TYPES, (round(p, 4) for p in probs), strict=True)),
        "abstained": bool(reason),
        "abstain_reason": reason,
        "entities": entities,
    }
    if genes:
        result["altered_genes"] = _altered_genes(gene_probs, student.gene_threshold)
    return result


def _altered_genes(gene_probs, threshold: float | None) -> list[dict[str, Any]] | None:
    """[{"gene", "probability"}] of the genes at or above `threshold`, most probable first;
    gene_probs (1, len(DRIVER_GENES)) or None (no gene head) -> None."""
    if gene_probs is None or threshold is None:
        return None
    found = [(p, g) for g, p in zip(DRIVER_GENES, gene_probs[0].tolist(), strict=True)]
    return [
        {"gene": g, "probability": round(p, 4)}
        for p, g in sorted(found, reverse=True)
        if p >= threshold
    ]


def production_student(ws: Workspace):
    """The production student of `ws`, loaded once per production version: a promotion or
    rollback (models/student pointing at another version) loads the new one; checking costs
    one readlink."""
    run = ws.models_dir / STUDENT_RUN
    if not (run / "config.json").exists():
        raise InputError(f"no student in {run}: distil one with `cmkd distill`")
    return _load_student(run.absolute(), production_version(ws))


@lru_cache(maxsize=2)  # the current production and the one before it
def _load_student(run: Path, version: str | None):
    """`version` only keys the cache."""
    from core.train.distill import load_distilled

    return load_distilled(run)


def teacher_text_encoder(run: Path):
    """English text -> the teacher's shared space: frozen MiniLM and the text's facts, then
    the trained text head."""
    import torch

    from core.models.text import TeacherTextEncoder
    from core.train.teacher import load_teacher

    if not (run / "config.json").exists():
        raise InputError(f"no teacher in {run}: train one with `cmkd train-teacher`")
    teacher, _ = load_teacher(run)
    minilm = TeacherTextEncoder()

    def encode(text: str) -> torch.Tensor:
        with torch.inference_mode():
            return teacher.eval().embed_english(minilm, [text])

    return encode
