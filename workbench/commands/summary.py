"""`cmkd summary CASE --lang L [--format md|pdf|txt] [--out PATH] [--draft]`.

What needs an approval: printing text or Markdown to the terminal does not (an unapproved
summary is printed between "DRAFT — not approved for patient use" lines, so staff can read
it); writing a file does, in every format, because a file is what gets handed to a patient.
`--draft` writes the file anyway, marked as a draft on every page. PDF is binary, so it needs
`--out`. The command acts as a local operator with the nurse role: it may export approved
summaries but can never approve one (approval happens on the Summary page).

Exit codes: 0 success; 2 unknown case, bad arguments or a missing approval; 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.data.schema import LANGUAGES
from core.errors import InputError
from core.io import write_atomic
from workbench.errors import PermissionDenied
from workbench.session import cli_user
from workbench.summary_service import EXPORT_FORMATS, SummaryService
from workbench.workspace import Workspace

EXIT_OK, EXIT_INVALID = 0, 2
CLI_ROLE = "nurse"  # may write and export summaries, may not approve them


def cmd_summary(args: argparse.Namespace) -> int:
    fmt = args.format or (Path(args.out).suffix.lstrip(".") if args.out else "txt")
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown format {fmt!r}; use --format {'|'.join(EXPORT_FORMATS)}")
    if fmt == "pdf" and not args.out:
        raise InputError("a PDF is binary: pass --out PATH")
    service = SummaryService.from_workspace(Workspace.from_env())
    user = cli_user(CLI_ROLE)
    draft = service.draft_for_case(user, args.case, args.lang)
    try:
        if args.out:
            data = service.export(user, draft, fmt, as_draft=args.draft)
        else:  # reading on the terminal: an unapproved summary is shown marked as a draft
            data = service.export(user, draft, fmt, as_draft=True)
    except PermissionDenied as e:
        print(f"error: {e}; pass --draft to write a copy marked as a draft", file=sys.stderr)
        return EXIT_INVALID
    if args.out:
        write_atomic(Path(args.out), data, mode=0o644)  # a document to hand out
    if args.json:
        print(json.dumps({
            "case": draft.case_key, "lang": draft.lang, "format": fmt,
            "approved": draft.approved, "summary_hash": draft.summary_hash,
            "out": args.out or None,
            **({} if args.out else {"text": data.decode("utf-8")}),
        }, ensure_ascii=False))  # fmt: skip
    elif args.out:
        state = "approved" if draft.approved else "DRAFT, not approved"
        print(f"{args.out}: {draft.lang} summary of {draft.case_key} ({state})", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("utf-8"))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "summary",
        help="a plain-language patient summary of a case",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("case", help="case id, e.g. SYN-00012")
    p.add_argument("--lang", required=True, choices=LANGUAGES, help="the patient's language")
    p.add_argument("--format", choices=EXPORT_FORMATS, help="default: from --out, else txt")
    p.add_argument("--out", help="write to this file (needs an approval, or --draft)")
    p.add_argument("--draft", action="store_true", help="write an unapproved copy marked DRAFT")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    p.set_defaults(func=cmd_summary)
