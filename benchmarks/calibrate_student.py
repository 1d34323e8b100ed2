"""Temperature-scale a student distilled before calibration existed, into a copy.

    .venv/bin/python benchmarks/calibrate_student.py --student /tmp/ws/models/student \\
        --cohort /tmp/ws/cohort --out /tmp/calib/demo-student-calibrated

Copies the student folder to --out (which must not exist) and adds config.json's
"calibration" exactly as `cmkd distill` now records it after training
(core.train.distill.calibration_record: T and the abstention threshold fitted on the English
notes of the cohort's validation cases). The weights are not touched, so `cmkd evaluate` on
the copy reports the old student's numbers as ece_uncalibrated / abstention_rate_uncalibrated
beside the calibrated ones. Prints the record.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from core.data.cohort import load_cases
from core.io import write_atomic
from core.train.distill import CONFIG_FILE, DistillConfig, calibration_record, load_distilled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", type=Path, required=True)
    parser.add_argument("--cohort", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"error: {args.out} exists", file=sys.stderr)
        return 2
    student = load_distilled(args.student)
    cfg = DistillConfig.from_dict(student.config["distill"])
    record = calibration_record(
        student.model, student.batcher, load_cases(args.cohort), cfg, torch.device("cpu")
    )
    if record is None:
        print(f"error: {args.cohort} has no English validation notes", file=sys.stderr)
        return 2
    shutil.copytree(args.student, args.out)
    config = {**student.config, "calibration": record}
    write_atomic(args.out / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
