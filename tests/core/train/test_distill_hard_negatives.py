"""Distillation with reviewers' verdicts as hard negatives (rows (d)), on the tiny teacher."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.data.cohort import load_cases
from core.errors import InputError
from core.losses.combined import DistillLossConfig
from core.models.student import StudentConfig
from core.train.distill import (
    CONFIG_FILE,
    METRICS_FILE,
    DistillConfig,
    cycled_batches,
    distill,
    load_distilled,
    load_review_rows,
    load_targets,
)

LANGS = ("pt", "hi")
STUDENT = StudentConfig(
    hidden=32, n_heads=2, ffn=64, n_layers=2, init_layers=(0, 1), max_length=48, dropout=0.0
)


def tiny_config(tmp: Path, **changes) -> DistillConfig:
    cfg = DistillConfig(
        languages=LANGS, student=STUDENT, init_from_minilm=False, init_from_teacher=False,
        epochs=2, notes_per_epoch=48, batch_size=8, max_length=48, use_parallel=False,
        extra_vocab=100, val_per_language=6, eval_batch_size=16, show_progress_bar=False,
        threads=1, lr=1e-3, head_lr=1e-2, cache_dir=str(tmp / "cache"),
        loss=DistillLossConfig(gamma=2.0, hard_negative_margin=0.0),
    )  # fmt: skip
    return dataclasses.replace(cfg, **changes)


def write_jsonl(path: Path, items: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), "utf-8")
    return path


@pytest.fixture(scope="module")
def setting(tiny_models: Path) -> tuple[Path, Path, list[dict[str, str]]]:
    """(cohort, teacher, verdicts): Portuguese notes of train cases, each judged a wrong match
    for the note of a case of another cancer type, plus lines to skip and one positive."""
    cohort, teacher = tiny_models / "cohort", tiny_models / "models/teacher"
    cases = sorted((c for c in load_cases(cohort) if c.split == "train"), key=lambda c: c.case_id)
    items = []
    for case in cases[:6]:
        other = next(c for c in cases if c.cancer_type != case.cancer_type)
        text = next(n.text for n in case.notes if n.lang == "pt")
        items.append({"text": text, "lang": "pt", "case_id": other.case_id,
                      "modality": "note", "verdict": "not_relevant"})  # fmt: skip
    items.append({**items[0], "case_id": cases[0].case_id, "verdict": "relevant"})
    items.append({**items[1], "case_id": "NO-SUCH-CASE"})
    items.append({**items[2], "lang": "sw"})  # not distilled in this run
    return cohort, teacher, items


def test_review_rows_pair_positives_and_count_what_they_skip(
    setting: tuple[Path, Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    cohort, teacher, items = setting
    targets = load_targets(teacher, "note")
    path = write_jsonl(tmp_path / "hn.jsonl", items)
    rows = load_review_rows(path, targets, tiny_config(tmp_path))
    assert len(rows) == 6 and rows.negative.shape == (6, targets.dim)
    assert rows.has_positive.tolist() == [True] + [False] * 5  # only the first query has one
    own = targets.case_index[items[-3]["case_id"]]
    expected = F.normalize(targets.notes[own][targets.note_present[own]].mean(0), dim=-1)
    torch.testing.assert_close(rows.positive[0], expected)
    assert rows.stats["skipped"] == {"unknown_case": 1, "missing_modality": 0,
                                     "other_language": 1}  # fmt: skip
    assert rows.stats["verdicts"] == 9 and len(rows.stats["sha256"]) == 64

    bad = write_jsonl(tmp_path / "bad.jsonl", [items[0], {**items[0], "verdict": "maybe"}])
    with pytest.raises(InputError, match="line 2"):
        load_review_rows(bad, targets, tiny_config(tmp_path))
    (tmp_path / "junk.jsonl").write_text('{"text": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 1"):
        load_review_rows(tmp_path / "junk.jsonl", targets, tiny_config(tmp_path))


def test_cycled_batches_show_every_item_before_repeating() -> None:
    batches = cycled_batches(5, 4, 2, np.random.default_rng(0))
    assert [len(b) for b in batches] == [2, 2, 2, 2]
    first_pass = [i for b in batches for i in b][:5]
    assert sorted(first_pass) == [0, 1, 2, 3, 4]
    assert cycled_batches(1, 2, 4, np.random.default_rng(0)) == [[0], [0]]


def test_hard_negatives_push_the_student_away_from_rejected_cases(
    setting: tuple[Path, Path, list[dict[str, str]]], tmp_path: Path
) -> None:
    cohort, teacher, items = setting
    path = write_jsonl(tmp_path / "hn.jsonl", items)
    plain = distill(cohort, teacher, tmp_path / "plain", tiny_config(tmp_path),
                    state_hash_dir=tmp_path / "hash-plain")  # fmt: skip
    fed = distill(cohort, teacher, tmp_path / "fed",
                  tiny_config(tmp_path, hard_negatives=str(path)))  # fmt: skip

    config = json.loads((fed / CONFIG_FILE).read_text())
    assert config["distill"]["hard_negatives"] == str(path)
    assert config["hard_negatives"]["negatives"] == 6
    assert config["hard_negatives"]["skipped"]["unknown_case"] == 1
    assert "hard_negatives" not in json.loads((plain / CONFIG_FILE).read_text())
    epochs = [json.loads(x) for x in (fed / METRICS_FILE).read_text().splitlines()]
    assert all(e["train"]["hard_negative"] >= 0 for e in epochs)
    assert epochs[-1]["train"]["hard_negative"] < epochs[0]["train"]["hard_negative"]
    plain_epochs = [json.loads(x) for x in (plain / METRICS_FILE).read_text().splitlines()]
    assert "hard_negative" not in plain_epochs[0]["train"]

    targets = load_targets(teacher, "note")
    negatives = load_review_rows(path, targets, tiny_config(tmp_path)).negative  # (6, D)
    texts = [i["text"] for i in items[:6]]

    def mean_cos(student_dir: Path) -> float:
        z, _ = load_distilled(student_dir).predict(texts, "pt")
        return float(F.cosine_similarity(z, negatives, dim=-1).mean())

    assert mean_cos(fed) < mean_cos(plain) - 0.05

    # A file whose every verdict is skipped trains exactly as no file at all.
    skipped = write_jsonl(tmp_path / "skipped.jsonl", [items[-2]])
    distill(cohort, teacher, tmp_path / "none", tiny_config(tmp_path, hard_negatives=str(skipped)),
            state_hash_dir=tmp_path / "hash-none")  # fmt: skip
    hashes = [(tmp_path / d / "rank0.sha256").read_text() for d in ("hash-plain", "hash-none")]
    assert hashes[0] == hashes[1]
