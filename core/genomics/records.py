"""What the VCF reader yields and the interpreter consumes: plain frozen records, no pysam.

One `VariantRecord` per ALT allele (multi-allelic records are decomposed), for the chosen
sample. Everything here is cheap to build and to serialise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import InputError

# Allele kinds reported to the user.
ALLELE_KINDS: tuple[str, ...] = (
    "snv", "mnv", "insertion", "deletion", "indel", "symbolic", "breakend",
)  # fmt: skip
BUILDS: tuple[str, ...] = ("GRCh37", "GRCh38", "unknown")


class VcfError(InputError):
    """A VCF/BCF that cannot be read. The message is `FILE: line N: reason` (or `FILE: reason`
    when no line applies) and the whole file is rejected: never a partial result."""


@dataclass(frozen=True)
class Annotation:
    """One transcript-level (or gene-level) annotation of one allele, from any annotator."""

    source: str  # "CSQ" (VEP), "ANN" (SnpEff), "EFF" (old SnpEff), "ANNOVAR"
    gene: str = ""
    consequence: str = ""  # Sequence Ontology term(s), '&'-joined as the annotator wrote them
    impact: str = ""  # HIGH / MODERATE / LOW / MODIFIER when given
    hgvsc: str = ""
    hgvsp: str = ""
    population_af: float | None = None  # gnomAD / ExAC / 1000G allele frequency when annotated
    extra: dict[str, str] = field(default_factory=dict)  # other fields, raw


@dataclass(frozen=True)
class FreeText:
    """A free-text annotation (e.g. a German comment), decoded from percent-encoding."""

    field: str  # INFO key it came from
    text: str
    lang: str = ""  # declared language (e.g. from an ANNOTATION_LANG field), "" if unknown


@dataclass(frozen=True)
class VariantRecord:
    line: int  # 1-based line in the decompressed text file; 0 for BCF
    chrom: str
    pos: int  # 1-based
    id: str  # "." when absent
    ref: str
    alt: str  # one allele: bases, "<DUP>", "<DEL>", a breakend string, ...
    allele_index: int  # 1-based index of `alt` in the original record's ALT list
    n_alts: int  # ALT count of the original record (>1 means it was decomposed)
    kind: str  # one of ALLELE_KINDS
    qual: float | None
    filters: tuple[str, ...]  # () or ("PASS",) when passed
    info: dict[str, Any]  # raw INFO values (only JSON-friendly types)
    genotype: str = ""  # of the chosen sample, e.g. "0/1"; "" when no samples
    depth: int | None = None
    vaf: float | None = None  # from FORMAT/AF, or AD alt / (ref + alt)
    annotations: tuple[Annotation, ...] = ()  # parsed for THIS allele only
    free_text: tuple[FreeText, ...] = ()
    sv_type: str = ""  # INFO/SVTYPE for symbolic/SV alleles
    end: int | None = None  # INFO/END when given

    @property
    def key(self) -> str:
        """A stable id: chrom:pos:ref>alt."""
        return f"{self.chrom}:{self.pos}:{self.ref}>{self.alt}"


@dataclass(frozen=True)
class ReadWarning:
    """An oddity that could be read (non-numeric QUAL, undeclared INFO, unsorted records)."""

    line: int
    message: str


@dataclass(frozen=True)
class VcfHeader:
    path: str
    fileformat: str  # e.g. "VCFv4.2"
    compression: str  # "none", "bgzf", "gzip", "bcf"
    samples: tuple[str, ...]
    tumor_sample: str  # detected, "" if unknown
    normal_sample: str  # detected, "" if none
    build: str  # one of BUILDS, from ##reference/##assembly/##contig lines
    chr_prefix: bool  # contigs named "chr1" rather than "1"
    annotation_fields: tuple[str, ...]  # which of CSQ/ANN/EFF/ANNOVAR the header declares
    header_lines: int  # number of header lines (## and #CHROM), so record lines are offsets
