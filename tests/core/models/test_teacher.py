"""The teacher model, its genomic featuriser and its tile pipeline (tiny configs, CPU)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from core.data.schema import Case, Variant
from core.errors import ConfigError, InputError
from core.losses.infonce import pairwise_infonce
from core.models.genomic import N_PREFIX, PAD_ID, GenomicFeaturizer
from core.models.teacher import (
    TEACHER_MODALITIES,
    Teacher,
    TeacherConfig,
    TeacherInputs,
    save_teacher_weights,
    teacher_from_weights,
)
from core.models.vision import augment_tiles, decode_tiles, dihedral_views

TINY = TeacherConfig(
    embed_dim=32, head_hidden=32, tile_size=16, patch_size=8, vit_dim=32, vit_depth=2,
    vit_heads=2, kmer=3, flank=4, max_allele=4, max_variants=8, genomic_dim=32,
    genomic_depth=2, genomic_heads=2, text_dim=24, mc_samples=8, text_fact_buckets=16,
)  # fmt: skip
B = 6
SEQ = "ACGTTGCAACGGTACCGTAAGCTTGACCAGTGCA" * 3  # a toy contig


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: thread hand-offs cost more than they save (and far more on a busy machine).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _inputs(seed: int = 0, b: int = B) -> TeacherInputs:
    g = torch.Generator().manual_seed(seed)
    f = TINY.featurizer()
    k = len(TINY.note_kinds)
    tile_mask = torch.ones(b, 3, dtype=torch.bool)
    tile_mask[0, 1:] = False  # a case with a single tile
    variant_mask = torch.rand(b, TINY.max_variants, generator=g) < 0.6
    variant_mask[:, 0] = True
    tokens = torch.randint(1, f.vocab_size, (b, TINY.max_variants, f.seq_len), generator=g)
    return TeacherInputs(
        tiles=torch.randint(0, 256, (b, 3, 3, 16, 16), generator=g, dtype=torch.uint8),
        tile_mask=tile_mask,
        variant_tokens=tokens,
        variant_mask=variant_mask,
        minilm=F.normalize(torch.randn(b, k, TINY.text_dim, generator=g), dim=-1),
        note_mask=torch.ones(b, k, dtype=torch.bool),
        note_facts=(torch.rand(b, k, TINY.text_fact_buckets, generator=g) < 0.2).float(),
    )


def _model(seed: int = 0, **changes) -> Teacher:
    torch.manual_seed(seed)
    return Teacher(dataclasses.replace(TINY, **changes)).eval()


# ----------------------------------------------------------------------------- model


def test_output_shapes_and_unit_norms():
    out = _model()(_inputs())
    for m in TEACHER_MODALITIES:
        assert out.embeddings[m].shape == (B, 32)
        torch.testing.assert_close(out.embeddings[m].norm(dim=-1), torch.ones(B))
    assert out.notes.shape == (B, len(TINY.note_kinds), 32)
    torch.testing.assert_close(out.fused.norm(dim=-1), torch.ones(B))
    assert out.logits.shape == (B, TINY.n_classes)
    assert out.present.all()


def test_public_embedders_agree_with_forward():
    model, inputs = _model(), _inputs()
    out = model(inputs)
    torch.testing.assert_close(
        model.embed_slide(inputs.tiles, inputs.tile_mask), out.embeddings["slide"]
    )
    torch.testing.assert_close(
        model.embed_genomic(inputs.variant_tokens, inputs.variant_mask), out.embeddings["genomic"]
    )
    torch.testing.assert_close(
        model.embed_text(inputs.minilm[:, 1], inputs.note_facts[:, 1]), out.notes[:, 1]
    )


def test_fact_channel_starts_neutral_then_learns_and_is_required():
    with_facts, inputs = _model(), _inputs()
    without = _model(text_fact_buckets=0)  # same seed: every other weight is identical
    minilm, facts = inputs.minilm[:, 0], inputs.note_facts[:, 0]
    torch.testing.assert_close(with_facts.embed_text(minilm, facts), without.embed_text(minilm))
    with_facts.train()
    with_facts.embed_text(minilm, facts).sum().backward()
    grad = with_facts.text_facts.weight.grad
    assert grad[facts.any(0).bool()].abs().sum() > 0  # present facts learn
    assert grad[~facts.any(0).bool()].abs().sum() == 0  # absent ones are untouched
    with pytest.raises(ValueError, match="note facts"):
        with_facts.embed_text(minilm)


@pytest.mark.parametrize("fusion", ["attention", "mean"])
def test_fusion_copes_with_missing_modalities(fusion):
    model, full_in = _model(fusion=fusion), _inputs()
    full = model(full_in)
    # Genomics absent for the whole batch, slide absent for rows 0-2 (mask all false).
    tile_mask = full_in.tile_mask.clone()
    tile_mask[:3] = False
    partial_in = dataclasses.replace(
        full_in, variant_tokens=None, variant_mask=None, tile_mask=tile_mask
    )
    partial = model(partial_in)
    assert torch.isfinite(partial.fused).all() and torch.isfinite(partial.logits).all()
    assert partial.present[:, 1].logical_not().all() and partial.present[:3, 0].logical_not().all()
    assert not torch.allclose(partial.fused, full.fused, atol=1e-4)
    # Rows 0-2 have text only: their fused embedding is the text embedding.
    torch.testing.assert_close(partial.fused[:3], full.embeddings["text"][:3])
    # A case with nothing at all gets a zero embedding, not NaN.
    nothing = dataclasses.replace(
        partial_in, note_mask=torch.zeros_like(full_in.note_mask), tile_mask=tile_mask
    )
    out = model(nothing)
    assert torch.isfinite(out.logits).all()
    assert (out.fused[:3] == 0).all()


def test_one_batch_overfit():
    model = _model().train()
    inputs = _inputs()
    labels = torch.arange(B) % TINY.n_classes
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def loss_fn() -> torch.Tensor:
        out = model(inputs)
        align = pairwise_infonce(out.embeddings)
        return align + F.cross_entropy(out.logits, labels)

    first = loss_fn().item()
    for _ in range(50):
        loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.25 * first
    assert (model.eval()(inputs).logits.argmax(1) == labels).all()


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model, inputs = _model(), _inputs()
    path = tmp_path / "teacher.safetensors"
    save_teacher_weights(path, model)
    assert path.read_bytes()[:1] != b"\x80"  # safetensors, not a pickle
    loaded = teacher_from_weights(path, TINY)
    a, b = model(inputs), loaded(inputs)
    torch.testing.assert_close(a.fused, b.fused, rtol=0, atol=0)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    with pytest.raises(InputError):
        teacher_from_weights(path, dataclasses.replace(TINY, embed_dim=16))


def test_mc_dropout_variance_positive_and_seeded():
    model, inputs = _model(dropout=0.3), _inputs()
    rng_before = torch.random.get_rng_state()
    probs, var = model.predict_with_uncertainty(inputs, seed=3)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # global RNG untouched
    assert probs.shape == (B, TINY.n_classes) and var.shape == (B,)
    torch.testing.assert_close(probs.sum(-1), torch.ones(B))
    assert (var > 0).all() and (var <= 0.25).all()
    again_p, again_v = model.predict_with_uncertainty(inputs, seed=3)
    assert torch.equal(probs, again_p) and torch.equal(var, again_v)
    _, other_v = model.predict_with_uncertainty(inputs, seed=4)
    assert not torch.equal(var, other_v)
    assert not model.training  # mode restored
    # One set of passes also gives each note's own prediction; without notes there is none.
    pred = model.mc_dropout(inputs, seed=3)
    assert torch.equal(pred.probs, probs) and torch.equal(pred.variance, var)
    k = len(TINY.note_kinds)
    assert pred.note_probs.shape == (B, k, TINY.n_classes) and pred.note_variance.shape == (B, k)
    assert (pred.note_variance > 0).all()
    no_notes = dataclasses.replace(inputs, minilm=None, note_mask=None, note_facts=None)
    assert model.mc_dropout(no_notes).note_probs is None
    # Without dropout every pass agrees: zero variance.
    _, no_var = _model(dropout=0.0).predict_with_uncertainty(inputs)
    assert torch.allclose(no_var, torch.zeros(B), atol=1e-10)


def test_config_rejects_unknown_keys_and_bad_values():
    assert TeacherConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ConfigError, match="unknown keys"):
        TeacherConfig.from_dict({"embed_dim": 32, "hidden_size": 3})
    with pytest.raises(ConfigError):
        TeacherConfig(tile_size=20, patch_size=8)
    with pytest.raises(ConfigError):
        TeacherConfig(fusion="sum")
    with pytest.raises(ConfigError):
        TeacherConfig(kmer=9)


# ------------------------------------------------------------------------ featuriser


def _variant(**changes) -> Variant:
    base = Variant(
        chrom="chr1", pos=20, ref="A", alt="T", gene="BRAF", consequence="missense_variant",
        hgvsp="p.V600E", role="driver", vaf=0.41, depth=200,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def _case(variants) -> Case:
    return Case(
        case_id="X", cancer_type="SKCM", label="SKCM", subtype="SKCM_BRAF", stage="II",
        grade=2, age=50, sex="F", split="train", variants=tuple(variants),
    )  # fmt: skip


def test_featurizer_never_reads_role_or_annotation():
    f = TINY.featurizer()
    seqs = {"chr1": SEQ}
    variants = [
        _variant(),
        _variant(pos=30, alt="<DUP>", consequence="transcript_amplification", vaf=0.8),
        _variant(pos=40, gene="PASS1", role="passenger", vaf=0.1),
    ]
    tokens, mask = f.featurize([_case(variants)], seqs)
    flipped = [
        dataclasses.replace(v, role=r, annotation="Aktivierende Mutation", annotation_lang="de")
        for v, r in zip(variants, ("benign", "passenger", "driver"), strict=True)
    ]
    tokens2, mask2 = f.featurize([_case(flipped)], seqs)
    assert torch.equal(tokens, tokens2) and torch.equal(mask, mask2)
    assert mask.sum() == 3 and tokens.dtype == torch.int32


def test_featurizer_tokens_follow_the_sequence_and_allele_kind():
    f = TINY.featurizer()
    seqs = {"chr1": SEQ}
    ref_base = SEQ[19]
    snv = f.variant_tokens(_variant(ref=ref_base, alt="C" if ref_base != "C" else "G"), seqs)
    ref_like = f.variant_tokens(_variant(ref=ref_base, alt=ref_base), seqs)
    first = N_PREFIX + int(f.hotspot_tokens)  # the k-mers follow the prefix tokens
    kmers = slice(first, first + 2 * f.flank + 1 - f.kmer + 1)
    # A substitution changes exactly k of the overlapping k-mers.
    assert sum(a != b for a, b in zip(snv[kmers], ref_like[kmers], strict=True)) == f.kmer
    kinds = {
        alt: f.variant_tokens(_variant(alt=alt), seqs)[4]
        for alt in ("T", "<DUP>", "<DEL>", "T[chr2:100[", "<DUP:TANDEM>")
    }
    assert kinds["<DUP>"] == f.vocab["KIND:<DUP>"] == kinds["<DUP:TANDEM>"]
    assert kinds["<DEL>"] == f.vocab["KIND:<DEL>"]
    assert kinds["T[chr2:100["] == f.vocab["KIND:BND"]
    assert len(set(kinds.values())) == 4
    # Every row has the fixed length; an unknown contig gives [UNK] k-mers, never a crash.
    off = f.variant_tokens(_variant(chrom="chrUn"), seqs)
    assert len(off) == f.seq_len and off[kmers] == [f.vocab["[UNK]"]] * len(off[kmers])
    long_del = f.variant_tokens(_variant(ref=SEQ[19:35], alt=SEQ[19]), seqs)
    assert len(long_del) == f.seq_len and long_del[4] == f.vocab["KIND:DEL"]
    assert f.variant_tokens(_variant(pos=2), seqs)[-1] == PAD_ID  # near the contig start


def test_featurizer_caps_by_vaf_in_file_order():
    f = dataclasses.replace(GenomicFeaturizer(), max_variants=3)
    vafs = [0.1, 0.9, 0.2, 0.8, 0.7]
    variants = [_variant(pos=10 + i, vaf=v) for i, v in enumerate(vafs)]
    assert [v.vaf for v in f.kept(variants)] == [0.9, 0.8, 0.7]
    tokens, mask = f.featurize([_case(variants), _case([])])
    assert mask.tolist() == [[True, True, True], [False, False, False]]
    assert (tokens[1] == PAD_ID).all()


def test_hotspot_token_names_only_known_driver_changes():
    f = dataclasses.replace(GenomicFeaturizer(), hotspot_tokens=True)
    assert f.seq_len == GenomicFeaturizer().seq_len + 1
    slot = N_PREFIX  # right after the prefix; the k-mers follow

    def token(**kw) -> int:
        return f.variant_tokens(_variant(**kw), {"chr1": SEQ})[slot]

    v600e = token(gene="BRAF", hgvsp="p.V600E")
    assert v600e == f.vocab["HOT:BRAF:V600E"]
    assert token(gene="KRAS", hgvsp="p.G12D") not in (v600e, f.vocab["HOT:none"])
    # A change the tables do not list, the same change in another gene, a passenger and a
    # copy-number call without HGVSp all share the one "none" token.
    for kw in ({"gene": "BRAF", "hgvsp": "p.V601A"}, {"gene": "NRAS", "hgvsp": "p.V600E"},
               {"gene": "PASS1", "hgvsp": "p.R12H"}, {"gene": "ERBB2", "hgvsp": ""}):  # fmt: skip
        assert token(**kw) == f.vocab["HOT:none"], kw


def test_genomic_encoder_ignores_padding_variants():
    model = _model()
    inputs = _inputs()
    a = model.embed_genomic(inputs.variant_tokens, inputs.variant_mask)
    garbage = inputs.variant_tokens.clone()
    garbage[~inputs.variant_mask] = 7  # change only the masked-out rows
    b = model.embed_genomic(garbage, inputs.variant_mask)
    torch.testing.assert_close(a, b)
    # Recurring variants are encoded once per batch; that must not change any case's result.
    tokens = inputs.variant_tokens.clone()
    tokens[1:, 0] = tokens[0, 0]  # the same first variant in every case
    batch = model.embed_genomic(tokens, inputs.variant_mask)
    alone = torch.cat([model.embed_genomic(tokens[i : i + 1], inputs.variant_mask[i : i + 1])
                       for i in range(B)])  # fmt: skip
    torch.testing.assert_close(batch, alone)


# ----------------------------------------------------------------------------- tiles


def test_decode_tiles_resizes_and_masks(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        rel = f"tiles/t{i}.jpg"
        (tmp_path / "tiles").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / rel)
        paths.append(rel)
    cases = [
        dataclasses.replace(_case([]), tile_paths=tuple(paths)),
        dataclasses.replace(_case([]), tile_paths=()),
    ]
    tiles, mask = decode_tiles(tmp_path, cases, size=16, max_tiles=2)
    assert tiles.shape == (2, 2, 3, 16, 16) and tiles.dtype == torch.uint8
    assert mask.tolist() == [[True, True], [False, False]]
    assert tiles[0].float().std() > 10 and (tiles[1] == 0).all()
    bad = dataclasses.replace(_case([]), tile_paths=("tiles/missing.jpg",))
    with pytest.raises(InputError, match="missing.jpg"):
        decode_tiles(tmp_path, [bad], size=16, max_tiles=1)


def test_augment_tiles_only_moves_pixels():
    tiles = torch.randint(0, 256, (4, 2, 3, 8, 8), dtype=torch.uint8)
    torch.manual_seed(0)
    out = augment_tiles(tiles)
    assert out.shape == tiles.shape and not torch.equal(out, tiles)
    # A flip or transpose permutes pixels within a tile: per-tile sorted values are unchanged.
    assert torch.equal(out.flatten(-3).sort(-1).values, tiles.flatten(-3).sort(-1).values)


def test_dihedral_views_are_the_eight_symmetries_identity_first():
    tile = torch.arange(16.0).reshape(1, 4, 4)
    views = dihedral_views(tile)
    assert len(views) == 8 and torch.equal(views[0], tile)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    # Closed under the flips and transposes augment_tiles draws from.
    keys = {tuple(v.flatten().tolist()) for v in views}
    for op in (lambda x: x.flip(-1), lambda x: x.flip(-2), lambda x: x.transpose(-1, -2)):
        assert all(tuple(op(v).flatten().tolist()) in keys for v in views)


def test_eval_slide_features_with_tta_ignore_a_tile_s_orientation():
    torch.manual_seed(0)
    tta = _model(dihedral_tta=True).eval()
    plain = _model(dihedral_tta=False).eval()  # same seed: the same weights
    inputs = _inputs()
    turned = inputs.tiles.rot90(1, dims=(-2, -1)).transpose(-1, -2)  # another symmetry
    with torch.no_grad():
        a = tta.embed_slide(inputs.tiles, inputs.tile_mask)
        b = tta.embed_slide(turned, inputs.tile_mask)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(
            plain.embed_slide(inputs.tiles, inputs.tile_mask),
            plain.embed_slide(turned, inputs.tile_mask),
            atol=1e-4,
        )
    # Training sees one (random) view per step: TTA is an eval-mode average only.
    tta.train(), plain.train()
    torch.manual_seed(1)
    train_tta = tta.slide_encoder(inputs.tiles, inputs.tile_mask)
    torch.manual_seed(1)
    torch.testing.assert_close(train_tta, plain.slide_encoder(inputs.tiles, inputs.tile_mask))
