"""Run-time access to the knowledge tables in `assets/knowledge/`.

The tables are built from openly licensed sources by `python -m core.knowledge.build`; the row
dataclasses below define their columns (field order = column order), so the builder and this
loader cannot disagree about the format. Cells are plain text with no quoting; tuple fields
are joined with `|`, count fields are `key:count` items joined with `|`.
"""

from __future__ import annotations

import csv
import json
import re
import typing
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from core.errors import InputError

# A count field: (key, count) pairs, most frequent first, written as "key:count|key:count".
Counts = tuple[tuple[str, int], ...]

LIST_SEP = "|"
COUNT_SEP = ":"

# CIViC diseases that are not a tumour type: evidence for them (e.g. tumour-agnostic NTRK
# fusion approvals) applies to every tumour type, ranked after the type's own diseases.
PAN_CANCER_DISEASES: tuple[str, ...] = ("Cancer", "Solid Tumor")

_AA3_TO_1: dict[str, str] = {
    "Ala": "A", "Arg": "R", "Asn": "N", "Asp": "D", "Cys": "C", "Gln": "Q", "Glu": "E",
    "Gly": "G", "His": "H", "Ile": "I", "Leu": "L", "Lys": "K", "Met": "M", "Phe": "F",
    "Pro": "P", "Ser": "S", "Thr": "T", "Trp": "W", "Tyr": "Y", "Val": "V", "Ter": "*",
    "Sec": "U", "Pyl": "O",
}  # fmt: skip
# Title-case codes only, so that HGVS words such as "del", "ins" and "dup" are left alone.
_AA3_RE = re.compile("|".join(_AA3_TO_1))
# An all-caps or lower-case simple substitution such as "VAL600GLU".
_AA3_SUBST_RE = re.compile(r"([A-Za-z]{3})(\d+)([A-Za-z]{3})")
# The first residue of a protein change: "V600" of "V600E", "E746" of "E746_A750del".
RESIDUE_RE = re.compile(r"([A-Z])(\d+)")


def normalize_protein_change(text: str) -> str:
    """One-letter protein change as CIViC writes it, without "p." ("p.Val600Glu" -> "V600E").

    Accepts "V600E", "p.V600E", "p.(Val600Glu)", "p.Gln22Ter" ("Q22*") and "VAL600GLU".
    The case of anything that is not an amino-acid code is kept.
    """
    s = text.strip()
    if s[:2] in ("p.", "P."):
        s = s[2:]
    if s.startswith("(") and s.endswith(")"):  # HGVS marks predicted consequences this way
        s = s[1:-1]
    whole = _AA3_SUBST_RE.fullmatch(s)
    if whole and {whole[1].title(), whole[3].title()} <= _AA3_TO_1.keys():
        return _AA3_TO_1[whole[1].title()] + whole[2] + _AA3_TO_1[whole[3].title()]
    return _AA3_RE.sub(lambda m: _AA3_TO_1[m[0]], s)


def _residue(protein_change: str) -> tuple[str, int] | None:
    """(reference amino acid, position) of the first residue of a normalised change."""
    m = RESIDUE_RE.match(protein_change.upper())
    return (m[1], int(m[2])) if m else None


def _allele_key(chrom: str, pos: int, ref: str, alt: str) -> tuple[str, int, str, str]:
    """Chromosome without "chr", and alleles with their shared suffix and prefix removed.

    VCF pads indels with an anchor base (7:55242464 AGGAATTAAGAGAAGC>A) where CIViC gives
    the bare change (7:55242465 GGAATTAAGAGAAGC>-); both reduce to the same key. Indels are
    not re-aligned (that needs the reference), so only the same placement matches.
    """
    ref, alt = ref.upper(), alt.upper()
    while ref and alt and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while ref and alt and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    chrom = chrom[3:] if chrom.lower().startswith("chr") else chrom
    return chrom, pos, ref, alt


# --- rows ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """An accepted CIViC evidence item whose molecular profile is a single variant."""

    gene: str
    variant: str  # CIViC variant name, e.g. "V600E", or "V600" for the whole residue
    molecular_profile: str  # e.g. "BRAF V600E"
    disease: str  # CIViC disease name, e.g. "Skin Melanoma"
    doid: str  # "DOID:8923"; "" when CIViC gives none
    evidence_type: str  # Predictive, Prognostic, Diagnostic, Predisposing, Oncogenic, Functional
    evidence_direction: str  # Supports, Does Not Support, N/A
    evidence_level: str  # A (validated) .. E (inferential)
    significance: str  # e.g. Sensitivity/Response, Resistance, Poor Outcome
    therapies: tuple[str, ...]
    therapy_interaction_type: str  # Combination, Sequential, Substitutes, or ""
    variant_origin: str  # Somatic, Rare Germline, Common Germline, ...
    evidence_id: int
    citation_id: str  # PubMed id, or ASCO abstract id when source_type says so
    source_type: str  # PubMed, ASCO, ASH
    rating: int  # curator's 1-5 stars; 0 when unrated
    variant_id: int


