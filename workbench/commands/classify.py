"""`cmkd classify` and `cmkd embed`: the distilled student on free text, one text or one per
line of standard input (`-`), models loaded once.

classify: cancer type, probabilities, lexicon entities (character offsets into the input),
an abstention flag with its reason, and the driver genes the student's gene head predicts
altered with their probabilities ("altered_genes"; null for a student without a gene head).
embed: the L2-normalised vector in the teacher's shared space (the student for non-English
text, the teacher's text branch for English).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

from core.data.schema import LANGUAGES
from core.errors import InputError
from workbench.commands.train import TEACHER_RUN
from workbench.text_models import (
    checked_text,
    classify_text,
    production_student,
    teacher_text_encoder,
    text_language,
)
from workbench.workspace import Workspace


def input_texts(arg: str) -> Iterator[tuple[str, str]]:
    """(source, text) pairs: the argument itself, or each line of standard input."""
    if arg != "-":
        yield "argument", arg
        return
    try:
        for lineno, line in enumerate(sys.stdin, 1):
            yield f"stdin: line {lineno}", line.rstrip("\n")
    except UnicodeDecodeError as e:
        raise InputError(f"stdin: not UTF-8 text ({e.reason})") from e


def cmd_classify(args: argparse.Namespace) -> int:
    student = production_student(Workspace.from_env())
    lexicon = student.lexicon  # the shipped lexicon plus the columns of its language packs
    for source, raw in input_texts(args.text):
        text = checked_text(source, raw)
        lang = text_language(text, args.lang, lexicon, student.languages)
        result = classify_text(text, lang, student, lexicon, genes=True)
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            flag = f"  ABSTAINED: {result['abstain_reason']}" if result["abstained"] else ""
            p = result["probabilities"][result["label"]]
            print(f"{result['label']} ({p:.2f}, {result['lang']}){flag}")
            for e in result["entities"]:
                print(f"  {e['start']:>4}-{e['end']:<4} {e['concept_id']:<24} {e['text']}")
            if result["altered_genes"]:
                shown = ", ".join(f"{g['gene']} ({g['probability']:.2f})"
                                  for g in result["altered_genes"])  # fmt: skip
                print(f"  altered genes (predicted): {shown}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    import torch

    from core.data.lexicon import default_lexicon

    ws, lexicon = Workspace.from_env(), default_lexicon()
    student = teacher = None
    for source, raw in input_texts(args.text):
        text = checked_text(source, raw)
        # A language outside the built-in ones is valid when the student was trained on it.
        extra = () if not args.lang or args.lang in LANGUAGES else production_student(ws).languages
        lang = text_language(text, args.lang, lexicon, extra)
        encoder = args.encoder or ("teacher" if lang == "en" else "student")
        if encoder == "student":
            student = student or production_student(ws)
            vector, _ = student.predict([text], lang)
        else:
            teacher = teacher or teacher_text_encoder(ws.models_dir / TEACHER_RUN)
            vector = teacher(text)
        vector = torch.nn.functional.normalize(vector.float(), dim=-1)[0]
        out = {"lang": lang, "encoder": encoder, "vector": [round(v, 6) for v in vector.tolist()]}
        print(json.dumps(out) if args.json else " ".join(map(str, out["vector"])), flush=True)
    return 0


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
