"""`cmkd classify` and `cmkd embed`: the distilled student on free text, one text or one per
line of standard input (`-`), models loaded once.

classify: cancer type, probabilities, lexicon entities (character offsets into the input)
and an abstention flag with its reason. embed: the L2-normalised vector in the teacher's
shared space (the student for non-English text, the teacher's text branch for English).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.data.schema import CANCER_TYPES, LANGUAGES
from core.errors import InputError
from core.eval.metrics import CLASSIFY_ABSTENTION
from workbench.commands.train import STUDENT_RUN, TEACHER_RUN
from workbench.registry import production_version
from workbench.workspace import Workspace


def _texts(arg: str) -> Iterator[tuple[str, str]]:
    """(source, text) pairs: the argument itself, or each line of standard input."""
    if arg != "-":
        yield "argument", arg
        return
    try:
        for lineno, line in enumerate(sys.stdin, 1):
            yield f"stdin: line {lineno}", line.rstrip("\n")
    except UnicodeDecodeError as e:
        raise InputError(f"stdin: not UTF-8 text ({e.reason})") from e


def _checked(source: str, text: str) -> str:
    if not text.strip():
        raise InputError(f"{source}: empty text")
    if "\x00" in text or not any(ch.isalpha() for ch in text):
        raise InputError(f"{source}: no words to read (only digits, punctuation or symbols)")
    return text


def _language(text: str, lang: str | None, lexicon, student_languages=()) -> str:
    """`lang` when it is a built-in language or one of `student_languages` (a student trained
    on a language pack); else the detected language (built-in only), English by default."""
    from core.data.langid import detect_language

    if lang:
        supported = (*LANGUAGES, *(x for x in student_languages if x not in LANGUAGES))
        if lang not in supported:
            raise InputError(f"unsupported language {lang!r}; supported: {', '.join(supported)}")
        return lang
    return detect_language(text, lexicon) or "en"


def classify_text(text: str, lang: str, student, lexicon) -> dict[str, Any]:
    """The classify result of one text (see the module docstring)."""
    import torch

    _, logits = student.predict([text], lang)
    probs = torch.softmax(logits[0], dim=-1).tolist()
    best = max(range(len(probs)), key=probs.__getitem__)
    entities = [
        {"concept_id": m.concept_id, "start": m.start, "end": m.end, "text": m.text,
         "category": lexicon.concept(m.concept_id).category,
         "term": lexicon.concept(m.concept_id).preferred(lang)}
        for m in lexicon.match(text, lang)
    ]  # fmt: skip
    reason = CLASSIFY_ABSTENTION.reason(probs[best], (e["category"] for e in entities))
    return {
        "lang": lang,
        "label": CANCER_TYPES[best],
        "probabilities": dict(zip(CANCER_TYPES, (round(p, 4) for p in probs), strict=True)),
        "abstained": bool(reason),
        "abstain_reason": reason,
        "entities": entities,
    }


def _student(ws: Workspace):
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


def cmd_classify(args: argparse.Namespace) -> int:
    student = _student(Workspace.from_env())
    lexicon = student.lexicon  # the shipped lexicon plus the columns of its language packs
    for source, raw in _texts(args.text):
        text = _checked(source, raw)
        lang = _language(text, args.lang, lexicon, student.languages)
        result = classify_text(text, lang, student, lexicon)
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            flag = f"  ABSTAINED: {result['abstain_reason']}" if result["abstained"] else ""
            p = result["probabilities"][result["label"]]
            print(f"{result['label']} ({p:.2f}, {result['lang']}){flag}")
            for e in result["entities"]:
                print(f"  {e['start']:>4}-{e['end']:<4} {e['concept_id']:<24} {e['text']}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    import torch

    from core.data.lexicon import default_lexicon

    ws, lexicon = Workspace.from_env(), default_lexicon()
    student = teacher = None
    for source, raw in _texts(args.text):
        text = _checked(source, raw)
        # A language outside the built-in ones is valid when the student was trained on it.
        extra = () if not args.lang or args.lang in LANGUAGES else _student(ws).languages
        lang = _language(text, args.lang, lexicon, extra)
        encoder = args.encoder or ("teacher" if lang == "en" else "student")
        if encoder == "student":
            student = student or _student(ws)
            vector, _ = student.predict([text], lang)
        else:
            teacher = teacher or _teacher_text(ws.models_dir / TEACHER_RUN)
            vector = teacher(text)
        vector = torch.nn.functional.normalize(vector.float(), dim=-1)[0]
        out = {"lang": lang, "encoder": encoder, "vector": [round(v, 6) for v in vector.tolist()]}
        print(json.dumps(out) if args.json else " ".join(map(str, out["vector"])), flush=True)
    return 0


def _teacher_text(run: Path):
    """English text -> the teacher's shared space: frozen MiniLM, then the trained text head."""
    import torch

    from core.models.text import TeacherTextEncoder
    from core.train.teacher import load_teacher

    if not (run / "config.json").exists():
        raise InputError(f"no teacher in {run}: train one with `cmkd train-teacher`")
    teacher, _ = load_teacher(run)
    minilm = TeacherTextEncoder()

    def encode(text: str) -> torch.Tensor:
        with torch.inference_mode():
            return teacher.eval().embed_text(minilm.encode([text]))

    return encode


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("classify", help="cancer type, entities and abstention for a text")
    c.add_argument("text", help="the text, or - to read one text per line from stdin")
    c.add_argument("--lang", help="language code (detected when absent)")
    c.add_argument("--json", action="store_true", help="one JSON object per text")
    c.set_defaults(func=cmd_classify)
    e = sub.add_parser("embed", help="the text's vector in the teacher's shared space")
    e.add_argument("text", help="the text, or - to read one text per line from stdin")
    e.add_argument("--lang", help="language code (detected when absent)")
    e.add_argument("--encoder", choices=("student", "teacher"),
                   help="default: teacher for English, student otherwise")  # fmt: skip
    e.add_argument("--json", action="store_true", help="one JSON object per text")
    e.set_defaults(func=cmd_embed)
