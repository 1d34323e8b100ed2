"""Fuzzing the VCF reader: whatever a valid VCF is mutated into, `read_all` ends in a result
or a `VcfError` whose message starts with the file name: never another exception, never a
hang. Each example also reads every lazily parsed field, so their parsers are fuzzed too."""

from __future__ import annotations

import gzip
import tempfile
import threading
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.genomics.pysam_adapter import bgzip
from core.genomics.reader import read_all
from core.genomics.records import VcfError

HANG_S = 20.0  # far beyond any example: a read that takes this long is taken as a hang
SEED = (
    "##fileformat=VCFv4.3\n"
    "##reference=GRCh38\n"
    "##contig=<ID=chr7,length=159345973>\n"
    "##contig=<ID=chr17,length=83257441>\n"
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    '##INFO=<ID=END,Number=1,Type=Integer,Description="End">\n'
    '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="SV type">\n'
    '##INFO=<ID=CSQ,Number=.,Type=String,Description="VEP. Format: Allele|Consequence|IMPACT|'
    'SYMBOL|HGVSc|HGVSp|gnomADe_AF|ANNOTATION">\n'
    "##INFO=<ID=ANN,Number=.,Type=String,Description=\"Functional annotations: 'Allele | "
    "Annotation | Annotation_Impact | Gene_Name | Gene_ID | Feature_Type | Feature_ID | "
    "Transcript_BioType | Rank | HGVS.c | HGVS.p'\">\n"
    '##INFO=<ID=ANNOTATION_LANG,Number=1,Type=String,Description="Language">\n'
    '##INFO=<ID=NOTE,Number=1,Type=String,Description="Free text">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">\n'
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fraction">\n'
    "##tumor_sample=TUMOR\n"
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tNORMAL\tTUMOR\n"
    "chr7\t140753336\t.\tA\tT,C\t60\tPASS\tDP=120;CSQ=T|missense_variant|MODERATE|BRAF|"
    "c.1799T>A|p.Val600Glu|1e-05|Kinase%20aktiviert,C|missense_variant|MODERATE|BRAF|"
    "c.1799T>G|p.Val600Gly||;ANNOTATION_LANG=de\tGT:AD:DP:AF\t0/0:60,0,0:60:0,0\t"
    "0/1:30,25,5:60:0.42,0.08\n"
    "chr7\t140753400\t.\tGAT\tG\t50\tPASS\tANN=G|frameshift_variant|HIGH|BRAF|BRAF|transcript"
    "|NM_004333.6|protein_coding|15/18|c.1740_1741del|p.Ile582fs\tGT:AD\t0/0:10,0\t0/1:5,5\n"
    "chr7\t140800000\t.\tN\t<DEL>\t.\tPASS\tSVTYPE=DEL;END=140900000;NOTE=Deletion%3B%20"
    "Exon%2015\tGT\t0/0\t0/1\n"
    "chr17\t7675088\tbnd_1\tC\tC[chr7:140753336[\t.\tPASS\tSVTYPE=BND\tGT\t0/0\t0/1\n"
    "chr17\t7675100\t.\tT\t<NON_REF>\t.\t.\tEND=7675200\tGT\t0/0\t0/0\n"
    "chr17\t7675300\t.\tG\tA\tnotnum\tq10\tDP=eighty;UNDECLARED=1\tGT:XX\t0/0:1\t0/1:2\n"
)

_junk = st.one_of(
    st.binary(max_size=12),
    st.sampled_from([b"", b".", b"-1", b"\t", b";", b"=", b",", b"|", b"%", b"%zz", b"<", b"]",
                     b"\xff\xfe", b"\x00", b"nan", b"99999999999999999999", b"##", b"#CHROM"]),
)  # fmt: skip


@st.composite
def _mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """One edit of `data`: delete, duplicate, swap, drop a tab, replace a field, insert,
    truncate."""
    n = len(data)
    i = draw(st.integers(0, max(n - 1, 0)))
    j = draw(st.integers(i, min(n, i + 40)))
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "tab", "field", "insert", "cut"]))
    if kind == "delete":
        return data[:i] + data[j:]
    if kind == "duplicate":
        return data[:j] + data[i:j] + data[j:]
    if kind == "swap" and n > 1:
        k = draw(st.integers(0, n - 1))
        b = bytearray(data)
        b[i], b[k] = b[k], b[i]
        return bytes(b)
    if kind == "tab":
        tabs = [k for k, c in enumerate(data) if c == 9]
        k = draw(st.sampled_from(tabs)) if tabs else i
        return data[:k] + data[k + 1 :]
    if kind == "field":
        lines = data.split(b"\n")
        row = draw(st.integers(0, len(lines) - 1))
        cols = lines[row].split(b"\t")
        cols[draw(st.integers(0, len(cols) - 1))] = draw(_junk)
        lines[row] = b"\t".join(cols)
        return b"\n".join(lines)
    if kind == "insert":
        return data[:i] + draw(_junk) + data[i:]
    return data[:i]


@st.composite
def _mutated_file(draw: st.DrawFn) -> tuple[bytes, str]:
    data = SEED.encode()
    for _ in range(draw(st.integers(1, 4))):
        data = draw(_mutation(data))
    container = draw(st.sampled_from(["plain", "plain", "gzip", "bgzip", "gzip-damaged"]))
    if container.startswith("gzip"):
        data = gzip.compress(data, mtime=0)
    if container == "gzip-damaged":
        data = draw(_mutation(data))
    return data, container


def _read_everything(path: Path) -> Any:
    header, records, warnings = read_all(path)
    for rec in records:  # the lazily parsed fields, and the key
        rec.info, rec.annotations, rec.free_text, rec.key  # noqa: B018
    return header, len(records), warnings


def _outcome(path: Path) -> tuple[str, Any]:
    """("ok", result) or ("VcfError", message), read in a thread so a hang fails the test."""
    box: list[tuple[str, Any]] = []

    def run() -> None:
        try:
            box.append(("ok", _read_everything(path)))
        except VcfError as exc:
            box.append(("VcfError", str(exc)))
        except BaseException as exc:  # noqa: BLE001 - the test's point: report any other
            box.append((type(exc).__name__, repr(exc)))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_S)
    assert not worker.is_alive(), f"reading {path.name} hung"
    return box[0]


def test_seed_is_valid() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.vcf"
        path.write_text(SEED, encoding="utf-8")
        kind, (header, n, warnings) = _outcome(path)
    assert kind == "ok" and n == 6 and header.tumor_sample == "TUMOR"
    assert len(warnings) == 5  # gVCF block, QUAL, FILTER, INFO and FORMAT keys


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_file())
def test_mutated_vcfs_end_in_a_result_or_a_clean_error(mutated: tuple[bytes, str]) -> None:
    data, container = mutated
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("in.vcf.gz" if container != "plain" else "in.vcf")
        if container == "bgzip":
            text = Path(tmp) / "in.vcf"
            text.write_bytes(data)
            bgzip(text, path)
        else:
            path.write_bytes(data)
        kind, detail = _outcome(path)
    assert kind in ("ok", "VcfError"), detail
    if kind == "VcfError":
        assert detail.startswith(f"{path}: "), detail
        assert "\n" not in detail, detail
