"""Behaviour of the procedural H&E renderer: shapes, determinism, grade and type signals,
colour confounding, whole slides with pen marks, pyramidal TIFFs and tile files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openslide
import pytest
from openslide.deepzoom import DeepZoomGenerator

from core.data import pathology
from core.data.pathology import (
    load_tile,
    render_slide,
    render_tiles,
    save_tile,
    write_pyramidal_tiff,
)
from core.data.schema import CANCER_TYPES, NECROSIS_LEVELS, SUBTYPES, TIL_LEVELS
from core.errors import InputError

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _luminance(images: np.ndarray) -> np.ndarray:
    """Luminance scaled by each image's bright end (its glass or clearest cytoplasm), so
    statistics do not depend on the slide's stain strength."""
    lum = images.astype(np.float32) @ _LUMA
    return lum / np.percentile(lum, 99, axis=(-2, -1), keepdims=True)


def test_tiles_have_requested_shape_and_real_content() -> None:
    tiles = render_tiles("LUAD", "LUAD_EGFR", 2, np.random.default_rng(0), 5, 96)
    assert tiles.shape == (5, 96, 96, 3) and tiles.dtype == np.uint8
    assert tiles.min() < 120 and tiles.max() > 200  # nuclei and glass/lumina both present
    assert render_tiles("GBM", "", 0, np.random.default_rng(0), 0).shape == (0, 128, 128, 3)


def test_every_subtype_renders_with_pattern_shares_summing_to_one() -> None:
    assert set(pathology._PATTERNS) == {s for subs in SUBTYPES.values() for s in subs}
    for subtype, patterns in pathology._PATTERNS.items():
        assert sum(share for share, _ in patterns) == pytest.approx(1.0), subtype
    for cancer_type, subtypes in SUBTYPES.items():
        for k, subtype in enumerate(subtypes):
            tiles = render_tiles(cancer_type, subtype, 1 + k % 3, np.random.default_rng(k), 2, 48)
            assert tiles.shape == (2, 48, 48, 3)
            assert tiles.std() > 5, subtype  # not a flat image


def test_rendering_is_deterministic_given_the_seed() -> None:
    a = render_tiles("COAD", "COAD_MSS", 2, np.random.default_rng(42), 3, 64)
    b = render_tiles("COAD", "COAD_MSS", 2, np.random.default_rng(42), 3, 64)
    c = render_tiles("COAD", "COAD_MSS", 2, np.random.default_rng(43), 3, 64)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 10


def test_higher_grade_means_more_nuclear_dark_pixels() -> None:
    for cancer_type in ("BRCA", "KIRC", "SARC"):
        dark = []
        for grade in (1, 2, 3):
            fractions = [
                (
                    _luminance(
                        render_tiles(cancer_type, "", grade, np.random.default_rng(s), 6, 64)
                    )
                    < 0.55
                ).mean()
                for s in range(5)
            ]
            dark.append(np.mean(fractions))
        assert dark[0] < dark[1] < dark[2], (cancer_type, dark)
        assert dark[2] > 2 * dark[0], (cancer_type, dark)


def test_histology_levels_show_in_the_tiles() -> None:
    """Absent TILs and necrosis add nothing; brisk TILs add dark lymphocytes, extensive
    necrosis replaces tissue with pale granular debris (fewer dark, fewer bright pixels)."""
    absent = (TIL_LEVELS[0], NECROSIS_LEVELS[0])

    def tiles(histology: tuple[str, ...], seed: int) -> np.ndarray:
        return render_tiles("KIRC", "KIRC_CCA", 2, np.random.default_rng(seed), 4, 64, histology)

    np.testing.assert_array_equal(tiles(absent, 3), tiles((), 3))
    dark, bright = {}, {}
    for name, histology in {"absent": absent, "brisk": (TIL_LEVELS[2], NECROSIS_LEVELS[0]),
                            "necrotic": (TIL_LEVELS[0], NECROSIS_LEVELS[2])}.items():  # fmt: skip
        lum = np.stack([_luminance(tiles(histology, s)) for s in range(4)])
        dark[name], bright[name] = (lum < 0.55).mean(), (lum > 0.9).mean()
    assert dark["brisk"] > 1.5 * dark["absent"], dark
    assert bright["necrotic"] < 0.8 * bright["absent"], bright
    with pytest.raises(InputError, match="histology"):
        tiles((NECROSIS_LEVELS[1], TIL_LEVELS[1]), 0)


def test_sampled_histology_never_calls_a_defining_feature_absent() -> None:
    rng = np.random.default_rng(0)
    draws = {s: {pathology.sample_histology(s, 3, rng) for _ in range(200)}
             for s in ("BRCA_TNBC", "GBM_MGMT_METH", "PRAD_ERG")}  # fmt: skip
    assert all(til != TIL_LEVELS[0] for til, _ in draws["BRCA_TNBC"])
    assert all(necrosis != NECROSIS_LEVELS[0] for _, necrosis in draws["GBM_MGMT_METH"])
    assert {til for til, _ in draws["PRAD_ERG"]} == set(TIL_LEVELS)
    assert {necrosis for _, necrosis in draws["PRAD_ERG"]} == set(NECROSIS_LEVELS)
    with pytest.raises(InputError, match="subtype"):
        pathology.sample_histology("NOPE", 2, rng)


