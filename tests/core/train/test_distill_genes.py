"""The driver-gene head in distillation: labels, loss, validation, checkpoint (tiny, CPU)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

# The tiny cohort and fake teacher fixtures of the distillation tests, one per module.
from test_distill import TINY_STUDENT, cohort, teacher, tiny_config  # noqa: F401 (fixtures)

from core.data.cohort import load_cases
from core.data.lexicon import default_lexicon
from core.data.schema import DRIVER_GENES
from core.errors import ConfigError
from core.eval.probe import THRESHOLDS
from core.losses.combined import DistillationLoss
from core.models.tokenizer import build_student_tokenizer
from core.train import common
from core.train.distill import (
    CONFIG_FILE,
    GENES_FILE,
    METRICS_FILE,
    DistillConfig,
    TextBatcher,
    _Batches,
    _build_model,
    distill,
    driver_labels,
    fact_buckets,
    gene_threshold,
    load_distilled,
    load_targets,
    make_optimizer,
    train_step,
    training_notes,
)
from core.train.teacher import load_teacher


def test_config_checks_the_gene_fields() -> None:
    assert DistillConfig().gene_weight > 0 and DistillConfig().gene_languages == ("en",)
    for bad in ({"gene_weight": -1}, {"gene_languages": ["sw"], "languages": ["hi"]}):
        with pytest.raises(ConfigError):
            DistillConfig.from_dict(bad)
    cfg = DistillConfig(gene_languages=("en", "pt"), gene_weight=0.5)
    assert DistillConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_gene_labels_only_on_notes_in_gene_languages(cohort: Path, teacher: Path) -> None:
    cases = {c.case_id: c for c in load_cases(cohort)}
    targets = load_targets(teacher, "note")
    by_row = {i: cases[cid] for cid, i in targets.case_index.items()}
    for gene_langs in (("en",), ("en", "pt")):
        cfg = tiny_config(cohort.parent, gene_languages=gene_langs)
        rows = training_notes(list(cases.values()), targets, cfg)
        for r in rows:
            expected = tuple(driver_labels(by_row[r.teacher_row])) if r.lang in gene_langs else None
            assert r.drivers == expected
    assert any(any(r.drivers or ()) for r in rows)  # some case has a driver to learn


def test_gene_loss_decreases_on_one_batch_and_weight_zero_has_no_head(
    cohort: Path, teacher: Path
) -> None:
    cfg = tiny_config(cohort.parent, use_parallel=False, lr=1e-3, head_lr=1e-2)
    targets = load_targets(teacher, "note")
    rows = training_notes(load_cases(cohort), targets, cfg)
    tok = build_student_tokenizer([r.text for r in rows], cohort.parent / "tok", extra_vocab=50)
    concepts = tuple(default_lexicon().concepts)
    student_cfg = dataclasses.replace(TINY_STUDENT, n_entities=len(concepts) + 1)
    torch.manual_seed(0)
    teacher_model = load_teacher(teacher)[0]
    model = _build_model(cfg, student_cfg, tok, teacher_model, concepts)
    batcher = TextBatcher(tok, concepts, cfg.max_length, True, fact_buckets=fact_buckets(model))
    picked = [i for i, r in enumerate(rows) if r.lang in ("en", "pt")][:8]
    batch = _Batches([(picked, [])], rows, [], torch.zeros(0, 16), targets, batcher)[0]
    labelled = torch.tensor([rows[i].lang == "en" for i in picked])
    assert torch.equal(batch["gene_labelled"], labelled) and labelled.any() and (~labelled).any()
    assert torch.equal(
        batch["gene_labels"][labelled], torch.tensor([rows[i].drivers for i in picked if
                                                      rows[i].lang == "en"])
    )  # fmt: skip
    assert not batch["gene_labels"][~labelled].any()

    assert model.genes is not None
    # Each gene listens to its own lexicon concept's entity id (TextBatcher's numbering).
    egfr = model.genes.gene_entities[DRIVER_GENES.index("EGFR")]
    assert concepts[int(egfr) - 1] == "GENE:EGFR"
    optimizer, loss_fn = make_optimizer(model, cfg), DistillationLoss(cfg.loss)
    with common.torch_threads(cfg.threads):
        parts = [train_step(model, batch, loss_fn, optimizer, cfg, torch.device("cpu"))
                 for _ in range(15)]  # fmt: skip
    assert all(np.isfinite(p["genes"]) for p in parts)
    assert parts[-1]["genes"] < 0.8 * parts[0]["genes"]

    off = dataclasses.replace(cfg, gene_weight=0.0)
    model = _build_model(off, student_cfg, tok, teacher_model, concepts)
    assert model.genes is None
    part = train_step(model, batch, loss_fn, make_optimizer(model, off), off, torch.device("cpu"))
    assert "genes" not in part


def test_threshold_is_the_best_micro_f1_of_the_grid() -> None:
    truth = torch.tensor([[True, False], [False, True], [False, False]])
    probs = torch.tensor([[0.8, 0.3], [0.2, 0.45], [0.1, 0.35]])
    # Only thresholds in (0.35, 0.45] catch both altered genes and nothing else.
    assert gene_threshold(probs, truth) == 0.4 and 0.4 in THRESHOLDS


def test_checkpoint_keeps_the_head_and_students_without_one_still_load(
    cohort: Path, teacher: Path, tmp_path: Path
) -> None:
    out = distill(cohort, teacher, tmp_path / "student", tiny_config(tmp_path))
    config = json.loads((out / CONFIG_FILE).read_text())
    record = config["gene_head"]
    assert (out / GENES_FILE).is_file()
    assert record["genes"] == list(DRIVER_GENES) and record["label_languages"] == ["en"]
    assert record["threshold"] in THRESHOLDS
    val = json.loads((out / METRICS_FILE).read_text().splitlines()[-1])
    assert val["val_gene_threshold"] == record["threshold"]
    assert all(0.0 <= m["alteration_f1"] <= 1.0 for m in val["val"].values())

    texts = ["Adenocarcinoma do pulmão, EGFR mutado.", "KRAS G12C; TP53 sem alteração"]
    student = load_distilled(out)
    z, logits, probs = student.predict_with_genes(texts, "pt")
    assert probs is not None and probs.shape == (2, len(DRIVER_GENES))
    assert bool(((probs >= 0) & (probs <= 1)).all())
    assert student.gene_threshold == record["threshold"]
    z2, logits2 = load_distilled(out).predict(texts, "pt")  # the old two-output API
    torch.testing.assert_close(z, z2)
    torch.testing.assert_close(logits, logits2)
    torch.testing.assert_close(load_distilled(out).predict_with_genes(texts, "pt")[2], probs)

    # A student saved before gene heads existed (or with gene_weight 0): no file, no record.
    old = tmp_path / "old"
    shutil.copytree(out, old)
    (old / GENES_FILE).unlink()
    del config["gene_head"]
    (old / CONFIG_FILE).write_text(json.dumps(config))
    plain = load_distilled(old)
    assert plain.model.genes is None and plain.gene_threshold is None
    z3, _, none = plain.predict_with_genes(texts, "pt")
    assert none is None
    torch.testing.assert_close(z3, z)  # the rest of the student is untouched
