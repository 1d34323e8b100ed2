"""Somatic variant interpretation with its evidence: per variant the seed article's class, the
ClinGen/CGC/VICC oncogenicity (points per criterion) and the AMP/ASCO/CAP tier for a tumour
type; per sample the tumour mutational burden and the actionable findings.

Every result says why: the criteria applied (with the data behind each), the CIViC evidence
rows cited (id, level, disease, therapies), the tier's reason, and an abstention reason when
the evidence is absent or conflicts. docs/vcf.md describes the rules.

Two hooks take the trained models (core/genomics/models.py adapts them): `variant_scorer`
(the genomic encoder's probability that a variant is oncogenic; OP1/SBP1 when present) and
`annotation_reader` (the multilingual student and the lexicon reading free-text annotations,
shown as evidence without points). Both are called once per batch of records, never once per
record. Absent hooks are reported as such, never replaced by a made-up number.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from core.errors import InputError
from core.genomics import classes as C
from core.genomics.reader import POPULATION_AF_CSQ, POPULATION_AF_INFO, open_vcf
from core.genomics.records import Annotation, FreeText, ReadWarning, VariantRecord
from core.io import atomic_path
from core.knowledge.tables import (
    PAN_CANCER_DISEASES,
    RESIDUE_RE,
    CivicVariant,
    Evidence,
    Hotspot,
    KnowledgeBase,
    normalize_protein_change,
)

# (records read so far, 1-based line reached, total lines or 0 when unknown) -> None.
Progress = Callable[[int, int, int], None]

DEFAULT_PANEL_MB = 1.1  # coding territory of a large targeted panel, in megabases
NOT_AVAILABLE = "not available"
ANALYSIS_CACHE = 50_000  # analyses kept for reuse; alleles with equal facts share one

CLINICAL_TYPES = frozenset({"Predictive", "Diagnostic", "Prognostic"})
FUNCTIONAL_ONCOGENIC = frozenset(
    {"Gain of Function", "Loss of Function", "Dominant Negative", "Neomorphic"}
)
ONCOGENIC_ASSERTIONS = frozenset({"Oncogenic", "Likely Oncogenic"})
MATCH_ORDER = ("exact", "coordinates", "alteration", "residue")
SEQUENCE_KINDS = frozenset({"snv", "mnv", "insertion", "deletion", "indel"})
AMPLIFICATION_SV = frozenset({"DUP", "CNV", "AMP"})
MISSENSE_RE = re.compile(r"([A-Z])(\d+)([A-Z])")
ONE_LETTER_RE = re.compile(r"p\.[A-Z]\d+[A-Z*=]")
BREAKEND_MATE_RE = re.compile(r"[\[\]]([^:\[\]]+):(\d+)[\[\]]")

# Alteration-level CIViC variant names (upper case, as the knowledge base indexes them) per
# kind of event that has no protein change of its own.
AMPLIFICATION_NAMES = ("AMPLIFICATION",)
DELETION_NAMES = ("DELETION", "LOSS", "LOSS-OF-FUNCTION")
NULL_NAMES = ("LOSS-OF-FUNCTION", "TRUNCATING MUTATION")
NULL_IN_SUPPRESSOR_NAMES = (*NULL_NAMES, "LOSS", "MUTATION")
PROMOTER_NAMES = ("PROMOTER MUTATION",)
FUSION_GENE_NAMES = ("FUSION", "REARRANGEMENT")

ANNOTATED_INFO: tuple[tuple[str, str], ...] = (
    ("CMKD_CLASS", "Seed-article class: pathogenic, benign or VUS"),
    ("CMKD_ONCOGENICITY", "ClinGen/CGC/VICC oncogenicity (spaces as underscores)"),
    ("CMKD_TIER", "AMP/ASCO/CAP tier I-IV for the tumour type given"),
    ("CMKD_EVIDENCE", "Criteria applied, then cited CIViC evidence ids (EID...), '&'-joined"),
)


@dataclass(frozen=True)
class InterpretConfig:
    """Thresholds of the rules; defaults follow the SOP where it gives a number."""

    benign_af: float = 0.05  # SBVS1: population allele frequency above this
    common_af: float = 0.01  # SBS1: above this; TMB also skips such likely-germline calls
    absent_af: float = 0.0  # OP4: annotated population frequency at most this counts as absent
    amplification_min_cn: int = 6  # XS1 for an untyped DUP/CNV record: copy number at least
    scorer_oncogenic: float = 0.9  # OP1 when the genomic encoder's probability is at least
    scorer_benign: float = 0.1  # SBP1 when it is at most
    max_evidence: int = 20  # CIViC rows kept per variant (best first); the count keeps all
    progress_every: int = 2000  # records between progress callbacks


@dataclass(frozen=True, slots=True)
class AnnotationReading:
    """What the multilingual model read in one free-text annotation: evidence for the user,
    never points."""

    implies: str  # classes.CLASSES the wording supports; VUS when it says neither (or both)
    cues: tuple[str, ...]  # the words behind `implies`, as written ("pathogen", "Hotspot")
    genes: tuple[str, ...]  # genes the text names (HUGO symbols)
    entities: tuple[str, ...]  # every lexicon concept found, "CONCEPT:ID=text as written"
    cancer_type: str  # the student's most probable TCGA type for the text
    cancer_type_p: float  # its probability


# Free texts -> the reading of each, in order (one call per batch of records).
AnnotationReader = Callable[[Sequence[FreeText]], Sequence[AnnotationReading]]
# Variants -> probability in [0, 1] that each is oncogenic, in order (one call per batch).
VariantScorer = Callable[[Sequence[VariantRecord]], Sequence[float]]
# The genomic encoder's criteria: listed as evidence, never counted in the points.
COMPUTATIONAL = frozenset({"OP1", "SBP1"})
BATCH = 512  # records interpreted together, so that the hooks see whole batches


@dataclass(frozen=True, slots=True)
class Criterion:
    code: str  # key of classes.CRITERIA
    points: int
    reason: str  # the data that made it apply


@dataclass(frozen=True, slots=True)
class EvidenceRef:
    """A cited CIViC evidence item, compact."""

    evidence_id: int
    level: str
    evidence_type: str
    direction: str
    significance: str
    disease: str
    therapies: tuple[str, ...]
    civic_variant: str  # CIViC molecular profile, e.g. "BRAF V600E"
    match: str  # one of MATCH_ORDER: how the variant met the CIViC variant
    in_tumor_type: bool  # the disease is the tumour type's own or pan-cancer
    citation: str  # PubMed id (or ASCO abstract id)


@dataclass(frozen=True, slots=True)
class AssertionRef:
    assertion_id: int
    amp_category: str
    significance: str
    disease: str
    therapies: tuple[str, ...]
    in_tumor_type: bool


@dataclass(frozen=True, slots=True)
class VariantInterpretation:
    # the call
    key: str
    line: int
    allele_index: int  # of `alt` in the record's ALT list (1-based)
    chrom: str
    pos: int
    ref: str
    alt: str
    kind: str
    passed: bool  # FILTER is PASS or missing
    filters: tuple[str, ...]
    genotype: str
    depth: int | None
    vaf: float | None
    # annotation and knowledge
    gene: str
    protein_change: str  # one-letter, without "p.", e.g. "V600E"; "" when none
    consequence: str  # most severe SO term, "" when unannotated
    severity: int  # rank of `consequence` in classes.SO_RANKING, 0 = most severe
    fusion_partner: str
    gene_role: str  # CancerMine: Oncogene, Tumor_Suppressor, Driver, or ""
    hotspot: str  # "V600 (Hotspot): 557 samples, E:509", or ""
    population_af: float | None
    # results
    variant_class: str  # classes.CLASSES
    oncogenicity: str  # classes.ONCOGENICITY
    points: int
    criteria: tuple[Criterion, ...]
    tier: str  # classes.TIERS
    tier_reason: str
    class_reason: str
    abstention: str  # why the result is VUS for lack or conflict of evidence; "" otherwise
    evidence: tuple[EvidenceRef, ...]
    n_evidence: int  # CIViC rows found, before keeping the best `max_evidence`
    assertions: tuple[AssertionRef, ...]
    annotation_text: tuple[FreeText, ...]
    annotation_reading: str  # the model's reading of the text for people, or NOT_AVAILABLE
    annotation_readings: tuple[AnnotationReading, ...]  # per `annotation_text`, () when none
    score: float | None  # the genomic encoder's probability, None when not available

    @property
    def therapies(self) -> tuple[str, ...]:
        """Therapies of supporting predictive sensitivity evidence, in evidence order."""
        found = (
            t
            for e in self.evidence
            if e.evidence_type == "Predictive"
            and e.direction == "Supports"
            and e.significance == "Sensitivity/Response"
            for t in e.therapies
        )
        return tuple(dict.fromkeys(found))

    @property
    def criteria_codes(self) -> str:
        return ",".join(c.code for c in self.criteria)

    def to_dict(self) -> dict[str, Any]:
        d = _plain(self)
        d["therapies"] = list(self.therapies)
        return d


def _plain(value: Any) -> Any:
    """JSON-ready form of records: like dataclasses.asdict without its deep copies, which
    made a 200k-variant report take a minute."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    names = _field_names(type(value))
    return {n: _plain(getattr(value, n)) for n in names} if names else value


