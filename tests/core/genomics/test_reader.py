"""VCF reader: golden cases (one folder each under golden/), then behaviour the golden files
cannot show (lazy fields, streaming, fd 2, threads, re-reading, round trip of cohort VCFs).

A golden folder holds `input.*`, optional `args.json` (keyword arguments of `read_all`), and
either `expected.json` (header, compact records, warnings) or `expected_error.txt` (the exact
error line, with the input's path written as FILE). CMKD_REGEN_GOLDEN=1 rewrites the expected
files from the current reader: review the diff before committing it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

from core.errors import InputError
from core.genomics.reader import (
    POPULATION_AF_INFO,
    StreamedRecord,
    open_vcf,
    population_af,
    read_all,
)
from core.genomics.records import ReadWarning, VariantRecord, VcfError, VcfHeader

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
REGEN = os.environ.get("CMKD_REGEN_GOLDEN") == "1"
# Annotation-bearing INFO values are long and shown through `annotations` instead.
_HIDDEN_INFO = frozenset({"CSQ", "ANN", "EFF"})


def _compact(r: VariantRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "line": r.line, "key": r.key, "allele": f"{r.allele_index}/{r.n_alts}", "kind": r.kind,
        "id": r.id, "qual": r.qual, "filters": list(r.filters), "gt": r.genotype,
        "depth": r.depth, "vaf": None if r.vaf is None else round(r.vaf, 4),
    }  # fmt: skip
    if r.sv_type or r.end is not None:
        out |= {"sv_type": r.sv_type, "end": r.end}
    out["info"] = {k: v for k, v in r.info.items() if k not in _HIDDEN_INFO}
    out["annotations"] = [
        "|".join((a.source, a.gene, a.consequence, a.impact, a.hgvsc, a.hgvsp,
                  "" if a.population_af is None else f"af={a.population_af:g}"))
        for a in r.annotations
    ]  # fmt: skip
    out["free_text"] = [f"{t.field}|{t.lang}|{t.text}" for t in r.free_text]
    return out


def _summary(header: VcfHeader, records: list[VariantRecord], warnings: list[ReadWarning]) -> Any:
    head = {k: v for k, v in dataclasses.asdict(header).items() if k != "path"}
    return json.loads(json.dumps({
        "header": head,
        "records": [_compact(r) for r in records],
        "warnings": [f"{w.line}: {w.message}" for w in warnings],
    }))  # fmt: skip


def _input(case: str) -> tuple[Path, dict[str, Any]]:
    folder = GOLDEN / case
    (path,) = folder.glob("input*")
    args = folder / "args.json"
    return path, json.loads(args.read_text()) if args.exists() else {}


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    path, kwargs = _input(case)
    folder = path.parent
    try:
        result = _summary(*read_all(path, **kwargs))
        error = None
    except VcfError as exc:
        result, error = None, str(exc).replace(str(path), "FILE")
    if REGEN:
        for name in ("expected.json", "expected_error.txt"):
            (folder / name).unlink(missing_ok=True)
        if error is None:
            text = json.dumps(result, indent=1, ensure_ascii=False) + "\n"
            (folder / "expected.json").write_text(text, encoding="utf-8")
        else:
            (folder / "expected_error.txt").write_text(error + "\n", encoding="utf-8")
    if (folder / "expected_error.txt").exists():
        expected = (folder / "expected_error.txt").read_text(encoding="utf-8").strip()
        assert error == expected
        assert expected.startswith("FILE: ")
    else:
        assert error is None, error
        assert result == json.loads((folder / "expected.json").read_text(encoding="utf-8"))


def test_every_golden_case_has_an_expectation() -> None:
    for case in CASES:
        names = {p.name for p in (GOLDEN / case).iterdir()}
        assert len(names & {"expected.json", "expected_error.txt"}) == 1, case


# ------------------------------------------------------------------------ behaviour


def _vcf(tmp_path: Path, body: str, header: str = "", name: str = "x.vcf") -> Path:
    """A small VCF: one sample S1, contig chr1, the given extra header lines and records."""
    text = (
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=248956422>\n"
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        f"{header}#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n{body}"
    )
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _snvs(n: int) -> str:
    return "".join(f"chr1\t{1000 + i}\t.\tA\tG\t50\tPASS\tDP={i}\tGT\t0/1\n" for i in range(n))


def test_streamed_records_equal_pickle_and_copy_as_plain_records() -> None:
    _, records, _ = read_all(_input("german_free_text")[0])
    rec = records[0]
    assert isinstance(rec, StreamedRecord)
    plain = VariantRecord(**{f.name: getattr(rec, f.name) for f in dataclasses.fields(rec)})
    assert rec == plain and plain == rec
    assert rec != dataclasses.replace(plain, alt="C")
    for clone in (pickle.loads(pickle.dumps(rec)), copy.copy(rec), copy.deepcopy(rec)):
        assert type(clone) is VariantRecord and clone == rec
    changed = dataclasses.replace(rec, vaf=0.9)
    assert changed.vaf == 0.9 and changed.annotations == rec.annotations
    assert rec.free_text[0].lang == "de" and rec.info["ANNOTATION_LANG"] == "de"
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.alt = "C"  # type: ignore[misc]


def test_records_before_a_bad_line_stream_then_the_error_names_it() -> None:
    path, _ = _input("bad_gt_mid_file")
    seen = []
    with open_vcf(path) as reader, pytest.raises(VcfError, match=r": line 11: Couldn't read GT"):
        for rec in reader.records():
            seen.append(rec.pos)
    assert seen == [100, 200]


def test_each_records_call_reads_the_file_anew(tmp_path: Path) -> None:
    path = _vcf(tmp_path, _snvs(1200))
    with open_vcf(path) as reader:
        first = [r.key for r in reader.records()]
        second = [r.key for r in reader.records()]
    assert len(first) == 1200 and first == second


def test_records_are_not_kept_by_the_reader(tmp_path: Path) -> None:
    """Streaming: a record the consumer dropped is freed while the file is still being read."""
    import gc
    import weakref

    path = _vcf(tmp_path, _snvs(3000))
    with open_vcf(path) as reader:
        stream = reader.records()
        early = weakref.ref(next(stream))
        for _ in range(2500):
            next(stream)
        gc.collect()
        assert early() is None
        assert sum(1 for _ in stream) == 499


def test_htslib_messages_never_reach_stderr_and_fd2_is_restored(
    capfd: pytest.CaptureFixture[str],
) -> None:
    before = os.fstat(2)
    for case in ("bad_pos_mid_file", "bad_gt_mid_file", "warnings", "bgzip_csq"):
        path, _ = _input(case)
        try:
            read_all(path)
        except VcfError:
            pass
    after = os.fstat(2)
    assert (before.st_ino, before.st_dev) == (after.st_ino, after.st_dev)
    assert capfd.readouterr().err == ""


def test_readers_in_threads_keep_their_own_errors() -> None:
    results: dict[str, str] = {}

    def run(case: str) -> None:
        try:
            results[case] = str(len(read_all(_input(case)[0])[1]))
        except VcfError as exc:
            results[case] = str(exc).split(": ", 1)[1]

    cases = ["bad_pos_mid_file", "bad_gt_mid_file", "bgzip_csq", "plain_gzip"] * 3
    threads = [threading.Thread(target=run, args=(c,)) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {
        "bad_pos_mid_file": "line 10: Could not parse the position '2x0'",
        "bad_gt_mid_file": "line 11: Couldn't read GT data: value not a number or '.' at chr1:250",
        "bgzip_csq": "4",
        "plain_gzip": "4",
    }


def test_plain_gzip_stopped_early_ends_its_thread(tmp_path: Path) -> None:
    import gzip

    text = _vcf(tmp_path, _snvs(20000)).read_bytes()
    path = tmp_path / "x.vcf.gz"
    path.write_bytes(gzip.compress(text))

    def gunzip_threads() -> int:
        return sum(t.name == "vcf-gunzip" for t in threading.enumerate())

    with open_vcf(path) as reader:
        stream = reader.records()
        assert next(stream).pos == 1000
        stream.close()
        assert next(reader.records()).pos == 1000  # left open: the reader closes it
        assert gunzip_threads() == 1
        reader.records()  # never iterated: opens nothing
    assert gunzip_threads() == 0
    with open_vcf(path) as reader:
        assert reader.header.compression == "gzip"
    assert gunzip_threads() == 0


def test_corrupt_plain_gzip_is_rejected_whole(tmp_path: Path) -> None:
    import gzip

    data = gzip.compress(_vcf(tmp_path, _snvs(5000)).read_bytes())
    path = tmp_path / "cut.vcf.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(VcfError) as info:
        read_all(path)
    assert str(info.value).startswith(f"{path}: corrupt or truncated gzip data (")


def test_warnings_stay_bounded(tmp_path: Path) -> None:
    body = "".join(f"chr1\t{1000 + i}\t.\tA\tG\tq{i}\tPASS\tK{i}=1\tGT\t0/1\n" for i in range(400))
    _, records, warnings = read_all(_vcf(tmp_path, body))
    assert len(records) == 400
    assert len(warnings) == 201
    assert warnings[0].message == "QUAL 'q0' is not a number; read as missing (400 times in all)"
    assert warnings[-1] == ReadWarning(0, "201 further warnings of other kinds omitted")


def test_non_numeric_qual_is_found_in_gzipped_text(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "q.vcf.gz"
    text = _vcf(tmp_path, _snvs(3).replace("\t50\t", "\tabc\t")).read_bytes()
    path.write_bytes(gzip.compress(text))
    _, records, warnings = read_all(path)
    assert [r.qual for r in records] == [None, None, None]
    message = "QUAL 'abc' is not a number; read as missing (3 times in all)"
    assert warnings == [ReadWarning(6, message)]


def test_size_cap_of_plain_text(tmp_path: Path) -> None:
    path = _vcf(tmp_path, _snvs(100))
    assert len(read_all(path, max_uncompressed_bytes=100_000)[1]) == 100
    with pytest.raises(VcfError, match=r": file is larger than 1000 bytes$"):
        read_all(path, max_uncompressed_bytes=1000)


def test_vcf_error_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"x\.vcf: cannot read the file"):
        open_vcf(tmp_path / "x.vcf")


@pytest.mark.parametrize(
    ("lines", "samples", "expected"),
    [
        ("##SAMPLE=<ID=NORMAL,SampleName=p1_blood>\n##SAMPLE=<ID=TUMOR,SampleName=p1_dx>\n",
         "p1_blood\tp1_dx", ("p1_dx", "p1_blood")),
        ('##SAMPLE=<ID=PRIMARY,Description="Primary tumour">\n', "NORMAL\tPRIMARY",
         ("PRIMARY", "NORMAL")),
        ("", "S1-T\tS1-N", ("S1-T", "S1-N")),
        ("", "A_T\tB_T", ("", "")),  # two candidates: ambiguous, not guessed
        ("", "GERMLINE", ("", "GERMLINE")),
    ],
)  # fmt: skip
def test_tumour_and_normal_detection(
    tmp_path: Path, lines: str, samples: str, expected: tuple[str, str]
) -> None:
    path = tmp_path / "s.vcf"
    path.write_text(f"##fileformat=VCFv4.2\n{lines}#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
                    f"\tFORMAT\t{samples}\n")  # fmt: skip
    header = open_vcf(path).header
    assert (header.tumor_sample, header.normal_sample) == expected


@pytest.mark.parametrize(
    ("lines", "build"),
    [
        ("##reference=file:///refs/hs37d5.fa\n", "GRCh37"),
        ("##assembly=GRCh38\n", "GRCh38"),
        ("##contig=<ID=chr17,length=83257441>\n", "GRCh38"),
        ("##contig=<ID=chrX,length=155270560,assembly=hg38>\n", "GRCh37"),  # lengths first
        ("##reference=synthetic.fa\n", "unknown"),
    ],
)
def test_build_detection(tmp_path: Path, lines: str, build: str) -> None:
    path = tmp_path / "b.vcf"
    path.write_text(f"##fileformat=VCFv4.2\n{lines}#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    assert open_vcf(path).header.build == build


def test_population_af_prefers_annotations_then_info() -> None:
    _, records, _ = read_all(_input("bgzip_csq")[0])
    assert [population_af(r) for r in records] == [None, 4e-06, None, 0.03]
    _, records, _ = read_all(_input("multiallelic_csq")[0])
    assert [population_af(r) for r in records[:2]] == [0.001, None]
    assert "gnomAD_AF" in POPULATION_AF_INFO


def test_cohort_vcfs_read_back_as_written(tiny_cohort: Path) -> None:
    """Every VCF of the synthetic cohort reads back to the variants the generator wrote."""
    from core.data.genomics import read_variants

    paths = sorted((tiny_cohort / "vcf").glob("*.vcf.gz"))
    assert paths
    for path in paths:
        header, records, warnings = read_all(path)
        assert warnings == [] and header.annotation_fields == ("CSQ",)
        written = read_variants(path)
        assert len(records) == len(written)
        for rec, v in zip(records, written, strict=True):
            (ann,) = rec.annotations
            assert (rec.chrom, rec.pos, rec.ref, rec.alt) == (v.chrom, v.pos, v.ref, v.alt)
            assert (ann.gene, ann.consequence, ann.hgvsp) == (v.gene, v.consequence, v.hgvsp)
            assert (rec.depth, rec.vaf) == (v.depth, pytest.approx(v.vaf, abs=1e-4))
            texts = [(t.text, t.lang) for t in rec.free_text]
            assert texts == ([(v.annotation, v.annotation_lang)] if v.annotation else [])


@pytest.mark.parametrize("version", ["4.0", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "3.3"])
def test_each_vcf_version_reads_and_only_4_0_to_4_5_pass_silently(
    tmp_path: Path, version: str
) -> None:
    """htslib 1.24 (pysam 0.24.1) accepts every version string; the reader warns outside
    4.0-4.5. 4.4's `<*>` and `<CNV:TR>` alleles and its SVCLAIM key read as well."""
    header = (
        '##ALT=<ID=CNV:TR,Description="Tandem repeat copy number">\n'
        '##INFO=<ID=SVCLAIM,Number=A,Type=String,Description="Claim of the SV">\n'
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End">\n'
    )
    body = (
        "chr1\t100\t.\tA\tG\t50\tPASS\tDP=10\tGT\t0/1\n"
        "chr1\t200\t.\tC\t<*>\t.\t.\tEND=300\tGT\t0/0\n"
        "chr1\t400\t.\tT\t<CNV:TR>\t50\tPASS\tSVCLAIM=D\tGT\t0/1\n"
    )
    path = _vcf(tmp_path, body, header)
    path.write_text(path.read_text().replace("VCFv4.2", f"VCFv{version}"))
    head, records, warnings = read_all(path)
    assert head.fileformat == f"VCFv{version}"
    assert [(r.pos, r.kind, r.sv_type) for r in records] == [(100, "snv", ""),
                                                            (400, "symbolic", "CNV")]  # fmt: skip
    messages = [w.message for w in warnings]
    assert "gVCF reference block skipped" in messages
    outside = f"VCF version 'VCFv{version}' is outside 4.0-4.5; read as is"
    assert (outside in messages) == (version in ("4.6", "3.3"))
    assert len(messages) == (2 if version in ("4.6", "3.3") else 1)


def test_benchmark_scans_read_every_record_of_the_benchmark_file(tmp_path: Path) -> None:
    """The throughput benchmark's baseline and pure-Python floor count what the reader reads."""
    from benchmarks.vcf import write_vcf
    from core.genomics.classes import severity_rank
    from core.genomics.pysam_adapter import scan_baseline, scan_python_floor

    path = write_vcf(tmp_path / "b.vcf.gz", 120, seed=3)
    with open_vcf(path) as reader:
        n_read = sum(1 for _ in reader.records())
    assert n_read == 120
    assert scan_baseline(path, "CSQ", "GT") == 120
    assert scan_python_floor(path, severity_rank) == 120
