"""`cmkd search TEXT --lang L [-k N] [--modality note|slide|genomic|all] [--cancer-type T]
[--stage S] [--like CASE_ID] [--json]`: tumour-board search from the command line.

`TEXT` may be `-`: one query per line of standard input, one JSON object (or text block) per
line out; a bad line gives `{"error": ...}` for that line, the others are still answered, and
the exit code is then 2. Searches are audited but not queued for review (the CLI acts as a
local oncologist; reviews happen in the workbench).
"""

from __future__ import annotations

import argparse
import json

from core.data.schema import CANCER_TYPES, LANGUAGES, MODALITIES, STAGES
from core.errors import InputError
from workbench.commands.classify import input_texts
from workbench.session import cli_user
from workbench.workspace import Workspace

EXIT_OK, EXIT_INVALID = 0, 2
CLI_ROLE = "oncologist"  # may search, may not administer


def _print_text(result) -> None:  # noqa: ANN001 - a SearchResult
    head = f"query {result.query_id}"
    if result.like_case:
        head += f": more like {result.like_case}"
    else:
        head += f" ({result.lang}): predicted {result.predicted_type} {result.type_probability:.2f}"
    if result.abstained:
        head += f"  UNSURE: {result.abstain_reason}"
    print(head)
    for notice in result.notices:
        print(f"  note: {notice.message}")
    for modality, hits in result.groups.items():
        print(f"  {modality}:")
        for h in hits:
            shared = ", ".join(e.term for e in h.shared)
            print(f"    {h.rank:>2}. {h.case_id} {h.cancer_type:<5} {h.subtype:<16} {h.stage:<3}"
                  f" score {h.score:.3f} (cos {h.similarity:.3f}) {shared}")  # fmt: skip


def cmd_search(args: argparse.Namespace) -> int:
    from workbench.search_service import SearchService

    modalities = () if args.modality == "all" else (args.modality,)
    options = {"k": args.k, "modalities": modalities, "cancer_types": tuple(args.cancer_type),
               "stages": tuple(args.stage), "record": False}  # fmt: skip
    user = cli_user(CLI_ROLE)
    service = SearchService(Workspace.from_env())
    if args.like:
        result = service.more_like_this(user, args.like, **options)
        if args.json:
            print(json.dumps(result.to_dict(), ensure_ascii=False))
        else:
            _print_text(result)
        return EXIT_OK
    if args.text is None:
        raise InputError("give a query (or - for one per line of stdin), or --like CASE_ID")
    failed = False
    for source, text in input_texts(args.text):
        try:
            result = service.search(user, text, args.lang, **options)
        except InputError as e:
            if args.text != "-":
                raise
            failed = True
            message = f"{source}: {e}"
            print(json.dumps({"error": message}) if args.json else f"error: {message}", flush=True)
            continue
        if args.json:
            print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
        else:
            _print_text(result)
    return EXIT_INVALID if failed else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="tumour-board search over slides, genomics and notes")
    p.add_argument("text", nargs="?", help="the query, or - to read one query per line of stdin")
    p.add_argument("--lang", help=f"one of {', '.join(LANGUAGES)} (detected when absent)")
    p.add_argument("-k", type=int, default=10, help="results per modality (default 10)")
    p.add_argument("--modality", choices=(*MODALITIES, "all"), default="all")
    p.add_argument("--cancer-type", action="append", default=[], choices=CANCER_TYPES,
                   help="only cases of this type (repeatable)")  # fmt: skip
    p.add_argument("--stage", action="append", default=[], choices=STAGES,
                   help="only cases of this stage (repeatable)")  # fmt: skip
    p.add_argument("--like", metavar="CASE_ID", help="more like this case instead of a query")
    p.add_argument("--json", action="store_true", help="one JSON object per query")
    p.set_defaults(func=cmd_search)