@lru_cache(maxsize=64)
def _field_names(cls: type) -> tuple[str, ...]:
    """Field names of a dataclass type; () for anything else."""
    return tuple(getattr(cls, "__dataclass_fields__", ()))


def _carries(genotype: str, allele_index: int) -> bool:
    """Whether the chosen sample carries the allele; unknown genotypes count as carried."""
    calls = genotype.replace("|", "/").split("/") if genotype else []
    known = [c for c in calls if c != "."]
    return not known or str(allele_index) in known


def one_letter_protein(text: str) -> str:
    """One-letter protein change of an HGVSp field ("ENSP0001.1:p.Val600Glu" -> "V600E")."""
    text = text.rsplit(":", 1)[-1].strip()
    if ONE_LETTER_RE.fullmatch(text):  # the common case, without the general normaliser
        return text[2:]
    return normalize_protein_change(text) if text.startswith(("p.", "P.")) else ""


def primary_annotation(annotations: tuple[Annotation, ...]) -> Annotation | None:
    """The annotation with the most severe consequence (one with a protein change first)."""
    if len(annotations) == 1:
        return annotations[0]
    return min(annotations, key=lambda a: (_rank(a.consequence), not a.hgvsp), default=None)


@lru_cache(maxsize=4096)  # annotators use few distinct consequence strings
def _rank(consequence: str) -> int:
    """Severity rank of the most severe SO term of an annotator's consequence field."""
    terms = C.so_terms(consequence)
    return C.severity_rank(terms[0]) if terms else C.UNRANKED


def _population(record: VariantRecord) -> tuple[float | None, bool]:
    """(highest annotated population allele frequency, whether the file has such a field).

    VEP leaves gnomAD_AF empty for a variant gnomAD lacks, so a declared-but-empty field
    means "absent from the population database" (OP4), while no field means "not checked".
    """
    afs = [a.population_af for a in record.annotations if a.population_af is not None]
    if afs:
        return max(afs), True
    declared = any(k in record.info for k in POPULATION_AF_INFO) or any(
        k in a.extra for a in record.annotations for k in POPULATION_AF_CSQ
    )
    return None, declared


# ---------------------------------------------------------------------- the interpreter


@dataclass(slots=True)
class _Facts:
    """What the rules read about one allele, gathered once."""

    record: VariantRecord
    annotated: bool
    gene: str
    change: str  # "" when it cannot matter (no knowledge at its residue), so analyses are shared
    terms: tuple[str, ...]
    partner: str
    af: float | None
    af_key: Any  # `af` as far as the rules tell values apart (see _af_key)
    af_declared: bool
    cn: int | None
    amplification: bool
    fusion: bool
    exon: str  # VEP's EXON number ("19" of "19/28"), "" when not annotated
    coords: tuple[CivicVariant, ...]  # CIViC variants at these GRCh37 coordinates
    score: float | None
    role: str = ""
    partner_role: str = ""
    hits: list[tuple[Evidence, str]] = field(default_factory=list)
    assertions: tuple[AssertionRef, ...] = ()
    hotspot: Hotspot | None = None

    def key(self, tumor_type: str | None) -> tuple[Any, ...]:
        """Everything an analysis depends on (not the record's position or sample data). The
        score counts to the two decimals that its criterion's reason quotes."""
        return (tumor_type, self.annotated, self.gene, self.change, self.terms, self.partner,
                self.af_key, self.af_declared, self.cn, self.amplification, self.fusion,
                self.exon, tuple(cv.variant_id for cv in self.coords),
                None if self.score is None else round(self.score, 2),
                self.record.kind in SEQUENCE_KINDS)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Analysis:
    """The conclusions for one set of facts; alleles with the same facts share one."""

    gene: str
    role: str
    hotspot: str
    criteria: tuple[Criterion, ...]
    verdict: _Verdict
    evidence: tuple[EvidenceRef, ...]
    n_evidence: int
    assertions: tuple[AssertionRef, ...]


