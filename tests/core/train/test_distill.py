"""Cross-lingual distillation loop and the parallel-text loader (tiny configs, CPU)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.data.cohort import CASES_FILE, CohortConfig, generate_cohort, load_cases
from core.data.lexicon import default_lexicon
from core.data.parallel import HELDOUT_ROWS, heldout_parallel, load_parallel
from core.data.schema import CANCER_TYPES, NOTE_KINDS, STUDENT_LANGUAGES
from core.errors import CohortError, ConfigError
from core.losses.combined import DistillationLoss
from core.models.student import StudentConfig
from core.models.teacher import WEIGHTS_FILE, Teacher, TeacherConfig, save_teacher_weights
from core.models.tokenizer import build_student_tokenizer
from core.train import common
from core.train.distill import (
    CLASSIFIER_FILE,
    CONFIG_FILE,
    HEAD_FILE,
    METRICS_FILE,
    STUDENT_FILE,
    TOKENIZER_DIR,
    DistillConfig,
    RoundRobin,
    StudentModel,
    TextBatcher,
    _Batches,
    _build_model,
    _sample_parallel,
    _tokenizer_texts,
    distill,
    fact_buckets,
    load_distilled,
    load_targets,
    make_optimizer,
    reserved_template_ids,
    train_step,
    training_notes,
)
from core.train.teacher import (
    EMBEDDING_KEYS,
    EMBEDDINGS_FILE,
    TeacherTrainConfig,
    load_teacher,
)

TEACHER_DIM = 16
TINY_STUDENT = StudentConfig(
    hidden=32, n_heads=2, ffn=64, n_layers=2, init_layers=(0, 1), max_length=48, dropout=0.0
)
LANGS = ("pt", "hi")


def tiny_config(tmp: Path, **changes) -> DistillConfig:
    cfg = DistillConfig(
        languages=LANGS, student=TINY_STUDENT, init_from_minilm=False, epochs=1,
        init_from_teacher=False, notes_per_epoch=24, batch_size=8, max_length=48,
        parallel_rows=8, extra_vocab=100,
        val_per_language=6, eval_batch_size=16, show_progress_bar=False, threads=1,
        cache_dir=str(tmp / "cache"),
    )  # fmt: skip
    return dataclasses.replace(cfg, **changes)


def write_fake_teacher(cohort_dir: Path, out_dir: Path, seed: int = 0) -> Path:
    """A teacher run folder as core.train.teacher writes it, with embeddings that carry the
    cancer type (class prototype + noise) instead of a trained teacher's (seconds, not
    minutes)."""
    cases = load_cases(cohort_dir)
    cfg = TeacherConfig(
        embed_dim=TEACHER_DIM, head_hidden=16, tile_size=16, patch_size=8, vit_dim=16,
        vit_depth=1, vit_heads=2, kmer=3, flank=4, max_allele=4, max_variants=8,
        genomic_dim=16, genomic_depth=1, genomic_heads=2, mc_samples=2,
    )  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    out_dir.mkdir(parents=True)
    torch.manual_seed(seed)
    save_teacher_weights(out_dir / WEIGHTS_FILE, Teacher(cfg))
    n, k, c = len(cases), len(NOTE_KINDS), len(CANCER_TYPES)
    truth = torch.tensor([CANCER_TYPES.index(case.cancer_type) for case in cases])
    protos = F.normalize(torch.randn(c, TEACHER_DIM, generator=g), dim=-1)

    def unit(*shape: int) -> torch.Tensor:
        noise = torch.randn(*shape, TEACHER_DIM, generator=g)
        base = protos[truth].view(n, *([1] * (len(shape) - 1)), TEACHER_DIM)
        return F.normalize(base + 0.3 * noise, dim=-1)

    logits = 4 * F.one_hot(truth, c).float() + torch.randn(n, c, generator=g)
    note_logits = logits.unsqueeze(1) + torch.randn(n, k, c, generator=g)
    tensors = {
        "slide": unit(n), "genomic": unit(n), "text": unit(n), "notes": unit(n, k),
        "present": torch.ones(n, 3, dtype=torch.bool),
        "note_present": torch.ones(n, k, dtype=torch.bool),
        "fused": unit(n), "logits": logits, "probs": logits.softmax(-1),
        "variance": torch.rand(n, generator=g) * 0.1,
        "note_logits": note_logits, "note_probs": note_logits.softmax(-1),
        "note_variance": torch.rand(n, k, generator=g) * 0.1,
        "slide_logits": logits.clone(), "genomic_logits": logits.clone(),
        "text_logits": logits.clone(),
    }  # fmt: skip
    assert set(tensors) == set(EMBEDDING_KEYS)
    meta = {
        "version": "teacher-fake",
        "case_ids": json.dumps([case.case_id for case in cases]),
        "modalities": json.dumps(["slide", "genomic", "text"]),
        "note_kinds": json.dumps(list(NOTE_KINDS)),
        "classes": json.dumps(list(CANCER_TYPES)),
    }
    common.save_tensors(out_dir / EMBEDDINGS_FILE, tensors, metadata=meta)
    config = {"kind": "teacher", "version": "teacher-fake", "model": cfg.to_dict(),
              "train": TeacherTrainConfig(model=cfg).to_dict()}  # fmt: skip
    (out_dir / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    return out_dir


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("distill") / "cohort"
    return generate_cohort(out, CohortConfig(n_cases=30, workers=1, slide_fraction=0))


@pytest.fixture(scope="module")
def teacher(cohort: Path) -> Path:
    return write_fake_teacher(cohort, cohort.parent / "teacher")


@pytest.fixture(scope="module")
def run(cohort: Path, teacher: Path) -> tuple[Path, list[dict]]:
    """One tiny distillation run shared by the checks on its output."""
    events: list[dict] = []
    out = distill(cohort, teacher, cohort.parent / "student", tiny_config(cohort.parent),
                  events.append)  # fmt: skip
    return out, events


# ------------------------------------------------------------------------------ config


def test_config_rejects_unknown_keys_at_every_level(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown keys.*'epoch'"):
        DistillConfig.from_dict({"epoch": 2})
    with pytest.raises(ConfigError, match="hiden"):
        DistillConfig.from_dict({"student": {"hiden": 32}})
    with pytest.raises(ConfigError, match="alpah"):
        DistillConfig.from_dict({"loss": {"alpah": 0.5}})
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"languages": ["sw"], "batch_size": 16, "bogus": 1}))
    with pytest.raises(ConfigError, match="bogus"):
        DistillConfig.load(path)


def test_config_round_trips_and_rejects_bad_values() -> None:
    cfg = DistillConfig(languages=("sw", "hi"), head="quantum", loss=dataclasses.replace(
        DistillConfig().loss, alpha=0.5))  # fmt: skip
    assert DistillConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    for bad in ({"languages": ["xx"]}, {"head": "hybrid"}, {"kd_source": "slide"},
                {"ce_languages": ["sw"], "languages": ["hi"]}, {"batch_size": 1},
                {"max_length": 500}, {"device": "tpu"}, {"max_minutes": 0},
                {"cpu_bf16": "maybe"}):  # fmt: skip
        with pytest.raises(ConfigError):
            DistillConfig.from_dict(bad)


# ------------------------------------------------------------------------ parallel text


def test_parallel_heldout_rows_are_fixed_and_never_trained_on() -> None:
    train, held = load_parallel(), heldout_parallel()
    train_ids, held_ids = {r.row_id for r in train}, {r.row_id for r in held}
    assert len(held) == HELDOUT_ROWS and len(train) + len(held) == 3001
    assert not train_ids & held_ids
    assert {r.row_id for r in heldout_parallel(["hi"])} == held_ids  # language-independent
    assert all(set(r.texts) == {"en", *STUDENT_LANGUAGES} for r in train[:50])

    # Neither the sampled training rows nor the tokenizer's texts include a held-out row.
    sampled = _sample_parallel(DistillConfig(parallel_rows=0))
    assert {r.row_id for r in sampled} == train_ids
    assert {r.row_id for r in _sample_parallel(DistillConfig(parallel_rows=64))} <= train_ids
    held_only = {t for r in held for t in r.texts.values()} - {
        t for r in train for t in r.texts.values()
    }
    assert held_only  # the check below could not fail otherwise
    assert not held_only & set(_tokenizer_texts([], sampled, ("en", *STUDENT_LANGUAGES)))


def test_round_robin_never_repeats_a_group_in_a_batch_and_cycles_items() -> None:
    groups = [[3 * g + i for i in range(3)] for g in range(10)]  # 10 groups of 3 items
    rr = RoundRobin(groups, np.random.default_rng(0))
    batches = rr.batches(n_batches=9, size=4)  # 3 rounds of chunks 4, 4, 2
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    for b in batches:
        assert len({i // 3 for i in b}) == len(b)
    assert sorted(i for b in batches for i in b) == list(range(30))  # every item once


# --------------------------------------------------------------------- training data


def test_training_rows_come_from_train_cases_with_english_only_labels(
    cohort: Path, teacher: Path
) -> None:
    cases = {c.case_id: c for c in load_cases(cohort)}
    targets = load_targets(teacher, "note")
    rows = training_notes(list(cases.values()), targets, tiny_config(cohort.parent))
    by_row = {i: cases[cid] for cid, i in targets.case_index.items()}
    assert {by_row[r.teacher_row].split for r in rows} == {"train"}
    assert {r.lang for r in rows} == {"en", *LANGS}
    reserved = reserved_template_ids(("en", *LANGS))
    assert reserved
    for r in rows:
        case = by_row[r.teacher_row]
        assert case.note(r.lang, NOTE_KINDS[r.kind]).text == r.text
        assert case.note(r.lang, NOTE_KINDS[r.kind]).template_id not in reserved
        if r.lang == "en" and case.label:
            assert r.label == CANCER_TYPES.index(case.label)
        else:
            assert r.label == -100  # zero-shot: no labels on the student languages


def test_refuses_to_train_on_a_note_from_a_test_template(
    cohort: Path, teacher: Path, tmp_path: Path
) -> None:
    leaked = sorted(reserved_template_ids(["pt"]))[0]
    lines = (cohort / CASES_FILE).read_text(encoding="utf-8").splitlines()
    out_lines, done = [], False
    for line in lines:
        case = json.loads(line)
        if case["split"] == "train" and not done:
            for note in case["notes"]:
                if note["lang"] == "pt":
                    note["template_id"] = leaked
                    done = True
                    break
        out_lines.append(json.dumps(case))
    bad = tmp_path / "cohort"
    bad.mkdir()
    (bad / CASES_FILE).write_text("\n".join(out_lines) + "\n", encoding="utf-8")
    with pytest.raises(CohortError, match=leaked):
        distill(bad, teacher, tmp_path / "student", tiny_config(tmp_path))
    assert not (tmp_path / "student").exists()


# --------------------------------------------------------------------------- training


def _model_and_one_batch(
    cohort: Path, teacher: Path, cfg: DistillConfig
) -> tuple[StudentModel, dict[str, torch.Tensor]]:
    """A student built as `distill` builds it, and one training batch of 8 notes of
    different cases."""
    targets = load_targets(teacher, "note")
    rows = training_notes(load_cases(cohort), targets, cfg)
    tok = build_student_tokenizer([r.text for r in rows], cohort.parent / "tok", extra_vocab=50)
    concepts = tuple(default_lexicon().concepts)
    student_cfg = dataclasses.replace(TINY_STUDENT, n_entities=len(concepts) + 1)
    torch.manual_seed(0)
    model = _build_model(cfg, student_cfg, tok, load_teacher(teacher)[0], concepts)
    batcher = TextBatcher(tok, concepts, cfg.max_length, True, fact_buckets=fact_buckets(model))
    batch_rows = [next(i for i, r in enumerate(rows) if r.teacher_row == t)
                  for t in sorted({r.teacher_row for r in rows})[:8]]  # fmt: skip
    plan = [(batch_rows, [])]
    return model, _Batches(plan, rows, [], torch.zeros(0, TEACHER_DIM), targets, batcher)[0]


def test_loss_decreases_over_a_few_steps_on_one_batch(cohort: Path, teacher: Path) -> None:
    cfg = tiny_config(cohort.parent, use_parallel=False, lr=1e-3, head_lr=1e-2)
    model, batch = _model_and_one_batch(cohort, teacher, cfg)
    assert batch["entity_ids"].any()  # lexicon entities reach the student
    assert batch["note_facts"].any()  # and so do the notes' facts
    optimizer = make_optimizer(model, cfg)
    loss_fn = DistillationLoss(cfg.loss)
    with common.torch_threads(cfg.threads):
        losses = [train_step(model, batch, loss_fn, optimizer, cfg, torch.device("cpu"))
                  for _ in range(12)]  # fmt: skip
    first = losses[0]
    assert all(np.isfinite(p["loss"]) for p in losses)
    assert losses[-1]["loss"] < 0.7 * first["loss"]
    assert losses[-1]["align"] < first["align"] and losses[-1]["kd"] < first["kd"]


@pytest.mark.parametrize("dropout, learns", [(1.0, False), (0.0, True)])
def test_fact_dropout_hides_a_rows_facts_from_training(
    cohort: Path, teacher: Path, dropout: float, learns: bool
) -> None:
    cfg = tiny_config(cohort.parent, use_parallel=False, fact_dropout=dropout, weight_decay=0.0)
    model, batch = _model_and_one_batch(cohort, teacher, cfg)
    before = model.facts.weight.detach().clone()
    with common.torch_threads(cfg.threads):
        train_step(model, batch, DistillationLoss(cfg.loss), make_optimizer(model, cfg), cfg,
                   torch.device("cpu"))  # fmt: skip
    assert (not torch.equal(model.facts.weight, before)) is learns
    with pytest.raises(ConfigError, match="fact_dropout"):
        DistillConfig(fact_dropout=1.5)


def test_distill_writes_a_complete_loadable_checkpoint(run: tuple[Path, list[dict]]) -> None:
    out, events = run
    for name in (STUDENT_FILE, HEAD_FILE, CLASSIFIER_FILE, CONFIG_FILE, METRICS_FILE):
        assert (out / name).is_file(), name
    assert (out / TOKENIZER_DIR / "tokenizer.json").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["kind"] == "student" and config["languages"] == ["en", *LANGS]
    assert config["shared_dim"] == TEACHER_DIM and config["steps"] >= 1
    assert config["parallel_sentences"] == 8
    unsure = config["uncertainty"]  # the 0.9 quantile made absolute from the fake teacher
    assert unsure["quantile"] == 0.9 and unsure["threshold"] > 0
    assert 0.0 < unsure["share_above"] < 0.2  # ~10% (9 training notes here)
    lines = [json.loads(x) for x in (out / METRICS_FILE).read_text().splitlines()]
    assert len(lines) == 1 and set(lines[0]["val"]) == {"en", *LANGS}
    for lang_metrics in lines[0]["val"].values():
        assert 0.0 <= lang_metrics["accuracy"] <= 1.0
        assert 0.0 <= lang_metrics["recall_at_10"] <= 1.0
    assert any("loss" in e for e in events) and events[-1]["metrics"] == lines[0]

    student = load_distilled(out)
    texts = ["Adenocarcinoma do pulmão, EGFR mutado.", "स्तन कैंसर, HER2 पॉजिटिव"]
    z, logits = student.predict(texts, "pt")
    assert z.shape == (2, TEACHER_DIM) and logits.shape == (2, len(CANCER_TYPES))
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(2))
    z2, _ = load_distilled(out).predict(texts, "pt")
    torch.testing.assert_close(z, z2)  # what was saved is what loads


def test_time_budget_stops_early_and_still_saves_a_valid_checkpoint(
    cohort: Path, teacher: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(tmp_path, max_minutes=0.001, use_parallel=False, epochs=3)
    out = distill(cohort, teacher, tmp_path / "student", cfg)
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["stopped_early"] is True and config["steps"] == 0
    z, _ = load_distilled(out).predict(["carcinoma"], "es")
    assert torch.isfinite(z).all()


def test_student_head_and_classifier_can_start_from_the_teachers(
    teacher: Path, tmp_path: Path
) -> None:
    teacher_model, tcfg = load_teacher(teacher)
    tok = build_student_tokenizer(["carcinoma ductal"], tmp_path / "tok", extra_vocab=10)
    wide = StudentConfig(hidden=tcfg.text_dim, n_heads=2, ffn=32, n_layers=1, init_layers=(0,))
    cfg = tiny_config(tmp_path, init_from_teacher=True, student=wide)
    model = _build_model(cfg, wide, tok, teacher_model, ())
    h = F.normalize(torch.randn(3, tcfg.text_dim), dim=-1)
    facts = (torch.rand(3, tcfg.text_fact_buckets) < 0.01).float()
    model.eval()
    with torch.no_grad():  # the student's text branch = the teacher's, given the same features
        teacher_z = teacher_model.embed_text(h, facts)
        torch.testing.assert_close(model.head(h + model.facts(facts)), teacher_z)
        torch.testing.assert_close(
            model.classifier(model.head(h + model.facts(facts))),
            teacher_model.classifier(teacher_z),
        )
    with pytest.raises(ConfigError, match="text width"):
        _build_model(cfg, TINY_STUDENT, tok, teacher_model, ())
    torch.testing.assert_close(model.facts.weight, teacher_model.text_facts.weight)
    no_facts = tiny_config(tmp_path, init_from_teacher=True, student=wide, use_facts=False)
    assert fact_buckets(_build_model(no_facts, wide, tok, teacher_model, ())) == 0  # ablation
