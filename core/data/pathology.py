"""Procedurally rendered H&E-like pathology tiles and whole-slide images.

Rendering imitates brightfield microscopy. An architecture function lays out stain
*concentrations* for a batch of tiles (eosin for stroma, cytoplasm, colloid and keratin;
diffuse haematoxylin for mucin, debris and glia; melanin) and where nuclei sit and of which
kind. Nuclei are stamped from a cached bank of pre-rendered sprites whose size, shape and
chromatin follow the grade, and Beer-Lambert's law turns concentrations into RGB with stain
vectors drawn per slide (Macenko-like colour variation), followed by defocus blur, sensor
noise and JPEG, so that a model has to learn morphology rather than a colour.

Everything is vectorised over the batch: smooth fields are coarse random grids expanded by
small matrix products, and tessellations (cells, glands, nests, vessels) are Voronoi
diagrams on a jittered grid computed at half resolution. The nominal scale is about
NOMINAL_MPP micrometres per pixel: nuclei are 4-14 px across and a 128 px tile holds a
few glands.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache, partial
from importlib.util import find_spec
from pathlib import Path
from statistics import NormalDist

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from core.data.schema import CANCER_TYPES, NECROSIS_LEVELS, SUBTYPES, TIL_LEVELS, is_histology
from core.errors import InputError
from core.io import atomic_path

NOMINAL_MPP = 1.0  # micrometres per pixel the morphology is drawn at (a 10x objective)

Shape = tuple[int, int, int]  # (tiles, height, width)
Points = tuple[np.ndarray, np.ndarray, np.ndarray]  # (tile index, y, x) of N points

# Stain optical density per unit concentration (rows: haematoxylin, eosin, melanin), from
# Macenko et al. 2009's reference H&E vectors; melanin is a brown absorbing mostly blue.
_REFERENCE_OD = np.array(
    [[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581], [0.3300, 0.5100, 0.7900]],
    dtype=np.float32,
)
# Marker inks (optical density at full strength): blue, green, black.
_PEN_OD = np.array([[2.1, 1.5, 0.5], [2.1, 0.6, 1.5], [1.9, 1.9, 1.8]], dtype=np.float32)

# Chromatin textures of the nucleus sprites.
_DENSE, _GRANULAR, _VESICULAR, _CLEAR = range(4)
_HALF = 8  # sprite half-size: sprites are (2*_HALF+1)^2 px
_RADII = np.arange(0.8, 6.81, 0.3, dtype=np.float32)  # equivalent-area radius bins, px
_ELONGATIONS = np.array([1.0, 1.4, 1.9, 2.6, 3.5], dtype=np.float32)  # major/minor axis
_ANGLES = 12  # orientation bins over [0, pi)
_NUCLEUS_OD = 1.25  # haematoxylin concentration at the centre of an ordinary nucleus


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class _Atypia:
    """How abnormal tumour nuclei and architecture look at one histological grade."""

    size: float  # mean nuclear radius multiplier
    pleomorphism: float  # sd of log radius between nuclei
    shape: float  # sd of log elongation (irregular outlines)
    dark: float  # hyperchromasia: haematoxylin multiplier
    nucleoli: float  # share of nuclei with a prominent nucleolus
    spacing: float  # cell spacing multiplier (< 1: crowded)
    disorder: float  # positional jitter and loss of polarity, 0-1
    mitoses: float  # share of nuclei that are mitotic figures
    solid: float  # share of glands, papillae or plates replaced by solid growth


_ATYPIA: dict[int, _Atypia] = {
    1: _Atypia(1.0, 0.08, 0.08, 1.0, 0.05, 1.1, 0.3, 0.0, 0.0),
    2: _Atypia(1.2, 0.17, 0.15, 1.1, 0.3, 0.97, 0.6, 0.01, 0.3),
    3: _Atypia(1.4, 0.27, 0.25, 1.2, 0.65, 0.88, 0.9, 0.04, 0.6),
}
# Non-neoplastic cells (lymphocytes, fibroblasts, endothelium) ignore the grade.
_BENIGN = _Atypia(1.0, 0.08, 0.08, 1.0, 0.0, 1.0, 0.3, 0.0, 0.0)


@dataclass(frozen=True)
class _Kind:
    """A population of nuclei: size, shape and chromatin at grade 1."""

    radius: float  # equivalent-area radius, px
    elongation: float  # major/minor axis ratio
    texture: int  # _DENSE, _GRANULAR, _VESICULAR or _CLEAR chromatin
    dark: float  # haematoxylin multiplier
    tumour: bool = True  # whether the grade's atypia applies


_LYMPHOCYTE = _Kind(2.0, 1.0, _DENSE, 1.25, tumour=False)
_FIBROBLAST = _Kind(1.9, 3.4, _DENSE, 1.0, tumour=False)
_ENDOTHELIUM = _Kind(1.8, 3.0, _DENSE, 0.9, tumour=False)
_DEBRIS = _Kind(0.9, 1.4, _DENSE, 1.3, tumour=False)  # karyorrhectic fragments in necrosis
_DUCTAL = _Kind(2.9, 1.25, _GRANULAR, 1.0)  # breast and lung adenocarcinoma
_COLUMNAR = _Kind(2.7, 2.6, _GRANULAR, 1.05)  # intestinal type: cigar-shaped, stratified
_PANCREATOBILIARY = _Kind(2.8, 1.3, _GRANULAR, 0.95)
_PROSTATIC = _Kind(2.5, 1.15, _VESICULAR, 0.9)  # round, with nucleoli even at low grade
_PAPILLARY_THYROID = _Kind(3.0, 1.35, _CLEAR, 1.0)  # optically clear, overlapping
_SEROUS = _Kind(3.0, 1.3, _GRANULAR, 1.1)
_SQUAMOUS = _Kind(3.2, 1.2, _VESICULAR, 0.95)
_BASALOID = _Kind(2.4, 1.35, _DENSE, 1.15)
_CLEAR_CELL = _Kind(2.0, 1.05, _DENSE, 1.05)
_HEPATOCYTE = _Kind(2.9, 1.05, _VESICULAR, 0.95)
_SPINDLE = _Kind(2.5, 3.3, _GRANULAR, 1.05)
_EPITHELIOID = _Kind(3.4, 1.2, _VESICULAR, 1.0)  # melanoma
_GLIAL = _Kind(2.6, 1.6, _DENSE, 1.1)


@dataclass(frozen=True)
class _Nuclei:
    """Nuclei to stamp, one entry per nucleus (all arrays have the same length)."""

    tile: np.ndarray  # (N,) int, tile index
    y: np.ndarray  # (N,) float, px
    x: np.ndarray  # (N,) float, px
    radius: np.ndarray  # (N,) float, equivalent-area radius in px
    elongation: np.ndarray  # (N,) float >= 1
    angle: np.ndarray  # (N,) float, radians of the major axis
    dark: np.ndarray  # (N,) float, haematoxylin multiplier
    texture: np.ndarray  # (N,) int, chromatin texture

    def take(self, index: np.ndarray) -> _Nuclei:
        return _Nuclei(*(getattr(self, f.name)[index] for f in fields(self)))

    def __len__(self) -> int:
        return len(self.tile)


@dataclass(frozen=True)
class _Tissue:
    """Stain concentrations of a batch of tiles, before nuclei are stamped."""

    eosin: np.ndarray | float  # (n, h, w) stroma, cytoplasm, colloid, keratin, red cells
    haem: np.ndarray | float  # (n, h, w) diffuse haematoxylin: mucin, debris, glial fibrils
    nuclei: _Nuclei
    melanin: np.ndarray | float = 0.0  # (n, h, w) melanin pigment


@dataclass(frozen=True)
class _Cells:
    """A Voronoi tessellation of the canvas on a jittered grid (cells, glands, nests)."""

    f1: np.ndarray  # (n, h, w) distance to the nearest seed, px
    border: np.ndarray  # (n, h, w) second-nearest minus nearest distance: 0 on borders
    u: np.ndarray  # (n, h, w) uniform number of the nearest seed, for per-cell variation
    seeds: Points  # seeds inside the canvas


@dataclass(frozen=True)
class _Stain:
    """Colour of one slide: stain vectors scaled by staining strength, and the glass."""

    od: np.ndarray  # (3 stains, 3 channels) optical density per unit concentration
    glass: np.ndarray  # (3,) transmitted light through empty glass, 0-255


# --------------------------------------------------------------------------- fields


@lru_cache(maxsize=64)
def _lowpass(length: int, scale: float) -> np.ndarray:
    """(length, g) matrix expanding a coarse white-noise grid into a smooth unit-variance
    signal whose features are about `scale` px apart."""
    grid = int(length / scale) + 4
    d = (np.arange(length) / scale + 2.0)[:, None] - np.arange(grid)[None, :]
    m = np.exp(-0.5 * (d / 0.8) ** 2)
    m /= np.sqrt((m**2).sum(axis=1, keepdims=True))
    m = m.astype(np.float32)
    m.flags.writeable = False
    return m


def _noise(rng: np.random.Generator, shape: Shape, scale: float) -> np.ndarray:
    """Smooth Gaussian random field, zero mean and unit variance, (n, h, w)."""
    n, h, w = shape
    rows, cols = _lowpass(h, round(scale, 1)), _lowpass(w, round(scale, 1))
    z = rng.standard_normal((n, rows.shape[1], cols.shape[1]), dtype=np.float32)
    return rows @ z @ cols.T


def _grain(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Pixel-scale texture (2x2 box-filtered uniform noise), about unit variance, (n, h, w)."""
    n, h, w = shape
    u = rng.random((n, h + 1, w + 1), dtype=np.float32)
    return (u[:, :-1, :-1] + u[:, 1:, :-1] + u[:, :-1, 1:] + u[:, 1:, 1:] - 2.0) * 1.73


