"""Time the H&E renderer on one core: ms per 128 px tile per type, seconds per slide, and the
ratio of each to its budget (3 ms per tile on average, 1.5 s per 2048x1536 slide).

Tiles are rendered as the cohort renders them, with a sampled histology (TILs, necrosis), and
side by side without it (the architecture alone) for the overlay's cost ratio.

    .venv/bin/python benchmarks/pathology_render.py [--tiles 12] [--calls 6] [--slides 3] [--json]

Both CPU time of this process (what one core spends, robust to other load on the machine)
and wall time are reported. Run with OPENBLAS_NUM_THREADS=1 (set here if unset) so that the
small matrix products stay on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

TILE_BUDGET_MS = 3.0
SLIDE_BUDGET_S = 1.5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiles", type=int, default=12, help="tiles per call (one case)")
    p.add_argument("--calls", type=int, default=6, help="calls per cancer type")
    p.add_argument("--slides", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import numpy as np  # after the thread settings, which BLAS reads when loaded

    from core.data.pathology import (
        render_slide,
        render_tiles,
        sample_histology,
        write_pyramidal_tiff,
    )
    from core.data.schema import CANCER_TYPES, SUBTYPES

    render_tiles("BRCA", "", 2, np.random.default_rng(0), 2)  # sprite bank, cached matrices
    per_type: dict[str, float] = {}
    plain_cpu = 0.0
    wall_total = 0.0
    for cancer_type in CANCER_TYPES:
        subtypes = SUBTYPES[cancer_type]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for k in range(args.calls):
            subtype, grade, rng = subtypes[k % len(subtypes)], 1 + k % 3, np.random.default_rng(k)
            histology = sample_histology(subtype, grade, rng)
            render_tiles(cancer_type, subtype, grade, rng, args.tiles, histology=histology)
        per_type[cancer_type] = (time.process_time() - cpu0) / (args.calls * args.tiles) * 1e3
        wall_total += time.perf_counter() - wall0
        cpu0 = time.process_time()
        for k in range(args.calls):
            subtype, grade, rng = subtypes[k % len(subtypes)], 1 + k % 3, np.random.default_rng(k)
            render_tiles(cancer_type, subtype, grade, rng, args.tiles)
        plain_cpu += time.process_time() - cpu0
    tile_ms = sum(per_type.values()) / len(per_type)
    plain_ms = plain_cpu / (len(CANCER_TYPES) * args.calls * args.tiles) * 1e3
    tile_wall_ms = wall_total / (len(CANCER_TYPES) * args.calls * args.tiles) * 1e3

    slide_cpu, slide_wall, tiff_wall = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.slides):
            cancer_type = CANCER_TYPES[(3 * k) % len(CANCER_TYPES)]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            image = render_slide(cancer_type, "", 2, np.random.default_rng(k), pen_marks=True)
            slide_cpu.append(time.process_time() - cpu0)
            slide_wall.append(time.perf_counter() - wall0)
            wall0 = time.perf_counter()
            write_pyramidal_tiff(Path(tmp) / f"slide{k}.tiff", image)
            tiff_wall.append(time.perf_counter() - wall0)

    report = {
        "tile_ms_cpu_mean_over_types": round(tile_ms, 3),
        "tile_ms_wall": round(tile_wall_ms, 3),
        "tile_budget_ratio": round(tile_ms / TILE_BUDGET_MS, 3),
        "tile_ms_cpu_without_histology": round(plain_ms, 3),
        "histology_cost_ratio": round(tile_ms / plain_ms, 3),
        "tile_ms_cpu_by_type": {k: round(v, 3) for k, v in per_type.items()},
        "slide_s_cpu_max": round(max(slide_cpu), 3),
        "slide_s_wall_max": round(max(slide_wall), 3),
        "slide_budget_ratio": round(max(slide_cpu) / SLIDE_BUDGET_S, 3),
        "tiff_write_s_wall_max": round(max(tiff_wall), 3),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"tiles: {tile_ms:.2f} ms/tile CPU ({tile_wall_ms:.2f} wall), "
          f"{report['tile_budget_ratio']:.2f}x the {TILE_BUDGET_MS} ms budget; "
          f"{plain_ms:.2f} ms without histology, {tile_ms / plain_ms:.2f}x")  # fmt: skip
    for cancer_type, ms in per_type.items():
        print(f"  {cancer_type:5s} {ms:.2f} ms")
    print(f"slides: max {max(slide_cpu):.2f} s CPU ({max(slide_wall):.2f} wall), "
          f"{report['slide_budget_ratio']:.2f}x the {SLIDE_BUDGET_S} s budget; "
          f"TIFF write max {max(tiff_wall):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
