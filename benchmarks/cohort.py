"""Time the default demo cohort (3,000 cases) and report cases/s and the budget ratio.

    .venv/bin/python benchmarks/cohort.py [--cases 3000] [--workers 0] [--json]

Target (foundation issue): the default demo cohort in under 60 s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from core.data.cohort import CohortConfig, generate_cohort

BUDGET_S = 60.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=3000)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = generate_cohort(
            Path(tmp) / "cohort", CohortConfig(n_cases=args.cases, workers=args.workers)
        )
        seconds = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
    result = {
        "cases": args.cases,
        "workers": args.workers or os.cpu_count(),
        "seconds": round(seconds, 2),
        "cases_per_s": round(args.cases / seconds, 1),
        "budget_s": BUDGET_S,
        "budget_ratio": round(seconds / BUDGET_S, 3),
        "disk_mb": round(size_mb, 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>12}: {v}")


if __name__ == "__main__":
    main()