def test_clear_cell_and_squamous_textures_differ() -> None:
    """Clear cells leave most of the tissue near-white; squamous nests are dense and pink."""

    def clear_share(cancer_type: str) -> float:
        shares = [
            np.median(
                (
                    _luminance(render_tiles(cancer_type, "", 2, np.random.default_rng(s), 6)) > 0.9
                ).mean(axis=(1, 2))
            )
            for s in range(4)
        ]
        return float(np.mean(shares))

    assert clear_share("KIRC") > clear_share("LUSC") + 0.12


def test_mean_colour_alone_does_not_identify_the_type() -> None:
    """Nearest centroid on per-tile mean RGB, trained and tested on different slides."""
    rng = np.random.default_rng(3)
    colours, labels, held_out = [], [], []
    for label, cancer_type in enumerate(CANCER_TYPES):
        for case in range(10):
            subtypes = SUBTYPES[cancer_type]
            tiles = render_tiles(
                cancer_type, subtypes[case % len(subtypes)], 1 + case % 3, rng, 2, 96
            )
            colours.append(tiles.reshape(2, -1, 3).mean(axis=1))
            labels += [label] * 2
            held_out += [case >= 7] * 2
    x, y, test = np.concatenate(colours), np.array(labels), np.array(held_out)
    centroids = np.stack([x[~test & (y == k)].mean(axis=0) for k in range(len(CANCER_TYPES))])
    predicted = ((x[test, None] - centroids[None]) ** 2).sum(axis=-1).argmin(axis=1)
    accuracy = (predicted == y[test]).mean()
    assert accuracy < 0.5, accuracy


def test_slide_has_tissue_on_glass_and_pen_marks_show() -> None:
    plain = render_slide("THCA", "", 1, np.random.default_rng(5), 512, 384)
    inked = render_slide("THCA", "", 1, np.random.default_rng(5), 512, 384, pen_marks=True)
    assert plain.shape == (384, 512, 3) and plain.dtype == np.uint8
    tissue = (_luminance(plain) < 0.92).mean()
    assert 0.05 < tissue < 0.9, tissue
    assert _luminance(plain)[[0, 0, -1, -1], [0, -1, 0, -1]].min() > 0.9  # glass corners
    changed = (np.abs(inked.astype(int) - plain.astype(int)).max(axis=-1) > 60).mean()
    assert changed > 0.002, changed


def test_pyramidal_tiff_opens_in_openslide_with_deepzoom(tmp_path: Path) -> None:
    image = render_slide("KIRC", "", 2, np.random.default_rng(1), 1024, 768)
    path = write_pyramidal_tiff(tmp_path / "slide.tiff", image, compression="zlib")
    assert [p.name for p in tmp_path.iterdir()] == ["slide.tiff"]  # no temp file left behind
    with openslide.OpenSlide(path) as slide:
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == "generic-tiff"
        assert slide.level_count >= 3
        assert slide.level_dimensions[0] == (1024, 768)
        assert slide.level_dimensions[1] == (512, 384)
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(0.5)
        region = np.asarray(slide.read_region((300, 200), 0, (64, 48)).convert("RGB"))
        np.testing.assert_array_equal(region, image[200:248, 300:364])  # zlib is lossless
        deepzoom = DeepZoomGenerator(slide, tile_size=254, overlap=1)
        top = deepzoom.get_tile(deepzoom.level_count - 1, (1, 1))
        assert top.size == (256, 256)


def test_pyramidal_tiff_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        write_pyramidal_tiff(tmp_path / "x.tiff", np.zeros((64, 64), np.uint8))
    with pytest.raises(InputError):
        write_pyramidal_tiff(tmp_path / "x.tiff", np.zeros((64, 64, 3), np.uint8), tile=100)


def test_tile_round_trip_and_unreadable_file(tmp_path: Path) -> None:
    tile = render_tiles("SKCM", "SKCM_BRAF", 2, np.random.default_rng(9), 1)[0]
    path = tmp_path / "sub" / "tile.jpg"
    save_tile(path, tile, quality=95)
    assert [p.name for p in path.parent.iterdir()] == ["tile.jpg"]
    loaded = load_tile(path)
    assert loaded.shape == tile.shape and loaded.dtype == np.uint8
    assert np.abs(loaded.astype(int) - tile.astype(int)).mean() < 3
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="bad.jpg"):
        load_tile(bad)


@pytest.mark.parametrize(
    ("cancer_type", "subtype", "grade"),
    [("XXXX", "", 1), ("BRCA", "LUAD_EGFR", 1), ("BRCA", "", 4)],
)
def test_invalid_arguments_raise_input_error(cancer_type: str, subtype: str, grade: int) -> None:
    with pytest.raises(InputError):
        render_tiles(cancer_type, subtype, grade, np.random.default_rng(0), 1)
