"""Streaming VCF/BCF reader: one `VariantRecord` per ALT allele of the chosen sample.

Inputs: VCF (plain, bgzipped or plain-gzipped) and BCF, VCF 4.0 to 4.5. htslib (through
`pysam_adapter`) parses and validates every record; this module reads the header text itself
(to count physical lines, detect the genome build, tumour/normal samples and annotation
formats), turns htslib's records into frozen `VariantRecord`s with their VEP / SnpEff /
ANNOVAR annotations for that allele only, and raises `VcfError("FILE: line N: reason")` for
anything it cannot read. Oddities that can be read become `ReadWarning`s, aggregated per kind
so that memory stays flat however many records repeat one.

A record is decomposed into one `VariantRecord` per ALT; gVCF reference blocks and records
without an ALT are skipped (and counted); `<NON_REF>`, `<*>` and the overlapping-deletion
allele `*` are never reported as alleles. REF/ALT are kept as written (no trimming).
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import threading
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any
from urllib.parse import unquote

from core.genomics.pysam_adapter import HtslibMessages, HtsVariantFile
from core.genomics.records import (
    Annotation,
    FreeText,
    ReadWarning,
    VariantRecord,
    VcfError,
    VcfHeader,
)

_BATCH = 512  # records fetched from htslib per fd-2 redirect
_CHUNK = 1 << 20  # bytes per read when decompressing ourselves
_MAX_HEADER_LINE = 1 << 20  # longest header line accepted (VEP's CSQ line is ~2 KiB)
_MAX_WARNINGS = 200  # distinct warnings kept; further kinds are only counted
_SUPPORTED_VERSIONS = frozenset({"4.0", "4.1", "4.2", "4.3", "4.4", "4.5"})
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_REF_BLOCK_ALTS = frozenset({"<NON_REF>", "<*>"})  # gVCF: "any other allele"
_EXCEPT_ALLELES = _REF_BLOCK_ALTS | {"*"}  # placeholders, not variants ("*": a deletion nearby)
_GZIP_ERRORS = (OSError, EOFError, zlib.error)

# Population allele frequency, first present wins: INFO keys (ANNOVAR, bcftools/SnpSift
# annotations) and VEP CSQ fields ("AF" in CSQ is 1000 Genomes; in INFO it is the caller's).
POPULATION_AF_INFO: tuple[str, ...] = (
    "gnomAD_AF", "gnomADe_AF", "gnomADg_AF", "gnomAD_exome_ALL", "gnomAD_genome_ALL",
    "AF_popmax", "ExAC_AF", "ExAC_ALL", "1000g2015aug_all", "MAX_AF",
)  # fmt: skip
POPULATION_AF_CSQ: tuple[str, ...] = (
    "gnomAD_AF", "gnomADe_AF", "gnomADg_AF", "MAX_AF", "ExAC_AF", "AF",
)  # fmt: skip
ANNOTATION_SOURCES: tuple[str, ...] = ("CSQ", "ANN", "EFF", "ANNOVAR")
_ANNOVAR_DBS = ("refGene", "ensGene", "knownGene", "refGeneWithVer")
# SnpEff's documented layouts, used when the header's Description cannot be parsed.
_ANN_DEFAULT = (
    "Allele", "Annotation", "Annotation_Impact", "Gene_Name", "Gene_ID", "Feature_Type",
    "Feature_ID", "Transcript_BioType", "Rank", "HGVS.c", "HGVS.p", "cDNA.pos / cDNA.length",
    "CDS.pos / CDS.length", "AA.pos / AA.length", "Distance", "ERRORS / WARNINGS / INFO",
)  # fmt: skip
_EFF_DEFAULT = (
    "Effect_Impact", "Functional_Class", "Codon_Change", "Amino_Acid_Change",
    "Amino_Acid_Length", "Gene_Name", "Transcript_BioType", "Gene_Coding", "Transcript_ID",
    "Exon_Rank", "Genotype_Number", "ERRORS", "WARNINGS",
)  # fmt: skip
# How VEP names symbolic alleles in its Allele column.
_VEP_SV_ALLELES = MappingProxyType({
    "DEL": "deletion", "DUP": "duplication", "INS": "insertion", "INV": "inversion",
    "CNV": "copy_number_variation", "DUP:TANDEM": "tandem_duplication",
})  # fmt: skip
_FREE_TEXT_NAME = re.compile(r"ANNOTATION|NOTE|COMMENT|DESCRIPTION|REMARK", re.IGNORECASE)
_FREE_TEXT_DESCRIPTION = re.compile(r"free[- ]?text", re.IGNORECASE)
_STRUCTURED = re.compile(r"^##([\w.\-]+)=<(.*)>\s*$")
_KEY_VALUE = re.compile(r'([\w.\-]+)=("(?:[^"\\]|\\.)*"|[^,]*)')
_VERSION = re.compile(r"^VCFv(\d+\.\d+)$")
_UNDECLARED = re.compile(r"^(INFO|FORMAT|FILTER) '(.*)' at (.+):(\d+) is not defined in the header")
_TUMOR_NAME = re.compile(r"TUMOU?R|PRIMARY|METASTA|(?:^|[_\-.])T\d?$")
_NORMAL_NAME = re.compile(r"NORMAL|GERMLINE|BLOOD|(?:^|[_\-.])N\d?$")
_BUILD_NAMES = (
    ("GRCh38", re.compile(r"GRCh38|hg38|hs38|\bb38\b", re.IGNORECASE)),
    ("GRCh37", re.compile(r"GRCh37|hg19|hs37|\bb37\b|human_g1k_v37", re.IGNORECASE)),
)
# Chromosome lengths that differ between the builds (UCSC/NCBI).
_BUILD_LENGTHS = MappingProxyType({
    ("1", 249250621): "GRCh37", ("1", 248956422): "GRCh38",
    ("2", 243199373): "GRCh37", ("2", 242193529): "GRCh38",
    ("7", 159138663): "GRCh37", ("7", 159345973): "GRCh38",
    ("17", 81195210): "GRCh37", ("17", 83257441): "GRCh38",
    ("X", 155270560): "GRCh37", ("X", 156040895): "GRCh38",
})  # fmt: skip


def _int(text: Any) -> int | None:
    if text is None or text == ".":  # the common misses, without the cost of an exception
        return None
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _float(text: Any) -> float | None:
    if text is None or text == ".":
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _decode(text: str) -> str:
    """VCF 4.3 percent-decoding (%3B, %2C, ...), which VEP also writes in older versions."""
    return unquote(text) if "%" in text else text


def _max_float(text: str) -> float | None:
    """The largest number of a VEP '&'-joined list ("0.01&0.2"), None when there is none."""
    values = [v for v in map(_float, text.split("&")) if v is not None]
    return max(values) if values else None


# ------------------------------------------------------------------------------ input files


@dataclass(frozen=True)
class _Source:
    path: Path
    name: str  # as shown in messages
    container: str  # "plain", "bgzf" or "gzip": the outer layer
    bcf: bool

    @property
    def compression(self) -> str:
        return "bcf" if self.bcf else {"plain": "none"}.get(self.container, self.container)

    def open_bytes(self) -> Any:
        """The decompressed bytes, as a binary file."""
        return gzip.open(self.path, "rb") if self.container != "plain" else open(self.path, "rb")

    def error(self, reason: str, line: int | None = None) -> VcfError:
        where = f"line {line}: " if line else ""
        return VcfError(f"{self.name}: {where}{reason}")


def _sniff(path: Path) -> _Source:
    name = str(path)
    try:
        with open(path, "rb") as f:
            head = f.read(18)
            bgzf_tail = b""
            if head[:2] == b"\x1f\x8b" and len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC":
                f.seek(max(0, os.fstat(f.fileno()).st_size - len(_BGZF_EOF)))
                bgzf_tail = f.read()
    except OSError as exc:
        raise VcfError(f"{name}: cannot read the file ({exc.strerror or exc})") from exc
    if not head:
        raise VcfError(f"{name}: empty file")
    if head[:2] != b"\x1f\x8b":
        return _Source(path, name, "plain", head.startswith(b"BCF\2"))
    container = "bgzf" if bgzf_tail else "gzip"
    if container == "bgzf" and bgzf_tail != _BGZF_EOF:
        raise VcfError(f"{name}: truncated bgzip file (no BGZF end-of-file marker)")
    source = _Source(path, name, container, False)
    try:
        with source.open_bytes() as f:
            inner = f.read(4)
    except _GZIP_ERRORS as exc:
        raise source.error(f"corrupt or truncated gzip data ({exc})") from exc
    if not inner:
        raise source.error("empty file (nothing after decompression)")
    return _Source(path, name, container, inner.startswith(b"BCF\2"))


def _check_size(source: _Source, limit: int) -> None:
    """Reject a file whose decompressed content exceeds `limit` bytes, counting as it
    decompresses so that a gzip bomb is stopped at the limit."""
    if source.container == "plain":
        if source.path.stat().st_size > limit:
            raise source.error(f"file is larger than {limit} bytes")
        return
    total = 0
    try:
        with source.open_bytes() as f:
            while chunk := f.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise source.error(f"file expands beyond {limit} bytes")
    except _GZIP_ERRORS as exc:
        raise source.error(f"corrupt or truncated gzip data ({exc})") from exc


class _GunzipFeeder:
    """Plain gzip (not bgzip) decompressed by a thread into a pipe that htslib reads as
    uncompressed text: pysam cannot open plain gzip (it seeks, which gzip cannot)."""

    def __init__(self, source: _Source) -> None:
        self.read_fd, write_fd = os.pipe()
        self.error = ""
        self._thread = threading.Thread(
            target=self._run, args=(source, write_fd), name="vcf-gunzip", daemon=True
        )
        self._thread.start()

    def _run(self, source: _Source, fd: int) -> None:
        try:
            with source.open_bytes() as f:
                while chunk := f.read1(_CHUNK):  # read1: what decompressed before an error
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
        except BrokenPipeError:
            pass  # the reader stopped early and closed its end
        except _GZIP_ERRORS as exc:
            self.error = f"corrupt or truncated gzip data ({exc})"
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.read_fd >= 0:
            os.close(self.read_fd)  # a writer blocked on a full pipe now gets EPIPE and ends
            self.read_fd = -1
        self._thread.join()


class _RawLines:
    """Physical lines of a text VCF by number, read forward only and only on demand: for the
    rare record whose raw text matters (a QUAL htslib read as 0, a line htslib rejected)."""

    def __init__(self, source: _Source) -> None:
        self._source = source
        self._file: Any = None
        self._line = 0

    def get(self, line: int) -> bytes | None:
        if self._file is None or line <= self._line:
            self.close()
            self._file, self._line = self._source.open_bytes(), 0
        raw = None
        try:
            while self._line < line:
                raw = self._file.readline()
                if not raw:
                    return None
                self._line += 1
        except _GZIP_ERRORS:
            return None
        return raw

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# ---------------------------------------------------------------------------------- header


@dataclass(frozen=True)
class _InfoField:
    number: str
    type: str
    description: str


@dataclass(frozen=True)
class _Schema:
    """What the header declares, in the form the record parser needs."""

    info: Mapping[str, _InfoField]
    contigs: Mapping[str, int]  # name -> order in the header
    csq: tuple[str, ...]  # CSQ field names, () when CSQ is undeclared or has no Format
    ann: tuple[str, ...]
    eff: tuple[str, ...]
    annovar_db: str  # "refGene", ...; "" when no ANNOVAR fields
    free_text: tuple[str, ...]  # INFO keys holding free text
    population_af: tuple[str, ...]  # INFO keys with a population AF, in priority order


def _structured(line: str) -> tuple[str, dict[str, str]] | None:
    m = _STRUCTURED.match(line)
    if m is None:
        return None
    values = {}
    for key, value in _KEY_VALUE.findall(m[2]):
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        values.setdefault(key, value)
    return m[1], values


def _format_list(description: str, start: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    """Field names after `start` in an annotator's Description ("Format: A|B|C"), quotes,
    brackets and parentheses dropped."""
    i = description.find(start)
    if i < 0:
        return fallback
    text = re.sub(r"[\[\]()']", " ", description[i + len(start) :])
    if "|" not in text:
        return fallback
    names = tuple(n.strip() for n in text.split("|"))
    return names if all(names) else tuple(n or f"field{k}" for k, n in enumerate(names))


def _is_free_text(key: str, spec: _InfoField) -> bool:
    if spec.type != "String" or key.upper().endswith("_LANG") or key in ANNOTATION_SOURCES:
        return False
    return bool(_FREE_TEXT_NAME.search(key) or _FREE_TEXT_DESCRIPTION.search(spec.description))


@dataclass(frozen=True)
class _ParsedHeader:
    schema: _Schema
    fileformat: str
    meta: Mapping[str, str]  # first value of each unstructured ##key=value line
    contig_lengths: tuple[tuple[str, int | None, str], ...]  # name, length, assembly
    sample_lines: tuple[Mapping[str, str], ...]  # ##SAMPLE=<...>


def _parse_header(lines: list[str]) -> _ParsedHeader:
    info: dict[str, _InfoField] = {}
    contigs: list[tuple[str, int | None, str]] = []
    meta: dict[str, str] = {}
    samples: list[Mapping[str, str]] = []
    for line in lines:
        parsed = _structured(line)
        if parsed is None:
            key, eq, value = line[2:].partition("=")
            if eq:
                meta.setdefault(key, value.strip())
            continue
        kind, values = parsed
        ident = values.get("ID", "")
        if kind == "INFO" and ident:
            info.setdefault(
                ident,
                _InfoField(
                    values.get("Number", "."),
                    values.get("Type", "String"),
                    values.get("Description", ""),
                ),
            )
        elif kind == "contig" and ident:
            contigs.append((ident, _int(values.get("length")), values.get("assembly", "")))
        elif kind == "SAMPLE":
            samples.append(values)
    desc = {k: v.description for k, v in info.items()}
    db = next((d for d in _ANNOVAR_DBS if f"Func.{d}" in info or f"Gene.{d}" in info), "")
    schema = _Schema(
        info=MappingProxyType(info),
        contigs=MappingProxyType({name: i for i, (name, _, _) in enumerate(contigs)}),
        csq=_format_list(desc["CSQ"], "Format:", ()) if "CSQ" in desc else (),
        ann=_format_list(desc.get("ANN", ""), "'", _ANN_DEFAULT),
        eff=_format_list(desc.get("EFF", ""), "(", _EFF_DEFAULT),
        annovar_db=db,
        free_text=tuple(k for k, spec in info.items() if _is_free_text(k, spec)),
        population_af=tuple(k for k in POPULATION_AF_INFO if k in info),
    )
    return _ParsedHeader(
        schema=schema,
        fileformat=meta.get("fileformat", ""),
        meta=MappingProxyType(meta),
        contig_lengths=tuple(contigs),
        sample_lines=tuple(samples),
    )


def _read_text_header(source: _Source) -> tuple[list[str], str]:
    """The header lines of a text VCF (meta lines and #CHROM), validated, and the first
    record line ("" when there is none)."""
    lines: list[str] = []
    try:
        with source.open_bytes() as f:
            while True:
                n = len(lines) + 1
                raw = f.readline(_MAX_HEADER_LINE + 1)
                if lines and lines[-1].startswith("#CHROM"):
                    return lines, raw.decode("utf-8", "replace").rstrip("\r\n")
                if not raw:
                    raise source.error("no #CHROM header line (the file ends in its header)")
                if n == 1 and not raw.startswith(b"##fileformat=VCF"):
                    raise _not_vcf(source, raw)
                if len(raw) > _MAX_HEADER_LINE:
                    raise source.error(f"line longer than {_MAX_HEADER_LINE} bytes", n)
                text = _decode_line(source, raw, n).rstrip("\r\n")
                if not text.startswith("#"):
                    raise source.error("no #CHROM header line before the first record", n)
                if not text.startswith("##"):
                    _check_columns(source, text, n)
                lines.append(text)
    except _GZIP_ERRORS as exc:
        raise source.error(f"corrupt or truncated gzip data ({exc})") from exc


def _not_vcf(source: _Source, first_line: bytes) -> VcfError:
    try:
        if b"\0" not in first_line:
            first_line.decode("utf-8")
            return source.error("not a VCF file (the first line must be ##fileformat=VCFv4.x)", 1)
    except UnicodeDecodeError:
        pass
    return source.error("not a VCF or BCF file (unrecognised binary data)")


def _decode_line(source: _Source, raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        raise source.error(
            f"not UTF-8 text (byte 0x{byte:02X} at column {exc.start + 1})", line
        ) from exc


def _check_columns(source: _Source, text: str, line: int) -> None:
    cols = text.split("\t")
    if tuple(cols[:8]) != _FIXED_COLUMNS or (len(cols) > 8 and cols[8] != "FORMAT"):
        expected = " ".join(_FIXED_COLUMNS)
        raise source.error(
            f"malformed #CHROM line (expected tab-separated {expected} [FORMAT samples...])", line
        )
    seen: set[str] = set()
    for name in cols[9:]:
        if name in seen or not name:
            raise source.error(f"duplicate or empty sample name {name!r}", line)
        seen.add(name)


def _detect_roles(samples: tuple[str, ...], header: _ParsedHeader) -> tuple[str, str]:
    """(tumour, normal) sample names, "" when unknown: GATK's ##tumor_sample/##normal_sample,
    then ##SAMPLE=<ID=..> lines, then sample-name patterns, each only when unambiguous."""
    tumor, normal = header.meta.get("tumor_sample", ""), header.meta.get("normal_sample", "")
    tumor, normal = (tumor if tumor in samples else ""), (normal if normal in samples else "")
    for values in header.sample_lines:
        ident, label = values.get("ID", ""), values.get("Description", "")
        name = ident if ident in samples else values.get("SampleName", "")
        if name not in samples:
            continue
        role = _role(f"{ident} {label}")
        if role == "tumor" and not tumor:
            tumor = name
        elif role == "normal" and not normal:
            normal = name
    roles = [(s, _role(s)) for s in samples]
    if not tumor:
        tumors = [s for s, r in roles if r == "tumor" and s != normal]
        tumor = tumors[0] if len(tumors) == 1 else ""
    if not normal:
        normals = [s for s, r in roles if r == "normal" and s != tumor]
        normal = normals[0] if len(normals) == 1 else ""
    return tumor, normal


def _role(text: str) -> str:
    upper = text.upper()
    is_tumor, is_normal = bool(_TUMOR_NAME.search(upper)), bool(_NORMAL_NAME.search(upper))
    return "tumor" if is_tumor and not is_normal else "normal" if is_normal and not is_tumor else ""


def _detect_build(header: _ParsedHeader) -> str:
    """Contig lengths first (exact), then assembly tags, then the reference's file name."""
    for name, length, _ in header.contig_lengths:
        build = _BUILD_LENGTHS.get((name.removeprefix("chr"), length))
        if build:
            return build
    texts = [a for _, _, a in header.contig_lengths if a]
    texts += [header.meta.get("assembly", ""), header.meta.get("reference", "")]
    for text in texts:
        for build, pattern in _BUILD_NAMES:
            if pattern.search(text):
                return build
    return "unknown"


def _annotation_fields(schema: _Schema) -> tuple[str, ...]:
    declared = {k for k in ("CSQ", "ANN", "EFF") if k in schema.info}
    if schema.annovar_db:
        declared.add("ANNOVAR")
    return tuple(k for k in ANNOTATION_SOURCES if k in declared)


# ----------------------------------------------------------------------------- annotations


def _allele_keys(ref: str, alts: list[str]) -> dict[str, int]:
    """How annotators may name each ALT (0-based index): as written; VEP's form without the
    padding base shared by every allele ('-' when nothing is left); VEP --minimal's form; VEP's
    names of symbolic alleles."""
    keys: dict[str, int] = {}
    first = ref[:1]
    shared = all(a[:1] == first and not a.startswith("<") for a in alts if a not in _EXCEPT_ALLELES)
    for i, alt in enumerate(alts):
        keys.setdefault(alt, i)
        if alt.startswith("<"):
            keys.setdefault(_VEP_SV_ALLELES.get(alt[1:-1], alt), i)
            continue
        if shared:
            keys.setdefault(alt[1:] or "-", i)
        keys.setdefault(_trim(ref, alt)[1] or "-", i)
    return keys


def _trim(ref: str, alt: str) -> tuple[str, str]:
    """REF and ALT without their common suffix, then common prefix (case-insensitive)."""
    r, a = ref.upper(), alt.upper()
    while len(r) > 1 and len(a) > 1 and r[-1] == a[-1]:
        r, a = r[:-1], a[:-1]
    i = 0
    while i < len(r) and i < len(a) and r[i] == a[i]:
        i += 1
    return r[i:], a[i:]


def _kind(ref: str, alt: str) -> str:
    if len(ref) == 1 and len(alt) == 1:
        return "snv"
    if alt.startswith("<"):
        return "symbolic"
    if "[" in alt or "]" in alt or alt.startswith(".") or alt.endswith("."):
        return "breakend"
    r, a = _trim(ref, alt)
    if not r:
        return "insertion" if a else "snv"  # REF == ALT: nothing changed, read as a base
    if not a:
        return "deletion"
    if len(r) == len(a):
        return "snv" if len(r) == 1 else "mnv"
    return "indel"


def _annotation(
    source: str,
    gene: str,
    consequence: str,
    impact: str,
    hgvsc: str,
    hgvsp: str,
    population_af: float | None,
    extra: dict[str, str],
) -> Annotation:
    # Made as pickle restores an instance: the frozen dataclass __init__ costs ~1 us per call
    # through object.__setattr__, and there is one call per transcript.
    ann = object.__new__(Annotation)
    ann.__dict__.update(
        source=source, gene=gene, consequence=consequence, impact=impact, hgvsc=hgvsc,
        hgvsp=hgvsp, population_af=population_af, extra=extra,
    )  # fmt: skip
    return ann


class _Annotators:
    """Parses the annotation fields a header declares. Each parser returns the annotations
    and, for each, the annotator's name for its ALT (or the ALT's 1-based index as text)."""

    def __init__(self, schema: _Schema, warnings: _Warnings) -> None:
        self.schema = schema
        self.warnings = warnings
        # CSQ can only be read with the Format its header line gives; SnpEff's layouts are known.
        csq = (("CSQ", self.csq),) if schema.csq else ()
        self.parsers = (*csq, ("ANN", self.ann), ("EFF", self.eff))
        self._free_text_number_a = frozenset(
            k for k in schema.free_text if schema.info[k].number == "A"
        )
        # Field positions for itemgetter; -1 picks the "" appended to every split entry.
        self._csq = _getter(schema.csq, ("Allele", "SYMBOL", "Consequence", "IMPACT", "HGVSc",
                                         "HGVSp"))  # fmt: skip
        if schema.csq and "SYMBOL" not in schema.csq and "Gene" in schema.csq:
            self._csq = _getter(schema.csq, ("Allele", "Gene", "Consequence", "IMPACT", "HGVSc",
                                             "HGVSp"))  # fmt: skip
        self._csq_af = tuple(schema.csq.index(n) for n in POPULATION_AF_CSQ if n in schema.csq)
        self.csq_free_text = tuple(n for n in schema.csq if _FREE_TEXT_NAME.fullmatch(n))
        self.has_free_text = bool(schema.free_text or self.csq_free_text)
        self._ann = _getter(schema.ann, ("Allele", "Gene_Name", "Annotation",
                                         "Annotation_Impact", "HGVS.c", "HGVS.p"))  # fmt: skip
        genotype = "Genotype_Number" if "Genotype_Number" in schema.eff else "Genotype"
        self._eff = _getter(schema.eff, (genotype, "Gene_Name", "Effect_Impact",
                                         "Amino_Acid_Change"))  # fmt: skip
        db = schema.annovar_db
        self._annovar_keys = tuple(f"{k}.{db}" for k in ("Gene", "Func", "ExonicFunc", "AAChange"))

    def csq(self, value: str, info_af: float | None) -> tuple[list[str], list[Annotation]]:
        names, get, af_at = self.schema.csq, self._csq, self._csq_af
        n = len(names)
        alleles, out = [], []
        for entry in filter(None, value.split(",")):
            parts = entry.split("|")
            if len(parts) < n:
                parts += [""] * (n - len(parts))
            parts.append("")
            allele, gene, consequence, impact, hgvsc, hgvsp = get(parts)
            af = info_af
            for i in af_at:
                if text := parts[i]:
                    af = _float(text) if "&" not in text else _max_float(text)
                    break
            if hgvsc:
                hgvsc = _hgvs(hgvsc)
            if hgvsp:
                hgvsp = _hgvs(hgvsp)
            extra = dict(zip(names, parts, strict=False))
            alleles.append(allele)
            out.append(_annotation("CSQ", gene, consequence, impact, hgvsc, hgvsp, af, extra))
        return alleles, out

    def ann(self, value: str, info_af: float | None) -> tuple[list[str], list[Annotation]]:
        names, get = self.schema.ann, self._ann
        alleles, out = [], []
        for entry in filter(None, value.split(",")):
            parts = entry.split("|")
            parts += [""] * (len(names) + 1 - len(parts))
            allele, gene, consequence, impact, hgvsc, hgvsp = get(parts)
            extra = dict(zip(names, parts, strict=False))
            alleles.append(allele)
            out.append(_annotation("ANN", gene, consequence, impact, _decode(hgvsc),
                                   _decode(hgvsp), info_af, extra))  # fmt: skip
        return alleles, out

    def eff(self, value: str, info_af: float | None) -> tuple[list[str], list[Annotation]]:
        names, get = self.schema.eff, self._eff
        alleles, out = [], []
        for entry in filter(None, value.split(",")):
            effect, _, rest = entry.partition("(")
            parts = rest.rstrip(")").split("|")
            parts += [""] * (len(names) + 1 - len(parts))
            allele, gene, impact, change = get(parts)
            hgvsc, hgvsp = "", ""
            for item in change.split("/"):  # "V600E", or "p.Val600Glu/c.1799T>A"
                if item.startswith("c."):
                    hgvsc = item
                elif item:
                    hgvsp = item if item.startswith("p.") else f"p.{item}"
            extra = dict(zip(names, parts, strict=False))
            alleles.append(allele)
            out.append(_annotation("EFF", gene, effect.strip(), impact, hgvsc, hgvsp, info_af,
                                   extra))  # fmt: skip
        return alleles, out

    def annovar(self, info: dict[str, Any], info_af: float | None) -> list[Annotation]:
        """ANNOVAR's INFO fields describe every ALT alike: one annotation per transcript of
        AAChange ("GENE:NM_..:exon15:c.T1799A:p.V600E"), or one for the gene."""
        gene, func, exonic, aachange = (_annovar_text(info.get(k)) for k in self._annovar_keys)
        consequence = exonic if exonic not in ("", ".") else func
        out = []
        for entry in aachange.split(","):
            parts = entry.split(":")
            if len(parts) < 4:
                continue
            hgvsc = next((p for p in parts if p.startswith("c.")), "")
            hgvsp = next((p for p in parts if p.startswith("p.")), "")
            extra = {"transcript": parts[1], "exon": parts[2] if len(parts) > 4 else ""}
            out.append(_annotation("ANNOVAR", parts[0], consequence, "", hgvsc, hgvsp, info_af,
                                   extra))  # fmt: skip
        if not out and (gene not in ("", ".") or consequence not in ("", ".")):
            out.append(_annotation("ANNOVAR", gene.strip("."), consequence, "", "", "", info_af,
                                   {"Func": func}))  # fmt: skip
        return out

    def per_allele(
        self, info: dict[str, Any], ref: str, alts: list[str], line: int
    ) -> list[tuple[Annotation, ...]]:
        """Annotations of each ALT ([] when there are none): CSQ/ANN/EFF entries go to the ALT
        they name; ANNOVAR's to every ALT; an INFO population AF fills in per ALT."""
        n = len(alts)
        afs = [self._info_af(info, i + 1, n) for i in range(n)] if self.schema.population_af \
            else [None] * n  # fmt: skip
        shared_af = afs[0] if n == 1 else None
        alleles: list[str] = []
        anns: list[Annotation] = []
        for key, parse in self.parsers:
            value = info.get(key)
            if isinstance(value, str):
                names, found = parse(value, shared_af)
                alleles += names
                anns += found
        annovar = self.annovar(info, shared_af) if self.schema.annovar_db else []
        if not anns and not annovar:
            return []
        if n == 1:
            return [tuple(anns + annovar)]
        keys = _allele_keys(ref, alts)
        groups: list[list[Annotation]] = [[] for _ in alts]
        for allele, ann in zip(alleles, anns, strict=True):
            i = keys.get(allele)
            if i is None and allele.isdigit() and 1 <= int(allele) <= n:
                i = int(allele) - 1  # EFF's Genotype_Number
            if i is None:
                message = f"{ann.source} allele {allele!r} matches no ALT allele; ignored"
                self.warnings.add(f"allele:{ann.source}", line, message)
                continue
            groups[i].append(ann)
        return [
            tuple(a if a.population_af is not None or af is None else replace(a, population_af=af)
                  for a in group + annovar)
            for group, af in zip(groups, afs, strict=True)
        ]  # fmt: skip

    def _info_af(self, info: dict[str, Any], allele: int, n_alts: int) -> float | None:
        for key in self.schema.population_af:
            if key in info:
                return _allele_float(info[key], allele, n_alts)
        return None

    def free_text(
        self, info: dict[str, Any], allele: int, n_alts: int, annotations: tuple[Annotation, ...]
    ) -> tuple[FreeText, ...]:
        """Free text of one ALT: declared INFO fields, and fields of its CSQ annotations named
        like ANNOTATION (the language from a <FIELD>_LANG CSQ field or INFO key)."""
        out: list[FreeText] = []
        for key in self.schema.free_text:
            value = info.get(key)
            if not isinstance(value, str):
                continue
            lang = info.get(f"{key}_LANG", "")
            if key in self._free_text_number_a and n_alts > 1:
                parts = value.split(",")
                value = parts[allele - 1] if allele <= len(parts) else ""
            if value and value != ".":
                out.append(FreeText(key, _decode(value), _lang(lang, allele - 1)))
        for ann in annotations:
            if ann.source != "CSQ":
                continue
            for name in self.csq_free_text:
                text = ann.extra.get(name, "")
                lang = ann.extra.get(f"{name}_LANG") or info.get(f"{name}_LANG", "")
                item = FreeText(name, _decode(text), _lang(lang, 0)) if text else None
                if item is not None and item not in out:
                    out.append(item)
        return tuple(out)


def _getter(names: tuple[str, ...], wanted: tuple[str, ...]) -> Callable[[list[str]], Any]:
    return itemgetter(*(names.index(w) if w in names else -1 for w in wanted))


def _hgvs(text: str) -> str:
    """VEP's "ENST...:c.1799T>A" / "ENSP...:p.Val600Glu%3D" as "c.1799T>A" / "p.Val600Glu="."""
    return _decode(text.rpartition(":")[2])


def _annovar_text(value: Any) -> str:
    """ANNOVAR escapes ';' and '=' in INFO values as the literal text \\x3b and \\x3d."""
    if value is None or value is True:
        return ""
    return str(value).replace("\\x3b", ";").replace("\\x3d", "=")


def population_af(record: VariantRecord) -> float | None:
    """The allele's population frequency: the largest its annotations give, else an INFO
    field of POPULATION_AF_INFO; None when not annotated."""
    values = [a.population_af for a in record.annotations if a.population_af is not None]
    if values:
        return max(values)
    for key in POPULATION_AF_INFO:
        if key in record.info:
            return _allele_float(record.info[key], record.allele_index, record.n_alts)
    return None


def _allele_float(value: Any, allele: int, n_alts: int) -> float | None:
    """A Number=A value ("0.1,0.2") for ALT `allele` (1-based), or a single number."""
    text = str(value)
    if "," in text and n_alts > 1:
        parts = text.split(",")
        return _float(parts[allele - 1]) if allele <= len(parts) else None
    return _float(text.split(",")[0])


# -------------------------------------------------------------------------------- warnings


class _Warnings:
    """Warnings aggregated by kind: the first line, how often, and the message; listed by
    line (those without one last)."""

    def __init__(self) -> None:
        self.items: dict[str, list[Any]] = {}  # key -> [first line, count, message]
        self.dropped = 0

    def add(self, key: str, line: int, message: str) -> None:
        item = self.items.get(key)
        if item is not None:
            item[1] += 1
        elif len(self.items) < _MAX_WARNINGS:
            self.items[key] = [line, 1, message]
        else:
            self.dropped += 1

    def as_list(self) -> list[ReadWarning]:
        ordered = sorted(self.items.values(), key=lambda item: (item[0] == 0, item[0]))
        out = [
            ReadWarning(line, message if n == 1 else f"{message} ({n} times in all)")
            for line, n, message in ordered
        ]
        if self.dropped:
            out.append(ReadWarning(0, f"{self.dropped} further warnings of other kinds omitted"))
        return out


# ------------------------------------------------------------------------------- records


class _OnFirstAccess:
    """A field computed on first access and kept in the instance dict (a lock-free
    functools.cached_property: computing twice in a race is harmless here)."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self.compute, self._name = compute, compute.__name__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self._name] = self.compute(obj)
        return value


class StreamedRecord(VariantRecord):
    """A VariantRecord as the reader yields it: `info`, `annotations` and `free_text` are
    parsed from the record's text on first access (most of the per-record cost, which a
    consumer that filters first never pays). It equals, pickles and copies as the plain
    VariantRecord with the same values."""

    # Set by _RecordParser besides the eager fields: what the lazy ones are parsed from.
    # Multi-ALT records come with `info` and `annotations` already parsed (see parse).
    _info_text: str
    _annotators: _Annotators

    @_OnFirstAccess
    def info(self) -> dict[str, Any]:
        return _parse_info(self._info_text)

    @_OnFirstAccess
    def annotations(self) -> tuple[Annotation, ...]:
        groups = self._annotators.per_allele(self.info, self.ref, [self.alt], self.line)
        return groups[0] if groups else ()

    @_OnFirstAccess
    def free_text(self) -> tuple[FreeText, ...]:
        if not self._annotators.has_free_text:
            return ()
        return self._annotators.free_text(
            self.info, self.allele_index, self.n_alts, self.annotations
        )

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(VariantRecord))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VariantRecord):
            return NotImplemented
        return self._values() == tuple(getattr(other, f.name) for f in fields(VariantRecord))

    __hash__ = None  # type: ignore[assignment]  # as VariantRecord: `info` is a dict

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return VariantRecord, self._values()


def _parse_info(info_text: str) -> dict[str, Any]:
    """INFO as written (after htslib): strings, and True for flags."""
    info: dict[str, Any] = {}
    if info_text != ".":
        for item in info_text.split(";"):
            key, eq, value = item.partition("=")
            info[key] = value if eq else True
    return info


def _info_value(info_text: str, key: str) -> str | None:
    """One INFO value straight from the text (None when absent; "" for a flag)."""
    start = 0
    while (i := info_text.find(key, start)) >= 0:
        j = i + len(key)
        after = info_text[j : j + 1]
        if (i == 0 or info_text[i - 1] == ";") and after in ("=", ";", ""):
            if after != "=":
                return ""
            end = info_text.find(";", j)
            return info_text[j + 1 : end if end >= 0 else len(info_text)]
        start = j
    return None


class _RecordParser:
    """VCF lines as htslib formats them -> StreamedRecords, with the state of one pass (sort
    order, warnings). The hot path: only what every record needs is parsed here."""

    def __init__(
        self, schema: _Schema, sample_column: int | None, raw: _RawLines | None, warnings: _Warnings
    ) -> None:
        self.schema = schema
        self.annotators = _Annotators(schema, warnings)
        self.sample_column = sample_column
        self.raw = raw
        self.warnings = warnings
        self.has_contigs = bool(schema.contigs)
        # Parsed FORMAT and FILTER texts: few distinct ones, met again on most records.
        self.formats: dict[str, tuple[int, Callable[[list[str]], Any]]] = {}
        self.filters: dict[str, tuple[str, ...]] = {}
        self.chrom, self.pos = "", 0
        self.seen_chroms: set[str] = set()

    def parse(self, text: str, line: int) -> list[VariantRecord]:
        """The records of one VCF line."""
        cols = text.split("\t")
        chrom, pos_text, vid, ref, alt_text, qual_text, filter_text, info_text = cols[:8]
        pos = int(pos_text)
        if chrom != self.chrom:
            self._new_chrom(chrom, pos, line)
        elif pos < self.pos:
            self._unsorted(chrom, pos, line)
        self.pos = pos
        end_text = _info_value(info_text, "END") if "END" in info_text else None
        if alt_text in _REF_BLOCK_ALTS or (alt_text == "." and end_text is not None):
            self.warnings.add("gvcf", line, "gVCF reference block skipped")
            return []
        if alt_text == "." or alt_text == "*":
            self.warnings.add("no-alt", line, "record without an ALT allele skipped")
            return []
        qual = None if qual_text == "." else float(qual_text)
        if qual == 0.0 and self.raw is not None:
            qual = self._raw_qual(line)
        gt, dp, af, ad = "", "", "", ""
        col = self.sample_column
        if col is not None and len(cols) > col:
            n, get = self.formats.get(cols[8]) or self._format(cols[8])
            values = cols[col].split(":")
            if len(values) != n:
                values = values[:n] + [""] * (n - len(values))
            values.append("")  # what index -1 (a key FORMAT lacks) picks
            gt, dp, af, ad = get(values)
        depth = int(dp) if dp.isdigit() else None
        if depth is None and "DP" in info_text:
            depth = _int(_info_value(info_text, "DP"))
        sv_type = (_info_value(info_text, "SVTYPE") or "") if "SVTYPE" in info_text else ""
        alts = alt_text.split(",")
        n_alts = len(alts)
        filters = self.filters.get(filter_text) or self._filters(filter_text)
        end = _int(end_text) if end_text is not None else None
        one_base = len(ref) == 1
        out = []
        for i, alt in enumerate(alts):
            if n_alts > 1 and alt in _EXCEPT_ALLELES:  # single ones were skipped above
                continue
            kind = "snv" if one_base and len(alt) == 1 else _kind(ref, alt)
            rec = object.__new__(StreamedRecord)  # as in _annotation, skipping a 2 us __init__
            object.__setattr__(rec, "__dict__", {
                "line": line, "chrom": chrom, "pos": pos, "id": vid, "ref": ref, "alt": alt,
                "allele_index": i + 1, "n_alts": n_alts, "kind": kind, "qual": qual,
                "filters": filters, "genotype": gt, "depth": depth,
                "vaf": _float(af) if n_alts == 1 and af else _vaf(af, ad, i + 1, n_alts),
                "sv_type": sv_type if sv_type or kind == "snv" else _implied_sv_type(alt, kind),
                "end": end, "_info_text": info_text, "_annotators": self.annotators,
            })  # fmt: skip
            out.append(rec)
        if n_alts > 1 and out:
            # Parsed now, not on access, so that an entry matching no ALT is warned of while
            # the file is read (single-ALT records need no matching and stay lazy).
            info = _parse_info(info_text)
            groups = self.annotators.per_allele(info, ref, alts, line)
            for rec in out:
                rec.__dict__["info"] = info
                rec.__dict__["annotations"] = groups[rec.allele_index - 1] if groups else ()
        elif not out:
            self.warnings.add("no-alt", line, "record without an ALT allele skipped")
        return out

    def _format(self, fmt: str) -> tuple[int, Callable[[list[str]], Any]]:
        keys = fmt.split(":")
        get = itemgetter(*(keys.index(k) if k in keys else -1 for k in ("GT", "DP", "AF", "AD")))
        return _remember(self.formats, fmt, (len(keys), get))

    def _filters(self, text: str) -> tuple[str, ...]:
        return _remember(self.filters, text, () if text == "." else tuple(text.split(";")))

    def _raw_qual(self, line: int) -> float | None:
        """htslib reads a non-numeric QUAL as 0: look at what the file says."""
        assert self.raw is not None
        raw = self.raw.get(line)
        cols = raw.split(b"\t", 6) if raw else []
        text = cols[5].decode("utf-8", "replace") if len(cols) > 5 else "0"
        if _float(text) is not None:
            return 0.0
        self.warnings.add("qual", line, f"QUAL {text!r} is not a number; read as missing")
        return None

    def _new_chrom(self, chrom: str, pos: int, line: int) -> None:
        contigs = self.schema.contigs
        if chrom in self.seen_chroms:
            self._unsorted(chrom, pos, line)
        elif self.has_contigs and chrom not in contigs:
            self.warnings.add(
                f"contig:{chrom}", line, f"contig {chrom!r} is not declared in the header"
            )
        elif self.chrom in contigs and chrom in contigs and contigs[chrom] < contigs[self.chrom]:
            self._unsorted(chrom, pos, line)
        self.seen_chroms.add(chrom)
        self.chrom = chrom

    def _unsorted(self, chrom: str, pos: int, line: int) -> None:
        self.warnings.add(
            "unsorted",
            line,
            f"records are not sorted: {chrom}:{pos} comes after {self.chrom}:{self.pos}",
        )

    def htslib_warnings(self, messages: HtslibMessages, lines: list[str], first: int) -> None:
        """Warnings htslib printed while reading `lines` (numbered from `first`, 0 for BCF):
        an undeclared INFO/FORMAT/FILTER key, which htslib names once, at its first record."""
        for text in messages.warnings:
            m = _UNDECLARED.match(text)
            if m is None:
                if "Missing headers" not in text and "Contig" not in text:
                    self.warnings.add(f"htslib:{text}", 0, f"htslib: {text}")
                continue
            kind, key, chrom, pos = m.groups()
            line = next((first + i for i, t in enumerate(lines)
                         if first and t.startswith(f"{chrom}\t{pos}\t")), 0)  # fmt: skip
            self.warnings.add(f"{kind}:{key}", line,
                              f"{kind} key {key!r} is not declared in the header")  # fmt: skip


def _remember(cache: dict[str, Any], key: str, value: Any) -> Any:
    if len(cache) >= 1024:  # a file cannot make the cache grow without bound
        cache.clear()
    cache[key] = value
    return value


def _vaf(af: str, ad: str, allele: int, n_alts: int) -> float | None:
    """FORMAT/AF of the allele, else AD alt / (ref + alt)."""
    if not af and not ad:
        return None
    if af:
        value = _float(af) if n_alts == 1 else _allele_float(af, allele, n_alts)
        if value is not None:
            return value
    counts = ad.split(",")
    if len(counts) <= allele:
        return None
    ref_reads, alt_reads = _int(counts[0]), _int(counts[allele])
    if ref_reads is None or alt_reads is None or ref_reads + alt_reads <= 0:
        return None
    return alt_reads / (ref_reads + alt_reads)


def _lang(value: Any, allele: int) -> str:
    if not isinstance(value, str) or value == ".":
        return ""
    parts = value.split(",")
    return parts[allele] if allele < len(parts) else parts[0]


def _implied_sv_type(alt: str, kind: str) -> str:
    if kind == "symbolic":
        return alt[1:-1].split(":")[0]
    return "BND" if kind == "breakend" else ""


# --------------------------------------------------------------------------------- reader


class VcfReader:
    """An open VCF/BCF (from `open_vcf`). `records()` streams the chosen sample's variants;
    `warnings` lists what was odd in the header and in the records read so far."""

    def __init__(
        self,
        source: _Source,
        parsed: _ParsedHeader,
        header: VcfHeader,
        sample_column: int | None,
        header_warnings: _Warnings,
        opened: tuple[HtsVariantFile, _GunzipFeeder | None],
    ) -> None:
        self._source = source
        self._parsed = parsed
        self._header = header
        self._sample_column = sample_column
        self._header_warnings = header_warnings
        self._record_warnings = _Warnings()
        self._pending: tuple[HtsVariantFile, _GunzipFeeder | None] | None = opened
        self._streams: list[Generator[VariantRecord, None, None]] = []

    @property
    def header(self) -> VcfHeader:
        return self._header

    @property
    def warnings(self) -> list[ReadWarning]:
        return self._header_warnings.as_list() + self._record_warnings.as_list()

    def records(self) -> Iterator[VariantRecord]:
        """The variants, one per ALT allele, streamed. Each call reads the file anew. Raises
        VcfError (after the records before the bad one) when a record cannot be read."""
        self._streams = [s for s in self._streams if s.gi_frame is not None]  # drop finished
        stream = self._stream()
        self._streams.append(stream)
        return stream

    def _stream(self) -> Generator[VariantRecord, None, None]:
        # Nothing opens before the first record is asked for: a stream never iterated holds
        # nothing (the file open_vcf opened is used by the first stream, or closed by close()).
        hts, feeder = self._pending or _open_hts(self._source, [])
        self._pending = None
        raw = _RawLines(self._source) if not self._source.bcf else None
        self._record_warnings = warnings = _Warnings()
        parser = _RecordParser(self._parsed.schema, self._sample_column, raw, warnings)
        first = self._header.header_lines if raw is not None else 0
        parse = parser.parse
        count = 0
        failure: VcfError | None = None
        try:
            for lines, messages in hts.batches(_BATCH):
                batch_first = first + count + 1 if first else 0
                # BCF has no lines: its records are numbered 0
                numbers = itertools.count(batch_first) if first else itertools.repeat(0)
                for line, text in zip(numbers, lines, strict=False):
                    yield from parse(text, line)
                count += len(lines)
                if messages.warnings:
                    parser.htslib_warnings(messages, lines, batch_first)
        except VcfError as exc:
            failure = exc
        finally:
            _close(hts, feeder, raw)  # joins the feeder, so its error is final
        if feeder is not None and feeder.error:  # a broken gzip stream explains any failure
            raise self._source.error(feeder.error) from failure
        if failure is not None:
            raise self._record_error(count + 1, str(failure)) from failure

    def _record_error(self, index: int, reason: str) -> VcfError:
        if self._source.bcf:
            return VcfError(f"{self._source.name}: record {index}: {reason}")
        line = self._header.header_lines + index
        lines = _RawLines(self._source)
        try:
            raw = lines.get(line)
        finally:
            lines.close()
        return self._source.error(_diagnose(raw, line) or reason, line)

    def close(self) -> None:
        """Release the file and any stream still open on it."""
        for stream in self._streams:
            stream.close()  # runs the stream's own cleanup
        self._streams = []
        if self._pending is not None:
            _close(*self._pending, None)
            self._pending = None

    def __enter__(self) -> VcfReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _diagnose(raw: bytes | None, line: int) -> str:
    """A plainer reason than htslib's for a line it rejected, when one is evident."""
    if raw is None:
        return ""
    text = raw.rstrip(b"\r\n")
    if not text:
        return "empty line"
    columns = text.count(b"\t") + 1
    if columns < 8:
        return f"expected at least 8 tab-separated columns, found {columns}"
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte 0x{text[exc.start]:02X} at column {exc.start + 1})"
    return ""


