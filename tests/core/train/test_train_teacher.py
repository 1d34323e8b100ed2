"""Teacher training end to end on the tiny cohort, its outputs, caches, and the shared helpers.

MiniLM is replaced by a hashed bag-of-words encoder here (same interface, instant), so these
tests measure the loop, not the pretrained model; core/models/text.py has its own tests.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import core.train.teacher as teacher_train
from core.data.cohort import load_cases
from core.data.schema import CANCER_TYPES, NOTE_KINDS
from core.errors import ConfigError, InputError
from core.models.teacher import WEIGHTS_FILE, TeacherConfig, save_teacher_weights
from core.train import common
from core.train.teacher import (
    TeacherTrainConfig,
    embed_cohort,
    load_embeddings,
    load_teacher,
    prepare_cohort,
    train_teacher,
)

TINY_MODEL = TeacherConfig(
    embed_dim=32, head_hidden=32, tile_size=32, patch_size=8, vit_dim=32, vit_depth=2,
    vit_heads=2, kmer=3, flank=4, max_allele=4, max_variants=16, genomic_dim=32,
    genomic_depth=2, genomic_heads=2, mc_samples=4,
)  # fmt: skip


def _cfg(tmp: Path, **changes) -> TeacherTrainConfig:
    base = TeacherTrainConfig(
        model=TINY_MODEL, epochs=3, batch_size=16, eval_batch_size=32, max_minutes=30.0,
        cache_dir=str(tmp / "cache"), show_progress_bar=False, threads=1,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


class HashedBagOfWords:
    """Stand-in for TeacherTextEncoder: L2-normalised sum of a fixed random vector per word."""

    calls: list[int] = []

    def to(self, device: torch.device) -> HashedBagOfWords:
        return self

    def encode(self, texts: list[str], batch_size: int, max_length: int) -> torch.Tensor:
        HashedBagOfWords.calls.append(len(texts))
        rows = []
        for text in texts:
            v = torch.zeros(384)
            for word in text.lower().split()[:max_length]:
                g = torch.Generator().manual_seed(zlib.crc32(word.encode()))
                v += torch.randn(384, generator=g)
            rows.append(F.normalize(v, dim=0))
        return torch.stack(rows)


class Forbidden:
    def __init__(self, *args, **kwargs) -> None:
        raise AssertionError("a cached stage ran again")


@pytest.fixture(autouse=True)
def _fake_minilm(monkeypatch):
    monkeypatch.setattr(teacher_train, "TeacherTextEncoder", HashedBagOfWords)
    HashedBagOfWords.calls = []


@pytest.fixture(scope="module")
def run(tiny_cohort: Path, tmp_path_factory) -> tuple[Path, list[dict], TeacherTrainConfig]:
    tmp = tmp_path_factory.mktemp("teacher")
    events: list[dict] = []
    cfg = _cfg(tmp)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(teacher_train, "TeacherTextEncoder", HashedBagOfWords)
        out = train_teacher(tiny_cohort, tmp / "models" / "teacher", cfg, events.append)
    return out, events, cfg


def test_training_writes_the_run_folder(run, tiny_cohort):
    out, _, cfg = run
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "embeddings.safetensors", "model.safetensors",
    ]  # fmt: skip
    assert [p.name for p in out.parent.iterdir()] == ["teacher"]  # no temp folders left
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "teacher" and config["version"].startswith("teacher-")
    assert config["cohort_hash"] == teacher_train.cohort_hash(tiny_cohort)
    assert TeacherTrainConfig.from_dict(config["train"]) == cfg
    assert config["steps"] > 0 and not config["stopped_early"]
    for split in ("val", "test"):
        m = config["metrics"][split]
        assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["recall_at_10"] <= 1.0
        assert "accuracy_text_only" in m and "accuracy_single_note" in m
    assert {"tiles", "variants", "text_embedding", "train", "embed"} <= set(config["timings_s"])


def test_embeddings_cover_every_case_and_modality(run, tiny_cohort):
    out, _, _ = run
    emb, meta = load_embeddings(out)
    cases = load_cases(tiny_cohort)
    n, k, d = len(cases), len(NOTE_KINDS), TINY_MODEL.embed_dim
    assert meta["case_ids"] == [c.case_id for c in cases]
    assert meta["note_kinds"] == list(NOTE_KINDS) and meta["classes"] == list(CANCER_TYPES)
    assert emb["notes"].shape == (n, k, d) and emb["note_variance"].shape == (n, k)
    assert emb["logits"].shape == emb["probs"].shape == (n, len(CANCER_TYPES))
    for i, m in enumerate(("slide", "genomic", "text")):
        present = emb["present"][:, i]
        norms = emb[m].norm(dim=-1)
        torch.testing.assert_close(norms[present], torch.ones(int(present.sum())))
        assert (norms[~present] == 0).all()
    # Presence matches the cohort: the generator drops slides and VCFs for some cases.
    assert emb["present"][:, 0].tolist() == [bool(c.tile_paths) for c in cases]
    assert emb["present"][:, 1].tolist() == [bool(c.variants) for c in cases]
    assert ((emb["variance"] >= 0) & (emb["variance"] <= 0.25)).all()
    assert torch.isfinite(emb["note_variance"]).all()


def test_checkpoint_reloads_to_the_stored_embeddings(run, tiny_cohort, monkeypatch):
    out, _, cfg = run
    model, model_cfg = load_teacher(out)
    assert model_cfg == TINY_MODEL
    # Every preprocessing stage now comes from the cache: nothing may decode or embed again.
    monkeypatch.setattr(teacher_train, "TeacherTextEncoder", Forbidden)
    monkeypatch.setattr(teacher_train, "decode_tiles", Forbidden)
    data = prepare_cohort(
        tiny_cohort, load_cases(tiny_cohort), model_cfg, cfg, Path(cfg.cache_dir),
        torch.device("cpu"), common.Stopwatch(),
    )  # fmt: skip
    again = embed_cohort(model, data, torch.device("cpu"), 32)
    stored, _ = load_embeddings(out)
    for key in ("slide", "genomic", "notes", "fused", "logits"):
        torch.testing.assert_close(again[key], stored[key])


def test_progress_reports_every_stage(run):
    _, events, _ = run
    stages = {e["stage"] for e in events}
    assert {"teacher: prepare", "teacher: train", "teacher: embed"} <= stages
    train = [e for e in events if e["stage"] == "teacher: train" and "loss" in e]
    assert train[-1]["step"] == train[-1]["total"] and all("epoch" in e for e in train)
    assert any("val_accuracy" in e for e in events)


def test_training_is_seeded_and_reuses_caches(run, tiny_cohort, tmp_path, monkeypatch):
    out, _, cfg = run
    monkeypatch.setattr(teacher_train, "TeacherTextEncoder", Forbidden)
    monkeypatch.setattr(teacher_train, "decode_tiles", Forbidden)
    second = train_teacher(tiny_cohort, tmp_path / "again", cfg)
    a, _ = common.load_tensors(out / "model.safetensors")
    b, _ = common.load_tensors(second / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("min_epochs", [0, 1])
def test_time_budget_stops_early_but_still_writes(tiny_cohort, tmp_path, min_epochs):
    cfg = _cfg(tmp_path, max_minutes=1e-6, min_epochs=min_epochs)
    out = train_teacher(tiny_cohort, tmp_path / "t", cfg)
    config = json.loads((out / "config.json").read_text())
    n_train = sum(c.split == "train" for c in load_cases(tiny_cohort))
    assert config["stopped_early"]
    assert config["steps"] == min_epochs * -(-n_train // cfg.batch_size)  # ceil
    assert len(config["history"]) == min_epochs  # no validation of an epoch without steps
    assert (out / "embeddings.safetensors").is_file()


def test_slow_preprocessing_does_not_eat_the_training_budget(tiny_cohort, tmp_path, monkeypatch):
    # A first build on a loaded machine spends minutes in MiniLM; the teacher must still train.
    prepare = teacher_train.prepare_cohort

    def slow_prepare(*args, **kwargs):
        data = prepare(*args, **kwargs)
        time.sleep(1.0)  # twice the whole budget below
        return data

    monkeypatch.setattr(teacher_train, "prepare_cohort", slow_prepare)
    cfg = _cfg(tmp_path, max_minutes=0.5 / 60, min_epochs=0, epochs=1)
    config = json.loads(
        (train_teacher(tiny_cohort, tmp_path / "t", cfg) / "config.json").read_text()
    )
    assert config["steps"] >= 1


def test_featurising_cohort_cases_never_reads_role(tiny_cohort):
    from core.data.genomics import Reference

    cases = [c for c in load_cases(tiny_cohort) if c.variants][:5]
    seqs = Reference.load(tiny_cohort / "reference").sequences
    f = TINY_MODEL.featurizer()
    tokens, mask = f.featurize(cases, seqs)
    shuffled = [
        dataclasses.replace(
            c,
            variants=tuple(
                dataclasses.replace(
                    v,
                    role="benign" if v.role == "driver" else "driver",
                    annotation="",
                    annotation_lang="",
                )
                for v in c.variants
            ),
        )  # fmt: skip
        for c in cases
    ]
    tokens2, mask2 = f.featurize(shuffled, seqs)
    assert torch.equal(tokens, tokens2) and torch.equal(mask, mask2)
    assert (tokens[mask][:, 5:] != f.vocab["[UNK]"]).any()  # real k-mers from the FASTA


def test_train_config_round_trip_and_rejections():
    cfg = TeacherTrainConfig(model=TINY_MODEL, epochs=2)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert TeacherTrainConfig.from_dict(d) == cfg
    with pytest.raises(ConfigError, match="unknown keys"):
        TeacherTrainConfig.from_dict({"epochs": 2, "learning_rate": 1.0})
    with pytest.raises(ConfigError, match="unknown keys"):
        TeacherTrainConfig.from_dict({"model": {"embed_dim": 8, "depth": 2}})
    with pytest.raises(ConfigError):
        TeacherTrainConfig(device="tpu")
    with pytest.raises(ConfigError):
        TeacherTrainConfig(batch_size=1)


def _batch(b: int = 8) -> teacher_train.TeacherInputs:
    f = TINY_MODEL.featurizer()
    k = len(NOTE_KINDS)
    return teacher_train.TeacherInputs(
        tiles=torch.randint(0, 256, (b, 2, 3, 32, 32), dtype=torch.uint8),
        tile_mask=torch.ones(b, 2, dtype=torch.bool),
        variant_tokens=torch.randint(1, f.vocab_size, (b, 4, f.seq_len)),
        variant_mask=torch.ones(b, 4, dtype=torch.bool),
        minilm=torch.randn(b, k, 384),
        note_mask=torch.ones(b, k, dtype=torch.bool),
        note_facts=torch.zeros(b, k, TINY_MODEL.text_fact_buckets),
    )


def test_unlabelled_batch_only_aligns():
    torch.manual_seed(0)
    cfg = _cfg(Path("."))
    model = teacher_train.Teacher(TINY_MODEL)
    b = 8
    inputs = _batch(b)
    criterion = teacher_train.InfoNCELoss()
    loss, parts = teacher_train._training_loss(model, inputs, torch.full((b,), -1), cfg, criterion)
    assert torch.isfinite(loss) and parts["ce"] == 0.0
    assert loss.item() == pytest.approx(cfg.align_weight * parts["align"], rel=1e-5)
    loss.backward()  # still differentiable


def test_slide_attribute_readouts_add_their_term_and_train_with_the_teacher():
    torch.manual_seed(0)
    cfg = _cfg(Path("."), slide_attribute_weight=0.5)
    model = teacher_train.Teacher(TINY_MODEL)
    readouts = teacher_train.SlideAttributeLoss(TINY_MODEL.embed_dim)
    b = 8
    labels = torch.stack([torch.arange(b) % 3] * 4, dim=1)  # (B, 4) known attributes
    unlabelled = torch.full((b,), -1)
    loss, parts = teacher_train._training_loss(
        model, _batch(b), unlabelled, cfg, teacher_train.InfoNCELoss(), (readouts, labels)
    )
    assert parts["slide_attr"] > 0
    expected = cfg.align_weight * parts["align"] + 0.5 * parts["slide_attr"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in readouts.parameters())
    assert model.slide_encoder.vit.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="slide_attribute_weight"):
        TeacherTrainConfig(slide_attribute_weight=-1.0)


def test_the_saved_teacher_holds_no_training_readouts(run):
    out, _, cfg = run
    assert cfg.slide_attribute_weight > 0  # the run trained with them
    state, _ = common.load_tensors(out / WEIGHTS_FILE)
    assert set(state) == set(teacher_train.Teacher(TINY_MODEL).state_dict())


def test_keep_random_subsets_each_row():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]], dtype=torch.bool)
    picks = [teacher_train._keep_random(mask, 2) for _ in range(20)]
    for keep in picks:
        assert not (keep & ~mask).any()  # only present entries
        assert keep.sum(1).tolist() == [2, 2, 0, 1]
    assert len({tuple(p[0].tolist()) for p in picks}) > 1  # random, not always the first two


# ------------------------------------------------------------------ shared helpers


def test_atomic_directory_keeps_the_old_run_on_failure(tmp_path):
    target = tmp_path / "run"
    with common.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("one")
    with pytest.raises(RuntimeError), common.atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("two")
        raise RuntimeError("crash mid-write")
    assert (target / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_embed_texts_cached_encodes_each_text_once(tmp_path):
    path = tmp_path / "cache.safetensors"
    first = common.embed_texts_cached(["a b", "c", "a b"], path, HashedBagOfWords)
    assert HashedBagOfWords.calls == [2] and first.shape == (3, 384)
    torch.testing.assert_close(first[0], first[2])
    second = common.embed_texts_cached(["c", "d e", "a b"], path, HashedBagOfWords)
    assert HashedBagOfWords.calls == [2, 1]  # only "d e" was new
    torch.testing.assert_close(second[0], first[1])
    torch.testing.assert_close(second[2], first[0])
    path.write_bytes(b"not safetensors")  # a corrupt cache is rebuilt, not fatal
    common.embed_texts_cached(["c"], path, HashedBagOfWords)
    assert HashedBagOfWords.calls[-1] == 1


def test_safetensors_helpers_round_trip_and_reject_garbage(tmp_path):
    path = tmp_path / "t.safetensors"
    common.save_tensors(path, {"x": torch.arange(6).view(2, 3)}, {"note": "hi"})
    tensors, meta = common.load_tensors(path)
    assert torch.equal(tensors["x"], torch.arange(6).view(2, 3)) and meta == {"note": "hi"}
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(InputError):
        common.load_tensors(tmp_path / "bad.safetensors")


def test_lr_factor_warms_up_then_anneals_to_zero():
    values = [common.lr_factor(p / 100, 0.1) for p in range(101)]
    assert values[0] < values[5] < values[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))
    assert values[-1] == pytest.approx(0.0, abs=1e-9) and common.lr_factor(2.0, 0.1) == 0.0


def test_resolve_device():
    assert common.resolve_device("cpu").type == "cpu"
    assert common.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError):
        common.resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            common.resolve_device("cuda")


def test_a_teacher_saved_before_facts_and_hotspots_loads_without_them(tmp_path):
    old = dataclasses.replace(TINY_MODEL, text_fact_buckets=0, hotspot_tokens=False)
    torch.manual_seed(0)
    save_teacher_weights(tmp_path / WEIGHTS_FILE, teacher_train.Teacher(old))
    model_dict = old.to_dict()
    for newer in ("text_fact_buckets", "hotspot_tokens", "dihedral_tta"):
        del model_dict[newer]  # what configs written before them look like
    config = {"kind": "teacher", "model": model_dict}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    model, model_cfg = load_teacher(tmp_path)
    assert model_cfg.text_fact_buckets == 0 and model.text_facts is None
    assert model.read_facts(["EGFR L858R"]) is None
    assert not model_cfg.featurizer().hotspot_tokens
    assert not model.slide_encoder.dihedral_tta  # its stored slide embeddings have none
    # New teachers read facts and mark known hotspots.
    new = TeacherConfig()
    assert new.text_fact_buckets > 0 and new.hotspot_tokens and new.dihedral_tta