class Interpreter:
    """Knowledge lookups and rules, for a batch of variants or one; build once, reuse.

    `scorer_status` / `reader_status` say what the hooks are, or why they are absent, in the
    report (default "available" / NOT_AVAILABLE).
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        config: InterpretConfig | None = None,
        *,
        variant_scorer: VariantScorer | None = None,
        annotation_reader: AnnotationReader | None = None,
        scorer_status: str = "",
        reader_status: str = "",
    ) -> None:
        self.kb = kb
        self.config = config or InterpretConfig()
        self.variant_scorer = variant_scorer
        self.annotation_reader = annotation_reader
        self.scorer_status = scorer_status or _status(variant_scorer)
        self.reader_status = reader_status or _status(annotation_reader)
        self._evidence_genes = frozenset(e.gene for e in kb.evidence)
        self._assertion_genes = frozenset(a.gene for a in kb.assertions)
        self._hotspot_genes = frozenset(h.gene for h in kb.hotspots)
        self._knowledge_genes = self._evidence_genes | self._assertion_genes | self._hotspot_genes
        self._residues = _knowledge_residues(kb)
        self._diseases: dict[str, frozenset[str]] = {}
        self._analyses: dict[tuple[Any, ...], _Analysis] = {}
        self._names = _names_by_gene(kb)
        self._skipping = {
            g: tuple(n for n in names if "SKIPPING" in n) for g, names in self._names.items()
        }
        self._established_missense = _established_missense(kb.evidence)

    def check_tumor_type(self, tumor_type: str | None) -> frozenset[str] | None:
        """CIViC diseases that count as the tumour type (its own and pan-cancer); None when no
        type is given. InputError for a code the knowledge base does not know."""
        if not tumor_type:
            return None
        if (diseases := self._diseases.get(tumor_type)) is not None:
            return diseases
        node = self.kb.oncotree(tumor_type)
        if node is None:
            known = ", ".join(sorted(t.tcga_code for t in self.kb.oncotree_types))
            raise InputError(f"unknown tumour type {tumor_type!r}; expected one of {known}")
        diseases = self._diseases[tumor_type] = frozenset(
            (*node.civic_diseases, *PAN_CANCER_DISEASES)
        )
        return diseases

    def _role(self, gene: str) -> str:
        return g.role if gene and (g := self.kb.gene_role(gene)) else ""

    def interpret(
        self,
        record: VariantRecord,
        tumor_type: str | None = None,
        build: str = "unknown",
        fusion_partner: str = "",
    ) -> VariantInterpretation:
        return self.interpret_batch([record], tumor_type, build, [fusion_partner])[0]

    def interpret_batch(
        self,
        records: Sequence[VariantRecord],
        tumor_type: str | None = None,
        build: str = "unknown",
        fusion_partners: Sequence[str] | None = None,
    ) -> list[VariantInterpretation]:
        """The interpretation of each record, the hooks called once for the whole batch."""
        diseases = self.check_tumor_type(tumor_type)
        n = len(records)
        scores: Sequence[float | None] = (
            self.variant_scorer(records) if self.variant_scorer and n else [None] * n
        )
        readings = self._readings(records)
        partners = fusion_partners or [""] * n
        one = self._interpret_one
        return [
            one(r, tumor_type, diseases, build, p.upper(), s, t)
            for r, p, s, t in zip(records, partners, scores, readings, strict=True)
        ]

    def _readings(
        self, records: Sequence[VariantRecord]
    ) -> list[tuple[AnnotationReading, ...] | None]:
        """The reader's readings of each record's free texts (None without a reader)."""
        if self.annotation_reader is None:
            return [None] * len(records)
        texts = list(dict.fromkeys(t for r in records for t in r.free_text))
        read = dict(zip(texts, self.annotation_reader(texts), strict=True)) if texts else {}
        return [tuple(read[t] for t in r.free_text) for r in records]

    def _interpret_one(
        self,
        record: VariantRecord,
        tumor_type: str | None,
        diseases: frozenset[str] | None,
        build: str,
        partner: str,
        score: float | None,
        readings: tuple[AnnotationReading, ...] | None,
    ) -> VariantInterpretation:
        ann = primary_annotation(record.annotations)
        protein = one_letter_protein(ann.hgvsp) if ann is not None and ann.hgvsp else ""
        f = self._facts(record, ann, protein, build, partner, score)
        key = f.key(tumor_type)
        a = self._analyses.get(key)
        if a is None:
            if len(self._analyses) >= ANALYSIS_CACHE:
                self._analyses.clear()
            a = self._analyses[key] = self._analyse(f, diseases)
        v = a.verdict
        texts = record.free_text
        reading = _reading_summary(readings, a.gene, v.variant_class) if readings else NOT_AVAILABLE
        terms = f.terms
        return VariantInterpretation(
            key=record.key, line=record.line, allele_index=record.allele_index,
            chrom=record.chrom, pos=record.pos, ref=record.ref, alt=record.alt, kind=record.kind,
            passed=not record.filters or record.filters == ("PASS",), filters=record.filters,
            genotype=record.genotype, depth=record.depth, vaf=record.vaf, gene=a.gene,
            protein_change=protein, consequence=terms[0] if terms else "",
            severity=C.severity_rank(terms[0]) if terms else C.UNRANKED,
            fusion_partner=partner, gene_role=a.role, hotspot=a.hotspot, population_af=f.af,
            variant_class=v.variant_class, oncogenicity=v.oncogenicity, points=v.points,
            criteria=a.criteria, tier=v.tier, tier_reason=v.tier_reason,
            class_reason=v.class_reason, abstention=v.abstention, evidence=a.evidence,
            n_evidence=a.n_evidence, assertions=a.assertions, annotation_text=texts,
            annotation_reading=reading, annotation_readings=readings or (), score=score,
        )  # fmt: skip

    # --- knowledge ---------------------------------------------------------------------

    def _facts(
        self,
        record: VariantRecord,
        ann: Annotation | None,
        protein: str,
        build: str,
        partner: str,
        score: float | None,
    ) -> _Facts:
        terms = C.so_terms(ann.consequence) if ann else ()
        info = record.info
        cn = _int(info["CN"]) if "CN" in info else None
        if record.sv_type == "DEL" and cn == 0 and "transcript_ablation" not in terms:
            terms = ("transcript_ablation", *terms)  # a homozygous deletion, unannotated
        af, af_declared = _population(record)
        gene = ann.gene.strip().upper() if ann else ""
        coords = (
            self.kb.variant_by_coordinates(record.chrom, record.pos, record.ref, record.alt, build)
            if build == "GRCh37" and record.kind in SEQUENCE_KINDS
            else ()
        )
        if not (gene in self._knowledge_genes or partner in self._knowledge_genes or coords):
            change = ""
        elif gene and not coords and not self._known_residue(gene, protein):
            change = ""  # every lookup by the change would find nothing
        else:
            change = protein
        cfg = self.config
        return _Facts(
            record=record, annotated=ann is not None, gene=gene, change=change, terms=terms,
            partner=partner, af=af, af_key=_af_key(af, cfg), af_declared=af_declared, cn=cn,
            amplification="transcript_amplification" in terms or (
                record.sv_type in AMPLIFICATION_SV and cn is not None
                and cn >= cfg.amplification_min_cn),
            fusion=record.kind == "breakend" or bool(C.FUSION_TERMS.intersection(terms)),
            exon=ann.extra.get("EXON", "").partition("/")[0] if ann else "",
            coords=coords, score=score,
        )  # fmt: skip

    def _known_residue(self, gene: str, change: str) -> bool:
        """Whether CIViC (evidence or assertions) or the 3D hotspots know the change's first
        residue in `gene`; True when the change names no residue."""
        m = RESIDUE_RE.match(change.upper())
        return m is None or int(m[2]) in self._residues.get(gene, ())

    def _analyse(self, f: _Facts, diseases: frozenset[str] | None) -> _Analysis:
        f.role, f.partner_role = self._role(f.gene), self._role(f.partner)
        f.hits = self._evidence(f)
        if not f.gene and f.hits:  # only the coordinates identified the gene
            f.gene = f.hits[0][0].gene
            f.role = self._role(f.gene)
        f.assertions = self._assertions(f.gene, f.change)
        if f.gene in self._hotspot_genes and MISSENSE_RE.fullmatch(f.change):
            f.hotspot = self.kb.hotspot(f.gene, f.change)
        refs = _evidence_refs(f.hits, diseases) if f.hits else ()
        assertions = tuple(replace(a, in_tumor_type=diseases is not None
                                   and a.disease in diseases) for a in f.assertions)  # fmt: skip
        criteria = self._criteria(f)
        verdict = (
            _verdict(criteria, refs, assertions, diseases, f.annotated)
            if refs or assertions
            else _verdict_without_evidence(criteria, f.annotated)
        )
        return _Analysis(f.gene, f.role, _hotspot_text(f.hotspot), criteria, verdict,
                         refs[: self.config.max_evidence], len(refs), assertions)  # fmt: skip

    def _alteration_names(self, f: _Facts) -> list[tuple[str, str]]:
        """(gene, CIViC variant name) of alteration-level entries that describe this event."""
        gene, terms = f.gene, f.terms
        names: list[tuple[str, str]] = []
        if f.amplification:
            names += [(gene, n) for n in AMPLIFICATION_NAMES]
        if "transcript_ablation" in terms:
            names += [(gene, n) for n in DELETION_NAMES]
        elif C.NULL_TERMS.intersection(terms):
            suppressor = f.role == "Tumor_Suppressor"
            names += [(gene, n) for n in (NULL_IN_SUPPRESSOR_NAMES if suppressor else NULL_NAMES)]
        if C.SPLICE_TERMS.intersection(terms):
            names += [(gene, n) for n in self._skipping.get(gene, ())]
        if f.exon and C.INFRAME_TERMS.intersection(terms):  # e.g. EGFR "Exon 19 Deletion"
            what = "DELETION" if any("deletion" in t for t in terms) else "INSERTION"
            names.append((gene, f"EXON {f.exon} {what}"))
        if C.PROMOTER_TERMS.intersection(terms):
            names += [(gene, n) for n in PROMOTER_NAMES]
        if f.fusion:
            genes = [g for g in (gene, f.partner) if g]
            pairs = [f"{f.partner}::{gene}", f"{gene}::{f.partner}"] if f.partner else []
            names += [(g, n) for g in genes for n in (*pairs, *FUSION_GENE_NAMES)]
        return [(g, n) for g, n in names if n in self._names.get(g, ())]

    def _evidence(self, f: _Facts) -> list[tuple[Evidence, str]]:
        """Matching CIViC evidence with how it matched, each item once (best match kept)."""
        found: dict[int, tuple[Evidence, str]] = {}

        def add(rows: Iterable[Evidence], how: Callable[[Evidence], str]) -> None:
            for e in rows:
                if e.variant_origin == "Common Germline":  # polymorphism evidence, not somatic
                    continue
                m = how(e)
                old = found.get(e.evidence_id)
                if old is None or MATCH_ORDER.index(m) < MATCH_ORDER.index(old[1]):
                    found[e.evidence_id] = (e, m)

        if f.change and f.gene in self._evidence_genes:
            upper = f.change.upper()
            add(self.kb.evidence_for(f.gene, f.change),
                lambda e: "exact" if e.variant.upper() == upper else "residue")  # fmt: skip
        for cv in f.coords:
            add(self.kb.evidence_for(cv.gene, cv.variant.upper()), lambda e: "coordinates")
        if f.gene in self._names or f.partner in self._names:
            for gene, name in self._alteration_names(f):
                add(self.kb.evidence_for(gene, name), lambda e: "alteration")
        return list(found.values())

    def _assertions(self, gene: str, change: str) -> tuple[AssertionRef, ...]:
        """Supporting assertions on exactly this change (tumour type filled in later)."""
        if not change or gene not in self._assertion_genes:
            return ()
        upper = change.upper()
        return tuple(
            AssertionRef(
                a.assertion_id, a.amp_category, a.significance, a.disease, a.therapies, False
            )  # fmt: skip
            for a in self.kb.assertions_for(gene, change)
            if a.variant.upper() == upper and a.assertion_direction == "Supports"
        )

    # --- rules -------------------------------------------------------------------------

    def _criteria(self, f: _Facts) -> tuple[Criterion, ...]:
        """The criteria that apply; a homozygous deletion is transcript_ablation in `terms`,
        so OVS1 covers it as the SOP's "multi-exon deletion"."""
        cfg, gene, terms = self.config, f.gene, f.terms
        out: list[Criterion] = []

        def apply(code: str, reason: str) -> None:
            out.append(Criterion(code, C.CRITERIA[code].points, reason))

        null = sorted(C.NULL_TERMS.intersection(terms), key=C.severity_rank)
        if null and f.role == "Tumor_Suppressor":
            apply("OVS1", f"{null[0]} in {gene}, a tumour suppressor in CancerMine")
        established = [
            e for e, m in f.hits if m in ("exact", "coordinates", "alteration") and _establishes(e)
        ]
        asserted = [
            a for a in f.assertions
            if a.significance in ONCOGENIC_ASSERTIONS or a.amp_category.startswith("Tier I")
        ]  # fmt: skip
        if established or asserted:
            cited = [f"EID{e.evidence_id} ({e.molecular_profile}, level {e.evidence_level}, "
                     f"{e.evidence_type.lower()})" for e in established[:3]]  # fmt: skip
            cited += [f"AID{a.assertion_id} ({a.amp_category or a.significance})"
                      for a in asserted[:2]]  # fmt: skip
            apply("OS1", "established in CIViC: " + "; ".join(cited))
        functional = [
            e for e, m in f.hits
            if m == "exact" and e.evidence_type == "Functional"
            and e.evidence_direction == "Supports" and e.significance in FUNCTIONAL_ONCOGENIC
        ]  # fmt: skip
        if functional:
            e = functional[0]
            apply("OS2", f"CIViC functional evidence EID{e.evidence_id}: {e.significance}")
        missense = MISSENSE_RE.fullmatch(f.change)
        if f.hotspot is not None and missense:
            h = f.hotspot
            same = dict(h.variant_aas).get(missense[3], 0)
            where = f"{gene} {h.residue}: {h.n_mutations} samples, {same} with {f.change}"
            if h.hotspot_class != "Hotspot":
                apply("OM1", f"{gene} {h.residue} lies in a 3D mutation cluster "
                             f"({h.hotspot_class})")  # fmt: skip
            elif same >= 10 and h.n_mutations >= 50:
                apply("OS3", where)
            elif same >= 10:
                apply("OM3", where)
            else:
                apply("OP3", where)
        if missense:
            others = self._established_missense.get((gene, int(missense[2])), frozenset())
            if other := sorted(others - {missense[3]}):
                shown = ", ".join("any change" if a == "*" else f"{missense[1]}{missense[2]}{a}"
                                  for a in other[:4])  # fmt: skip
                apply("OM4", f"established in CIViC at {gene} residue {missense[2]}: {shown}")
        inframe = sorted(C.INFRAME_TERMS.intersection(terms))
        if inframe and f.role:
            apply("OM2", f"{inframe[0]} in {gene} ({f.role.replace('_', ' ').lower()})")
        elif "stop_lost" in terms and f.role == "Tumor_Suppressor":
            apply("OM2", f"stop_lost in {gene}, a tumour suppressor")
        if f.score is not None and f.score >= cfg.scorer_oncogenic:
            apply("OP1", f"genomic encoder: p(oncogenic) = {f.score:.2f} (not counted)")
        elif f.score is not None and f.score <= cfg.scorer_benign:
            apply("SBP1", f"genomic encoder: p(oncogenic) = {f.score:.2f} (not counted)")
        if f.record.kind in SEQUENCE_KINDS and f.af_declared:
            if f.af is None or f.af <= cfg.absent_af:
                apply("OP4", "absent from the annotated population database")
            elif f.af > cfg.benign_af:
                apply("SBVS1", f"population allele frequency {f.af:g}")
            elif f.af > cfg.common_af:
                apply("SBS1", f"population allele frequency {f.af:g}")
        if terms and terms[0] == "synonymous_variant":
            apply("SBP2", "synonymous (no splicing prediction available)")
        if f.amplification and f.role == "Oncogene":
            copies = f", copy number {f.cn}" if f.cn is not None else ""
            apply("XS1", f"amplification of {gene}{copies}, an oncogene in CancerMine")
        if f.fusion and "Oncogene" in (f.role, f.partner_role):
            onco = gene if f.role == "Oncogene" else f.partner
            pair = f"{gene}/{f.partner}" if f.partner else gene
            apply("XS2", f"fusion {pair} involves {onco}, an oncogene in CancerMine")
        return tuple(out)