@dataclass(frozen=True, slots=True)
class CivicVariant:
    """A CIViC variant with its coordinates (CIViC's own, and the VCF form where released)."""

    gene: str
    variant: str
    variant_types: tuple[str, ...]  # Sequence Ontology terms
    chrom: str  # "" when CIViC gives no coordinates
    start: int  # 0 when unknown
    stop: int  # 0 when unknown
    ref: str  # bare reference bases, "" for insertions and non-sequence variants
    alt: str
    build: str  # reference build of chrom/start/stop: GRCh37, GRCh38 or ""
    variant_id: int
    hgvs_descriptions: tuple[str, ...]  # RefSeq g./c./p. (Ensembl only where RefSeq is absent)
    vcf_pos: int  # position in CIViC's GRCh37 VCF release; 0 when the variant is not in it
    vcf_ref: str
    vcf_alt: str


@dataclass(frozen=True, slots=True)
class Assertion:
    """A CIViC assertion (a curated summary over evidence items) on a single variant."""

    gene: str
    variant: str
    molecular_profile: str
    disease: str
    doid: str
    significance: str
    amp_category: str  # AMP/ASCO/CAP tier and level, e.g. "Tier I - Level A"; "" when none
    therapies: tuple[str, ...]
    assertion_type: str
    assertion_direction: str
    regulatory_approval: str  # "true", "false" or ""
    fda_companion_test: str
    nccn_guideline: str
    summary: str
    assertion_id: int
    evidence_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hotspot:
    """A residue of the 3D mutation hotspots resource (Gao et al., Genome Med 2017)."""

    gene: str
    residue: str  # e.g. "V600"
    position: int
    ref_aa: str
    hotspot_class: str  # Hotspot, Hotspot-linked or Cluster-exclusive
    n_mutations: int
    p_value: str  # as published, e.g. "<0.0001" or "0.0032"
    variant_aas: Counts  # amino acids seen at the residue, e.g. (("E", 520), ("K", 25))
    tumor_types: Counts  # most frequent tumour types (TCGA-style codes), at most 5
    n_tumor_types: int  # distinct tumour types before trimming


@dataclass(frozen=True, slots=True)
class GeneRole:
    """The role of a gene in cancer, aggregated from text-mined CancerMine rows."""

    gene: str
    role: str  # Oncogene, Tumor_Suppressor or Driver (direction unresolved)
    n_citations: int  # summed over roles
    oncogene_citations: int
    tumor_suppressor_citations: int
    driver_citations: int
    n_cancers: int
    top_cancers: Counts  # cancers with most citations, at most 5


@dataclass(frozen=True, slots=True)
class OncoTreeType:
    """One TCGA study code of the cohort mapped to OncoTree and to CIViC disease names."""

    tcga_code: str
    oncotree_code: str
    name: str
    main_type: str
    tissue: str
    parent: str
    level: int
    nci_code: str  # NCI Thesaurus code of the node, or of its nearest ancestor that has one
    nci_code_node: str  # OncoTree code the NCIt code belongs to
    umls_cui: str
    civic_diseases: tuple[str, ...]  # most specific first; order ranks evidence
    civic_doids: tuple[str, ...]


def _variant_key(v: CivicVariant) -> tuple[str, str, int, str, str] | None:
    """(build, allele key) of a CIViC variant, or None when it has no sequence allele."""
    if v.vcf_pos:  # CIViC's VCF release is on GRCh37
        return ("GRCh37", *_allele_key(v.chrom, v.vcf_pos, v.vcf_ref, v.vcf_alt))
    if v.start and (v.ref or v.alt) and set(v.ref + v.alt) <= set("ACGTacgt"):
        # CIViC places an insertion between start and stop; the key wants the base after it.
        return (v.build, *_allele_key(v.chrom, v.start if v.ref else v.stop, v.ref, v.alt))
    return None


RowT = TypeVar("RowT")

# File name -> row type: the builder writes these, the loader reads them.
TABLES: dict[str, type] = {
    "civic_evidence.tsv": Evidence,
    "civic_variants.tsv": CivicVariant,
    "civic_assertions.tsv": Assertion,
    "hotspots.tsv": Hotspot,
    "gene_roles.tsv": GeneRole,
    "oncotree_types.tsv": OncoTreeType,
}
MANIFEST = "manifest.json"


