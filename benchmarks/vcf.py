"""VCF reader throughput against plain pysam and bcftools, and its peak memory at two sizes.

    .venv/bin/python benchmarks/vcf.py [--records 1000000] [--small 100000] [--models DIR]
                                       [--json]

Generates two bgzipped single-sample VCFs (`--records` and `--small` records; VEP CSQ with two
transcripts and GT:AD:DP:AF per record) in a temporary folder, then measures in this one run:
records/s of plain pysam iteration reading INFO/CSQ and FORMAT/GT (the baseline), of
`bcftools view -H` when bcftools is installed, of our reader (annotations are parsed on first
access), of our reader with every record's annotations and free text accessed, of the pure-Python
floor (`scan_python_floor`: the least per-record work a report row needs, no validation; what
any interpreter written in Python would cost at best), and of reader
+ interpretation (rules only), of reader + interpretation with the models of `--models DIR`
(a workspace's models folder: teacher + variant_probe, student) when given; and the peak RSS
of a process that streams each file through the reader, which must not grow with the file.

Rates are records per CPU-second of the process doing the work (bcftools: of the child), so
that other processes sharing this 2-core machine do not skew the ratios measured side by side.

Target (issue 5): parse + interpretation at least half the throughput of plain pysam in the
same run.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.genomics.classes import severity_rank
from core.genomics.interpret import Interpreter, interpret_file
from core.genomics.pysam_adapter import bgzip, scan_baseline, scan_python_floor
from core.genomics.reader import open_vcf
from core.knowledge.tables import KnowledgeBase

TARGET_RATIO = 0.5
TUMOR_TYPE = "SKCM"
_CSQ_FIELDS = (
    "Allele|Consequence|IMPACT|SYMBOL|Gene|Feature_type|Feature|BIOTYPE|EXON|HGVSc|HGVSp|gnomADe_AF"
)
_HEADER = (
    "##fileformat=VCFv4.2\n"
    "##source=cmkd-benchmark\n"
    "##reference=GRCh38\n"
    "##contig=<ID=chr1,length=248956422>\n"
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth">\n'
    '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl '
    f'VEP. Format: {_CSQ_FIELDS}">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">\n'
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">\n'
    '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fraction">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tTUMOR\n"
)
_GENES = ("BRAF", "KRAS", "TP53", "EGFR", "PIK3CA", "TTN", "MUC16", "APC")
_AA = "ACDEFGHIKLMNPQRSTVWY"


def write_vcf(path: Path, n: int, seed: int = 0) -> Path:
    """A sorted single-sample bgzipped VCF of `n` SNVs on chr1 with two CSQ transcripts."""
    rng = random.Random(seed)
    text = path.with_suffix("")  # x.vcf.gz -> x.vcf
    with open(text, "w", encoding="utf-8") as f:
        f.write(_HEADER)
        pos = 10_000
        for i in range(n):
            pos += rng.randint(1, 200)
            ref, alt = rng.sample("ACGT", 2)
            gene, aa = _GENES[i % len(_GENES)], rng.randint(1, 1200)
            a, b = rng.choice(_AA), rng.choice(_AA)
            csq = ",".join(
                f"{alt}|missense_variant|MODERATE|{gene}|ENSG{i % 977:011d}|Transcript|"
                f"ENST{i % 977:08d}{t}|protein_coding|{t + 3}/20|ENST{i % 977:08d}{t}:"
                f"c.{3 * aa}{ref}>{alt}|ENSP{i % 977:08d}{t}:p.{a}{aa}{b}|{rng.random() / 1e3:.5f}"
                for t in range(2)
            )
            depth = rng.randint(20, 400)
            alt_reads = rng.randint(1, depth)
            f.write(
                f"chr1\t{pos}\t.\t{ref}\t{alt}\t{rng.randint(20, 99)}\tPASS\tDP={depth};CSQ={csq}"
                f"\tGT:AD:DP:AF\t0/1:{depth - alt_reads},{alt_reads}:{depth}:"
                f"{alt_reads / depth:.3f}\n"
            )
    bgzip(text, path)
    text.unlink()
    return path


def _rate(fn: Callable[[], int]) -> tuple[float, int]:
    """(records per CPU-second, records) of fn, which returns how many it read."""
    t0 = time.process_time()
    n = fn()
    return n / (time.process_time() - t0), n


def _reader(path: Path, touch: bool) -> int:
    n = 0
    with open_vcf(path) as reader:
        for rec in reader.records():
            if touch:
                rec.annotations  # noqa: B018 - parsing on first access is what is timed
                rec.free_text  # noqa: B018
            n += 1
    return n


def _bcftools(path: Path) -> float | None:
    """CPU seconds of `bcftools view -H path > /dev/null`; None when it is not installed."""
    exe = shutil.which("bcftools")
    if exe is None:
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([exe, "view", "-H", str(path)], stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _interpretation(path: Path, models: Path | None) -> tuple[float, int]:
    """Records per CPU-second of interpret_file, rules only or with the models in `models`
    (loaded, like the knowledge base, before the clock starts)."""
    if models is None:
        interpreter = Interpreter(KnowledgeBase.load())
    else:
        from workbench.vcf_service import model_interpreter

        interpreter = model_interpreter(models)

    def run() -> int:
        report = interpret_file(path, TUMOR_TYPE, interpreter=interpreter)
        return report.n_records

    return _rate(run)


def _own_peak_rss_mb() -> float:
    """This process's peak RSS since exec. Not ru_maxrss: Linux carries that over from the
    forked parent's image, which would hide the reader's own peak behind the parent's."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb(path: Path) -> float:
    """Peak RSS of a fresh process that streams `path` through the reader."""
    cmd = [sys.executable, __file__, "--rss-of", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=1_000_000, help="records of the large file")
    p.add_argument("--small", type=int, default=100_000, help="records of the small file")
    p.add_argument("--models", type=Path, help="a workspace's models folder: also time with them")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rss-of", type=Path, help=argparse.SUPPRESS)  # the child of _peak_rss_mb
    args = p.parse_args()
    if args.rss_of:
        _reader(args.rss_of, touch=True)
        print(_own_peak_rss_mb())
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        large = write_vcf(Path(tmp) / "large.vcf.gz", args.records, seed=1)
        small = write_vcf(Path(tmp) / "small.vcf.gz", args.small, seed=2)
        generate_s = time.perf_counter() - t0
        pysam_rate, n = _rate(lambda: scan_baseline(large, "CSQ", "GT"))
        bcftools_s = _bcftools(large)
        reader_rate, n_read = _rate(lambda: _reader(large, touch=False))
        parsed_rate, _ = _rate(lambda: _reader(large, touch=True))
        floor_rate, _ = _rate(lambda: scan_python_floor(large, severity_rank))
        interpreted = _interpretation(large, None)
        with_models = _interpretation(large, args.models) if args.models else None
        rss_small, rss_large = _peak_rss_mb(small), _peak_rss_mb(large)
    result: dict[str, Any] = {
        "records": n,
        "generate_s": round(generate_s, 1),
        "pysam_records_per_s": round(pysam_rate),
        "bcftools_records_per_s": round(n / bcftools_s) if bcftools_s else "not installed",
        "reader_records_per_s": round(reader_rate),
        "reader_vs_pysam": round(reader_rate / pysam_rate, 3),
        "reader_annotations_records_per_s": round(parsed_rate),
        "reader_annotations_vs_pysam": round(parsed_rate / pysam_rate, 3),
    }
    if bcftools_s:
        result["reader_vs_bcftools"] = round(reader_rate / (n / bcftools_s), 3)
    result["python_floor_records_per_s"] = round(floor_rate)
    result["python_floor_vs_pysam"] = round(floor_rate / pysam_rate, 3)
    result["interpret_records_per_s"] = round(interpreted[0])
    result["interpret_vs_pysam"] = round(interpreted[0] / pysam_rate, 3)
    if with_models:
        result["interpret_models_records_per_s"] = round(with_models[0])
        result["interpret_models_vs_pysam"] = round(with_models[0] / pysam_rate, 3)
    result |= {
        "peak_rss_mb_small": round(rss_small, 1),
        "peak_rss_mb_large": round(rss_large, 1),
        "peak_rss_large_vs_small": round(rss_large / rss_small, 3),
        "target_interpret_vs_pysam": TARGET_RATIO,
        "target_met": interpreted[0] / pysam_rate >= TARGET_RATIO and n_read == n,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>34}: {v}")


if __name__ == "__main__":
    main()