def _int(value: Any) -> int | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _establishes(e: Evidence) -> bool:
    """Curated evidence that the alteration is a recognised oncogenic event (OS1)."""
    if e.evidence_direction != "Supports" or e.variant_origin == "Common Germline":
        return False
    return e.evidence_type == "Oncogenic" or (
        e.evidence_level in ("A", "B") and e.evidence_type in CLINICAL_TYPES
    )


def _status(hook: object) -> str:
    return "available" if hook is not None else NOT_AVAILABLE


def _af_key(af: float | None, cfg: InterpretConfig) -> Any:
    """The population frequency as the rules tell values apart: exact where a reason quotes
    it (above `common_af`), else only whether it counts as absent (OP4) or not."""
    if af is None or af > cfg.common_af:
        return af
    return "absent" if af <= cfg.absent_af else "rare"


def _knowledge_residues(kb: KnowledgeBase) -> dict[str, frozenset[int]]:
    """gene -> residues that a lookup by protein change can find: the first residue of each
    CIViC evidence and assertion variant name ("V600E", "V600", "E746_A750DEL"), and every 3D
    hotspot residue."""
    found: dict[str, set[int]] = {}
    for row in (*kb.evidence, *kb.assertions):
        if m := RESIDUE_RE.match(row.variant.upper()):
            found.setdefault(row.gene, set()).add(int(m[2]))
    for h in kb.hotspots:
        found.setdefault(h.gene, set()).add(h.position)
    return {g: frozenset(r) for g, r in found.items()}


