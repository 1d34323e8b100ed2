"""`cmkd language add|list`: new student languages as language packs (a phrase bank and a
lexicon column, core/data/language_packs.py) in `<workspace>/languages/`. A retraining run
(`cmkd distill` or the retraining page) then learns the language.

The CLI acts as an administrator named after the operating-system user, as `cmkd runs` does;
installations are audited as on the page.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.data.language_packs import LanguagePack
from core.errors import InputError
from workbench.jobs import JobService
from workbench.session import cli_user
from workbench.workspace import Workspace


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _summary(pack: LanguagePack) -> dict[str, Any]:
    return {
        "code": pack.code, "name": pack.name, "script": pack.script,
        "phrases": len(pack.phrases), "train_phrases": len(pack.split("train")),
        "heldout_phrases": len(pack.split("heldout")), "lexicon_concepts": len(pack.terms),
    }  # fmt: skip


def _line(s: dict[str, Any]) -> str:
    return (
        f"{s['code']}  {s['name']} ({s['script']}): {s['phrases']} phrases "
        f"({s['train_phrases']} train, {s['heldout_phrases']} held out), "
        f"{s['lexicon_concepts']} lexicon concepts"
    )


def cmd_add(args: argparse.Namespace) -> int:
    service = JobService(Workspace.from_env())
    pack = service.add_language(
        cli_user("admin"), args.code, _read(args.phrases), _read(args.lexicon), args.name or ""
    )
    summary = _summary(pack)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(f"installed {_line(summary)}")
        print(f"train it in a retraining job that lists {pack.code} (retraining page), or with "
              f"`cmkd distill --languages pt,...,{pack.code}`")  # fmt: skip
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    packs = JobService(Workspace.from_env()).languages(cli_user("admin"))
    summaries = [_summary(p) for p in packs.values()]
    if args.json:
        print(json.dumps(summaries, ensure_ascii=False, indent=2))
        return 0
    if not summaries:
        print("no language packs installed (cmkd language add CODE --phrases P --lexicon L)")
    for s in summaries:
        print(_line(s))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    lang = sub.add_parser("language", help="add a new student language from a language pack")
    lsub = lang.add_subparsers(dest="language_command", required=True)
    add = lsub.add_parser("add", help="validate and install a language pack")
    add.add_argument("code", help="ISO 639-1 code of the new language, e.g. it")
    add.add_argument(
        "--phrases", required=True, help="phrases.tsv: en<TAB>CODE, then sentence pairs"
    )
    add.add_argument(
        "--lexicon", required=True, help="lexicon.tsv: concept_id<TAB>CODE, then id<TAB>a|b"
    )
    add.add_argument("--name", help="the language's name in itself, e.g. Italiano")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_add)
    ls = lsub.add_parser("list", help="the installed language packs")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
