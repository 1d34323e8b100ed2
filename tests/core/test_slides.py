"""core.slides: tissue QC on synthetic tiles, the analysis grid, DeepZoom viewports against
OpenSlide's own pixels, the similarity map, tile embeddings, and upload validation."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import openslide
import pytest
import torch
from PIL import Image

from core.data import pathology
from core.errors import InputError
from core.models.teacher import Teacher, TeacherConfig
from core.slides import (
    QC_TILE_PX,
    SlideReader,
    UploadLimits,
    Viewport,
    check_slide,
    embed_tiles,
    make_grid,
    read_image,
    similarity_map,
    tile_qc,
)


def he_tiles(n: int = 8) -> np.ndarray:
    """H&E-like tissue tiles (n, 64, 64, 3): full-tissue tiles of several types."""
    rng = np.random.default_rng(3)
    tiles = [pathology.render_tiles(t, "", 2, rng, 6, 128) for t in ("BRCA", "COAD", "SKCM")]
    tiles = np.concatenate(tiles)
    small = np.stack([np.asarray(Image.fromarray(t).resize((64, 64))) for t in tiles])
    full = small[tile_qc(small).glass < 0.05]  # drop the few edge and glass tiles
    assert len(full) >= n
    return full[:n]


def with_stroke(tile: np.ndarray, colour: tuple[int, int, int], width: int = 6) -> np.ndarray:
    marked = tile.copy()
    for dx in range(width):
        idx = np.arange(64)
        marked[idx, np.clip(idx // 2 + 16 + dx, 0, 63)] = colour  # a diagonal band
    return marked


def test_qc_flags_glass_as_background_and_ink_as_pen_but_not_stained_tissue() -> None:
    tissue = he_tiles(6)
    white = np.full((1, 64, 64, 3), 245, np.uint8) + np.random.default_rng(0).integers(
        0, 6, (1, 64, 64, 3), dtype=np.uint8
    )
    blue = with_stroke(tissue[0], (40, 80, 190))[None]  # blue marker over tissue
    green = with_stroke(tissue[1], (40, 150, 70))[None]
    black = with_stroke(tissue[2], (45, 45, 50))[None]
    qc = tile_qc(np.concatenate([tissue, white, blue, green, black]))
    assert qc.background.tolist() == [False] * 6 + [True] + [False] * 3
    assert qc.pen.tolist() == [False] * 7 + [True] * 3
    assert qc.tissue.tolist() == [True] * 6 + [False] * 4
    assert qc.glass[6] > 0.95 and (qc.glass[:6] < 0.05).all()


def test_qc_rejects_what_is_not_rgb_tiles() -> None:
    with pytest.raises(InputError, match="uint8"):
        tile_qc(np.zeros((2, 8, 8), np.uint8))
    assert len(tile_qc(np.zeros((0, 8, 8, 3), np.uint8)).pen) == 0


def test_grid_keeps_the_tile_scale_and_bounds_the_cell_count() -> None:
    small = make_grid(1024, 768, mpp=1.0)
    assert (small.rows, small.cols, small.cell, small.tile) == (6, 8, 128, 128)
    assert small.tile_origin(9) == (128, 128)
    # A 40x SVS: 0.25 um/px, so a 128 um tile is 512 px; cells grow, tiles do not.
    huge = make_grid(100_000, 80_000, mpp=0.25, max_cells=1024)
    assert huge.tile == 512 and len(huge) <= 1024 and huge.cell >= 2795
    assert huge.cols * huge.cell >= 100_000 and huge.rows * huge.cell >= 80_000
    x, y = huge.tile_origin(len(huge) - 1)
    assert x + huge.tile <= huge.cols * huge.cell and y + huge.tile <= huge.rows * huge.cell


@pytest.fixture(scope="module")
def slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640x480 pyramidal TIFF: tissue on the right, bare glass on the left third."""
    image = pathology.render_slide("BRCA", "", 2, np.random.default_rng(1), 640, 480)
    image[:, :256] = 242  # glass
    path = tmp_path_factory.mktemp("slide") / "slide.tiff"
    return pathology.write_pyramidal_tiff(path, image, tile=128, mpp=1.0)


def test_full_resolution_view_is_the_slides_own_pixels(slide: Path) -> None:
    reader = SlideReader(slide)
    top = reader.levels - 1
    assert reader.level_size(top) == (640, 480) and reader.mpp == 1.0
    view = reader.view(Viewport(top, x=0.6, y=0.4, width=300, height=200))
    x0, y0, x1, y1 = view.box
    assert (x1 - x0, y1 - y0) == (300, 200) and (x0, y0) == (234, 92)
    with openslide.OpenSlide(slide) as raw:
        expected = np.asarray(raw.read_region((x0, y0), 0, (300, 200)).convert("RGB"))
    np.testing.assert_array_equal(view.image, expected)
    # Clamped at the right edge; a level smaller than the viewport is shown whole.
    assert reader.view(Viewport(top, x=1.0, y=1.0, width=300, height=200)).box[2:] == (640, 480)
    fit = reader.fit_level(400, 300)
    assert reader.level_size(fit) == (320, 240)
    whole = reader.view(Viewport(fit, width=400, height=300))
    assert whole.image.shape == (240, 320, 3) and whole.fraction_box() == (0, 0, 1, 1)
    with pytest.raises(InputError, match="level"):
        reader.view(Viewport(top + 1))