def _reading_summary(readings: tuple[AnnotationReading, ...], gene: str, variant_class: str) -> str:
    """One line for people: what the texts' wording supports and why, the genes they name,
    the student's tumour-type reading, and how that compares with the rules' class."""
    implied = {r.implies for r in readings} - {C.VUS}
    implies = implied.pop() if len(implied) == 1 else C.VUS
    cues = list(dict.fromkeys(c for r in readings for c in r.cues))
    parts = [f"wording supports {implies}" + (f" ({', '.join(cues)})" if cues else "")]
    if genes := list(dict.fromkeys(g for r in readings for g in r.genes)):
        same = "the annotated gene" if genes == [gene] else f"annotated gene {gene or 'none'}"
        parts.append(f"names {', '.join(genes)} ({same})")
    best = max(readings, key=lambda r: r.cancer_type_p)
    parts.append(f"student reads {best.cancer_type} (p {best.cancer_type_p:.2f})")
    if implies != C.VUS:
        parts.append(
            f"agrees with the class {variant_class}" if implies == variant_class
            else f"the class is {variant_class}: weigh the text in review (it adds no points)"
        )  # fmt: skip
    return "; ".join(parts)


def _names_by_gene(kb: KnowledgeBase) -> dict[str, frozenset[str]]:
    names: dict[str, set[str]] = {}
    for e in kb.evidence:
        names.setdefault(e.gene, set()).add(e.variant.upper())
    return {g: frozenset(n) for g, n in names.items()}


def _established_missense(evidence: Iterable[Evidence]) -> dict[tuple[str, int], frozenset[str]]:
    """(gene, residue) -> alternate amino acids established there ("*": the whole residue)."""
    found: dict[tuple[str, int], set[str]] = {}
    for e in evidence:
        if not _establishes(e):
            continue
        name = e.variant.upper()
        if m := MISSENSE_RE.fullmatch(name):
            found.setdefault((e.gene, int(m[2])), set()).add(m[3])
        elif m := re.fullmatch(r"[A-Z](\d+)", name):
            found.setdefault((e.gene, int(m[1])), set()).add("*")
    return {k: frozenset(v) for k, v in found.items()}


def _evidence_refs(
    hits: list[tuple[Evidence, str]], diseases: frozenset[str] | None
) -> tuple[EvidenceRef, ...]:
    """Cited rows: tumour type's own first, then level, match quality, rating, id."""

    def in_type(e: Evidence) -> bool:
        return diseases is not None and e.disease in diseases

    ordered = sorted(
        hits,
        key=lambda h: (not in_type(h[0]), h[0].evidence_level, MATCH_ORDER.index(h[1]),
                       -h[0].rating, h[0].evidence_id),
    )  # fmt: skip
    return tuple(
        EvidenceRef(
            e.evidence_id,
            e.evidence_level,
            e.evidence_type,
            e.evidence_direction,
            e.significance,
            e.disease,
            e.therapies,
            e.molecular_profile,
            m,
            in_type(e),
            e.citation_id,
        )  # fmt: skip
        for e, m in ordered
    )


