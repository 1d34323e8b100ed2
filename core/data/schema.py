"""Case schema shared by the generator, the importer, training and the workbench.

Every record is a frozen dataclass so that a case read from disk cannot be mutated by
accident; `to_dict`/`from_dict` give the JSON-lines form stored in `cases.jsonl`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# TCGA study codes; SARC is deliberately rare in the synthetic cohort.
CANCER_TYPES: tuple[str, ...] = (
    "BRCA", "LUAD", "LUSC", "COAD", "PAAD", "SKCM", "GBM", "PRAD",
    "THCA", "KIRC", "OV", "CESC", "HNSC", "LIHC", "SARC",
)  # fmt: skip
RARE_CANCER_TYPE = "SARC"

TEACHER_LANGUAGE = "en"
STUDENT_LANGUAGES: tuple[str, ...] = ("pt", "es", "sw", "hi", "de", "fr")
LANGUAGES: tuple[str, ...] = (TEACHER_LANGUAGE, *STUDENT_LANGUAGES)

MODALITIES: tuple[str, ...] = ("slide", "genomic", "note")
NOTE_KINDS: tuple[str, ...] = ("pathology_report", "clinic_note", "tumor_board")
SPLITS: tuple[str, ...] = ("train", "val", "test")
STAGES: tuple[str, ...] = ("I", "II", "III", "IV")

# Clinically standard subtypes per type. Keys are stable ids used in lexicon concept ids
# (SUBTYPE:<id>) and in notes; see core/data/oncology.py for their frequencies.
SUBTYPES: dict[str, tuple[str, ...]] = {
    "BRCA": ("BRCA_LUMA", "BRCA_LUMB", "BRCA_HER2", "BRCA_TNBC"),
    "LUAD": ("LUAD_EGFR", "LUAD_KRAS", "LUAD_ALK", "LUAD_OTHER"),
    "LUSC": ("LUSC_KERAT", "LUSC_NONKERAT", "LUSC_BASALOID"),
    "COAD": ("COAD_MSIH", "COAD_MSS"),
    "PAAD": ("PAAD_CLASSICAL", "PAAD_BASAL"),
    "SKCM": ("SKCM_BRAF", "SKCM_NRAS", "SKCM_NF1", "SKCM_TWT"),
    "GBM": ("GBM_MGMT_METH", "GBM_MGMT_UNMETH"),
    "PRAD": ("PRAD_ERG", "PRAD_SPOP", "PRAD_OTHER"),
    "THCA": ("THCA_CLASSIC", "THCA_FOLLICULAR"),
    "KIRC": ("KIRC_CCA", "KIRC_CCB"),
    "OV": ("OV_HGSOC_HRD", "OV_HGSOC_HRP"),
    "CESC": ("CESC_SCC", "CESC_ADENO"),
    "HNSC": ("HNSC_HPVPOS", "HNSC_HPVNEG"),
    "LIHC": ("LIHC_HBV", "LIHC_HCV", "LIHC_NONVIRAL"),
    "SARC": ("SARC_LMS", "SARC_DDLPS", "SARC_UPS"),
}

# Genes that may carry driver events in the cohort. Every one has a GENE:<symbol> concept
# in the lexicon, so notes can name them and the entity matcher can find them.
DRIVER_GENES: tuple[str, ...] = (
    "TP53", "PIK3CA", "ERBB2", "GATA3", "CDH1", "PTEN", "ESR1", "BRCA1", "BRCA2", "KRAS",
    "EGFR", "ALK", "BRAF", "STK11", "KEAP1", "MET", "ROS1", "RET", "NRAS", "NF1", "CDKN2A",
    "APC", "SMAD4", "TERT", "IDH1", "ATRX", "SPOP", "FOXA1", "ERG", "HRAS", "VHL", "PBRM1",
    "SETD2", "BAP1", "CTNNB1", "ARID1A", "AXIN1", "NOTCH1", "FBXW7", "NFE2L2", "PIK3R1",
    "MDM2", "CDK4", "RB1", "KMT2D", "ATM", "MLH1", "KIT", "SOX2", "FGFR3",
)  # fmt: skip

# Biomarkers reported in notes (BIOMARKER:<id> in the lexicon) and their allowed statuses.
BIOMARKERS: tuple[str, ...] = ("ER", "PR", "HER2", "PDL1", "MSI", "MGMT", "HPV", "KI67", "TMB")
BIOMARKER_STATUSES: tuple[str, ...] = (
    "positive", "negative", "high", "low", "stable", "methylated", "unmethylated",
)  # fmt: skip

VARIANT_ROLES: tuple[str, ...] = ("driver", "passenger", "benign")

# What a slide shows beyond its subtype and grade that a pathology report states: the
# tumour-infiltrating lymphocytes and the necrosis, each as one level (lexicon FINDING ids).
TIL_LEVELS: tuple[str, ...] = ("FINDING:TIL_ABSENT", "FINDING:TIL_SPARSE", "FINDING:TIL_BRISK")
NECROSIS_LEVELS: tuple[str, ...] = (
    "FINDING:NECROSIS_ABSENT", "FINDING:NECROSIS_FOCAL", "FINDING:NECROSIS_EXTENSIVE",
)  # fmt: skip


def is_histology(histology: tuple[str, ...]) -> bool:
    """Whether `histology` is () or (one of TIL_LEVELS, one of NECROSIS_LEVELS)."""
    return not histology or (
        len(histology) == 2 and histology[0] in TIL_LEVELS and histology[1] in NECROSIS_LEVELS
    )


@dataclass(frozen=True)
class Variant:
    """One somatic variant (or benign polymorphism) of a case, as written to its VCF."""

    chrom: str  # contig of the synthetic reference, e.g. "chr7"
    pos: int  # 1-based position
    ref: str
    alt: str  # bases, or a symbolic allele such as "<AMP>" or "<FUSION>"
    gene: str  # HUGO symbol
    consequence: str  # Sequence Ontology term, e.g. "missense_variant"
    hgvsp: str  # protein change, e.g. "p.V600E"; "" when not protein-coding
    role: str  # one of VARIANT_ROLES
    vaf: float  # variant allele fraction in the tumour sample
    depth: int  # read depth
    annotation: str = ""  # optional free-text annotation
    annotation_lang: str = ""  # ISO 639-1 code of `annotation` ("de", "zh", ...)


@dataclass(frozen=True)
class Note:
    """One clinical note of a case in one language."""

    lang: str  # one of LANGUAGES
    kind: str  # one of NOTE_KINDS
    template_id: str  # e.g. "pt/clinic_note/07"; test templates never appear in train notes
    text: str


@dataclass(frozen=True)
class Case:
    """One patient case with every modality it has.

    `cancer_type` is the truth; `label` is what the training data records, which differs for
    a small share of training cases (label noise). Paths are relative to the cohort folder.
    """

    case_id: str
    cancer_type: str  # one of CANCER_TYPES
    label: str  # recorded label, possibly noisy; "" when unknown
    subtype: str  # one of SUBTYPES[cancer_type], or "" for imported cases without one
    stage: str  # one of STAGES, or ""
    grade: int  # histological grade 1-3, 0 when unknown
    age: int
    sex: str  # "F" or "M"
    split: str  # one of SPLITS
    drivers: tuple[str, ...] = ()  # genes with a driver event, sorted
    biomarkers: tuple[tuple[str, str], ...] = ()  # (BIOMARKER id, status)
    variants: tuple[Variant, ...] = ()
    notes: tuple[Note, ...] = ()
    tile_paths: tuple[str, ...] = ()
    # (TIL level, necrosis level) the tiles were rendered with; () without tiles or before
    # cohorts recorded it.
    histology: tuple[str, ...] = ()
    slide_path: str = ""
    vcf_path: str = ""
    source: str = "synthetic"  # "synthetic" or "imported"
    extra: dict[str, Any] = field(default_factory=dict)  # free metadata (imports)

    def note(self, lang: str, kind: str) -> Note | None:
        """The case's note in `lang` of `kind`, or None when it has none."""
        return next((n for n in self.notes if n.lang == lang and n.kind == kind), None)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities this case actually has, in MODALITIES order."""
        present = {
            "slide": bool(self.tile_paths or self.slide_path),
            "genomic": bool(self.vcf_path or self.variants),
            "note": bool(self.notes),
        }
        return tuple(m for m in MODALITIES if present[m])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Case:
        d = dict(d)
        d["drivers"] = tuple(d.get("drivers", ()))
        d["biomarkers"] = tuple(tuple(b) for b in d.get("biomarkers", ()))
        d["variants"] = tuple(Variant(**v) for v in d.get("variants", ()))
        d["notes"] = tuple(Note(**n) for n in d.get("notes", ()))
        d["tile_paths"] = tuple(d.get("tile_paths", ()))
        d["histology"] = tuple(d.get("histology", ()))
        return cls(**d)
