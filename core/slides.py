"""Whole-slide images for the viewer: DeepZoom viewports, an analysis grid of tiles, tissue QC,
tile embeddings in the teacher's shared space, and validation of uploaded slides and images.

Viewing: `SlideReader` opens a slide through OpenSlide (a pyramidal TIFF of the cohort or a
vendor file such as Aperio SVS) and renders a viewport of a DeepZoom level by pasting the
DeepZoom tiles it covers into one image; tiles are kept in an LRU cache, so panning only reads
the tiles that came into view.

Analysis: the slide is cut into a grid of cells; from each cell a centred tile of
`ANALYSIS_TILE_UM` micrometres (the field of view of the cohort's 128 px tiles, which the
teacher was trained on) is read at the pyramid level closest to the wanted resolution. Slides
too large for `max_cells` cells get larger cells with the same tile in their centre, so the
morphology's scale never changes, only the sampling density.

Tissue QC works per tile on hue, saturation and value (PIL's HSV, all 0-255):
- glass: bright and grey (V > 200, S < 26); a tile is background when most of it is glass;
- pen ink: saturated, not too dark pixels whose hue is green to blue (42 <= H <= 162, i.e.
  60-228 degrees), where neither stain lies (haematoxylin is blue-purple and eosin pink; both
  absorb green most, so H&E hues lie above 240 degrees or below 20), plus dark grey pixels
  (black ink; H&E stays saturated where dense). A tile is pen-marked when enough of it is ink.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.data.pathology import NOMINAL_MPP
from core.errors import InputError

if TYPE_CHECKING:
    from core.models.teacher import Teacher

SLIDE_SUFFIXES: tuple[str, ...] = (".svs", ".tif", ".tiff")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG")  # what PIL must find inside an image upload
ANALYSIS_TILE_UM = 128 * NOMINAL_MPP  # field of view of one cohort tile, micrometres
QC_TILE_PX = 64  # tiles are judged at this edge (ink strokes stay several pixels wide)
DEEPZOOM_TILE = 256  # DeepZoom tile edge; overlap 0, since tiles are pasted, not blended


@dataclass(frozen=True)
class UploadLimits:
    """What an upload may be. Defaults: whole slides are large, tile images are not."""

    max_slide_bytes: int = 2 * 1024**3  # an SVS at 40x is typically 0.5-2 GB
    max_image_bytes: int = 50 * 1024**2  # a tile or region snapshot
    max_image_pixels: int = 64 * 1024**2  # decoded pixels of an image (8192 x 8192)
    max_slide_pixels: int = 200_000 * 200_000  # level-0 pixels of a slide (~5x a 40x SVS)

    def max_bytes(self, suffix: str) -> int:
        return self.max_slide_bytes if suffix in SLIDE_SUFFIXES else self.max_image_bytes


@dataclass(frozen=True)
class QCConfig:
    """Thresholds of the tissue QC (PIL HSV units, 0-255). Measured on synthetic H&E (one
    1024x768 slide per cancer type, with and without pen marks, and 600 cohort-style tiles):
    pen-marked flags 0% of the slides' ink-free tiles, 1.2% of the tiles, and 74% of the
    slide tiles over 5% inked (ink over dark tissue is what it misses)."""

    glass_value: int = 200  # glass is brighter than this ...
    glass_saturation: int = 26  # ... and greyer than this (S < 0.1)
    background_share: float = 0.8  # a tile is background when this share of it is glass
    ink_hue: tuple[int, int] = (42, 162)  # green to blue hues (60-228 degrees): no H&E stain
    ink_saturation: int = 64  # coloured ink is clearly saturated (S > 0.25) ...
    ink_value: int = 90  # ... and not near black, where the hue of dense stain is noise
    black_value: int = 110  # black ink: darker than this ...
    black_saturation: int = 40  # ... and neutral grey (dense nuclei stay above S = 0.17)
    pen_share: float = 0.03  # a tile is pen-marked when this share of it is ink


@dataclass(frozen=True)
class TileQC:
    """QC of N tiles: per tile, the share of glass and of ink pixels, and the flags."""

    glass: np.ndarray  # (N,) float in [0, 1]
    ink: np.ndarray  # (N,) float in [0, 1]
    background: np.ndarray  # (N,) bool
    pen: np.ndarray  # (N,) bool, never set on a background tile

    @property
    def tissue(self) -> np.ndarray:
        """(N,) bool: tiles worth analysing (neither background nor pen-marked)."""
        return ~(self.background | self.pen)


def tile_qc(tiles: np.ndarray, cfg: QCConfig | None = None) -> TileQC:
    """Background and pen-mark flags of tiles (N, h, w, 3) uint8 RGB."""
    cfg = cfg or QCConfig()
    if tiles.ndim != 4 or tiles.shape[-1] != 3 or tiles.dtype != np.uint8:
        raise InputError(f"tiles must be (N, h, w, 3) uint8, got {tiles.shape} {tiles.dtype}")
    n = len(tiles)
    if n == 0:
        empty = np.zeros(0)
        return TileQC(empty, empty, empty.astype(bool), empty.astype(bool))
    # PIL's HSV conversion of all tiles side by side: one C call instead of per-pixel numpy.
    strip = Image.fromarray(tiles.reshape(-1, tiles.shape[2], 3))
    hsv = np.asarray(strip.convert("HSV")).reshape(n, -1, 3)
    h, s, v = (hsv[..., i].astype(np.int16) for i in range(3))  # (N, P) each
    glass = (v > cfg.glass_value) & (s < cfg.glass_saturation)
    coloured = (h >= cfg.ink_hue[0]) & (h <= cfg.ink_hue[1]) & (s > cfg.ink_saturation)
    coloured &= v > cfg.ink_value
    black = (v < cfg.black_value) & (s < cfg.black_saturation)
    glass_share, ink_share = glass.mean(1), (coloured | black).mean(1)
    background = glass_share >= cfg.background_share
    pen = (ink_share >= cfg.pen_share) & ~background
    return TileQC(glass_share, ink_share, background, pen)


# ------------------------------------------------------------------------------ grid


@dataclass(frozen=True)
class SlideGrid:
    """Analysis cells over a slide's level 0: `rows` x `cols` cells of `cell` px, each with a
    centred tile of `tile` px (tile <= cell). Cell (r, c) is row-major index r * cols + c."""

    width: int  # level-0 pixels
    height: int
    cell: int
    tile: int
    rows: int
    cols: int

    def __len__(self) -> int:
        return self.rows * self.cols

    def tile_origin(self, index: int) -> tuple[int, int]:
        """Level-0 (x, y) of the top-left corner of cell `index`'s tile."""
        r, c = divmod(index, self.cols)
        inset = (self.cell - self.tile) // 2
        return c * self.cell + inset, r * self.cell + inset