def test_grid_tiles_and_qc_see_the_glass_side(slide: Path) -> None:
    reader = SlideReader(slide)
    grid = reader.grid()
    assert (grid.rows, grid.cols) == (4, 5)
    tiles = reader.grid_tiles(grid, QC_TILE_PX)
    assert tiles.shape == (20, 64, 64, 3)
    background = tile_qc(tiles).background.reshape(4, 5)
    assert background[:, :2].all()  # the glass third
    assert reader.thumbnail(160).shape[1] == 160


def test_similarity_map_is_cosine_with_nan_off_tissue() -> None:
    grid = make_grid(256, 128, mpp=1.0)  # 1 x 2 cells
    embeddings = np.array([[3.0, 0.0], [1.0, 1.0]])
    scores = similarity_map(embeddings, np.array([0.0, 2.0]), grid, np.array([True, True]))
    np.testing.assert_allclose(scores, [[0.0, np.sqrt(0.5)]])
    masked = similarity_map(embeddings, np.array([1.0, 0.0]), grid, np.array([False, True]))
    assert np.isnan(masked[0, 0]) and masked[0, 1] == pytest.approx(np.sqrt(0.5))
    with pytest.raises(InputError):
        similarity_map(embeddings[:1], np.array([1.0, 0.0]), grid, np.array([True, True]))


def test_embed_tiles_is_the_teachers_slide_branch_on_one_tile() -> None:
    torch.manual_seed(0)
    cfg = TeacherConfig(embed_dim=16, head_hidden=32, tile_size=32, vit_dim=32, vit_heads=2,
                        vit_depth=1, genomic_dim=16, genomic_depth=1, genomic_heads=2)  # fmt: skip
    teacher = Teacher(cfg).eval()
    tiles = he_tiles(3)  # 64 px: resized to the teacher's 32
    out = embed_tiles(teacher, tiles, batch_size=2)
    assert out.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    small = torch.from_numpy(np.stack([np.asarray(Image.fromarray(t).resize((32, 32),
                             Image.Resampling.BOX)) for t in tiles]))  # fmt: skip
    with torch.no_grad():
        direct = teacher.embed_slide(
            small.permute(0, 3, 1, 2)[:, None], torch.ones(3, 1, dtype=bool)
        )
    np.testing.assert_allclose(out, direct.numpy(), atol=1e-5)


# ------------------------------------------------------------------------------ uploads


def png_header(width: int, height: int) -> bytes:
    """A PNG claiming width x height RGB pixels: signature, IHDR, an empty IDAT and IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_read_image_accepts_a_png_and_a_jpeg(tmp_path: Path) -> None:
    tile = he_tiles(1)[0]
    for fmt, name in (("PNG", "t.png"), ("JPEG", "t.jpg")):
        Image.fromarray(tile).save(tmp_path / name, format=fmt)
        assert read_image(tmp_path / name, name).shape == (64, 64, 3)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8)), "not an image"),
        (b"patient: Maria Silva\nnot an image\n", "not an image"),  # a text file named .png
        (png_header(100_000, 100_000), "decompression bomb"),  # PIL's error: over 2x the cap
        (png_header(5000, 5000), "decompression bomb"),  # PIL's warning: over the cap
    ],
)
def test_read_image_refuses_bad_files_naming_them(tmp_path: Path, data: bytes, reason: str) -> None:
    path = write(tmp_path, "upload.bin", data)
    limits = UploadLimits(max_image_pixels=4000 * 4000)
    with pytest.raises(InputError, match=reason) as err:
        read_image(path, "scan.png", limits)
    assert str(err.value).startswith("scan.png: ")
    assert Image.MAX_IMAGE_PIXELS != limits.max_image_pixels  # restored after the check


def test_read_image_refuses_a_gif_and_a_corrupt_or_truncated_png(tmp_path: Path) -> None:
    tile = he_tiles(1)[0]
    Image.fromarray(tile).save(tmp_path / "a.gif", format="GIF")
    with pytest.raises(InputError, match="GIF image, expected PNG or JPEG"):
        read_image(tmp_path / "a.gif", "a.png")
    Image.fromarray(tile).save(tmp_path / "b.png", format="PNG")
    data = (tmp_path / "b.png").read_bytes()
    with pytest.raises(InputError, match="c.png: corrupt or truncated"):
        read_image(write(tmp_path, "c.png", data[: len(data) // 2]), "c.png")
    start = data.index(b"IDAT") + 8  # garble the compressed pixels, keep the header intact
    garbled = (
        data[:start] + bytes(b ^ 0x5A for b in data[start : start + 200]) + data[start + 200 :]
    )
    with pytest.raises(InputError, match="d.png: corrupt or truncated"):
        read_image(write(tmp_path, "d.png", garbled), "d.png")


def test_check_slide_opens_a_pyramidal_tiff_and_refuses_others(slide: Path, tmp_path: Path) -> None:
    assert check_slide(slide, "s.tiff") == (640, 480)
    with pytest.raises(InputError, match="over the limit"):
        check_slide(slide, "s.tiff", UploadLimits(max_slide_pixels=1000))
    text = write(tmp_path, "x.svs", b"just some text\n" * 10)
    with pytest.raises(InputError, match="x.svs: not a whole-slide image"):
        check_slide(text, "x.svs")
    truncated = write(tmp_path, "t.tiff", slide.read_bytes()[:3000])
    with pytest.raises(InputError, match="t.tiff: "):
        check_slide(truncated, "t.tiff")