def _open_hts(
    source: _Source, header_lines: list[str]
) -> tuple[HtsVariantFile, _GunzipFeeder | None]:
    """htslib's handle on the file (through a gunzip thread for plain gzip)."""
    feeder = _GunzipFeeder(source) if source.container == "gzip" else None
    try:
        hts = HtsVariantFile(feeder.read_fd if feeder else str(source.path))
    except VcfError as exc:
        if feeder is not None:
            feeder.close()
            if feeder.error:  # htslib saw the stream end early: the gzip data is why
                raise source.error(feeder.error) from exc
        raise _header_error(source, header_lines, str(exc)) from exc
    return hts, feeder


def _close(hts: HtsVariantFile, feeder: _GunzipFeeder | None, raw: _RawLines | None) -> None:
    hts.close()  # before the feeder: htslib reads the feeder's pipe
    if feeder is not None:
        feeder.close()
    if raw is not None:
        raw.close()


def open_vcf(
    path: Path, sample: str | None = None, *, max_uncompressed_bytes: int | None = None
) -> VcfReader:
    """Open a VCF/BCF for streaming. `sample` defaults to the detected tumour sample, else the
    first. Raises VcfError (`FILE: line N: reason`) when the file cannot be read, its header
    is invalid, it decompresses beyond `max_uncompressed_bytes`, or `sample` is unknown."""
    path = Path(path)
    source = _sniff(path)
    if max_uncompressed_bytes is not None:
        _check_size(source, max_uncompressed_bytes)
    lines, first_record = ([], "") if source.bcf else _read_text_header(source)
    opened = _open_hts(source, lines)
    hts = opened[0]
    try:
        if source.bcf:
            lines = hts.header_text.splitlines()
            samples = hts.samples
        else:
            samples = tuple(lines[-1].split("\t")[9:])
        parsed = _parse_header(lines)
        tumor, normal = _detect_roles(samples, parsed)
        column = _choose_sample(source, samples, sample or tumor)
    except VcfError:
        _close(*opened, None)
        raise
    warnings = _Warnings()
    version = _VERSION.match(parsed.fileformat)
    if version is None or version[1] not in _SUPPORTED_VERSIONS:
        warnings.add(
            "version", 1, f"VCF version {parsed.fileformat!r} is outside 4.0-4.5; read as is"
        )
    for text in hts.open_messages.warnings:
        warnings.add(f"htslib:{text}", 0, f"htslib: {text}")
    contigs = [name for name, _, _ in parsed.contig_lengths] or [first_record.split("\t")[0]]
    header = VcfHeader(
        path=str(path),
        fileformat=parsed.fileformat,
        compression=source.compression,
        samples=samples,
        tumor_sample=tumor,
        normal_sample=normal,
        build=_detect_build(parsed),
        chr_prefix=any(c.startswith("chr") for c in contigs),
        annotation_fields=_annotation_fields(parsed.schema),
        header_lines=len(lines),
    )
    return VcfReader(source, parsed, header, column, warnings, opened)


def _header_error(source: _Source, lines: list[str], reason: str) -> VcfError:
    """htslib's header errors quote the offending line: name its number."""
    for n, line in enumerate(lines, 1):
        if len(line) > 2 and line in reason:
            return source.error(reason, n)
    return source.error(reason)


def _choose_sample(source: _Source, samples: tuple[str, ...], sample: str) -> int | None:
    """Column index of `sample` (the first when "") in a record line, None without samples."""
    if not sample:
        return 9 if samples else None
    if sample not in samples:
        listed = ", ".join(samples) if samples else "none"
        raise source.error(f"sample {sample!r} not found (samples in the file: {listed})")
    return 9 + samples.index(sample)


def read_all(
    path: Path, sample: str | None = None, **kw: Any
) -> tuple[VcfHeader, list[VariantRecord], list[ReadWarning]]:
    """Every record at once; raises VcfError on any failure, never returns a partial read."""
    with open_vcf(path, sample, **kw) as reader:
        records = list(reader.records())
        return reader.header, records, reader.warnings