def make_grid(width: int, height: int, mpp: float, max_cells: int = 1024) -> SlideGrid:
    """The analysis grid of a `width` x `height` slide at `mpp` micrometres per pixel: cells
    of one ANALYSIS_TILE_UM tile where that gives at most `max_cells` cells, larger otherwise."""
    if width < 1 or height < 1 or mpp <= 0 or max_cells < 1:
        raise InputError(f"bad slide geometry {width}x{height} px at {mpp} um/px")
    tile = max(8, round(ANALYSIS_TILE_UM / mpp))
    cell = max(tile, math.ceil(math.sqrt(width * height / max_cells)))
    while math.ceil(width / cell) * math.ceil(height / cell) > max_cells:
        cell += max(1, cell // 32)
    return SlideGrid(width, height, cell, tile, math.ceil(height / cell), math.ceil(width / cell))


# ---------------------------------------------------------------------------- viewing


@dataclass(frozen=True)
class Viewport:
    """What the viewer shows: a DeepZoom `level`, the view's centre as fractions of the level
    image (0-1), and the output size in pixels."""

    level: int
    x: float = 0.5
    y: float = 0.5
    width: int = 960
    height: int = 640


@dataclass(frozen=True)
class View:
    """A rendered viewport: the image and the level-image box it shows, (x0, y0, x1, y1)."""

    image: np.ndarray  # (h, w, 3) uint8
    box: tuple[int, int, int, int]
    level_size: tuple[int, int]  # (width, height) of the whole level image

    def fraction_box(self) -> tuple[float, float, float, float]:
        """`box` as fractions of the level image, for drawing it on an overview."""
        w, h = self.level_size
        x0, y0, x1, y1 = self.box
        return x0 / w, y0 / h, x1 / w, y1 / h


def _rgb(region: Image.Image) -> np.ndarray:
    """A region as RGB; OpenSlide's RGBA (transparent outside the scanned area) on white glass."""
    if region.mode != "RGBA":
        return np.asarray(region.convert("RGB"))
    rgba = np.asarray(region)
    return np.where(rgba[..., 3:] == 0, np.uint8(255), rgba[..., :3])


class SlideReader:
    """One slide opened for viewing and analysis. Reading is thread-safe (OpenSlide is), so
    one reader may serve every session of the app."""

    def __init__(self, path: Path, tile_cache: int = 1024) -> None:
        import openslide
        from openslide.deepzoom import DeepZoomGenerator

        self.path = Path(path)
        try:
            self._slide = openslide.OpenSlide(self.path)
        except (openslide.OpenSlideError, OSError) as exc:
            raise InputError(f"{self.path.name}: cannot open slide ({_reason(exc)})") from exc
        self._dz = DeepZoomGenerator(self._slide, DEEPZOOM_TILE, 0, limit_bounds=False)
        self.tile = lru_cache(maxsize=tile_cache)(self._read_tile)

    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) of level 0."""
        return self._slide.dimensions

    @property
    def vendor(self) -> str:
        return self._slide.properties.get("openslide.vendor", "")

    @property
    def mpp(self) -> float:
        """Micrometres per level-0 pixel; NOMINAL_MPP when the slide does not say."""
        try:
            return float(self._slide.properties["openslide.mpp-x"])
        except (KeyError, ValueError):
            return NOMINAL_MPP

    @property
    def levels(self) -> int:
        """DeepZoom levels; the last is full resolution, each one before halves it."""
        return self._dz.level_count

    def level_size(self, level: int) -> tuple[int, int]:
        return self._dz.level_dimensions[level]

    def fit_level(self, width: int, height: int) -> int:
        """The highest DeepZoom level whose whole image fits in `width` x `height`."""
        sizes = self._dz.level_dimensions
        return max((i for i, (w, h) in enumerate(sizes) if w <= width and h <= height), default=0)

    def _read_tile(self, level: int, col: int, row: int) -> np.ndarray:
        return _rgb(self._dz.get_tile(level, (col, row)))

    def view(self, viewport: Viewport) -> View:
        """The viewport's image, made of the (cached) DeepZoom tiles it covers; the view is
        clamped to the level image, and smaller than asked where the level is smaller."""
        if not 0 <= viewport.level < self.levels:
            raise InputError(f"DeepZoom level {viewport.level} is not in 0..{self.levels - 1}")
        lw, lh = self.level_size(viewport.level)
        vw, vh = min(viewport.width, lw), min(viewport.height, lh)
        x0 = min(max(round(viewport.x * lw - vw / 2), 0), lw - vw)
        y0 = min(max(round(viewport.y * lh - vh / 2), 0), lh - vh)
        canvas = np.empty((vh, vw, 3), np.uint8)
        t = DEEPZOOM_TILE
        for row in range(y0 // t, (y0 + vh - 1) // t + 1):
            for col in range(x0 // t, (x0 + vw - 1) // t + 1):
                tile = self.tile(viewport.level, col, row)
                # Intersection of the tile (level px) with the view, in both frames.
                tx0, ty0 = col * t, row * t
                ax0, ay0 = max(tx0, x0), max(ty0, y0)
                ax1 = min(tx0 + tile.shape[1], x0 + vw)
                ay1 = min(ty0 + tile.shape[0], y0 + vh)
                canvas[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0] = tile[
                    ay0 - ty0 : ay1 - ty0, ax0 - tx0 : ax1 - tx0
                ]
        return View(canvas, (x0, y0, x0 + vw, y0 + vh), (lw, lh))

    def thumbnail(self, max_size: int = 512) -> np.ndarray:
        """The whole slide within `max_size` px, (h, w, 3) uint8."""
        return _rgb(self._slide.get_thumbnail((max_size, max_size)))

    def grid(self, max_cells: int = 1024) -> SlideGrid:
        return make_grid(*self.dimensions, self.mpp, max_cells)

    def grid_tiles(self, grid: SlideGrid, size: int) -> np.ndarray:
        """Every cell's tile, resized to `size` x `size`: (len(grid), size, size, 3) uint8.
        Each is read at the pyramid level nearest above the resolution wanted."""
        level = self._slide.get_best_level_for_downsample(grid.tile / size)
        scale = self._slide.level_downsamples[level]
        edge = max(1, round(grid.tile / scale))
        out = np.empty((len(grid), size, size, 3), np.uint8)
        for i in range(len(grid)):
            region = self._slide.read_region(grid.tile_origin(i), level, (edge, edge))
            if edge != size:
                region = region.resize((size, size), Image.Resampling.BOX)
            out[i] = _rgb(region)
        return out

    def close(self) -> None:
        self.tile.cache_clear()
        self._slide.close()


def similarity_map(
    embeddings: np.ndarray, query: np.ndarray, grid: SlideGrid, keep: np.ndarray
) -> np.ndarray:
    """Cosine of each cell's tile embedding (N, D) with the query (D,), as (rows, cols); NaN
    where `keep` (N,) is false (background, ink), so those cells draw nothing."""
    if embeddings.shape[0] != len(grid) or keep.shape != (len(grid),):
        raise InputError(f"{embeddings.shape[0]} embeddings for a grid of {len(grid)} cells")
    e = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    q = query / max(float(np.linalg.norm(query)), 1e-12)
    scores = np.where(keep, e @ q, np.nan)  # (N,)
    return scores.reshape(grid.rows, grid.cols)


def embed_tiles(teacher: Teacher, tiles: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Shared-space unit vectors (N, D) of tiles (N, h, w, 3) uint8 through the teacher's slide
    branch (each tile alone: a one-tile "case"); tiles are resized to the teacher's tile size."""
    import torch

    size = teacher.config.tile_size
    if tiles.shape[1:3] != (size, size):
        tiles = np.stack([square_tile(t, size) for t in tiles]) if len(tiles) else tiles
    out = []
    with torch.inference_mode():
        for s in range(0, len(tiles), batch_size):
            x = torch.from_numpy(np.array(tiles[s : s + batch_size]))  # a writable copy
            x = x.permute(0, 3, 1, 2).unsqueeze(1)  # (B, 1, 3, H, W)
            mask = torch.ones(x.shape[:2], dtype=torch.bool)  # (B, 1)
            out.append(teacher.embed_slide(x, mask).float().numpy())
    dim = teacher.config.embed_dim
    return np.concatenate(out) if out else np.zeros((0, dim), np.float32)