@dataclass(frozen=True, slots=True)
class _Verdict:
    points: int
    oncogenicity: str
    tier: str
    tier_reason: str
    variant_class: str
    class_reason: str
    abstention: str


def _verdict(
    criteria: tuple[Criterion, ...],
    refs: tuple[EvidenceRef, ...],
    assertions: tuple[AssertionRef, ...],
    diseases: frozenset[str] | None,
    annotated: bool,
) -> _Verdict:
    """Points -> oncogenicity (abstaining on conflict or absence), tier and class.

    The genomic encoder's OP1/SBP1 are listed with the criteria but never counted: the points
    and the class come from the rules' evidence alone, and the class reason says when the
    encoder's point would have moved the class.
    """
    rules = [c for c in criteria if c.code not in COMPUTATIONAL]
    gain = sum(c.points for c in rules if c.points > 0)
    loss = sum(c.points for c in rules if c.points < 0)
    points = gain + loss
    abstention = ""
    if gain >= C.CONFLICT_POINTS and loss <= -C.CONFLICT_POINTS:
        oncogenicity = C.VUS
        abstention = f"conflicting evidence: +{gain} oncogenic and {loss} benign points"
    else:
        oncogenicity = C.oncogenicity_class(points)
        if not rules:
            abstention = "no oncogenic or benign criterion applies" + (
                "" if annotated else " (the record has no gene/consequence annotation)"
            )
    tier, tier_reason = _tier(oncogenicity, refs, assertions, diseases, abstention)
    variant_class = C.article_class(oncogenicity, tier)
    if variant_class == C.VUS and not abstention:
        abstention = f"{points:+d} points: not enough evidence either way"
    class_reason = f"{variant_class}: oncogenicity {oncogenicity} ({points:+d} points), tier {tier}"
    model = [c for c in criteria if c.code in COMPUTATIONAL]
    if model and not abstention.startswith("conflicting"):
        counted = C.oncogenicity_class(points + sum(c.points for c in model))
        if counted != oncogenicity:
            class_reason += (
                f"; counting the genomic encoder's {model[0].code} would make it {counted}, "
                "but a model score is evidence only and never decides a class"
            )
    return _Verdict(points, oncogenicity, tier, tier_reason, variant_class, class_reason,
                    abstention)  # fmt: skip


@lru_cache(maxsize=1024)  # most variants have no CIViC evidence and repeat a few verdicts
def _verdict_without_evidence(criteria: tuple[Criterion, ...], annotated: bool) -> _Verdict:
    return _verdict(criteria, (), (), None, annotated)


def _tier(
    oncogenicity: str,
    refs: tuple[EvidenceRef, ...],
    assertions: tuple[AssertionRef, ...],
    diseases: frozenset[str] | None,
    abstention: str,
) -> tuple[str, str]:
    """AMP/ASCO/CAP tier and why. Tier I needs level A/B evidence (or a tier I assertion) in
    the tumour type; level A/B elsewhere, or C/D anywhere, is tier II."""
    if oncogenicity in (C.BENIGN, C.LIKELY_BENIGN):
        return "IV", f"{oncogenicity}: no clinical significance expected"
    if abstention.startswith("conflicting"):
        return "III", f"unknown significance: {abstention}"
    clinical = [r for r in refs if r.direction == "Supports" and r.evidence_type in CLINICAL_TYPES]

    def cite(rows: list[EvidenceRef]) -> str:
        shown = ", ".join(f"EID{r.evidence_id} ({r.level}, {r.disease})" for r in rows[:3])
        return shown + (f" and {len(rows) - 3} more" if len(rows) > 3 else "")

    tier_one = [a for a in assertions if a.in_tumor_type and a.amp_category.startswith("Tier I ")]
    strong_here = [r for r in clinical if r.in_tumor_type and r.level in ("A", "B")]
    if tier_one or strong_here:
        why = [f"AID{a.assertion_id} ({a.amp_category}, {a.disease})" for a in tier_one[:2]]
        if strong_here:
            why.append(cite(strong_here))
        return "I", "level A/B evidence in this tumour type: " + "; ".join(why)
    strong = [r for r in clinical if r.level in ("A", "B")]
    moderate = [r for r in clinical if r.level in ("C", "D")]
    if strong or moderate:
        where = "no tumour type given" if diseases is None else "not in this tumour type"
        parts = ([f"level A/B {where}: {cite(strong)}"] if strong else []) + (
            [f"level C/D: {cite(moderate)}"] if moderate else []
        )
        return "II", "; ".join(parts)
    return "III", "no level A-D clinical evidence in CIViC"


def _hotspot_text(h: Hotspot | None) -> str:
    if h is None:
        return ""
    aas = ", ".join(f"{aa}:{n}" for aa, n in h.variant_aas[:3])
    return f"{h.gene} {h.residue} ({h.hotspot_class}): {h.n_mutations} samples, {aas}"


# --------------------------------------------------------------------- a whole file


