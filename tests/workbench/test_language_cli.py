"""A new language end to end: `cmkd language add` installs the Italian example pack, a tiny
distillation learns it from the phrases (recording the pack and its held-out retrieval
metric), and `cmkd classify --lang it` reads Italian with the pack's lexicon column."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from core.data.language_packs import LEXICON_FILE, PHRASES_FILE, load_pack
from core.errors import ConfigError
from core.models.student import StudentConfig
from core.train.distill import DistillConfig, distill, load_distilled
from workbench.cli import main
from workbench.store import Store
from workbench.workspace import Workspace

PACK = Path(__file__).resolve().parents[1] / "data" / "language_pack_it"
ITALIAN = "Carcinoma mammario con metastasi al fegato, HER2 positivo."
PHRASES_ARGS = ("--phrases", str(PACK / PHRASES_FILE))
ADD_IT = ("language", "add", "it", *PHRASES_ARGS, "--lexicon", str(PACK / LEXICON_FILE))
TINY = DistillConfig(
    languages=("pt",), init_from_minilm=False, init_from_teacher=False, epochs=2,
    notes_per_epoch=24, batch_size=8, max_length=48, use_parallel=False, extra_vocab=100,
    val_per_language=6, eval_batch_size=16, show_progress_bar=False, threads=1,
    student=StudentConfig(hidden=32, n_heads=2, ffn=64, n_layers=2, init_layers=(0, 1),
                          max_length=48),
)  # fmt: skip


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def workspace(tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The tiny cohort and teacher, with no student yet."""
    ws = Workspace(tmp_path / "ws")
    (ws.root / "models").mkdir(parents=True)
    for part in ("cohort", "models/teacher"):
        (ws.root / part).symlink_to(tiny_models / part, target_is_directory=True)
    monkeypatch.setenv("CMKD_WORKSPACE", str(ws.root))
    return ws


def test_add_and_list_a_language(workspace: Workspace, capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "language", "list", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, err = run(capsys, *ADD_IT, "--name", "Italiano", "--json")
    assert code == 0, err
    added = json.loads(out)
    assert added["code"] == "it" and added["phrases"] == 61 and added["heldout_phrases"] == 13
    code, out, _ = run(capsys, "language", "list")
    assert code == 0 and out.startswith("it  Italiano (Latin): 61 phrases (48 train, 13 held out)")
    audit = Store(workspace.db_path).audit_entries(action="add_language")
    assert [e.target for e in audit] == ["language-it"]

    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"concept_id\tit\nTYPE:BRCA\tcarcinoma mammario\nGENE:NOPE\tx\n")
    code, _, err = run(capsys, "language", "add", "it", *PHRASES_ARGS, "--lexicon", str(bad))
    assert code == 2 and err == "error: lexicon.tsv: line 3: unknown concept id 'GENE:NOPE' " \
        "(not in the shipped lexicon)\n"  # fmt: skip
    code, _, err = run(capsys, "language", "add", "pt", *ADD_IT[3:])
    assert code == 2 and "built in already" in err
    assert load_pack(workspace.root / "languages" / "it").name == "Italiano"  # untouched


def test_pack_configs_are_checked() -> None:
    assert DistillConfig().language_packs == () and DistillConfig().cohort_languages == (
        "pt", "es", "sw", "hi", "de", "fr",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="one folder per pack language"):
        DistillConfig(languages=("pt", "it"))
    with pytest.raises(ConfigError, match="languages must be"):
        DistillConfig(languages=("pt", "ita"), language_packs=("x",))
    # The tiny profile has no shipped parallel text, but a pack's phrases still get rows.
    assert TINY.parallel_rows_per_batch == 0
    with_pack = dataclasses.replace(TINY, languages=("pt", "it"), language_packs=("p",))
    assert with_pack.parallel_rows_per_batch == 2 and with_pack.cohort_languages == ("pt",)


def test_a_distilled_pack_language_is_recorded_validated_and_classified(
    workspace: Workspace, capsys, tmp_path: Path
) -> None:
    code, _, err = run(capsys, *ADD_IT, "--name", "Italiano")
    assert code == 0, err
    pack_dir = workspace.root / "languages" / "it"
    cfg = dataclasses.replace(TINY, languages=("pt", "it"), language_packs=(str(pack_dir),),
                              cache_dir=str(tmp_path / "cache"))  # fmt: skip
    out = distill(workspace.cohort_dir, workspace.models_dir / "teacher",
                  workspace.models_dir / "student", cfg)  # fmt: skip

    config = json.loads((out / "config.json").read_text())
    assert config["languages"] == ["en", "pt"]  # languages with cohort notes
    assert config["parallel_sentences"] == 48  # the pack's training phrases, nothing else
    record = config["language_packs"]["it"]
    assert record["train_phrases"] == 48 and record["heldout_phrases"] == 13
    assert 0.0 <= record["unk_rate"] < 0.1  # Latin script: the tokenizer covers it
    assert 0.0 <= record["heldout_top1"] <= 1.0
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [set(e["val_packs"]) for e in epochs] == [{"it"}, {"it"}]
    assert "it" not in epochs[-1]["val"]  # note validation stays on cohort languages
    assert load_pack(out / "languages" / "it").phrases == load_pack(pack_dir).phrases

    # The checkpoint is self-contained: the pack's lexicon comes with it.
    (pack_dir / LEXICON_FILE).unlink()
    student = load_distilled(out)
    assert student.languages == ("en", "pt", "it")
    embeddings, logits = student.predict([ITALIAN], "it")
    assert embeddings.shape[0] == 1 and logits.shape == (1, 15)

    code, stdout, err = run(capsys, "classify", ITALIAN, "--lang", "it", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    entities = {e["concept_id"]: (e["text"], e["term"]) for e in result["entities"]}
    assert entities["TYPE:BRCA"] == ("Carcinoma mammario", "carcinoma mammario")
    assert entities["SITE:LIVER"] == ("fegato", "fegato") and result["lang"] == "it"
    assert not result["abstain_reason"].startswith("no tumour type")
    code, stdout, err = run(capsys, "embed", ITALIAN, "--lang", "it", "--json")
    assert code == 0 and json.loads(stdout)["encoder"] == "student", err
    code, _, err = run(capsys, "classify", ITALIAN, "--lang", "xx")
    assert code == 2 and "unsupported language 'xx'" in err and "it" in err


def test_cmkd_distill_finds_an_installed_pack(built_workspace: Path, monkeypatch) -> None:
    # `--languages pt,it` must pass the installed pack along, not fail on an unknown language.
    seen = {}

    def fake_launch(cohort, teacher, out, cfg, nproc=1):  # noqa: ANN001, ANN202
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr("core.train.distill.launch_distill", fake_launch)
    assert main(list(ADD_IT)) == 0
    with pytest.raises(SystemExit):
        main(["distill", "--languages", "pt,it", "--out", str(built_workspace / "new")])
    cfg = seen["cfg"]
    assert cfg.languages == ("pt", "it")
    assert [Path(p).name for p in cfg.language_packs] == ["it"]