# --- cell codec ----------------------------------------------------------------------------


def _encode(value: Any) -> str:
    if not isinstance(value, tuple):
        return str(value)
    items = [f"{i[0]}{COUNT_SEP}{i[1]}" if isinstance(i, tuple) else i for i in value]
    if any(LIST_SEP in i for i in items):
        raise ValueError(f"{LIST_SEP!r} inside a list item of {value!r}")
    return LIST_SEP.join(items)


def _decode_counts(cell: str) -> Counts:
    return tuple(
        (key, int(n)) for key, _, n in (item.rpartition(COUNT_SEP) for item in _split(cell))
    )


def _split(cell: str) -> tuple[str, ...]:
    return tuple(cell.split(LIST_SEP)) if cell else ()


def _decoder(hint: Any) -> Callable[[str], Any]:
    decoders: dict[Any, Callable[[str], Any]] = {
        str: str,
        int: int,
        tuple[str, ...]: _split,
        Counts: _decode_counts,
    }
    return decoders[hint]


def columns(row_type: type) -> tuple[str, ...]:
    """Column names of a table, in order."""
    return tuple(f.name for f in fields(row_type))


def encode_row(row: Any) -> list[str]:
    """Cells of one row; raises ValueError on text that would break the TSV format."""
    cells = [_encode(getattr(row, name)) for name in columns(type(row))]
    for cell in cells:
        if "\t" in cell or "\n" in cell or "\r" in cell:
            raise ValueError(f"tab or newline in cell {cell!r} of {row!r}")
    return cells


def read_table(path: Path, row_type: type[RowT]) -> tuple[RowT, ...]:
    """Rows of one knowledge table; InputError names the file and line of a bad row."""
    hints = typing.get_type_hints(row_type)
    names = columns(row_type)
    decode = [_decoder(hints[n]) for n in names]
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = tuple(next(reader, ()))
            if header != names:
                raise InputError(f"{path}: columns {header} differ from the expected {names}")
            rows = []
            for line, cells in enumerate(reader, start=2):
                if len(cells) != len(names):
                    raise InputError(f"{path}:{line}: {len(cells)} cells, expected {len(names)}")
                rows.append(row_type(*(d(c) for d, c in zip(decode, cells, strict=True))))
    except OSError as e:
        raise InputError(f"cannot read knowledge table {path}: {e.strerror or e}") from e
    except ValueError as e:
        raise InputError(f"{path}: bad value: {e}") from e
    return tuple(rows)


def default_dir() -> Path:
    """The knowledge tables shipped with the repository."""
    return Path(__file__).resolve().parents[2] / "assets" / "knowledge"


# --- lookups -------------------------------------------------------------------------------