def square_tile(image: np.ndarray, size: int) -> np.ndarray:
    """The centred square of an (h, w, 3) image, box-resized to `size` x `size`."""
    h, w = image.shape[:2]
    edge = min(h, w)
    top, left = (h - edge) // 2, (w - edge) // 2
    square = Image.fromarray(image[top : top + edge, left : left + edge])
    return np.asarray(square.resize((size, size), Image.Resampling.BOX))


# ---------------------------------------------------------------------------- uploads


def _reason(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


@contextlib.contextmanager
def _pixel_cap(max_pixels: int) -> Iterator[None]:
    """PIL's decompression-bomb limit set to `max_pixels` (its warning made an error) for the
    block only; the module-wide default is restored after."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def read_image(path: Path, name: str, limits: UploadLimits | None = None) -> np.ndarray:
    """A PNG or JPEG tile image as (h, w, 3) uint8; InputError naming `name` and the reason
    when it is not one, is corrupt or truncated, or has more pixels than the limit."""
    limits = limits or UploadLimits()
    cap = limits.max_image_pixels
    try:
        with _pixel_cap(cap), Image.open(path) as image:
            if image.format not in IMAGE_FORMATS:
                raise InputError(f"{name}: a {image.format} image, expected PNG or JPEG")
            return np.asarray(image.convert("RGB"))  # decodes all: truncation shows here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"{name}: refused as a possible decompression bomb (over {cap} pixels): {exc}"
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{name}: not an image PIL can read (PNG or JPEG expected)") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's decoders raise all three
        raise InputError(f"{name}: corrupt or truncated image ({_reason(exc)})") from exc


def check_slide(path: Path, name: str, limits: UploadLimits | None = None) -> tuple[int, int]:
    """Level-0 (width, height) of a slide OpenSlide can read; InputError naming `name` when
    it cannot, when it is over the pixel limit, or when its pixels do not decode."""
    import openslide

    limits = limits or UploadLimits()
    try:
        with openslide.OpenSlide(Path(path)) as slide:
            w, h = slide.dimensions
            if w * h > limits.max_slide_pixels:
                raise InputError(
                    f"{name}: {w}x{h} pixels is over the limit of {limits.max_slide_pixels}"
                )
            slide.get_thumbnail((64, 64))  # decodes the smallest level: catches corrupt data
            return w, h
    except openslide.OpenSlideUnsupportedFormatError as exc:
        raise InputError(f"{name}: not a whole-slide image OpenSlide can read") from exc
    except (openslide.OpenSlideError, OSError) as exc:
        raise InputError(f"{name}: corrupt or unreadable slide ({_reason(exc)})") from exc
