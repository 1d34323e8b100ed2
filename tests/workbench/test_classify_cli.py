"""`cmkd classify` / `cmkd embed` over a tiny real teacher and a tiny real student."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest

from workbench.cli import main


@pytest.fixture(scope="module")
def workspace(tiny_models: Path) -> Path:
    return tiny_models


def test_classify_stdin_json_one_object_per_line(workspace, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CMKD_WORKSPACE", str(workspace))
    text = "Paciente com carcinoma ductal invasivo da mama, HER2 positivo."
    monkeypatch.setattr("sys.stdin", io.StringIO(text + "\nThe weather is nice today.\n"))
    assert main(["classify", "-", "--json"]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["lang"] == "pt" and first["label"] in first["probabilities"]
    assert math.isclose(sum(first["probabilities"].values()), 1.0, abs_tol=1e-3)
    her2 = next(e for e in first["entities"] if e["concept_id"] == "BIOMARKER:HER2")
    assert text[her2["start"] : her2["end"]] == her2["text"]
    assert second["abstained"] and "not be about cancer" in second["abstain_reason"]


def test_bad_input_exits_2_with_one_line(workspace, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CMKD_WORKSPACE", str(workspace))
    for argv in (["classify", "   "], ["classify", "!!! 🙂"], ["classify", "x", "--lang", "tlh"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")


def test_embed_gives_unit_vectors_in_the_shared_space(workspace, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CMKD_WORKSPACE", str(workspace))
    assert main(["embed", "स्तन कैंसर, HER2 पॉज़िटिव", "--json"]) == 0
    assert main(["embed", "breast cancer, HER2 positive", "--json"]) == 0
    hi, en = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (hi["encoder"], en["encoder"]) == ("student", "teacher")
    assert len(hi["vector"]) == len(en["vector"])
    for v in (hi["vector"], en["vector"]):
        assert math.isclose(math.fsum(x * x for x in v), 1.0, abs_tol=1e-3)


def test_classify_json_lists_the_gene_heads_altered_genes(workspace, monkeypatch, capsys) -> None:
    from core.data.schema import DRIVER_GENES
    from core.train.distill import load_distilled

    monkeypatch.setenv("CMKD_WORKSPACE", str(workspace))
    threshold = load_distilled(workspace / "models/student").gene_threshold
    assert threshold is not None  # the tiny student is distilled with the default gene head
    assert main(["classify", "Adenocarcinoma do pulmão, EGFR mutado.", "--json"]) == 0
    genes = json.loads(capsys.readouterr().out)["altered_genes"]
    assert isinstance(genes, list)
    assert all(g["gene"] in DRIVER_GENES and g["probability"] >= threshold for g in genes)
    probabilities = [g["probability"] for g in genes]
    assert probabilities == sorted(probabilities, reverse=True)


def test_altered_genes_keeps_those_at_the_threshold_most_probable_first() -> None:
    import torch

    from core.data.schema import DRIVER_GENES
    from workbench.text_models import _altered_genes

    probs = torch.zeros(1, len(DRIVER_GENES))
    probs[0, DRIVER_GENES.index("KRAS")] = 0.6
    probs[0, DRIVER_GENES.index("EGFR")] = 0.9
    probs[0, DRIVER_GENES.index("TP53")] = 0.39
    assert _altered_genes(probs, 0.4) == [
        {"gene": "EGFR", "probability": 0.9}, {"gene": "KRAS", "probability": 0.6},
    ]  # fmt: skip
    assert _altered_genes(None, None) is None