@dataclass(frozen=True)
class VcfReport:
    """The interpretation of one sample of one VCF."""

    source: str  # the path read
    file_name: str  # as the user named it (uploads are read from a private temporary copy)
    fileformat: str
    compression: str
    build: str
    samples: tuple[str, ...]
    tumor_sample: str
    normal_sample: str
    sample: str  # the sample interpreted
    tumor_type: str  # TCGA code or ""
    panel_mb: float
    variants: tuple[VariantInterpretation, ...]
    warnings: tuple[ReadWarning, ...]
    n_records: int  # alleles read (after decomposition and skipped reference blocks)
    n_not_in_sample: int  # alleles the chosen sample does not carry
    knowledge: Mapping[str, str] = field(default_factory=dict)  # data versions cited
    variant_scorer: str = NOT_AVAILABLE  # the genomic encoder's score: what, or why absent
    annotation_reader: str = NOT_AVAILABLE  # the annotation reader: what, or why absent

    @property
    def tmb_mutations(self) -> int:
        return sum(v.passed and _counts_for_tmb(v) for v in self.variants)

    @property
    def tmb(self) -> float:
        """Non-synonymous coding mutations per megabase of the panel."""
        return self.tmb_mutations / self.panel_mb

    @property
    def actionable(self) -> tuple[VariantInterpretation, ...]:
        """Passed tier I/II variants, tier I first."""
        found = [v for v in self.variants if v.passed and v.tier in ("I", "II")]
        return tuple(sorted(found, key=lambda v: (v.tier, v.severity, v.key)))

    def counts(self) -> dict[str, dict[str, int]]:
        def tally(values: Iterable[str], order: Iterable[str] = ()) -> dict[str, int]:
            c = Counter(values)
            return {k: c[k] for k in (*order, *sorted(set(c) - set(order))) if c[k]}

        vs = self.variants
        return {
            "class": tally((v.variant_class for v in vs), C.CLASSES),
            "oncogenicity": tally((v.oncogenicity for v in vs), C.ONCOGENICITY),
            "tier": tally((v.tier for v in vs), C.TIERS),
            "consequence": tally(v.consequence or "unannotated" for v in vs),
            "kind": tally(v.kind for v in vs),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file_name,
            "fileformat": self.fileformat,
            "compression": self.compression,
            "build": self.build,
            "samples": list(self.samples),
            "tumor_sample": self.tumor_sample,
            "normal_sample": self.normal_sample,
            "sample": self.sample,
            "tumor_type": self.tumor_type,
            "knowledge": dict(self.knowledge),
            "genomic_encoder_score": self.variant_scorer,
            "annotation_reader": self.annotation_reader,
            "summary": {
                "n_records": self.n_records,
                "n_variants": len(self.variants),
                "n_not_in_sample": self.n_not_in_sample,
                "tmb": {
                    "mutations": self.tmb_mutations,
                    "panel_mb": self.panel_mb,
                    "per_mb": round(self.tmb, 2),
                },  # fmt: skip
                "counts": self.counts(),
            },
            "actionable": [
                {
                    "key": v.key,
                    "gene": v.gene,
                    "protein_change": v.protein_change,
                    "tier": v.tier,
                    "therapies": list(v.therapies),
                    "reason": v.tier_reason,
                }
                for v in self.actionable
            ],  # fmt: skip
            "warnings": [{"line": w.line, "message": w.message} for w in self.warnings],
            "variants": [v.to_dict() for v in self.variants],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_tsv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="\t", lineterminator="\n")
        w.writerow(TSV_COLUMNS)
        for v in self.variants:
            w.writerow(_clean(x) for x in _tsv_row(v))
        return buf.getvalue()

    def write_annotated_vcf(self, path: Path) -> Path:
        """The VCF read (text or gzipped; it must still be at `source`) with CMKD_CLASS,
        CMKD_ONCOGENICITY, CMKD_TIER and CMKD_EVIDENCE added to INFO (Number=A, "." for alleles
        not interpreted; earlier CMKD_* fields replaced). Records are matched by line number.
        Written atomically; gzipped when `path` ends .gz."""
        path, src = Path(path), Path(self.source)
        by_line: dict[int, dict[int, VariantInterpretation]] = {}
        for v in self.variants:
            by_line.setdefault(v.line, {})[v.allele_index] = v
        with atomic_path(path) as tmp, tmp.open("wb") as raw:
            out: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="wb") if path.suffix == ".gz" \
                else raw  # fmt: skip
            with _TextLines(src) as lines:
                for n, line in enumerate(lines, 1):
                    out.write(_annotate_line(line, by_line.get(n), self).encode("utf-8"))
            if out is not raw:
                out.close()
        return path


TSV_COLUMNS: tuple[str, ...] = (
    "key", "chrom", "pos", "ref", "alt", "kind", "filter", "genotype", "depth", "vaf", "gene",
    "protein_change", "consequence", "fusion_partner", "population_af", "class",
    "oncogenicity", "points", "criteria", "tier", "therapies", "civic_evidence", "hotspot",
    "gene_role", "reason",
)  # fmt: skip


def _tsv_row(v: VariantInterpretation) -> tuple[Any, ...]:
    return (
        v.key, v.chrom, v.pos, v.ref, v.alt, v.kind, ";".join(v.filters) or ".", v.genotype,
        "" if v.depth is None else v.depth, "" if v.vaf is None else f"{v.vaf:.4f}", v.gene,
        v.protein_change, v.consequence, v.fusion_partner,
        "" if v.population_af is None else f"{v.population_af:g}", v.variant_class,
        v.oncogenicity, v.points, v.criteria_codes, v.tier, "|".join(v.therapies),
        "|".join(f"EID{e.evidence_id}" for e in v.evidence), v.hotspot, v.gene_role,
        v.abstention or v.tier_reason,
    )  # fmt: skip


def _clean(value: Any) -> str:
    """A TSV cell: no tabs or line breaks inside."""
    return re.sub(r"[\t\r\n]+", " ", str(value))


def _counts_for_tmb(v: VariantInterpretation) -> bool:
    """A non-synonymous coding small variant that is not a common (likely germline) allele."""
    likely_germline = any(c.code in ("SBVS1", "SBS1") for c in v.criteria)
    return v.kind in SEQUENCE_KINDS and v.consequence in C.TMB_TERMS and not likely_germline