def _group(rows: Iterable[RowT], key: Callable[[RowT], Any]) -> dict[Any, list[RowT]]:
    groups: dict[Any, list[RowT]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return dict(groups)


class KnowledgeBase:
    """All knowledge tables in memory, indexed for the lookups the interpreter needs."""

    def __init__(
        self,
        evidence: tuple[Evidence, ...],
        variants: tuple[CivicVariant, ...],
        assertions: tuple[Assertion, ...],
        hotspots: tuple[Hotspot, ...],
        gene_roles: tuple[GeneRole, ...],
        oncotree_types: tuple[OncoTreeType, ...],
        manifest: Mapping[str, Any],
    ) -> None:
        self.evidence = evidence
        self.variants = variants
        self.assertions = assertions
        self.hotspots = hotspots
        self.gene_roles = gene_roles
        self.oncotree_types = oncotree_types
        self.manifest = manifest
        self._evidence = _group(evidence, lambda r: (r.gene, r.variant.upper()))
        self._assertions = _group(assertions, lambda r: (r.gene, r.variant.upper()))
        self._hotspots = {(h.gene, h.position): h for h in hotspots}
        self._roles = {g.gene: g for g in gene_roles}
        self._oncotree = {t.tcga_code: t for t in oncotree_types}
        self._alleles = _group((v for v in variants if _variant_key(v)), _variant_key)

    @classmethod
    def load(cls, dir: Path | None = None) -> KnowledgeBase:
        """Read every table from `dir` (default: the shipped `assets/knowledge/`)."""
        d = Path(dir) if dir is not None else default_dir()
        try:
            manifest = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read knowledge manifest {d / MANIFEST}: {e}") from e
        tables = {name: read_table(d / name, row_type) for name, row_type in TABLES.items()}
        return cls(
            evidence=tables["civic_evidence.tsv"],
            variants=tables["civic_variants.tsv"],
            assertions=tables["civic_assertions.tsv"],
            hotspots=tables["hotspots.tsv"],
            gene_roles=tables["gene_roles.tsv"],
            oncotree_types=tables["oncotree_types.tsv"],
            manifest=manifest,
        )

    def _disease_rank(self, tumor_type: str) -> Callable[[str], int | None]:
        """Rank of a CIViC disease for a TCGA code: its own diseases, then pan-cancer, else None."""
        t = self.oncotree(tumor_type)
        if t is None:
            raise InputError(
                f"unknown tumour type {tumor_type!r}; expected one of "
                + ", ".join(sorted(self._oncotree))
            )
        ranks = {d: i for i, d in enumerate(t.civic_diseases)}
        ranks.update({d: len(ranks) for d in PAN_CANCER_DISEASES})
        return ranks.get

    def _matching(
        self, index: Mapping[tuple[str, str], list[RowT]], gene: str, protein_change: str
    ) -> list[tuple[bool, RowT]]:
        """(is exact, row) for rows on the exact change and on its whole residue ("V600")."""
        gene = gene.strip().upper()
        change = normalize_protein_change(protein_change).upper()
        found = [(True, r) for r in index.get((gene, change), ())]
        residue = _residue(change)
        if residue and (name := f"{residue[0]}{residue[1]}") != change:
            found += [(False, r) for r in index.get((gene, name), ())]
        return found

    def evidence_for(
        self, gene: str, protein_change: str, tumor_type: str | None = None
    ) -> tuple[Evidence, ...]:
        """Evidence on the change and on its residue (CIViC's "V600" covers V600E).

        With a TCGA `tumor_type`, only evidence for that type's CIViC diseases and for
        pan-cancer diseases is kept. Sorted by level (A first), then disease specificity,
        exact change before residue, rating (highest first) and evidence id.
        """
        rank = self._disease_rank(tumor_type) if tumor_type else (lambda _d: 0)
        hits = [
            (e.evidence_level, r, not exact, -e.rating, e.evidence_id, e)
            for exact, e in self._matching(self._evidence, gene, protein_change)
            if (r := rank(e.disease)) is not None
        ]
        return tuple(h[-1] for h in sorted(hits, key=lambda h: h[:-1]))

    def best_evidence_level(
        self, gene: str, protein_change: str, tumor_type: str | None = None
    ) -> str | None:
        """Best level (A..E) among evidence that supports its claim; None when there is none."""
        levels = [
            e.evidence_level
            for e in self.evidence_for(gene, protein_change, tumor_type)
            if e.evidence_direction == "Supports"
        ]
        return min(levels, default=None)

    def assertions_for(
        self, gene: str, protein_change: str, tumor_type: str | None = None
    ) -> tuple[Assertion, ...]:
        """Assertions on the change or its residue, filtered and ranked like `evidence_for`."""
        rank = self._disease_rank(tumor_type) if tumor_type else (lambda _d: 0)
        hits = [
            (a.amp_category or "~", r, not exact, a.assertion_id, a)  # "~": untiered last
            for exact, a in self._matching(self._assertions, gene, protein_change)
            if (r := rank(a.disease)) is not None
        ]
        return tuple(h[-1] for h in sorted(hits, key=lambda h: h[:-1]))

    def hotspot(self, gene: str, protein_change: str) -> Hotspot | None:
        """The 3D hotspot residue hit by the change (any alternate amino acid), or None.

        A reference amino acid that differs from the resource's means another isoform, so it
        does not match.
        """
        residue = _residue(normalize_protein_change(protein_change))
        if residue is None:
            return None
        h = self._hotspots.get((gene.strip().upper(), residue[1]))
        return h if h is not None and h.ref_aa == residue[0] else None

    def gene_role(self, gene: str) -> GeneRole | None:
        """CancerMine role of a gene, or None when too few citations support one."""
        return self._roles.get(gene.strip().upper())

    def oncotree(self, tcga_code: str) -> OncoTreeType | None:
        """OncoTree node and CIViC diseases of a TCGA study code, or None for other codes."""
        return self._oncotree.get(tcga_code.strip().upper())

    def variant_by_coordinates(
        self, chrom: str, pos: int, ref: str, alt: str, build: str = "GRCh37"
    ) -> tuple[CivicVariant, ...]:
        """CIViC variants with exactly this allele (usually one; empty when none).

        Accepts VCF-style padded indels and "chr"-prefixed contigs.
        """
        return tuple(self._alleles.get((build, *_allele_key(chrom, pos, ref, alt)), ()))
