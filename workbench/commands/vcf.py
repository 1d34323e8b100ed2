"""`cmkd vcf FILE`: every variant of one VCF/BCF sample interpreted, with its evidence;
`cmkd vcf-probe`: fit the genomic encoder's variant probe that the `variant_scorer` hook uses.

Default output is a table for people; `--json` and `--tsv` print the whole report on stdout;
`--vcf-out PATH` writes the input with CMKD_* INFO fields and prints the table. The workspace's
models (teacher + variant probe, student) are used when present (`--no-models`: rules only);
the report says which were missing and why. Invalid input exits 2 with one
`error: FILE: line N: reason` line (cli.main turns InputError into that).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.genomics.interpret import DEFAULT_PANEL_MB, Interpreter, VcfReport, interpret_file
from workbench.workspace import Workspace

# (header, width) of the human-readable table; the last column takes what is left.
_COLUMNS: tuple[tuple[str, int], ...] = (
    ("variant", 26), ("gene", 9), ("change", 14), ("consequence", 24), ("vaf", 5),
    ("class", 10), ("oncogenicity", 21), ("tier", 4), ("criteria", 0),
)  # fmt: skip


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("vcf", help="interpret every variant of a VCF/BCF sample")
    p.add_argument("file", help="VCF, bgzipped or gzipped VCF, or BCF")
    p.add_argument("--sample", help="sample to interpret (default: detected tumour, else first)")
    p.add_argument("--tumor-type", help="TCGA study code (e.g. SKCM), for AMP tiers")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="the whole report as JSON")
    out.add_argument("--tsv", action="store_true", help="one row per variant, tab-separated")
    out.add_argument("--vcf-out", metavar="PATH", help="write an annotated VCF (.gz: gzipped)")
    p.add_argument(
        "--panel-mb", type=float, default=DEFAULT_PANEL_MB,
        help=f"panel size in megabases for TMB (default {DEFAULT_PANEL_MB})",
    )  # fmt: skip
    p.add_argument("--no-models", action="store_true",
                   help="rules only: no genomic encoder score, no annotation reading")  # fmt: skip
    p.set_defaults(func=cmd_vcf)
    probe = subparsers.add_parser(
        "vcf-probe", help="fit the genomic encoder's variant probe (p(oncogenic) for cmkd vcf)"
    )
    probe.add_argument("--json", action="store_true", help="the probe's config and metrics")
    probe.set_defaults(func=cmd_vcf_probe)


def _interpreter(no_models: bool) -> Interpreter | None:
    """None: interpret_file's rules-only default."""
    if no_models:
        return None
    from workbench.vcf_service import model_interpreter

    return model_interpreter(Workspace.from_env().models_dir)


def cmd_vcf(args: argparse.Namespace) -> int:
    report = interpret_file(Path(args.file), args.tumor_type, args.sample, args.panel_mb,
                            interpreter=_interpreter(args.no_models))  # fmt: skip
    if args.json:
        sys.stdout.write(report.to_json(indent=2) + "\n")
    elif args.tsv:
        sys.stdout.write(report.to_tsv())
    else:
        if args.vcf_out:
            report.write_annotated_vcf(Path(args.vcf_out))
        print_report(report)
        if args.vcf_out:
            print(f"annotated VCF: {args.vcf_out}")
    return 0


def _cell(text: str, width: int) -> str:
    if not width:
        return text
    return (text if len(text) <= width else text[: width - 1] + "…").ljust(width)


def print_report(report: VcfReport) -> None:
    """The summary, one line per variant, actionable findings and warnings."""
    roles = [f"tumour {report.tumor_sample}" if report.tumor_sample else "",
             f"normal {report.normal_sample}" if report.normal_sample else ""]  # fmt: skip
    detected = ", ".join(r for r in roles if r) or "none detected"
    print(f"file: {report.file_name} ({report.fileformat}, {report.compression}, "
          f"build {report.build})")  # fmt: skip
    print(f"sample: {report.sample or '-'} (samples: {len(report.samples)}; {detected})")
    print(f"tumour type: {report.tumor_type or 'not given (tier I needs one)'}")
    print(f"variants: {len(report.variants)} of {report.n_records} alleles read "
          f"({report.n_not_in_sample} not carried by the sample)")  # fmt: skip
    print(f"TMB: {report.tmb:.2f} mutations/Mb ({report.tmb_mutations} non-synonymous coding "
          f"/ {report.panel_mb:g} Mb)")  # fmt: skip
    counts = report.counts()
    for group in ("class", "oncogenicity", "tier"):
        print(f"{group}: " + ", ".join(f"{k} {n}" for k, n in counts[group].items()))
    print(f"genomic encoder score: {report.variant_scorer}")
    print(f"annotation reader: {report.annotation_reader}")
    print()
    print("  ".join(_cell(h, w) for h, w in _COLUMNS).rstrip())
    for v in report.variants:
        cells = (v.key, v.gene or "-", v.protein_change or "-", v.consequence or "-",
                 "-" if v.vaf is None else f"{v.vaf:.2f}", v.variant_class,
                 f"{v.oncogenicity} ({v.points:+d})", v.tier, v.criteria_codes or "-")  # fmt: skip
        print("  ".join(_cell(c, w) for c, (_, w) in zip(cells, _COLUMNS, strict=True)))
    if report.actionable:
        print("\nactionable findings:")
        for v in report.actionable:
            therapies = ", ".join(v.therapies[:6]) or "no therapy named"
            print(f"  tier {v.tier}: {v.gene} {v.protein_change or v.consequence}: {therapies}")
            print(f"    {v.tier_reason}")
    if report.warnings:
        print("\nwarnings:")
        for w in report.warnings:
            print(f"  line {w.line}: {w.message}" if w.line else f"  {w.message}")
    print("\nDecision support only: a qualified professional must confirm every finding.")


def cmd_vcf_probe(args: argparse.Namespace) -> int:
    """Fit the probe on the workspace's cohort and teacher into models/variant_probe."""
    from core.genomics.models import train_variant_probe
    from workbench.commands.train import TEACHER_RUN
    from workbench.vcf_service import PROBE_RUN

    ws = Workspace.from_env()
    out = ws.models_dir / PROBE_RUN
    record = train_variant_probe(ws.cohort_dir, ws.models_dir / TEACHER_RUN, out)
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print(f"variant probe written to {out} ({record['version']})")
    for split, m in record["metrics"].items():
        share = f"OP1 {m['op1_share']}, SBP1 {m['sbp1_share']}"
        print(f"{split}: AUC driver vs passenger {m['auc']} over {m['n']} variants "
              f"({m['drivers']} drivers); {share}")  # fmt: skip
    return 0