@lru_cache(maxsize=16)
def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel row (h, 1) and column (1, w) coordinates."""
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def _inside(d: np.ndarray, r: np.ndarray | float) -> np.ndarray:
    """Antialiased membership of `d < r` with a one-pixel ramp."""
    return np.clip(r - d + 0.5, 0.0, 1.0)


def _threshold(field: np.ndarray, share: float, ramp: float = 4.0) -> np.ndarray:
    """Soft mask covering about `share` of a unit-variance field; `ramp` sets edge sharpness."""
    cut = NormalDist().inv_cdf(1.0 - min(max(share, 1e-3), 1 - 1e-3))
    return np.clip((field - cut) * ramp + 0.5, 0.0, 1.0)


def _hash(u: np.ndarray, k: float) -> np.ndarray:
    """A second, nearly independent uniform number derived from `u`."""
    x = u * np.float32(k)
    return x - np.floor(x)  # faster than x % 1.0


def _sample(field: np.ndarray, tile: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Values of `field` at points (nearest pixel)."""
    _, h, w = field.shape
    yi = np.clip(np.rint(y).astype(np.intp), 0, h - 1)
    xi = np.clip(np.rint(x).astype(np.intp), 0, w - 1)
    return field[tile, yi, xi]


def _angle_at(field: np.ndarray, tile: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Direction (radians) in which `field` increases, at points."""
    _, h, w = field.shape
    yi = np.clip(np.rint(y).astype(np.intp), 1, h - 2)
    xi = np.clip(np.rint(x).astype(np.intp), 1, w - 2)
    gy = field[tile, yi + 1, xi] - field[tile, yi - 1, xi]
    gx = field[tile, yi, xi + 1] - field[tile, yi, xi - 1]
    return np.arctan2(gy, gx)


def _upsample2(x: np.ndarray) -> np.ndarray:
    """Linear 2x upsampling of (n, a, b) to (n, 2a, 2b)."""
    n, a, b = x.shape
    rows = np.empty((n, 2 * a, b), np.float32)
    rows[:, 0::2] = x
    rows[:, 1:-1:2] = 0.5 * (x[:, :-1] + x[:, 1:])
    rows[:, -1] = x[:, -1]
    out = np.empty((n, 2 * a, 2 * b), np.float32)
    out[:, :, 0::2] = rows
    out[:, :, 1:-1:2] = 0.5 * (rows[:, :, :-1] + rows[:, :, 1:])
    out[:, :, -1] = rows[:, :, -1]
    return out


def _voronoi(rng: np.random.Generator, shape: Shape, cell: float, jitter: float) -> _Cells:
    """Voronoi diagram of one seed per `cell`-px grid square, shifted by up to `jitter` cells.

    Computed at half resolution by blocks: every half-res pixel of a grid square only
    compares the seeds of the 3x3 squares around it (for jitter <= 1 that misses the true
    nearest seed only in rare corners), then upsampled linearly.
    """
    n, h, w = shape
    k = max(1, round(cell / 2))  # grid square in half-res px
    step = 2 * k
    gy, gx = -(-h // step), -(-w // step)
    ring = (n, gy + 2, gx + 2)  # seeds with one square of margin all round
    sy = (np.arange(-1, gy + 1, dtype=np.float32)[:, None] + 0.5) * step
    sx = (np.arange(-1, gx + 1, dtype=np.float32)[None, :] + 0.5) * step
    sy = sy + (rng.random(ring, dtype=np.float32) - 0.5) * (jitter * step)
    sx = sx + (rng.random(ring, dtype=np.float32) - 0.5) * (jitter * step)
    su = rng.random(ring, dtype=np.float32)
    half = np.arange(gy * k, dtype=np.float32) * 2 + 0.5
    py = half.reshape(1, gy, k, 1, 1)
    px = (np.arange(gx * k, dtype=np.float32) * 2 + 0.5).reshape(1, 1, 1, gx, k)
    f1 = np.full((n, gy, k, gx, k), np.inf, np.float32)
    f2 = f1.copy()
    u = np.zeros_like(f1)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            block = (slice(None), slice(dy, dy + gy), None, slice(dx, dx + gx), None)
            d = (py - sy[block]) ** 2 + (px - sx[block]) ** 2  # (n, gy, k, gx, k)
            closer = d < f1
            f2 = np.where(closer, f1, np.minimum(f2, d))
            f1 = np.where(closer, d, f1)
            u = np.where(closer, su[block], u)
    f1 = np.sqrt(f1).reshape(n, gy * k, gx * k)
    border = np.sqrt(f2).reshape(n, gy * k, gx * k) - f1
    u = u.reshape(n, gy * k, gx * k).repeat(2, axis=1).repeat(2, axis=2)
    tile = np.broadcast_to(np.arange(n)[:, None, None], ring)
    inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
    return _Cells(
        f1=_upsample2(f1)[:, :h, :w],
        border=_upsample2(border)[:, :h, :w],
        u=u[:, :h, :w],
        seeds=(tile[inside], sy[inside], sx[inside]),
    )


def _stripes(rng: np.random.Generator, shape: Shape, period: float, warp: float) -> np.ndarray:
    """Phase (radians, unwrapped) of wavy parallel bands `period` px apart in a random
    direction per tile, displaced by up to about `warp` px."""
    n, h, w = shape
    yy, xx = _coords(h, w)
    theta = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
    across = yy * np.cos(theta) - xx * np.sin(theta)
    return (across + warp * _noise(rng, shape, 1.5 * period)) * np.float32(2 * np.pi / period)


def _wrap(phase: np.ndarray) -> np.ndarray:
    """Phase folded into [-pi, pi): the signed distance to the nearest band centre, in radians."""
    turns = np.floor((phase + np.float32(np.pi)) * np.float32(0.5 / np.pi))
    return phase - turns * np.float32(2 * np.pi)  # faster than the % operator


# --------------------------------------------------------------------------- nuclei


@lru_cache(maxsize=1)
def _sprite_bank() -> np.ndarray:
    """Pre-rendered nuclei: haematoxylin patches indexed by (radius, elongation, angle,
    texture), flattened to (K, (2*_HALF+1)^2). Deterministic."""
    rng = np.random.default_rng(20240611)
    t = np.arange(-_HALF, _HALF + 1, dtype=np.float32)
    r = _RADII[:, None, None, None, None]
    e = _ELONGATIONS[None, :, None, None, None]
    a = (np.arange(_ANGLES, dtype=np.float32) * np.pi / _ANGLES)[None, None, :, None, None]
    along = t[None, :] * np.cos(a) + t[:, None] * np.sin(a)  # (1, 1, A, P, P)
    across = -t[None, :] * np.sin(a) + t[:, None] * np.cos(a)
    major = np.minimum(r * np.sqrt(e), _HALF - 0.5)
    minor = r / np.sqrt(e)
    rho = np.sqrt((along / major) ** 2 + (across / minor) ** 2)  # (R, E, A, P, P)
    body = np.clip(0.5 + (1.0 - rho) * r, 0.0, 1.0)
    rim = np.exp(-(((rho - 0.85) / 0.18) ** 2)) * body
    speckle = rng.random(body.shape, dtype=np.float32)
    clumps = 0.25 * (
        speckle + np.roll(speckle, 1, axis=-1) + np.roll(speckle, 1, axis=-2) + speckle[..., ::-1]
    )
    nucleolus = np.exp(-((along - 0.2 * major) ** 2 + (across + 0.1 * minor) ** 2) / 1.2) * body
    textures = (
        body * (0.88 + 0.24 * clumps),  # _DENSE: lymphocytes, pyknotic and basaloid nuclei
        body * (0.35 + 0.9 * clumps),  # _GRANULAR: coarse chromatin clumps
        body * (0.2 + 0.4 * clumps) + 0.5 * rim + 0.9 * nucleolus,  # _VESICULAR with nucleolus
        body * 0.12 + 0.55 * rim,  # _CLEAR: "Orphan Annie" nuclei of papillary thyroid
    )
    bank = np.stack(textures, axis=3) * _NUCLEUS_OD  # (R, E, A, T, P, P)
    bank = bank.reshape(-1, (2 * _HALF + 1) ** 2).astype(np.float32)
    bank.flags.writeable = False
    return bank


def _sprite_index(nuc: _Nuclei) -> np.ndarray:
    ri = np.clip(np.rint((nuc.radius - _RADII[0]) / 0.3), 0, len(_RADII) - 1).astype(np.intp)
    ei = np.searchsorted((_ELONGATIONS[1:] + _ELONGATIONS[:-1]) / 2, nuc.elongation)
    ai = np.rint(nuc.angle % np.pi / (np.pi / _ANGLES)).astype(np.intp) % _ANGLES
    return ((ri * len(_ELONGATIONS) + ei) * _ANGLES + ai) * 4 + nuc.texture


def _stamp(nuc: _Nuclei, shape: Shape, chunk: int = 8192) -> np.ndarray:
    """Haematoxylin of all nuclei, (n, h, w): sprites summed into a canvas padded by a
    sprite width, so that nuclei centred up to _HALF px outside the edge still show."""
    n, h, w = shape
    pad = 2 * _HALF
    hp, wp = h + 2 * pad, w + 2 * pad
    yi = np.rint(nuc.y).astype(np.intp)
    xi = np.rint(nuc.x).astype(np.intp)
    ok = (yi >= -_HALF) & (yi < h + _HALF) & (xi >= -_HALF) & (xi < w + _HALF)
    nuc, yi, xi = nuc.take(ok), yi[ok], xi[ok]
    # Index of each sprite's top-left pixel in the flattened padded canvas.
    base = nuc.tile.astype(np.intp) * (hp * wp) + (yi + _HALF) * wp + (xi + _HALF)
    side = np.arange(2 * _HALF + 1)
    offsets = (side[:, None] * wp + side[None, :]).ravel()
    bank = _sprite_bank()
    sprite = _sprite_index(nuc)
    canvas = np.zeros(n * hp * wp, np.float64)
    for s in range(0, len(nuc), chunk):
        idx = (base[s : s + chunk, None] + offsets).ravel()
        weights = (bank[sprite[s : s + chunk]] * nuc.dark[s : s + chunk, None]).ravel()
        canvas += np.bincount(idx, weights, minlength=canvas.size)
    return canvas.reshape(n, hp, wp)[:, pad : pad + h, pad : pad + w].astype(np.float32)


def _nuclei(
    rng: np.random.Generator,
    kind: _Kind,
    atypia: _Atypia,
    points: Points,
    angle: np.ndarray | None = None,
) -> _Nuclei:
    """Nuclei of `kind` at `points`, with the grade's size, shape and chromatin if a tumour;
    `angle` orients elongated nuclei (random when None)."""
    tile, y, x = points
    m = len(tile)
    a = atypia if kind.tumour else _BENIGN
    radius = kind.radius * a.size * np.exp(a.pleomorphism * rng.standard_normal(m))
    elongation = np.maximum(kind.elongation * np.exp(a.shape * rng.standard_normal(m)), 1.0)
    spread = 0.15 + 0.5 * a.disorder
    if angle is None:
        angle = rng.uniform(0, np.pi, m)
    else:
        angle = angle + spread * rng.standard_normal(m)
    dark = kind.dark * a.dark * np.exp(0.12 * rng.standard_normal(m))
    texture = np.full(m, kind.texture, np.intp)
    if kind.texture == _GRANULAR:
        texture[rng.random(m) < a.nucleoli] = _VESICULAR
    mitotic = rng.random(m) < a.mitoses  # condensed, irregular chromosome clumps
    texture[mitotic] = _DENSE
    dark = np.where(mitotic, dark * 1.6, dark)
    elongation = np.where(mitotic, 2.2, elongation)
    return _Nuclei(tile, y, x, radius, elongation, angle, dark, texture)


def _join(*groups: _Nuclei) -> _Nuclei:
    """All nuclei of `groups` in one record (an empty one when there are none)."""
    if not groups:
        none = (np.zeros(0, np.intp), *(np.zeros(0, np.float32) for _ in range(6)))
        return _Nuclei(*none, np.zeros(0, np.intp))
    return _Nuclei(*(np.concatenate([getattr(g, f.name) for g in groups]) for f in fields(_Nuclei)))


def _scatter(
    rng: np.random.Generator, weight: np.ndarray, spacing: float, jitter: float = 0.8
) -> Points:
    """Points on a jittered grid `spacing` px apart, each kept with probability `weight`
    (n, h, w) at its position: (tile, y, x)."""
    n, h, w = weight.shape
    gy, gx = int(h / spacing) + 2, int(w / spacing) + 2
    grid = (n, gy, gx)
    origin = rng.random((n, 1, 1, 2), dtype=np.float32) * spacing - spacing
    y = (np.arange(gy, dtype=np.float32)[:, None] + jitter * (rng.random(grid) - 0.5)) * spacing
    x = (np.arange(gx, dtype=np.float32)[None, :] + jitter * (rng.random(grid) - 0.5)) * spacing
    y, x = (y + origin[..., 0]).ravel(), (x + origin[..., 1]).ravel()
    tile = np.repeat(np.arange(n), gy * gx)
    keep = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    keep[keep] = rng.random(int(keep.sum())) < _sample(weight, tile[keep], y[keep], x[keep])
    return tile[keep], y[keep], x[keep]


def _keep(rng: np.random.Generator, points: _Cells | Points, weight: np.ndarray) -> Points:
    """Points (tile, y, x), or a tessellation's seeds, kept with probability `weight`."""
    tile, y, x = points.seeds if isinstance(points, _Cells) else points
    keep = rng.random(len(tile)) < _sample(weight, tile, y, x)
    return tile[keep], y[keep], x[keep]


def _filter(rng: np.random.Generator, nuc: _Nuclei, weight: np.ndarray) -> _Nuclei:
    """Nuclei kept with probability `weight` at their position."""
    return nuc.take(rng.random(len(nuc)) < _sample(weight, nuc.tile, nuc.y, nuc.x))


# --------------------------------------------------------------------------- shared tissue


def _stroma(
    rng: np.random.Generator, where: np.ndarray, tone: float = 0.6, cells: float = 1.0
) -> _Tissue:
    """Collagenous stroma: wavy eosinophilic fibres with sparse spindle fibroblasts lying
    along them. `tone` is its eosin, `cells` the fibroblast density (desmoplasia > 1)."""
    shape = where.shape
    phase = _stripes(rng, shape, period=float(rng.uniform(4, 7)), warp=3.0)
    fibre = (0.5 + 0.5 * np.cos(phase)) ** 2
    contrast = np.clip(0.25 + 0.2 * _noise(rng, shape, 10), 0.0, 0.5)  # bundles fade in and out
    eosin = where * tone * (0.75 + contrast * fibre) * (1.0 + 0.15 * _noise(rng, shape, 20))
    points = _scatter(rng, where, spacing=20 / cells)
    along = _angle_at(phase, *points) + np.pi / 2
    return _Tissue(eosin, 0.0, _nuclei(rng, _FIBROBLAST, _BENIGN, points, along))


def _lymphocytes(rng: np.random.Generator, where: np.ndarray, spacing: float = 6.0) -> _Tissue:
    """Small round dark lymphocytes (tumour-infiltrating or in aggregates)."""
    nuc = _nuclei(rng, _LYMPHOCYTE, _BENIGN, _scatter(rng, where, spacing, jitter=1.0))
    return _Tissue(0.0, 0.0, nuc)


def _necrosis(rng: np.random.Generator, where: np.ndarray) -> _Tissue:
    """Necrosis: granular pink-purple ghost tissue scattered with nuclear dust."""
    grain = _grain(rng, where.shape)
    nuc = _nuclei(rng, _DEBRIS, _BENIGN, _scatter(rng, where, 6.0, jitter=1.0))
    return _Tissue(where * (0.42 + 0.1 * grain), where * (0.14 + 0.05 * grain), nuc)


def _capillaries(
    rng: np.random.Generator, line: np.ndarray, across: np.ndarray, blood: np.ndarray | float
) -> _Tissue:
    """Thin-walled capillaries along `line` (a soft mask): red cells (`blood`, eosin) in
    the lumen and flat endothelial nuclei lying along the wall, i.e. perpendicular to the
    gradient of the field `across`."""
    points = _scatter(rng, line, 14.0)
    along = _angle_at(across, *points) + np.pi / 2
    return _Tissue(line * blood, 0.0, _nuclei(rng, _ENDOTHELIUM, _BENIGN, points, along))


def _adipose(rng: np.random.Generator, where: np.ndarray, cell: float = 34.0) -> _Tissue:
    """Fat: large empty vacuoles framed by thin pink membranes with flat nuclei."""
    fat = _voronoi(rng, where.shape, cell, 0.8)
    membrane = where * np.clip(1.8 - fat.border, 0.0, 1.0)
    points = _scatter(rng, membrane, 30.0)
    along = _angle_at(fat.border, *points) + np.pi / 2
    return _Tissue(membrane * 0.5, 0.0, _nuclei(rng, _FIBROBLAST, _BENIGN, points, along))


def _bodies(
    rng: np.random.Generator, shape: Shape, spacing: float, share: float, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse round bodies (keratin pearls, psammoma bodies, vessels): a soft mask and the
    distance to each body's centre. About `share` of `spacing`-px grid squares hold one."""
    cells = _voronoi(rng, shape, spacing, 0.6)
    r = radius * (0.7 + 0.6 * _hash(cells.u, 3.0))
    return _inside(cells.f1, r) * (cells.u < share), cells.f1


def _combine(*parts: _Tissue) -> _Tissue:
    """Tissues laid over each other: concentrations add up, nuclei are pooled."""
    return _Tissue(
        eosin=sum(p.eosin for p in parts),
        haem=sum(p.haem for p in parts),
        nuclei=_join(*(p.nuclei for p in parts)),
        melanin=sum(p.melanin for p in parts),
    )


def _blend(rng: np.random.Generator, a: _Tissue, b: _Tissue, m: np.ndarray) -> _Tissue:
    """`a` where `m` is 1 and `b` where it is 0; nuclei kept with their tissue's share."""
    return _Tissue(
        eosin=a.eosin * m + b.eosin * (1 - m),
        haem=a.haem * m + b.haem * (1 - m),
        nuclei=_join(_filter(rng, a.nuclei, m), _filter(rng, b.nuclei, 1 - m)),
        melanin=a.melanin * m + b.melanin * (1 - m),
    )


def _stack(parts: list[_Tissue], sizes: list[int], h: int, w: int) -> _Tissue:
    """Tissues of consecutive sub-batches of `sizes` tiles joined along the tile axis."""
    offsets = np.cumsum([0, *sizes[:-1]])

    def cat(name: str) -> np.ndarray | float:
        maps = [getattr(p, name) for p in parts]
        if not any(np.ndim(m) for m in maps):
            return 0.0  # absent (e.g. melanin) in every part
        return np.concatenate(
            [
                np.broadcast_to(np.asarray(m, np.float32), (s, h, w))
                for m, s in zip(maps, sizes, strict=True)
            ]
        )

    nuclei = _join(*(p.nuclei for p in parts))
    tile = np.concatenate([p.nuclei.tile + o for p, o in zip(parts, offsets, strict=True)])
    nuclei = _Nuclei(tile, *(getattr(nuclei, f.name) for f in fields(_Nuclei)[1:]))
    return _Tissue(cat("eosin"), cat("haem"), nuclei, cat("melanin"))


# --------------------------------------------------------------------------- architectures

Renderer = Callable[[np.random.Generator, Shape, _Atypia], _Tissue]


@dataclass(frozen=True)
class _GlandStyle:
    spacing: float  # distance between gland centres, px
    size: float  # gland radius as a share of the spacing
    lumen: float  # lumen radius as a share of the gland radius
    kind: _Kind  # lining nuclei
    cytoplasm: float  # eosin of the lining cytoplasm
    content: str  # lumen content: "empty", "secretion", "debris" or "mucin"
    stroma: float = 0.6  # eosin of the stroma
    fibroblasts: float = 1.0  # fibroblast density (desmoplastic stroma > 1)
    lymphocytes: float = 0.1  # density of lymphocytes in the stroma
    lakes: float = 0.0  # share of the stroma replaced by pools of extracellular mucin


def _glands(rng: np.random.Generator, shape: Shape, a: _Atypia, s: _GlandStyle) -> _Tissue:
    """Gland-forming adenocarcinoma: round to angulated glands, each a lumen lined by
    epithelium whose nuclei sit basally at low grade (polarity) and pile up at high grade,
    set in stroma; higher grade fills lumina (solid nests) and sheds single infiltrating
    cells into the stroma."""
    glands = _voronoi(rng, shape, s.spacing, 0.9)
    wobble = s.spacing * (0.05 + 0.08 * a.disorder)
    d = glands.f1 + _noise(rng, shape, s.spacing / 3) * wobble
    radius = s.spacing * s.size * (0.75 + 0.5 * glands.u)
    lumen_radius = np.where(_hash(glands.u, 7.0) < a.solid, 0.0, radius * s.lumen)
    gland = _inside(d, radius)
    lumen = _inside(d, lumen_radius)
    epithelium = gland - lumen
    outside = 1.0 - _inside(d, radius + 1.5)  # a thin retraction cleft around each gland
    # Low grade: nuclei stay in the basal part of the lining (polarity).
    basal = _inside(radius - d, 0.6 * s.spacing * s.size * (1 - s.lumen) + 1.5)
    weight = epithelium * (1.0 - (1.0 - a.disorder) * (1.0 - basal))
    lining = _scatter(rng, weight, s.kind.radius * 2.0 * a.spacing, 0.5 + 0.5 * a.disorder)
    nuclei = _nuclei(rng, s.kind, a, lining, _angle_at(d, *lining))
    infiltrating = _nuclei(rng, s.kind, a, _scatter(rng, outside * a.solid * 0.3, 9.0))
    eosin = epithelium * s.cytoplasm * (0.8 + 0.4 * _hash(glands.u, 13.0))
    lake = outside * _threshold(_noise(rng, shape, 30), s.lakes) if s.lakes else 0.0
    mucin = lake + (lumen if s.content == "mucin" else 0.0)
    haem = mucin * 0.1 * (0.8 + 0.3 * _noise(rng, shape, 6))
    parts = [
        _Tissue(eosin + mucin * 0.04, haem + epithelium * 0.05, _join(nuclei, infiltrating)),
        _stroma(rng, outside - lake, s.stroma, s.fibroblasts),
        _lymphocytes(rng, (outside - lake) * s.lymphocytes + epithelium * s.lymphocytes * 0.3),
    ]
    if s.content == "secretion":
        parts.append(_Tissue(lumen * 0.12 * (1 + 0.3 * _noise(rng, shape, 5)), 0.0, _join()))
    elif s.content == "debris":  # "dirty" necrosis in the lumina of colorectal glands
        parts.append(_necrosis(rng, lumen * (_hash(glands.u, 5.0) < 0.6)))
    return _combine(*parts)


def _lepidic(rng: np.random.Generator, shape: Shape, a: _Atypia) -> _Tissue:
    """Lepidic adenocarcinoma: atypical cuboidal cells lining intact, thin alveolar walls,
    with the air spaces left open."""
    alveoli = _voronoi(rng, shape, 38, 0.9)
    wall = np.clip(2.5 - alveoli.border + _noise(rng, shape, 10), 0.0, 1.0)
    lining = np.clip(7.0 - alveoli.border, 0.0, 1.0) - wall
    points = _scatter(rng, lining, _DUCTAL.radius * 2.4 * a.spacing)
    along = _angle_at(alveoli.border, *points) + np.pi / 2
    cells = _Tissue(wall * 0.55 + lining * 0.25, 0.0, _nuclei(rng, _DUCTAL, a, points, along))
    red = _Tissue(wall * (_grain(rng, shape) > 1.2) * 0.6, 0.0, _join())  # alveolar capillaries
    return _combine(cells, red)


@dataclass(frozen=True)
class _SheetStyle:
    nest: float  # feature size of the nests, px
    fill: float  # share of the tile covered by tumour
    cell: float  # cell diameter, px
    kind: _Kind
    cytoplasm: float  # eosin of the cytoplasm
    necrosis: float  # probability that a tile shows necrosis
    lymphocytes: float  # density of tumour-infiltrating lymphocytes


def _sheets(rng: np.random.Generator, shape: Shape, a: _Atypia, s: _SheetStyle) -> _Tissue:
    """Solid carcinoma: nests and sheets of cohesive polygonal cells without lumina, with
    geographic or comedo necrosis and lymphocytes in the stroma (e.g. triple-negative
    breast cancer, solid lung adenocarcinoma)."""
    n = shape[0]
    field = _noise(rng, shape, s.nest)
    region = _threshold(field, s.fill)
    cells = _voronoi(rng, shape, s.cell * a.spacing, 0.6 + 0.4 * a.disorder)
    membrane = np.clip(1.2 - cells.border, 0.0, 1.0)
    dead = rng.random((n, 1, 1)) < s.necrosis
    necrotic = region * _threshold(field, s.fill * 0.3, 1.5) * dead
    viable = region - necrotic
    cytoplasm = viable * s.cytoplasm * (0.75 + 0.5 * cells.u) * (1 - 0.4 * membrane)
    nuclei = _nuclei(rng, s.kind, a, _keep(rng, cells, viable))
    return _combine(
        _Tissue(cytoplasm, viable * 0.03, nuclei),
        _necrosis(rng, necrotic),
        _stroma(rng, 1.0 - region),
        _lymphocytes(rng, (1.0 - region) * s.lymphocytes + viable * s.lymphocytes * 0.3, 5.0),
    )


@dataclass(frozen=True)
class _SquamousStyle:
    cell: float  # cell diameter, px
    kind: _Kind
    cytoplasm: float  # eosin of the cytoplasm
    bridges: float  # visibility of intercellular bridges across the borders
    pearls: float  # share of 64 px squares holding a keratin pearl
    necrosis: float  # probability of comedo necrosis in a tile
    lymphocytes: float  # density of lymphocytes in the stroma


def _squamous(rng: np.random.Generator, shape: Shape, a: _Atypia, s: _SquamousStyle) -> _Tissue:
    """Squamous cell carcinoma: nests of polygonal cells with glassy pink cytoplasm and
    intercellular bridges (dotted spines across pale cell borders), keratin pearls
    (concentric eosinophilic lamellae), dyskeratotic cells, peripheral palisading of
    basal-like cells, and comedo necrosis in basaloid tumours."""
    n = shape[0]
    field = _noise(rng, shape, 34)
    region = _threshold(field, 0.65)
    inner = _threshold(field, 0.55)
    cells = _voronoi(rng, shape, s.cell * a.spacing, 0.7)
    border = np.clip(1.4 - cells.border, 0.0, 1.0)
    spines = border * (_grain(rng, shape) > 0.9)
    pearl, distance = _bodies(rng, shape, 64, s.pearls, 13)
    pearl = pearl * inner
    lamellae = 0.8 + 0.2 * np.cos(distance * np.float32(2 * np.pi / 3.2))
    dead = rng.random((n, 1, 1)) < s.necrosis
    necrotic = _threshold(field, 0.15, 1.5) * dead
    viable = region - necrotic
    dyskeratotic = _hash(cells.u, 3.0) < 0.06  # single cells keratinising early
    cytoplasm = s.cytoplasm * (0.85 + 0.3 * cells.u) + dyskeratotic * np.float32(0.35)
    # Basal-like cells at the periphery have scant cytoplasm and no visible bridges.
    maturation = 0.4 + 0.6 * inner
    eosin = (
        viable * (1 - pearl) * maturation * (cytoplasm * (1 - 0.6 * border) + s.bridges * spines)
    )
    eosin = eosin + pearl * 0.95 * lamellae
    core = _keep(rng, cells, viable * (1 - pearl) * inner)
    periphery = region - inner
    palisade = _scatter(rng, periphery * (1 - necrotic), _BASALOID.radius * 2.6 * a.spacing)
    return _combine(
        _Tissue(eosin, 0.0, _nuclei(rng, s.kind, a, core)),
        _Tissue(0.0, 0.0, _nuclei(rng, _BASALOID, a, palisade, _angle_at(field, *palisade))),
        _necrosis(rng, necrotic),
        _stroma(rng, 1.0 - region),
        _lymphocytes(rng, (1.0 - region) * s.lymphocytes),
    )


@dataclass(frozen=True)
class _ClearCellStyle:
    granular: float  # share of cells with eosinophilic granular cytoplasm


def _clear_cells(rng: np.random.Generator, shape: Shape, a: _Atypia, s: _ClearCellStyle) -> _Tissue:
    """Clear cell renal cell carcinoma: nests of cells with optically empty cytoplasm and
    crisp membranes around small round nuclei (nucleoli appear with grade), enclosed by a
    delicate network of thin-walled capillaries full of red cells."""
    nests = _voronoi(rng, shape, 42, 0.9)
    vessel = np.clip(2.0 - nests.border, 0.0, 1.0)
    tumour = 1.0 - vessel
    cells = _voronoi(rng, shape, 15 * a.spacing, 0.7)
    membrane = np.clip(1.8 - cells.border, 0.0, 1.0)
    granular = _hash(cells.u, 11.0) < s.granular + 0.2 * a.nucleoli
    grain = _grain(rng, shape)
    eosin = tumour * (0.04 + 0.55 * membrane + granular * (0.3 + 0.06 * grain))
    nuclei = _nuclei(rng, _CLEAR_CELL, a, _keep(rng, cells, tumour))
    return _combine(_Tissue(eosin, 0.0, nuclei), _capillaries(rng, vessel, nests.border, 1.1))


@dataclass(frozen=True)
class _LiverStyle:
    steatosis: float  # share of hepatocytes holding a large fat vacuole
    ground_glass: float  # share of hepatocytes with pale glassy cytoplasm (HBsAg)


def _trabeculae(rng: np.random.Generator, shape: Shape, a: _Atypia, s: _LiverStyle) -> _Tissue:
    """Hepatocellular carcinoma: plates (trabeculae) of polygonal hepatocytes with granular
    pink cytoplasm and central round nuclei with nucleoli, separated by slit-like sinusoids
    lined by flat endothelium; plates thicken with grade; steatosis and ground-glass cells
    follow the aetiology."""
    period = 28.0 + 24.0 * a.solid
    phase = _stripes(rng, shape, period, warp=0.3 * period)
    sinusoid = np.clip((-0.9 - np.cos(phase)) * 10.0 + 0.5, 0.0, 1.0)
    plate = 1.0 - sinusoid
    cells = _voronoi(rng, shape, 14 * a.spacing, 0.6)
    membrane = np.clip(1.3 - cells.border, 0.0, 1.0)
    fatty = _hash(cells.u, 7.0) < s.steatosis
    glassy = _hash(cells.u, 3.0) < s.ground_glass
    vacuole = _inside(cells.f1, 4.5) * fatty
    granules = 0.85 + 0.15 * _grain(rng, shape)
    cytoplasm = np.where(glassy, 0.33, 0.55 * (0.85 + 0.3 * cells.u) * granules)
    eosin = plate * cytoplasm * (1 - 0.5 * membrane) * (1 - vacuole)
    tile, y, x = _keep(rng, cells, plate)
    pushed = _sample(fatty.astype(np.float32), tile, y, x) * 4.5  # fat pushes nuclei aside
    turn = rng.uniform(0, 2 * np.pi, len(tile))
    hepatocytes = (tile, y + pushed * np.sin(turn), x + pushed * np.cos(turn))
    blood = (_noise(rng, shape, 6) > 1.0) * np.float32(0.9)
    return _combine(
        _Tissue(eosin, 0.0, _nuclei(rng, _HEPATOCYTE, a, hepatocytes)),
        _capillaries(rng, sinusoid, phase, blood),
    )


@dataclass(frozen=True)
class _PapillaStyle:
    period: float  # distance between neighbouring papillary fronds, px
    core: float  # half-width of the fibrovascular core, px
    lining: float  # thickness of the epithelial lining at grade 1, px
    kind: _Kind
    cytoplasm: float  # eosin of the lining cytoplasm
    psammoma: float  # share of 72 px squares holding a psammoma body


def _papillae(rng: np.random.Generator, shape: Shape, a: _Atypia, s: _PapillaStyle) -> _Tissue:
    """Papillary carcinoma: branching fronds, each a thin fibrovascular core (loose stroma
    around a capillary) covered by crowded epithelium whose nuclei point away from the
    core, with empty spaces between fronds; lamellated psammoma bodies; solid areas at
    high grade."""
    trunk = np.abs(_wrap(_stripes(rng, shape, s.period, 0.4 * s.period)))
    branch = np.abs(_wrap(_stripes(rng, shape, s.period * 1.3, 0.4 * s.period)))
    branching = _threshold(_noise(rng, shape, s.period), 0.35, 8.0) > 0.5
    d = np.minimum(trunk, np.where(branching, branch, np.inf)) * np.float32(s.period / 6.283)
    lining = s.lining * (1.0 + 1.5 * a.solid)  # stratified at high grade
    core = _inside(d, s.core)
    covered = _inside(d, s.core + lining)
    solid = _threshold(_noise(rng, shape, 40), a.solid * 0.6)
    epithelium = np.maximum(covered - core, solid * (1 - core))
    points = _scatter(rng, epithelium, s.kind.radius * 2.0 * a.spacing, 0.6)
    lining_nuclei = _nuclei(rng, s.kind, a, points, _angle_at(d, *points))
    capillary = _inside(d, 1.0)
    psammoma, distance = _bodies(rng, shape, 72, s.psammoma, 6)
    psammoma = psammoma * core
    lamellae = psammoma * (0.55 + 0.3 * np.cos(distance * np.float32(2 * np.pi / 1.8)))
    return _combine(
        _Tissue(epithelium * s.cytoplasm + capillary * 0.8, lamellae, lining_nuclei),
        _stroma(rng, (core - capillary) * (1 - psammoma), tone=0.4),
    )


def _follicles(rng: np.random.Generator, shape: Shape, a: _Atypia) -> _Tissue:
    """Follicular variant of papillary thyroid carcinoma: round follicles of homogeneous pink
    colloid, with a thin retraction gap, lined by one layer of cuboidal cells with clear,
    overlapping nuclei; follicles shrink and close up with grade."""
    follicles = _voronoi(rng, shape, 28 * a.spacing, 0.8)
    d = follicles.f1 + _noise(rng, shape, 8) * 1.2
    radius = 28 * a.spacing * (0.22 + 0.14 * follicles.u) * (1 - 0.6 * a.solid)
    colloid = _inside(d, radius - 1.5)
    lining = _inside(d, radius + 6.0) - _inside(d, radius)
    points = _scatter(rng, lining, _PAPILLARY_THYROID.radius * 2.0)
    nuclei = _nuclei(rng, _PAPILLARY_THYROID, a, points, _angle_at(d, *points))
    shade = 0.45 + 0.3 * _hash(follicles.u, 5.0)
    between = 1.0 - _inside(d, radius + 6.0)
    return _combine(
        _Tissue(colloid * shade + lining * 0.35, 0.0, nuclei),
        _stroma(rng, between, tone=0.45, cells=0.7),
    )


def _slits(rng: np.random.Generator, shape: Shape, a: _Atypia) -> _Tissue:
    """High-grade serous carcinoma, solid pattern: sheets of large atypical cells cut by
    branching slit-like spaces."""
    cells = _voronoi(rng, shape, 11 * a.spacing, 0.8)
    first = np.abs(_wrap(_stripes(rng, shape, 30, 9))) * np.float32(30 / 6.283)
    second = np.abs(_wrap(_stripes(rng, shape, 44, 12))) * np.float32(44 / 6.283)
    slit = np.maximum(
        _inside(first, 1.8) * _threshold(_noise(rng, shape, 24), 0.5, 8.0),
        _inside(second, 1.8) * _threshold(_noise(rng, shape, 24), 0.35, 8.0),
    )
    tumour = 1.0 - slit
    membrane = np.clip(1.2 - cells.border, 0.0, 1.0)
    eosin = tumour * 0.38 * (0.8 + 0.4 * cells.u) * (1 - 0.4 * membrane)
    return _Tissue(eosin, tumour * 0.04, _nuclei(rng, _SEROUS, a, _keep(rng, cells, tumour)))


@dataclass(frozen=True)
class _SpindleStyle:
    kind: _Kind
    cytoplasm: float  # eosin of the cell bodies
    spacing: float  # between nuclei, px
    storiform: bool  # whorls around centres rather than intersecting fascicles
    giant: float  # density of bizarre multilobed giant nuclei
    collagen: float  # extra collagen between the cells (desmoplastic tumours)


def _spindle(rng: np.random.Generator, shape: Shape, a: _Atypia, s: _SpindleStyle) -> _Tissue:
    """Spindle cell sarcoma: long fascicles of eosinophilic spindle cells with blunt,
    cigar-shaped nuclei, crossing at right angles (leiomyosarcoma), or whorled in a
    cartwheel (storiform) pattern with bizarre multilobed giant nuclei (undifferentiated
    pleomorphic sarcoma)."""
    n, h, w = shape
    if s.storiform:
        whorls = _voronoi(rng, shape, 70, 0.9)
        phase = (whorls.f1 + 2.0 * _noise(rng, shape, 12)) * np.float32(2 * np.pi / 7)
    else:
        yy, xx = _coords(h, w)
        theta = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
        theta = theta + np.float32(np.pi / 2) * (_noise(rng, shape, 45) > 0)  # crossing
        across = yy * np.cos(theta) - xx * np.sin(theta) + 2.5 * _noise(rng, shape, 14)
        phase = across * np.float32(2 * np.pi / 7)
    streaks = 0.5 + 0.5 * np.cos(phase)
    grain = _grain(rng, shape)
    eosin = s.cytoplasm * (0.7 + 0.3 * streaks) + s.collagen * (0.5 + 0.1 * grain)
    points = _scatter(rng, np.ones(shape, np.float32), s.spacing * a.spacing, 0.9)
    nuclei = _nuclei(rng, s.kind, a, points, _angle_at(phase, *points) + np.pi / 2)
    tile, y, x = _scatter(rng, np.full(shape, s.giant * a.solid, np.float32), 30.0)
    lobes = [  # a giant nucleus is a cluster of overlapping large lobes
        (tile, y + rng.normal(0, 3, len(tile)), x + rng.normal(0, 3, len(tile))) for _ in range(3)
    ]
    big = _Kind(5.2, 1.3, _DENSE, 1.2)
    giants = [_nuclei(rng, big, _ATYPIA[1], lobe) for lobe in lobes]
    return _Tissue(eosin, 0.0, _join(nuclei, *giants))


_LEIOMYOSARCOMA = _SpindleStyle(_SPINDLE, 0.62, 9.0, storiform=False, giant=0.0, collagen=0.0)
_PLEOMORPHIC = _SpindleStyle(_SPINDLE, 0.5, 9.5, storiform=True, giant=0.6, collagen=0.05)


def _lipogenic(rng: np.random.Generator, shape: Shape, a: _Atypia) -> _Tissue:
    """Dedifferentiated liposarcoma: well-differentiated fat with atypical hyperchromatic
    stromal cells and lipoblasts (vacuoles scalloping a nucleus) next to a non-lipogenic
    spindle-cell component."""
    fatty = _threshold(_noise(rng, shape, 50), 0.5, 3.0)
    fat = _adipose(rng, fatty, cell=float(rng.uniform(22, 36)))
    septa = np.clip(4.0 - _voronoi(rng, shape, 60, 0.9).border, 0.0, 1.0) * fatty
    atypical = _nuclei(rng, _SPINDLE, a, _scatter(rng, septa, 9.0))
    lipoblasts = _bodies(rng, shape, 20, 0.25, 3.0)[0] * fatty
    blast_nuclei = _nuclei(rng, _BASALOID, a, _scatter(rng, lipoblasts, 6.0))
    spindle = _spindle(rng, shape, a, _LEIOMYOSARCOMA)
    adipose = _combine(fat, _Tissue(septa * 0.45, 0.0, _join(atypical, blast_nuclei)))
    return _blend(rng, adipose, spindle, fatty)


@dataclass(frozen=True)
class _MelanomaStyle:
    pigment: float  # largest share of pigmented cells in a slide


def _melanoma(rng: np.random.Generator, shape: Shape, a: _Atypia, s: _MelanomaStyle) -> _Tissue:
    """Melanoma: expansile nests and sheets of epithelioid cells with large vesicular nuclei
    and prominent nucleoli, fine brown melanin granules in the cytoplasm and coarse pigment
    in melanophages of the stroma; nests merge into sheets with grade."""
    n = shape[0]
    nests = _voronoi(rng, shape, 56, 0.9)
    d = nests.f1 + 4.0 * _noise(rng, shape, 14)
    region = _inside(d, 56 * (0.38 + 0.3 * a.solid))
    cells = _voronoi(rng, shape, 13 * a.spacing, 0.7)
    membrane = np.clip(1.2 - cells.border, 0.0, 1.0)
    share = s.pigment * rng.random((n, 1, 1), dtype=np.float32)
    granules = np.clip(_grain(rng, shape), 0.0, None)
    melanin = region * (cells.u < share) * 0.45 * granules
    melanophages = (1 - region) * (_noise(rng, shape, 5) > 1.7) * 1.2 * share
    eosin = region * 0.42 * (0.8 + 0.4 * cells.u) * (1 - 0.4 * membrane)
    nuclei = _nuclei(rng, _EPITHELIOID, a, _keep(rng, cells, region))
    return _combine(
        _Tissue(eosin, region * 0.04, nuclei, melanin + melanophages),
        _stroma(rng, 1.0 - region),
        _lymphocytes(rng, (1.0 - region) * 0.3),
    )


def _desmoplastic_melanoma(rng: np.random.Generator, shape: Shape, a: _Atypia) -> _Tissue:
    """Desmoplastic melanoma (NF1-driven): scattered atypical spindle cells in abundant
    collagen, with lymphoid clusters."""
    style = _SpindleStyle(_SPINDLE, 0.25, 14.0, storiform=False, giant=0.0, collagen=0.35)
    clusters = _threshold(_noise(rng, shape, 20), 0.08)
    return _combine(_spindle(rng, shape, a, style), _lymphocytes(rng, clusters, 4.5))


def _glial(rng: np.random.Generator, shape: Shape, a: _Atypia) -> _Tissue:
    """Glioblastoma: fibrillary pink-lilac neuropil with scattered pleomorphic astrocytic
    nuclei, serpiginous necrosis rimmed by palisading nuclei (pseudopalisading), and
    glomeruloid microvascular proliferation."""
    n = shape[0]
    grain = _grain(rng, shape)
    neuropil = 0.3 + 0.08 * grain + 0.05 * _noise(rng, shape, 10)
    field = _noise(rng, shape, 26)
    dead = rng.random((n, 1, 1)) < 0.6
    necrotic = _threshold(field, 0.18, 2.0) * dead
    rim = _threshold(field, 0.32, 2.0) * dead - necrotic
    vessel, distance = _bodies(rng, shape, 70, 0.35, 10)
    lumen = vessel * (distance < 3.0)
    wall = vessel - lumen
    viable = (1.0 - necrotic) * (1.0 - vessel)
    glia = _scatter(rng, viable, 12 * a.spacing, 1.0)
    palisade = _scatter(rng, rim * (1 - vessel), 4.5)
    endothelium = _scatter(rng, wall, 4.0)
    tangent = _angle_at(distance, *endothelium) + np.pi / 2
    plump = _Kind(2.4, 1.8, _GRANULAR, 1.0)
    nuclei = _join(
        _nuclei(rng, _GLIAL, a, glia),
        _nuclei(rng, _GLIAL, a, palisade, _angle_at(field, *palisade)),
        _nuclei(rng, plump, a, endothelium, tangent),
    )
    eosin = viable * neuropil + lumen * 1.1 + wall * 0.5
    return _combine(_Tissue(eosin, viable * 0.07, nuclei), _necrosis(rng, necrotic))


def _normal_tissue(rng: np.random.Generator, shape: Shape, a: _Atypia) -> _Tissue:
    """Non-tumour tissue around a tumour: collagenous stroma with fat lobules, small
    vessels and lymphoid aggregates."""
    fatty = _threshold(_noise(rng, shape, 160), 0.3, 2.0)
    lymphoid = _threshold(_noise(rng, shape, 60), 0.06, 2.0) * (1 - fatty)
    vessel, distance = _bodies(rng, shape, 120, 0.4, 12)
    wall = vessel * (distance > 4.0) * (1 - fatty)
    lumen = vessel * (distance <= 4.0) * (1 - fatty)
    fibrous = (1 - fatty) * (1 - lymphoid) * (1 - vessel)
    return _combine(
        _adipose(rng, fatty),
        _stroma(rng, fibrous + wall, tone=0.6, cells=0.8),
        _lymphocytes(rng, lymphoid, 4.2),
        _Tissue(lumen * 1.1, 0.0, _join()),
    )


# --------------------------------------------------------------------------- type table

_TUBULES = _GlandStyle(44, 0.4, 0.42, _DUCTAL, 0.3, "empty", stroma=0.65)
_ACINI = _GlandStyle(40, 0.4, 0.5, _DUCTAL, 0.35, "secretion", stroma=0.55, lymphocytes=0.2)
_MUCINOUS_ACINI = _GlandStyle(44, 0.42, 0.55, _COLUMNAR, 0.18, "mucin", stroma=0.5)
_COLONIC = _GlandStyle(62, 0.42, 0.5, _COLUMNAR, 0.42, "debris", stroma=0.55, lymphocytes=0.15)
_MUCINOUS_COLONIC = _GlandStyle(
    56, 0.35, 0.5, _COLUMNAR, 0.35, "mucin", stroma=0.55, lymphocytes=0.5, lakes=0.45
)
_PANCREATIC = _GlandStyle(
    56, 0.3, 0.6, _PANCREATOBILIARY, 0.25, "mucin", stroma=0.75, fibroblasts=2.2, lymphocytes=0.05
)
_PROSTATIC = _GlandStyle(28, 0.42, 0.5, _PROSTATIC, 0.32, "secretion", fibroblasts=1.5)
_ENDOCERVICAL = _GlandStyle(40, 0.4, 0.55, _COLUMNAR, 0.28, "mucin", lymphocytes=0.3)

_BREAST_NESTS = _SheetStyle(26, 0.5, 12, _DUCTAL, 0.45, necrosis=0.3, lymphocytes=0.1)
_TRIPLE_NEGATIVE = _SheetStyle(40, 0.75, 11, _DUCTAL, 0.35, necrosis=0.6, lymphocytes=0.8)
_LUNG_SOLID = _SheetStyle(36, 0.7, 12, _DUCTAL, 0.4, necrosis=0.2, lymphocytes=0.3)
_SQUAMOID_PANCREAS = _SheetStyle(
    30, 0.55, 13, _PANCREATOBILIARY, 0.5, necrosis=0.3, lymphocytes=0.05
)
_MEDULLARY = _SheetStyle(50, 0.75, 12, _DUCTAL, 0.45, necrosis=0.1, lymphocytes=0.9)

_KERATINISING = _SquamousStyle(
    14, _SQUAMOUS, 0.75, 0.5, pearls=0.45, necrosis=0.05, lymphocytes=0.1
)
_NONKERATINISING = _SquamousStyle(
    13, _SQUAMOUS, 0.6, 0.35, pearls=0.03, necrosis=0.15, lymphocytes=0.2
)
_BASALOID_SQUAMOUS = _SquamousStyle(
    9, _BASALOID, 0.2, 0.0, pearls=0.0, necrosis=0.6, lymphocytes=0.4
)
_HPV_SQUAMOUS = _SquamousStyle(10, _BASALOID, 0.25, 0.05, pearls=0.0, necrosis=0.4, lymphocytes=0.9)

_THYROID_PAPILLAE = _PapillaStyle(46, 3.5, 8, _PAPILLARY_THYROID, 0.35, psammoma=0.3)
_SEROUS_PAPILLAE = _PapillaStyle(34, 2.5, 9, _SEROUS, 0.38, psammoma=0.15)


def _one(render: Renderer) -> tuple[tuple[float, Renderer], ...]:
    return ((1.0, render),)


# Per subtype: the growth patterns its tiles show, with their shares. Subtypes without a
# morphological correlate (e.g. PRAD_ERG vs PRAD_SPOP) share their type's patterns.
_PATTERNS: dict[str, tuple[tuple[float, Renderer], ...]] = {
    "BRCA_LUMA": ((0.85, partial(_glands, s=_TUBULES)), (0.15, partial(_sheets, s=_BREAST_NESTS))),
    "BRCA_LUMB": ((0.6, partial(_glands, s=_TUBULES)), (0.4, partial(_sheets, s=_BREAST_NESTS))),
    "BRCA_HER2": ((0.25, partial(_glands, s=_TUBULES)), (0.75, partial(_sheets, s=_BREAST_NESTS))),
    "BRCA_TNBC": _one(partial(_sheets, s=_TRIPLE_NEGATIVE)),
    "LUAD_EGFR": (
        (0.5, _lepidic),
        (0.4, partial(_glands, s=_ACINI)),
        (0.1, partial(_sheets, s=_LUNG_SOLID)),
    ),
    "LUAD_KRAS": (
        (0.2, _lepidic),
        (0.4, partial(_glands, s=_MUCINOUS_ACINI)),
        (0.25, partial(_glands, s=_ACINI)),
        (0.15, partial(_sheets, s=_LUNG_SOLID)),
    ),
    "LUAD_ALK": (
        (0.1, _lepidic),
        (0.4, partial(_glands, s=_ACINI)),
        (0.5, partial(_sheets, s=_LUNG_SOLID)),
    ),
    "LUAD_OTHER": (
        (0.25, _lepidic),
        (0.5, partial(_glands, s=_ACINI)),
        (0.25, partial(_sheets, s=_LUNG_SOLID)),
    ),
    "LUSC_KERAT": _one(partial(_squamous, s=_KERATINISING)),
    "LUSC_NONKERAT": _one(partial(_squamous, s=_NONKERATINISING)),
    "LUSC_BASALOID": _one(partial(_squamous, s=_BASALOID_SQUAMOUS)),
    "COAD_MSIH": (
        (0.6, partial(_glands, s=_MUCINOUS_COLONIC)),
        (0.4, partial(_sheets, s=_MEDULLARY)),
    ),
    "COAD_MSS": _one(partial(_glands, s=_COLONIC)),
    "PAAD_CLASSICAL": _one(partial(_glands, s=_PANCREATIC)),
    "PAAD_BASAL": (
        (0.4, partial(_glands, s=_PANCREATIC)),
        (0.6, partial(_sheets, s=_SQUAMOID_PANCREAS)),
    ),
    **dict.fromkeys(
        ("SKCM_BRAF", "SKCM_NRAS", "SKCM_TWT"), _one(partial(_melanoma, s=_MelanomaStyle(0.9)))
    ),
    "SKCM_NF1": (
        (0.5, _desmoplastic_melanoma),
        (0.5, partial(_melanoma, s=_MelanomaStyle(0.5))),
    ),
    **dict.fromkeys(SUBTYPES["GBM"], _one(_glial)),
    **dict.fromkeys(SUBTYPES["PRAD"], _one(partial(_glands, s=_PROSTATIC))),
    "THCA_CLASSIC": _one(partial(_papillae, s=_THYROID_PAPILLAE)),
    "THCA_FOLLICULAR": _one(_follicles),
    "KIRC_CCA": _one(partial(_clear_cells, s=_ClearCellStyle(granular=0.05))),
    "KIRC_CCB": _one(partial(_clear_cells, s=_ClearCellStyle(granular=0.35))),
    **dict.fromkeys(SUBTYPES["OV"], ((0.4, partial(_papillae, s=_SEROUS_PAPILLAE)), (0.6, _slits))),
    "CESC_SCC": (
        (0.6, partial(_squamous, s=_KERATINISING)),
        (0.4, partial(_squamous, s=_NONKERATINISING)),
    ),
    "CESC_ADENO": _one(partial(_glands, s=_ENDOCERVICAL)),
    "HNSC_HPVPOS": _one(partial(_squamous, s=_HPV_SQUAMOUS)),
    "HNSC_HPVNEG": _one(partial(_squamous, s=_KERATINISING)),
    "LIHC_HBV": _one(partial(_trabeculae, s=_LiverStyle(steatosis=0.05, ground_glass=0.3))),
    "LIHC_HCV": _one(partial(_trabeculae, s=_LiverStyle(steatosis=0.2, ground_glass=0.0))),
    "LIHC_NONVIRAL": _one(partial(_trabeculae, s=_LiverStyle(steatosis=0.45, ground_glass=0.0))),
    "SARC_LMS": _one(partial(_spindle, s=_LEIOMYOSARCOMA)),
    "SARC_UPS": _one(partial(_spindle, s=_PLEOMORPHIC)),
    "SARC_DDLPS": _one(_lipogenic),
}


def _architecture(rng: np.random.Generator, subtype: str, shape: Shape, atypia: _Atypia) -> _Tissue:
    """The subtype's tissue, each tile drawn from one of its growth patterns."""
    n, h, w = shape
    patterns = _PATTERNS[subtype]
    counts = rng.multinomial(n, [share for share, _ in patterns])
    chosen = [(int(c), render) for c, (_, render) in zip(counts, patterns, strict=True) if c]
    parts = [render(rng, (c, h, w), atypia) for c, render in chosen]
    return parts[0] if len(parts) == 1 else _stack(parts, [c for c, _ in chosen], h, w)


def _resolve(cancer_type: str, subtype: str, grade: int) -> tuple[str, _Atypia]:
    """Validated subtype ("" means the type's first) and the grade's atypia (0 means 2)."""
    if cancer_type not in CANCER_TYPES:
        raise InputError(f"unknown cancer type {cancer_type!r}; expected one of {CANCER_TYPES}")
    subtype = subtype or SUBTYPES[cancer_type][0]
    if subtype not in SUBTYPES[cancer_type]:
        raise InputError(f"subtype {subtype!r} is not one of {SUBTYPES[cancer_type]}")
    if grade not in (0, 1, 2, 3):
        raise InputError(f"grade must be 0 (unknown), 1, 2 or 3, got {grade!r}")
    return subtype, _ATYPIA[grade or 2]


# Subtypes whose own architecture already shows a lymphocytic infiltrate or necrosis, so a
# report never calls it absent.
_LYMPHOCYTE_RICH = frozenset({"BRCA_TNBC", "COAD_MSIH", "HNSC_HPVPOS"})
_NECROSIS_RICH = frozenset({"BRCA_TNBC", "LUSC_BASALOID", *SUBTYPES["GBM"]})
# Level probabilities in TIL_LEVELS / NECROSIS_LEVELS order; necrosis rises with grade.
_TIL_PRIOR = (0.3, 0.45, 0.25)
_TIL_PRIOR_RICH = (0.0, 0.35, 0.65)
_NECROSIS_PRIOR = {0: (0.5, 0.35, 0.15), 1: (0.7, 0.25, 0.05), 2: (0.5, 0.35, 0.15),
                   3: (0.3, 0.4, 0.3)}  # fmt: skip
_NECROSIS_PRIOR_RICH = (0.0, 0.5, 0.5)
# What each level lays over the architecture: lymphocyte density in the infiltrated
# areas, and the share of the tile that is necrotic.
_TIL_DENSITY = dict(zip(TIL_LEVELS, (0.0, 0.3, 1.0), strict=True))
_NECROSIS_SHARE = dict(zip(NECROSIS_LEVELS, (0.0, 0.12, 0.4), strict=True))


def sample_histology(subtype: str, grade: int, rng: np.random.Generator) -> tuple[str, str]:
    """(TIL level, necrosis level) of one tumour: what its tiles show beyond subtype and
    grade and what its pathology report states. Raises InputError for an unknown subtype."""
    if not any(subtype in s for s in SUBTYPES.values()):
        raise InputError(f"unknown subtype {subtype!r}")
    til = _TIL_PRIOR_RICH if subtype in _LYMPHOCYTE_RICH else _TIL_PRIOR
    necrosis = _NECROSIS_PRIOR_RICH if subtype in _NECROSIS_RICH else _NECROSIS_PRIOR[grade]
    return (
        TIL_LEVELS[int(rng.choice(3, p=til))],
        NECROSIS_LEVELS[int(rng.choice(3, p=necrosis))],
    )


def _with_histology(
    rng: np.random.Generator, tissue: _Tissue, shape: Shape, histology: tuple[str, ...]
) -> _Tissue:
    """The architecture with the case's necrosis (patches of debris replacing it) and
    lymphocytic infiltrate (small dark round cells scattered over the viable rest)."""
    if not is_histology(histology):
        raise InputError(f"histology must be (TIL level, necrosis level), got {histology!r}")
    if not histology:
        return tissue
    til, necrosis = histology
    dead = np.zeros(shape, np.float32)
    if _NECROSIS_SHARE[necrosis]:
        dead = _threshold(_noise(rng, shape, 18), _NECROSIS_SHARE[necrosis], 1.5)
        tissue = _blend(rng, _necrosis(rng, np.ones(shape, np.float32)), tissue, dead)
    if _TIL_DENSITY[til]:
        patches = _threshold(_noise(rng, shape, 14), 0.6, 1.0)  # infiltrates are patchy
        where = _TIL_DENSITY[til] * patches * (1.0 - dead)
        tissue = _combine(tissue, _lymphocytes(rng, where, spacing=5.0))
    return tissue


# --------------------------------------------------------------------------- colour


def _sample_stain(rng: np.random.Generator) -> _Stain:
    """One slide's staining: stain hues and strengths vary between labs and batches."""
    od = np.clip(_REFERENCE_OD + rng.normal(0, 0.07, (3, 3)), 0.02, None)
    od /= np.linalg.norm(od, axis=1, keepdims=True)
    strength = np.exp(rng.normal(0, [0.28, 0.3, 0.2])) * np.exp(rng.normal(0, 0.15))
    glass = 255.0 * (1.0 - rng.uniform(0, 0.04, 3))
    return _Stain((od * strength[:, None]).astype(np.float32), glass.astype(np.float32))


def _blur(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Separable 3-tap Gaussian blur (defocus) of (..., n, h, w) with one sigma per tile;
    3 taps are enough for the sigmas used (<= 1.2 px). Edges are replicated."""
    side = np.exp(-0.5 / sigma.astype(np.float32) ** 2)[:, None, None]
    centre, side = 1 / (1 + 2 * side), side / (1 + 2 * side)
    for axis in (-2, -1):
        lo = [slice(None)] * x.ndim
        hi = list(lo)
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        first, last = list(lo), list(lo)
        first[axis], last[axis] = slice(0, 1), slice(-1, None)
        y = x * centre
        y[tuple(hi)] += x[tuple(lo)] * side  # neighbour above / to the left
        y[tuple(lo)] += x[tuple(hi)] * side  # neighbour below / to the right
        y[tuple(first)] += x[tuple(first)] * side
        y[tuple(last)] += x[tuple(last)] * side
        x = y
    return x


def _paint(
    rng: np.random.Generator,
    tissue: _Tissue,
    shape: Shape,
    stain: _Stain,
    sigma: np.ndarray,
    ink: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Beer-Lambert colour of the tissue, blurred and with sensor noise: (n, h, w, 3) uint8.

    `ink` is marker ink on the coverslip: its amount (n, h, w) and optical density (3,)."""
    n = shape[0]
    haem = tissue.haem + _stamp(tissue.nuclei, shape)
    section = np.exp(rng.normal(0, 0.06, (n, 3))).astype(np.float32)  # thickness per tile
    maps = (haem, tissue.eosin, tissue.melanin)
    present = [i for i, m in enumerate(maps) if np.ndim(m)]  # melanin is mostly absent
    conc = _blur(np.minimum(np.stack([maps[i] for i in present]), 2.5), sigma)  # (k, n, h, w)
    vectors = stain.od[present][:, None, :] * section.T[present, :, None]  # (k, n, 3)
    noise = (rng.random(shape, dtype=np.float32) - 0.5) * rng.uniform(1.5, 5.0)
    channels = []
    for c in range(3):  # channel-last broadcasting is several times slower
        od = sum(conc[k] * vectors[k, :, c, None, None] for k in range(len(present)))
        if ink is not None:
            od = od + ink[0] * ink[1][c]
        channels.append(stain.glass[c] * np.exp(-od) + noise)
    return np.clip(np.stack(channels, axis=-1) + 0.5, 0, 255).astype(np.uint8)


def _jpeg(rng: np.random.Generator, tiles: np.ndarray) -> np.ndarray:
    """Tiles after a JPEG round trip at a random quality each (scanner compression)."""
    out = np.empty_like(tiles)
    for i, (tile, quality) in enumerate(zip(tiles, rng.integers(55, 96, len(tiles)), strict=True)):
        buffer = io.BytesIO()
        Image.fromarray(tile).save(buffer, format="JPEG", quality=int(quality))
        out[i] = np.asarray(Image.open(buffer))
    return out


def _glass(shape: Shape) -> _Tissue:
    """Bare glass: no stain, no nuclei."""
    return _Tissue(np.zeros(shape, np.float32), 0.0, _join())


def _presence(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Share of tissue per pixel (n, h, w): most tiles are full, a few lie on the tissue
    edge or on bare glass, as tiles cut from a slide do."""
    n, h, w = shape
    draw = rng.random(n)
    offset = np.where(draw < 0.03, -1e6, np.where(draw < 0.09, rng.uniform(-0.3, 0.3, n) * h, 1e6))
    theta = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    yy, xx = _coords(h, w)
    signed = (yy - h / 2) * np.cos(theta) + (xx - w / 2) * np.sin(theta)
    signed = signed + offset.astype(np.float32)[:, None, None] + 8.0 * _noise(rng, shape, 24)
    return np.clip(signed / 2 + 0.5, 0.0, 1.0)


def _outline(rng: np.random.Generator, shape: Shape) -> np.ndarray:
    """Irregular tissue section(s) on the glass: the union of one to three distorted
    ellipses, (1, h, w) in [0, 1]."""
    _, h, w = shape
    yy, xx = _coords(h, w)
    outline = np.zeros(shape, np.float32)
    blobs = int(rng.integers(1, 4))
    for _ in range(blobs):
        cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.3, 0.7) * w
        ry, rx = rng.uniform(0.18, 0.32) * h, rng.uniform(0.15, 0.3) * w / blobs**0.5
        theta = np.float32(rng.uniform(0, np.pi))
        u = ((yy - cy) * np.cos(theta) + (xx - cx) * np.sin(theta)) / ry
        v = (-(yy - cy) * np.sin(theta) + (xx - cx) * np.cos(theta)) / rx
        radial = np.sqrt(u**2 + v**2) + 0.18 * _noise(rng, shape, 0.12 * min(h, w))
        outline = np.maximum(outline, np.clip((1.0 - radial) * 0.5 * min(ry, rx) + 0.5, 0, 1))
    return outline


def _pen_marks(rng: np.random.Generator, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """Marker ink on the coverslip: its amount (1, h, w) and optical density (3,); a circle
    drawn around the tumour or a freehand stroke, in blue, green or black."""
    _, h, w = shape
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.5:  # an open loop around a region
            t = np.linspace(0, rng.uniform(1.4, 1.9) * np.pi, 60) + rng.uniform(0, 2 * np.pi)
            radius = rng.uniform(0.12, 0.3) * min(h, w) * (1 + 0.08 * np.sin(3 * t))
            cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
            ys, xs = cy + radius * np.sin(t), cx + 1.2 * radius * np.cos(t)
        else:  # a freehand stroke with a slowly turning heading
            heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.12, 40))
            step = 0.012 * w
            ys = rng.uniform(0.1, 0.9) * h + np.cumsum(step * np.sin(heading))
            xs = rng.uniform(0.1, 0.9) * w + np.cumsum(step * np.cos(heading))
        width = int(rng.uniform(0.004, 0.01) * w) + 2
        draw.line(
            list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=255, width=width, joint="curve"
        )
    mask = np.asarray(canvas, dtype=np.float32)[None] / 255.0
    strength = rng.uniform(0.5, 0.9) * (0.85 + 0.15 * _noise(rng, shape, 6))
    return mask * strength, _PEN_OD[rng.integers(len(_PEN_OD))]


# --------------------------------------------------------------------------- public API


def render_tiles(
    cancer_type: str,
    subtype: str,
    grade: int,
    rng: np.random.Generator,
    n: int,
    size: int = 128,
    histology: tuple[str, ...] = (),
) -> np.ndarray:
    """`n` H&E-like tiles of one slide of this tumour, (n, size, size, 3) uint8.

    Architecture follows the type and subtype, nuclear size, density, pleomorphism and
    hyperchromasia follow the grade (0 = unknown renders as 2; "" subtype = the type's
    first), and `histology` ((TIL level, necrosis level), see `sample_histology`; () =
    none added) lays necrosis and lymphocytes over it. The slide's stain colours, focus
    and JPEG quality are drawn from `rng`, and a few tiles lie on the tissue edge or on
    glass. Deterministic given `rng`'s state. Raises InputError for an unknown type,
    subtype, grade or histology level, n < 0 or size < 32.
    """
    subtype, atypia = _resolve(cancer_type, subtype, grade)
    if n < 0 or size < 32:
        raise InputError(f"need n >= 0 and size >= 32, got n={n}, size={size}")
    shape = (n, size, size)
    if n == 0:
        return np.zeros((*shape, 3), np.uint8)
    stain = _sample_stain(rng)
    tissue = _with_histology(rng, _architecture(rng, subtype, shape, atypia), shape, histology)
    tissue = _blend(rng, tissue, _glass(shape), _presence(rng, shape))
    sigma = np.clip(rng.uniform(0.3, 1.1) + rng.normal(0, 0.15, n), 0.2, 1.6)
    return _jpeg(rng, _paint(rng, tissue, shape, stain, sigma))


def render_slide(
    cancer_type: str,
    subtype: str,
    grade: int,
    rng: np.random.Generator,
    width: int = 2048,
    height: int = 1536,
    pen_marks: bool = False,
    histology: tuple[str, ...] = (),
) -> np.ndarray:
    """A whole-slide-like image (height, width, 3) uint8: irregular tissue section(s) on
    white glass, tumour regions with the subtype's morphology mixed with stroma, fat,
    vessels and lymphoid aggregates, and optionally marker pen strokes for tissue QC to
    flag. Same arguments and errors as `render_tiles`; width and height must be >= 64."""
    subtype, atypia = _resolve(cancer_type, subtype, grade)
    if width < 64 or height < 64:
        raise InputError(f"slide must be at least 64x64 px, got {width}x{height}")
    shape = (1, height, width)
    stain = _sample_stain(rng)
    tumour = _with_histology(rng, _architecture(rng, subtype, shape, atypia), shape, histology)
    normal = _normal_tissue(rng, shape, atypia)
    region = _threshold(_noise(rng, shape, 0.15 * min(height, width)), rng.uniform(0.35, 0.7), 3.0)
    tissue = _blend(rng, tumour, normal, region)
    tissue = _blend(rng, tissue, _glass(shape), _outline(rng, shape))
    ink = _pen_marks(rng, shape) if pen_marks else None
    sigma = np.array([rng.uniform(0.3, 0.9)])
    return _paint(rng, tissue, shape, stain, sigma, ink)[0]


def _check_rgb(image: np.ndarray, what: str) -> None:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3):
        raise InputError(f"{what} must be an (h, w, 3) uint8 array")
    if image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise InputError(f"{what} must be an (h, w, 3) uint8 array, got shape {image.shape}")


def _halve(image: np.ndarray) -> np.ndarray:
    """2x2 mean downsampling; an odd last row or column is repeated."""
    h, w = image.shape[:2]
    padded = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge").astype(np.uint16)
    summed = padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2]
    return ((summed + 2) // 4).astype(np.uint8)


def write_pyramidal_tiff(
    path: Path,
    image: np.ndarray,
    tile: int = 256,
    mpp: float = 0.5,
    compression: str | None = None,
) -> Path:
    """Write `image` (h, w, 3) uint8 as a tiled pyramidal TIFF that OpenSlide opens
    (vendor "generic-tiff"): full resolution first, then levels halved until one fits in
    a tile, each a page with subfiletype=1 (reduced image), with resolution tags giving
    `mpp` micrometres per pixel at level 0. Compression is JPEG when imagecodecs is
    installed, zlib otherwise (or as given). Written atomically; returns `path`."""
    import tifffile  # heavy; only needed by callers that write slides

    path = Path(path)
    _check_rgb(image, "slide image")
    if tile < 16 or tile % 16 or mpp <= 0:
        raise InputError(f"tile must be a positive multiple of 16 and mpp > 0, got {tile}, {mpp}")
    codec = compression or ("jpeg" if find_spec("imagecodecs") else "zlib")
    # zlib level 1 writes ~6x faster than the default for ~25% more bytes.
    settings = {"jpeg": {"level": 90}, "zlib": {"level": 1}}.get(codec)
    levels = [image]
    while max(levels[-1].shape[:2]) > tile:
        levels.append(_halve(levels[-1]))
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=image.nbytes > 2**31) as tif:
        for i, level in enumerate(levels):
            pixels_per_cm = 1e4 / (mpp * 2**i)
            tif.write(
                level,
                tile=(tile, tile),
                photometric="rgb",
                compression=codec,
                compressionargs=settings,
                subfiletype=1 if i else 0,
                resolution=(pixels_per_cm, pixels_per_cm),
                resolutionunit="CENTIMETER",
                metadata=None,
            )
    return path


def save_tile(path: Path, tile: np.ndarray, quality: int = 90) -> None:
    """Save an (h, w, 3) uint8 tile as JPEG, atomically."""
    _check_rgb(tile, "tile")
    if not 1 <= quality <= 95:
        raise InputError(f"JPEG quality must be in 1..95, got {quality}")
    with atomic_path(Path(path)) as tmp:
        Image.fromarray(tile).save(tmp, format="JPEG", quality=quality)


def load_tile(path: Path) -> np.ndarray:
    """Read an image file as (h, w, 3) uint8 RGB; InputError names the file if unreadable."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as error:
        raise InputError(f"{path}: cannot read image ({error})") from error