class _TextLines:
    """Lines of a text or gzip/BGZF VCF, undecodable bytes kept as they are."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            magic = f.read(2)
        self._f: IO[str]
        if magic == b"\x1f\x8b":
            self._f = gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape",
                                newline="")  # fmt: skip
        else:
            self._f = open(path, encoding="utf-8", errors="surrogateescape", newline="")
        try:
            head = self._f.read(3)
        except (OSError, EOFError) as e:
            self._f.close()
            raise InputError(f"{path}: cannot re-read for the annotated VCF: {e}") from e
        if head == "BCF":
            self._f.close()
            raise InputError(f"{path}: an annotated VCF needs a text VCF input, not BCF "
                             "(convert with `bcftools view -Ov`)")  # fmt: skip
        self._head = head

    def __enter__(self) -> Iterator[str]:
        return self._lines()

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def _lines(self) -> Iterator[str]:
        first = self._f.readline()
        yield self._head + first
        yield from self._f


def _annotate_line(
    line: str, alleles: Mapping[int, VariantInterpretation] | None, report: VcfReport
) -> str:
    if line.startswith("##"):
        return "" if line.startswith("##INFO=<ID=CMKD_") else line
    if line.startswith("#"):
        knowledge = ",".join(f"{k}={v}" for k, v in report.knowledge.items())
        extra = [f'##INFO=<ID={key},Number=A,Type=String,Description="{desc}">\n'
                 for key, desc in ANNOTATED_INFO]  # fmt: skip
        extra.append(f"##cmkd_interpretation=<tumor_type={report.tumor_type or '.'},"
                     f"sample={report.sample or '.'},{knowledge}>\n")  # fmt: skip
        return "".join(extra) + line
    body = line.rstrip("\r\n")
    cols = body.split("\t")
    if len(cols) < 8:
        return line
    items = [i for i in cols[7].split(";") if i and i != "." and not i.startswith("CMKD_")]
    if alleles:
        n_alts = len(cols[4].split(","))
        picked = [alleles.get(i) for i in range(1, n_alts + 1)]

        def field_values(get: Callable[[VariantInterpretation], str]) -> str:
            return ",".join("." if v is None else get(v) for v in picked)

        items += [
            "CMKD_CLASS=" + field_values(lambda v: v.variant_class),
            "CMKD_ONCOGENICITY=" + field_values(lambda v: v.oncogenicity.replace(" ", "_")),
            "CMKD_TIER=" + field_values(lambda v: v.tier),
            "CMKD_EVIDENCE=" + field_values(_evidence_token),
        ]
    cols[7] = ";".join(items) or "."
    return "\t".join(cols) + line[len(body) :]


def _evidence_token(v: VariantInterpretation) -> str:
    parts = [c.code for c in v.criteria] + [f"EID{e.evidence_id}" for e in v.evidence[:10]]
    return "&".join(parts) or "none"


def _fusion_partners(records: Iterable[VariantRecord]) -> dict[str, str]:
    """Record key -> gene of its mate breakend (by MATEID, else by the ALT's mate locus)."""
    records = list(records)

    def gene(r: VariantRecord) -> str:
        ann = primary_annotation(r.annotations)
        return ann.gene.strip().upper() if ann else ""

    by_id = {r.id: gene(r) for r in records if r.id != "."}
    by_locus = {(r.chrom, r.pos): gene(r) for r in records}
    partners = {}
    for r in records:
        mate_ids = r.info.get("MATEID")
        mate_ids = [mate_ids] if isinstance(mate_ids, str) else list(mate_ids or ())
        mate = next((by_id[m] for m in mate_ids if m in by_id), "")
        if not mate and (m := BREAKEND_MATE_RE.search(r.alt)):
            mate = by_locus.get((m[1], int(m[2])), "")
        if mate and mate != gene(r):
            partners[r.key] = mate
    return partners


def interpret_file(
    path: Path | str,
    tumor_type: str | None = None,
    sample: str | None = None,
    panel_mb: float = DEFAULT_PANEL_MB,
    progress: Progress | None = None,
    *,
    interpreter: Interpreter | None = None,
    file_name: str | None = None,
    total_lines: int = 0,
    max_uncompressed_bytes: int | None = None,
) -> VcfReport:
    """Read and interpret every allele the sample carries, streaming.

    Results are compact records (no pysam objects). Breakends wait until the end of the file,
    when their mates are known, so fusions are interpreted with both genes. Raises VcfError
    for an unreadable file (never a partial report), InputError for a bad tumour type or
    panel size.
    """
    if not panel_mb > 0:
        raise InputError(f"panel size must be positive megabases, got {panel_mb}")
    interp = interpreter or Interpreter(KnowledgeBase.load())
    interp.check_tumor_type(tumor_type)
    every = interp.config.progress_every
    results: list[VariantInterpretation | None] = []
    breakends: list[tuple[int, VariantRecord]] = []
    batch: list[VariantRecord] = []
    n_records = n_absent = 0
    with open_vcf(Path(path), sample, max_uncompressed_bytes=max_uncompressed_bytes) as reader:
        header = reader.header

        def flush() -> None:
            results.extend(interp.interpret_batch(batch, tumor_type, header.build))
            batch.clear()

        for record in reader.records():
            n_records += 1
            if progress and n_records % every == 0:
                progress(n_records, record.line, total_lines)
            if not _carries(record.genotype, record.allele_index):
                n_absent += 1
            elif record.kind == "breakend":
                flush()  # its place in the results comes after the records before it
                breakends.append((len(results), record))
                results.append(None)
            else:
                batch.append(record)
                if len(batch) >= BATCH:
                    flush()
        flush()
        warnings = tuple(reader.warnings)
    partners = _fusion_partners(r for _, r in breakends)
    mates = [r for _, r in breakends]
    done = interp.interpret_batch(
        mates, tumor_type, header.build, [partners.get(r.key, "") for r in mates]
    )
    for (i, _), v in zip(breakends, done, strict=True):
        results[i] = v
    if progress:
        progress(n_records, total_lines, total_lines)
    versions = interp.kb.manifest.get("data_versions", {})
    return VcfReport(
        source=str(path),
        file_name=file_name or Path(path).name,
        fileformat=header.fileformat,
        compression=header.compression,
        build=header.build,
        samples=header.samples,
        tumor_sample=header.tumor_sample,
        normal_sample=header.normal_sample,
        sample=sample or header.tumor_sample or (header.samples[0] if header.samples else ""),
        tumor_type=(tumor_type or "").upper(),
        panel_mb=panel_mb,
        variants=tuple(r for r in results if r is not None),
        warnings=warnings,
        n_records=n_records,
        n_not_in_sample=n_absent,
        knowledge={k: str(v) for k, v in versions.items()},
        variant_scorer=interp.scorer_status,
        annotation_reader=interp.reader_status,
    )


# ------------------------------------------------------------------ measured accuracy


def evaluate_cohort(
    cohort_dir: Path | str, split: str = "test", interpreter: Interpreter | None = None
) -> dict[str, Any]:
    """Three-class F1 (per class and macro) of the interpretation of every variant of the
    cohort's `split` cases, against the synthetic truth (`Variant.role`), each case read
    from its VCF with its cancer type as the tumour type."""
    from core.data.cohort_io import load_cases

    cohort_dir = Path(cohort_dir)
    interp = interpreter or Interpreter(KnowledgeBase.load())
    confusion: Counter[tuple[str, str]] = Counter()  # (truth, predicted)
    misses: Counter[tuple[str, str, str]] = Counter()  # (truth, predicted, consequence)
    n_cases = unmatched = 0
    for case in load_cases(cohort_dir):
        if case.split != split or not case.vcf_path:
            continue
        n_cases += 1
        report = interpret_file(cohort_dir / case.vcf_path, case.cancer_type, interpreter=interp)
        predicted = {(v.chrom, v.pos, v.ref, v.alt): v for v in report.variants}
        for truth in case.variants:
            v = predicted.get((truth.chrom, truth.pos, truth.ref, truth.alt))
            if v is None:
                unmatched += 1
                continue
            expected = C.ROLE_TO_CLASS[truth.role]
            confusion[expected, v.variant_class] += 1
            if expected != v.variant_class:
                misses[expected, v.variant_class, truth.consequence] += 1
    return {
        "split": split,
        "n_cases": n_cases,
        "n_variants": sum(confusion.values()),
        "unmatched": unmatched,
        **f1_scores(confusion),
        "confusion": {t: {p: confusion[t, p] for p in C.CLASSES} for t in C.CLASSES},
        "errors": [
            {"truth": t, "predicted": p, "consequence": c, "n": n}
            for (t, p, c), n in misses.most_common(12)
        ],
    }


def f1_scores(confusion: Mapping[tuple[str, str], int]) -> dict[str, Any]:
    """Per-class precision/recall/F1/support and macro F1 from (truth, predicted) counts."""
    per_class = {}
    for c in C.CLASSES:
        tp = confusion.get((c, c), 0)
        predicted = sum(n for (_, p), n in confusion.items() if p == c)
        support = sum(n for (t, _), n in confusion.items() if t == c)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = {"precision": round(precision, 4), "recall": round(recall, 4),
                        "f1": round(f1, 4), "support": support}  # fmt: skip
    macro = sum(m["f1"] for m in per_class.values()) / len(per_class)
    return {"per_class": per_class, "macro_f1": round(macro, 4)}


if __name__ == "__main__":  # python -m core.genomics.interpret COHORT_DIR [SPLIT]
    import sys

    print(json.dumps(evaluate_cohort(*sys.argv[1:3]), indent=2))
