"""`cmkd search` over the tiny real models: JSON lines from stdin, bad lines, --like, exits."""

from __future__ import annotations

import io
import json
from pathlib import Path

from workbench.cli import main


def test_stdin_json_lines_with_a_bad_line(built_workspace: Path, monkeypatch, capsys) -> None:
    lines = "Paciente com câncer de mama, HER2 positivo\n!!! 🙂\nस्तन कैंसर HER2 एम्प्लीफिकेशन\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["search", "-", "--json", "-k", "2"]) == 2  # answered every line, then 2
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 3
    first, bad, third = out
    assert (first["lang"], third["lang"]) == ("pt", "hi")
    assert "line 2" in bad["error"] and "no words" in bad["error"]
    for result in (first, third):
        assert result["results"] and len(result["results"]) <= 6  # k per modality
        for item in result["results"]:
            assert {"case_id", "modality", "score", "cancer_type"} <= set(item)


def test_like_and_filters(built_workspace: Path, capsys) -> None:
    case_id = json.loads((built_workspace / "cohort" / "cases.jsonl").open().readline())["case_id"]
    assert main(["search", "--like", case_id, "--modality", "slide", "-k", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["like_case"] == case_id
    assert result["results"] and {r["modality"] for r in result["results"]} == {"slide"}
    assert case_id not in {r["case_id"] for r in result["results"]}


def test_bad_argument_exits_2_with_one_error_line(built_workspace: Path, capsys) -> None:
    for argv in (["search", ""], ["search", "breast", "--lang", "tlh"], ["search"],
                 ["search", "--like", "NOPE"]):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err


def test_text_output_names_the_modalities(built_workspace: Path, capsys) -> None:
    assert main(["search", "Paciente com câncer de mama", "-k", "1"]) == 0
    out = capsys.readouterr().out
    assert "(pt)" in out and all(f"  {m}:" in out for m in ("slide", "genomic", "note"))
