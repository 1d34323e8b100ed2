"""Per-cancer-type clinical facts and the sampler of synthetic clinical profiles.

The tables below are data, written down from published cohorts; frequencies are rounded and
are meant to make the synthetic cohort realistic, not to be quoted. Unless a table says
otherwise, driver frequencies are those of the TCGA PanCancer Atlas cohorts as shown by
cBioPortal (Hoadley et al., Cell 2018; Bailey et al., Cell 2018), hotspot choices agree with
CIViC (01-Aug-2024) or the 3D hotspots of Gao et al., Genome Med 2017, and truncating
positions of tumour suppressors without a recurrent hotspot are representative examples.

A profile is drawn from one `numpy.random.Generator.random(n)` call whose length depends
only on the cancer type, so it is fast and a pure function of the generator state.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from types import MappingProxyType

import numpy as np

from core.data.schema import (
    BIOMARKERS,
    CANCER_TYPES,
    DRIVER_GENES,
    STAGES,
    SUBTYPES,
)
from core.errors import ConfigError

DRIVER_KINDS: tuple[str, ...] = (
    "MISSENSE", "NONSENSE", "FRAMESHIFT", "INFRAME_DELETION", "SPLICE", "AMPLIFICATION",
    "FUSION", "DELETION", "PROMOTER",
)  # fmt: skip
TMB_CLASSES: tuple[str, ...] = ("high", "low")

# Genes whose driver events activate them; every other driver gene is a tumour suppressor
# (roles as in the Cancer Gene Census and CancerMine, Lever et al., Nat Methods 2019).
ONCOGENES: frozenset[str] = frozenset({
    "PIK3CA", "ERBB2", "ESR1", "KRAS", "EGFR", "ALK", "BRAF", "MET", "ROS1", "RET", "NRAS",
    "TERT", "IDH1", "FOXA1", "ERG", "HRAS", "CTNNB1", "NFE2L2", "MDM2", "CDK4", "KIT",
    "SOX2", "FGFR3",
})  # fmt: skip


@dataclass(frozen=True)
class DriverEvent:
    """One driver alteration of a tumour.

    `protein_change` is short HGVS without "p." ("V600E", "R213*", "R209fs",
    "E746_A750del", "X1010_splice" as cBioPortal names a splice site after residue 1010),
    the conventional name of a promoter hotspot ("C228T"), or "" for copy-number events and
    fusions. `partner` is the 5' gene of a fusion; the driver gene gives the 3' part.
    """

    gene: str
    kind: str  # one of DRIVER_KINDS
    protein_change: str = ""
    partner: str = ""

    @property
    def residue(self) -> int:
        """First protein residue the change names; 0 for events without one."""
        if self.kind in ("AMPLIFICATION", "DELETION", "FUSION", "PROMOTER"):
            return 0
        return int(re.match(r"[A-Z*](\d+)", self.protein_change).group(1))

    @property
    def label(self) -> str:
        """English display label, e.g. "BRAF V600E", "EML4-ALK fusion"."""
        match self.kind:
            case "AMPLIFICATION":
                return f"{self.gene} amplification"
            case "DELETION":
                return f"{self.gene} deletion"
            case "FUSION":
                return f"{self.partner}-{self.gene} fusion"
            case "PROMOTER":
                return f"{self.gene} promoter {self.protein_change}"
        return f"{self.gene} {self.protein_change}"


@dataclass(frozen=True)
class ClinicalProfile:
    """The clinical truth of one synthetic case, before variants and notes are drawn."""

    cancer_type: str
    subtype: str
    stage: str  # one of STAGES, or "" where the type is not TNM-staged (GBM)
    grade: int  # 1-3, or 0 where the three-tier grade does not apply
    age: int
    sex: str  # "F" or "M"
    drivers: tuple[DriverEvent, ...]
    biomarkers: tuple[tuple[str, str], ...]  # (BIOMARKER id, status), in BIOMARKERS order
    tmb_class: str  # one of TMB_CLASSES

    @property
    def driver_genes(self) -> tuple[str, ...]:
        return tuple(sorted({d.gene for d in self.drivers}))


# ------------------------------------------------------------------------- event syntax

# Table shorthand: "V600E" missense, "R213*" nonsense, "R209fs" frameshift, "E746_A750del"
# in-frame deletion, "X1010_splice" splice site, "AMP" amplification, "HOMDEL" homozygous
# deletion, "fusion:EML4" fusion with a 5' partner, "promoter:C228T"; "+" joins co-occurring
# events of one gene (EGFR L858R with T790M).
_SHORTHAND: tuple[tuple[str, str], ...] = (
    (r"[A-Z]\d+[A-Z]", "MISSENSE"),
    (r"[A-Z]\d+\*", "NONSENSE"),
    (r"[A-Z]\d+fs", "FRAMESHIFT"),
    (r"[A-Z]\d+_[A-Z]\d+del", "INFRAME_DELETION"),
    (r"X\d+_splice", "SPLICE"),
)


def parse_event(gene: str, spec: str) -> DriverEvent:
    """The DriverEvent a table shorthand stands for; ConfigError for unknown syntax."""
    if spec == "AMP":
        return DriverEvent(gene, "AMPLIFICATION")
    if spec == "HOMDEL":
        return DriverEvent(gene, "DELETION")
    if spec.startswith("fusion:"):
        return DriverEvent(gene, "FUSION", partner=spec.removeprefix("fusion:"))
    if spec.startswith("promoter:"):
        return DriverEvent(gene, "PROMOTER", spec.removeprefix("promoter:"))
    for pattern, kind in _SHORTHAND:
        if re.fullmatch(pattern, spec):
            return DriverEvent(gene, kind, spec)
    raise ConfigError(f"unknown driver event shorthand {gene} {spec!r}")


# ------------------------------------------------------------------------ driver tables

# A value per subtype: a float for all subtypes, or a mapping where absent subtypes get 0.
PerSubtype = float | Mapping[str, float]


@dataclass(frozen=True)
class _Gene:
    gene: str
    freq: PerSubtype  # share of cases of the (sub)type with an event in this gene
    events: Mapping[str, float]  # event shorthand -> relative weight


def _g(gene: str, freq: PerSubtype, events: Mapping[str, float]) -> tuple[_Gene, ...]:
    """A gene that is altered independently of the others."""
    return (_Gene(gene, freq, events),)


def _one_of(*genes: tuple[_Gene, ...]) -> tuple[_Gene, ...]:
    """Genes altered mutually exclusively (e.g. MAPK drivers); their freqs add up."""
    return tuple(g for (g,) in genes)


# Event mixes shared by several types (TCGA PanCancer Atlas via cBioPortal).
_TP53 = {
    "R175H": 6, "R248Q": 5, "R273H": 5, "R248W": 4, "R273C": 4, "R282W": 3, "G245S": 3,
    "Y220C": 3, "H179R": 2, "C242Y": 1, "M237I": 1, "V157F": 1,
    "R213*": 4, "R196*": 3, "R342*": 3, "R306*": 2, "R209fs": 3, "P152fs": 2,
}  # fmt: skip
_PIK3CA = {
    "H1047R": 40, "E545K": 22, "E542K": 14, "H1047L": 5, "N345K": 5, "Q546K": 4, "R88Q": 4,
    "C420R": 3,
}  # fmt: skip
_PIK3CA_HELICAL = {"E545K": 50, "E542K": 35, "H1047R": 15}  # APOBEC-driven (CESC, HNSC)
_PTEN = {
    "R130Q": 15, "R130G": 10, "R130*": 15, "R233*": 12, "V317fs": 8, "C136R": 5, "R173C": 5,
    "HOMDEL": 30,
}  # fmt: skip
_CDKN2A = {"HOMDEL": 60, "R80*": 15, "W110*": 13, "R58*": 12}
_SMAD4 = {"HOMDEL": 35, "R361H": 25, "R361C": 20, "Q311*": 20}
_NF1 = {"R440*": 20, "R1306*": 20, "R1362*": 15, "R2450*": 15, "HOMDEL": 30}
_RB1 = {"HOMDEL": 45, "R320*": 15, "R455*": 10, "R579*": 10, "M695fs": 15, "R451C": 5}
_ARID1A = {"Q456*": 30, "P1175fs": 30, "D1850fs": 40}
_ATM = {"S2289*": 25, "K293*": 20, "E2187*": 20, "K468fs": 20, "R3008C": 15}
_BRCA1 = {"E23fs": 30, "Q1756fs": 30, "Q1467*": 20, "P968fs": 20}
_BRCA2 = {"S1982fs": 65, "HOMDEL": 35}
_KMT2D = {"R1252*": 35, "Q4092*": 35, "P2354fs": 30}
_NOTCH1 = {"A465T": 15, "E455K": 15, "V2444fs": 30, "S2275fs": 25, "P2514fs": 15}
_FBXW7 = {"R465C": 40, "R465H": 30, "R505G": 20, "R479Q": 10}
_NFE2L2 = {"E79K": 30, "E79Q": 30, "E82D": 25, "G81S": 15}
_KEAP1 = {"V155F": 25, "R169C": 20, "Y525C": 20, "Q193*": 20, "R320*": 15}
_STK11 = {"Q37*": 30, "P281fs": 25, "D194E": 15, "HOMDEL": 30}
_TERT = {"promoter:C228T": 75, "promoter:C250T": 25}
_BRAF_V600 = {"V600E": 82, "V600K": 14, "V600D": 4}
_NRAS = {"Q61R": 45, "Q61K": 35, "Q61L": 10, "Q61H": 3, "G12D": 4, "G13R": 3}
_HRAS = {"Q61R": 40, "Q61K": 20, "G13R": 20, "G12S": 10, "G13D": 10}
_ATRX = {"R1426*": 40, "K1936fs": 30, "HOMDEL": 30}


@dataclass(frozen=True)
class _Marker:
    """A biomarker with two statuses; `p_first` is the chance of `first`."""

    name: str
    p_first: PerSubtype
    first: str
    second: str


@dataclass(frozen=True)
class _TypeSpec:
    subtypes: Mapping[str, float]
    drivers: tuple[tuple[_Gene, ...], ...]  # groups; genes in one group exclude each other
    stage: tuple[float, float, float, float] | None  # I-IV; None: not TNM-staged
    grade: tuple[float, float, float] | Mapping[str, tuple[float, float, float]] | None
    age: tuple[float, float, int, int]  # mean, sd, min, max (years)
    female: PerSubtype
    tmb_high: PerSubtype  # share with >= 10 mutations/Mb (Chalmers et al., Genome Med 2017)
    markers: tuple[_Marker, ...] = ()


def _pdl1(p_high: PerSubtype) -> _Marker:
    return _Marker("PDL1", p_high, "high", "low")


# Stage, grade, age and sex follow the TCGA clinical tables of each cohort (Liu et al., Cell
# 2018, TCGA-CDR), shifted towards advanced stages where genomic testing mostly happens
# (LUAD, PAAD: SEER 2021 stage at diagnosis).
_SPECS: Mapping[str, _TypeSpec] = MappingProxyType({
    # TCGA Network, Nature 2012 (BRCA); PAM50 shares adjusted to clinical IHC subtypes.
    "BRCA": _TypeSpec(
        subtypes={"BRCA_LUMA": 0.47, "BRCA_LUMB": 0.20, "BRCA_HER2": 0.15, "BRCA_TNBC": 0.18},
        drivers=(
            _g("PIK3CA", {"BRCA_LUMA": 0.45, "BRCA_LUMB": 0.32, "BRCA_HER2": 0.35,
                          "BRCA_TNBC": 0.09}, _PIK3CA),
            _g("TP53", {"BRCA_LUMA": 0.12, "BRCA_LUMB": 0.29, "BRCA_HER2": 0.72,
                        "BRCA_TNBC": 0.80}, _TP53),
            _g("ERBB2", {"BRCA_HER2": 1.0}, {"AMP": 1}),
            _g("GATA3", {"BRCA_LUMA": 0.15, "BRCA_LUMB": 0.12, "BRCA_HER2": 0.06,
                         "BRCA_TNBC": 0.02}, {"D336fs": 70, "P409fs": 30}),
            _g("CDH1", {"BRCA_LUMA": 0.15, "BRCA_LUMB": 0.05, "BRCA_HER2": 0.03,
                        "BRCA_TNBC": 0.01}, {"R335*": 40, "Q641*": 30, "P127fs": 30}),
            _g("PTEN", 0.06, _PTEN),
            _g("ESR1", {"BRCA_LUMA": 0.02, "BRCA_LUMB": 0.03},
               {"D538G": 45, "Y537S": 35, "Y537N": 20}),
            _g("PIK3R1", 0.03, {"N564D": 60, "K567E": 40}),
            _g("FOXA1", {"BRCA_LUMA": 0.03, "BRCA_LUMB": 0.03},
               {"I176M": 40, "D226N": 35, "H247Y": 25}),
            _one_of(
                _g("BRCA1", {"BRCA_TNBC": 0.12, "BRCA_LUMA": 0.01, "BRCA_LUMB": 0.01,
                             "BRCA_HER2": 0.01}, _BRCA1),
                _g("BRCA2", {"BRCA_TNBC": 0.04, "BRCA_LUMA": 0.03, "BRCA_LUMB": 0.03,
                             "BRCA_HER2": 0.02}, _BRCA2),
            ),
            _g("RB1", {"BRCA_TNBC": 0.06}, _RB1),
        ),
        stage=(0.18, 0.57, 0.22, 0.03),
        grade={"BRCA_LUMA": (0.30, 0.55, 0.15), "BRCA_LUMB": (0.05, 0.45, 0.50),
               "BRCA_HER2": (0.02, 0.30, 0.68), "BRCA_TNBC": (0.01, 0.14, 0.85)},
        age=(58, 13, 26, 90),
        female=0.99,
        tmb_high={"BRCA_LUMA": 0.03, "BRCA_LUMB": 0.05, "BRCA_HER2": 0.05, "BRCA_TNBC": 0.10},
        markers=(
            _Marker("ER", {"BRCA_LUMA": 0.99, "BRCA_LUMB": 0.95, "BRCA_HER2": 0.45},
                    "positive", "negative"),
            _Marker("PR", {"BRCA_LUMA": 0.90, "BRCA_LUMB": 0.65, "BRCA_HER2": 0.30},
                    "positive", "negative"),
            _Marker("HER2", {"BRCA_HER2": 1.0}, "positive", "negative"),
            _Marker("KI67", {"BRCA_LUMA": 0.10, "BRCA_LUMB": 0.90, "BRCA_HER2": 0.85,
                             "BRCA_TNBC": 0.90}, "high", "low"),
        ),
    ),
    # TCGA Network, Nature 2014 (LUAD); Campbell et al., Nat Genet 2016. EGFR is ~15% in
    # Western cohorts and ~50% in East Asian ones (Shi et al., J Thorac Oncol 2014).
    "LUAD": _TypeSpec(
        subtypes={"LUAD_EGFR": 0.15, "LUAD_KRAS": 0.30, "LUAD_ALK": 0.04, "LUAD_OTHER": 0.51},
        drivers=(
            _g("EGFR", {"LUAD_EGFR": 1.0}, {
                "E746_A750del": 45, "L858R": 40, "G719S": 4, "G719A": 2, "L861Q": 3,
                "L858R+T790M": 4, "E746_A750del+T790M": 2}),
            _g("KRAS", {"LUAD_KRAS": 1.0}, {
                "G12C": 40, "G12V": 21, "G12D": 15, "G12A": 8, "G13C": 4, "G13D": 3,
                "Q61H": 5, "Q61L": 2, "G12R": 2}),
            _g("ALK", {"LUAD_ALK": 1.0}, {"fusion:EML4": 1}),
            _one_of(
                _g("MET", {"LUAD_OTHER": 0.08}, {"X1010_splice": 80, "AMP": 20}),
                _g("BRAF", {"LUAD_OTHER": 0.08}, {"V600E": 55, "G469A": 30, "K601E": 15}),
                _g("ROS1", {"LUAD_OTHER": 0.03}, {"fusion:CD74": 1}),
                _g("RET", {"LUAD_OTHER": 0.03}, {"fusion:KIF5B": 1}),
                _g("ERBB2", {"LUAD_OTHER": 0.04}, {"AMP": 30, "S310F": 30, "L755S": 20,
                                                   "V777L": 20}),
            ),
            _g("TP53", {"LUAD_EGFR": 0.50, "LUAD_KRAS": 0.40, "LUAD_ALK": 0.30,
                        "LUAD_OTHER": 0.50}, _TP53),
            _g("STK11", {"LUAD_KRAS": 0.30, "LUAD_EGFR": 0.03, "LUAD_ALK": 0.02,
                         "LUAD_OTHER": 0.15}, _STK11),
            _g("KEAP1", {"LUAD_KRAS": 0.25, "LUAD_EGFR": 0.03, "LUAD_ALK": 0.02,
                         "LUAD_OTHER": 0.17}, _KEAP1),
            _g("CDKN2A", 0.15, _CDKN2A),
            _g("NF1", {"LUAD_OTHER": 0.12, "LUAD_KRAS": 0.05, "LUAD_EGFR": 0.03}, _NF1),
            _g("SMAD4", 0.03, _SMAD4),
            _g("ARID1A", 0.07, _ARID1A),
            _g("ATM", 0.08, _ATM),
            _g("PIK3CA", 0.04, _PIK3CA),
            _g("RB1", {"LUAD_EGFR": 0.10, "LUAD_KRAS": 0.03, "LUAD_OTHER": 0.04}, _RB1),
        ),
        stage=(0.20, 0.12, 0.20, 0.48),
        grade=(0.15, 0.50, 0.35),
        age=(66, 10, 35, 90),
        female={"LUAD_EGFR": 0.65, "LUAD_KRAS": 0.55, "LUAD_ALK": 0.55, "LUAD_OTHER": 0.50},
        tmb_high={"LUAD_EGFR": 0.10, "LUAD_KRAS": 0.40, "LUAD_ALK": 0.03, "LUAD_OTHER": 0.42},
        markers=(_pdl1({"LUAD_EGFR": 0.15, "LUAD_KRAS": 0.35, "LUAD_ALK": 0.15,
                        "LUAD_OTHER": 0.32}),),
    ),
    # TCGA Network, Nature 2012 (LUSC); WHO 2015 histological variants.
    "LUSC": _TypeSpec(
        subtypes={"LUSC_KERAT": 0.60, "LUSC_NONKERAT": 0.30, "LUSC_BASALOID": 0.10},
        drivers=(
            _g("TP53", 0.90, _TP53),
            _g("CDKN2A", 0.30, _CDKN2A),
            _g("SOX2", {"LUSC_KERAT": 0.22, "LUSC_NONKERAT": 0.22, "LUSC_BASALOID": 0.40},
               {"AMP": 1}),
            _g("PIK3CA", 0.16, _PIK3CA_HELICAL),
            _g("NFE2L2", 0.15, _NFE2L2),
            _g("KEAP1", 0.12, _KEAP1),
            _g("KMT2D", 0.20, _KMT2D),
            _g("PTEN", 0.08, _PTEN),
            _g("NOTCH1", 0.08, _NOTCH1),
            _g("NF1", 0.10, _NF1),
            _g("RB1", 0.07, _RB1),
            _g("FBXW7", 0.05, _FBXW7),
            _g("FGFR3", 0.03, {"S249C": 70, "R248C": 30}),
            _g("HRAS", 0.02, _HRAS),
        ),
        stage=(0.30, 0.25, 0.25, 0.20),
        grade={"LUSC_KERAT": (0.08, 0.55, 0.37), "LUSC_NONKERAT": (0.03, 0.40, 0.57),
               "LUSC_BASALOID": (0.0, 0.10, 0.90)},
        age=(68, 9, 40, 90),
        female=0.26,
        tmb_high=0.45,
        markers=(_pdl1(0.35),),
    ),
    # TCGA Network, Nature 2012 (COAD/READ). MSI-high: sporadic MLH1 promoter silencing in
    # ~80% (seen as MSI high and MLH1 loss, not in the VCF), Lynch-type MLH1 mutations else.
    "COAD": _TypeSpec(
        subtypes={"COAD_MSIH": 0.15, "COAD_MSS": 0.85},
        drivers=(
            _g("APC", {"COAD_MSS": 0.80, "COAD_MSIH": 0.45}, {
                "R1450*": 20, "E1309fs": 15, "Q1367*": 10, "R876*": 10, "R1114*": 8,
                "R213*": 7, "Q1378*": 5, "T1556fs": 5}),
            _g("TP53", {"COAD_MSS": 0.65, "COAD_MSIH": 0.20}, _TP53),
            _one_of(
                _g("KRAS", {"COAD_MSS": 0.43, "COAD_MSIH": 0.25}, {
                    "G12D": 33, "G12V": 22, "G13D": 18, "G12C": 8, "G12A": 6, "G12S": 4,
                    "A146T": 5, "Q61H": 4}),
                _g("BRAF", {"COAD_MSS": 0.05, "COAD_MSIH": 0.45}, {"V600E": 1}),
                _g("NRAS", {"COAD_MSS": 0.05, "COAD_MSIH": 0.03}, {"Q61K": 50, "G12D": 50}),
            ),
            _g("PIK3CA", {"COAD_MSS": 0.18, "COAD_MSIH": 0.35}, _PIK3CA),
            _g("SMAD4", {"COAD_MSS": 0.14, "COAD_MSIH": 0.10}, _SMAD4),
            _g("FBXW7", {"COAD_MSS": 0.10, "COAD_MSIH": 0.20}, _FBXW7),
            _g("ARID1A", {"COAD_MSS": 0.05, "COAD_MSIH": 0.40}, _ARID1A),
            _g("ATM", {"COAD_MSS": 0.05, "COAD_MSIH": 0.25}, _ATM),
            _g("CTNNB1", {"COAD_MSS": 0.02, "COAD_MSIH": 0.04},
               {"S45P": 35, "S45F": 35, "T41A": 30}),
            _g("ERBB2", {"COAD_MSS": 0.04}, {"AMP": 1}),
            _g("MLH1", {"COAD_MSIH": 0.20}, {"R100*": 35, "Q149*": 35, "R226*": 30}),
        ),
        stage=(0.17, 0.38, 0.29, 0.16),
        grade={"COAD_MSS": (0.10, 0.75, 0.15), "COAD_MSIH": (0.05, 0.45, 0.50)},
        age=(67, 13, 30, 90),
        female=0.47,
        tmb_high={"COAD_MSIH": 1.0, "COAD_MSS": 0.03},
        markers=(_Marker("MSI", {"COAD_MSIH": 1.0}, "high", "stable"),),
    ),
    # TCGA Network, Cancer Cell 2017 (PAAD); subtypes of Moffitt et al., Nat Genet 2015.
    "PAAD": _TypeSpec(
        subtypes={"PAAD_CLASSICAL": 0.60, "PAAD_BASAL": 0.40},
        drivers=(
            _one_of(
                _g("KRAS", {"PAAD_CLASSICAL": 0.91, "PAAD_BASAL": 0.95}, {
                    "G12D": 42, "G12V": 32, "G12R": 16, "Q61H": 5, "G12C": 2, "Q61R": 2,
                    "G13D": 1}),
                _g("BRAF", {"PAAD_CLASSICAL": 0.02, "PAAD_BASAL": 0.01}, {"V600E": 1}),
            ),
            _g("TP53", {"PAAD_CLASSICAL": 0.65, "PAAD_BASAL": 0.85}, _TP53),
            _g("CDKN2A", 0.30, _CDKN2A),
            _g("SMAD4", {"PAAD_CLASSICAL": 0.20, "PAAD_BASAL": 0.25}, _SMAD4),
            _g("ARID1A", 0.06, _ARID1A),
            _g("KMT2D", 0.05, _KMT2D),
            _g("ATM", 0.04, _ATM),
            _one_of(_g("BRCA1", 0.01, _BRCA1), _g("BRCA2", 0.03, _BRCA2)),
        ),
        stage=(0.08, 0.20, 0.17, 0.55),
        grade=(0.15, 0.50, 0.35),
        age=(66, 11, 35, 90),
        female=0.45,
        tmb_high=0.02,
    ),
    # TCGA Network, Cell 2015 (SKCM genomic classes BRAF / RAS / NF1 / triple wild-type);
    # TERT promoter: Huang et al., Science 2013; Horn et al., Science 2013.
    "SKCM": _TypeSpec(
        subtypes={"SKCM_BRAF": 0.50, "SKCM_NRAS": 0.27, "SKCM_NF1": 0.13, "SKCM_TWT": 0.10},
        drivers=(
            _g("BRAF", {"SKCM_BRAF": 1.0}, _BRAF_V600),
            _g("NRAS", {"SKCM_NRAS": 1.0}, _NRAS),
            _g("NF1", {"SKCM_NF1": 1.0}, _NF1),
            _one_of(
                _g("KIT", {"SKCM_TWT": 0.15}, {
                    "L576P": 30, "V559A": 20, "W557R": 15, "K642E": 10, "D816V": 10,
                    "AMP": 15}),
                _g("CDK4", {"SKCM_TWT": 0.05}, {"R24C": 60, "R24H": 40}),
                _g("MDM2", {"SKCM_TWT": 0.05}, {"AMP": 1}),
            ),
            _g("TERT", 0.70, _TERT),
            _g("CDKN2A", 0.40, _CDKN2A),
            _g("TP53", 0.15, _TP53),
            _g("PTEN", {"SKCM_BRAF": 0.15, "SKCM_NRAS": 0.05, "SKCM_NF1": 0.08,
                        "SKCM_TWT": 0.05}, _PTEN),
            _g("ARID1A", 0.08, _ARID1A),
        ),
        stage=(0.20, 0.28, 0.32, 0.20),
        grade=None,  # melanoma is reported by Breslow depth, not graded
        age=(58, 16, 18, 90),
        female=0.38,
        tmb_high={"SKCM_BRAF": 0.50, "SKCM_NRAS": 0.55, "SKCM_NF1": 0.85, "SKCM_TWT": 0.15},
        markers=(_pdl1(0.40),),
    ),
    # Brennan et al., Cell 2013 (TCGA GBM); IDH1 R132H is rare in GBM (~5%); MGMT promoter
    # methylation in ~45% (Hegi et al., NEJM 2005).
    "GBM": _TypeSpec(
        subtypes={"GBM_MGMT_METH": 0.45, "GBM_MGMT_UNMETH": 0.55},
        drivers=(
            _g("TERT", 0.80, _TERT),
            _g("CDKN2A", 0.58, {"HOMDEL": 1}),
            _g("EGFR", 0.57, {"AMP": 75, "A289V": 12, "G598V": 7, "R108K": 6}),
            _g("PTEN", 0.41, _PTEN),
            _g("TP53", 0.28, _TP53),
            _g("CDK4", 0.14, {"AMP": 1}),
            _g("PIK3R1", 0.11, {"N564D": 60, "K567E": 40}),
            _g("PIK3CA", 0.10, _PIK3CA),
            _g("NF1", 0.10, _NF1),
            _g("RB1", 0.08, _RB1),
            _g("MDM2", 0.07, {"AMP": 1}),
            _g("IDH1", {"GBM_MGMT_METH": 0.08, "GBM_MGMT_UNMETH": 0.02},
               {"R132H": 85, "R132C": 15}),
            _g("ATRX", {"GBM_MGMT_METH": 0.07, "GBM_MGMT_UNMETH": 0.03}, _ATRX),
        ),
        stage=None,  # brain tumours are not TNM-staged
        grade=None,  # WHO CNS grade 4, outside the three-tier scale
        age=(60, 13, 20, 90),
        female=0.36,
        tmb_high={"GBM_MGMT_METH": 0.06, "GBM_MGMT_UNMETH": 0.02},
        markers=(_Marker("MGMT", {"GBM_MGMT_METH": 1.0}, "methylated", "unmethylated"),),
    ),
    # TCGA Network, Cell 2015 (PRAD): ERG fusions 46%, SPOP 11%, mutually exclusive.
    # Grades are ISUP grade groups folded to three tiers (GG1 / GG2-3 / GG4-5).
    "PRAD": _TypeSpec(
        subtypes={"PRAD_ERG": 0.46, "PRAD_SPOP": 0.11, "PRAD_OTHER": 0.43},
        drivers=(
            _g("ERG", {"PRAD_ERG": 1.0}, {"fusion:TMPRSS2": 1}),
            _g("SPOP", {"PRAD_SPOP": 1.0}, {
                "F133V": 25, "F133L": 20, "W131G": 20, "F102C": 15, "Y87C": 20}),
            _g("FOXA1", {"PRAD_OTHER": 0.10, "PRAD_SPOP": 0.02},
               {"I176M": 40, "D226N": 35, "H247Y": 25}),
            _g("PTEN", {"PRAD_ERG": 0.25, "PRAD_SPOP": 0.08, "PRAD_OTHER": 0.12}, _PTEN),
            _g("TP53", 0.08, _TP53),
            _g("ATM", 0.04, _ATM),
            _g("BRCA2", 0.03, _BRCA2),
            _g("CTNNB1", 0.02, {"S45P": 35, "S45F": 35, "T41A": 30}),
            _g("PIK3CA", 0.03, _PIK3CA),
        ),
        stage=(0.05, 0.50, 0.35, 0.10),
        grade=(0.15, 0.55, 0.30),
        age=(61, 7, 41, 80),
        female=0.0,
        tmb_high=0.02,
    ),
    # TCGA Network, Cell 2014 (THCA): BRAF V600E, RAS and fusions are mutually exclusive;
    # follicular-variant PTC is RAS-like. TERT promoter: Landa et al., JCEM 2013.
    "THCA": _TypeSpec(
        subtypes={"THCA_CLASSIC": 0.75, "THCA_FOLLICULAR": 0.25},
        drivers=(
            _one_of(
                _g("BRAF", {"THCA_CLASSIC": 0.72, "THCA_FOLLICULAR": 0.20}, {"V600E": 1}),
                _g("NRAS", {"THCA_CLASSIC": 0.03, "THCA_FOLLICULAR": 0.25},
                   {"Q61R": 70, "Q61K": 30}),
                _g("HRAS", {"THCA_CLASSIC": 0.01, "THCA_FOLLICULAR": 0.10},
                   {"Q61R": 80, "Q61K": 20}),
                _g("RET", {"THCA_CLASSIC": 0.08, "THCA_FOLLICULAR": 0.03},
                   {"fusion:CCDC6": 1}),
            ),
            _g("TERT", 0.09, _TERT),
        ),
        stage=(0.56, 0.10, 0.22, 0.12),
        grade=None,  # papillary thyroid carcinoma is not graded on the three-tier scale
        age=(47, 16, 15, 90),
        female=0.73,
        tmb_high=0.01,
    ),
    # TCGA Network, Nature 2013 (KIRC); ccA/ccB of Brannon et al., Genes Cancer 2010.
    "KIRC": _TypeSpec(
        subtypes={"KIRC_CCA": 0.55, "KIRC_CCB": 0.45},
        drivers=(
            _g("VHL", 0.50, {
                "E55*": 14, "Q73*": 12, "E55fs": 10, "P59fs": 10, "S111N": 10,
                "N78S": 8, "L89H": 8, "R167Q": 10, "Y98H": 7, "L158P": 7}),
            _g("PBRM1", {"KIRC_CCA": 0.45, "KIRC_CCB": 0.33},
               {"Q1298*": 35, "R1160*": 30, "E1316fs": 35}),
            _g("SETD2", 0.12, {"H1629Y": 20, "R1625H": 15, "Q1537*": 35, "K1588fs": 30}),
            _g("BAP1", {"KIRC_CCA": 0.06, "KIRC_CCB": 0.14},
               {"Q267*": 35, "E402fs": 35, "HOMDEL": 30}),
            _g("PTEN", 0.04, _PTEN),
            _g("TP53", 0.03, _TP53),
            _g("PIK3CA", 0.03, _PIK3CA),
        ),
        stage=(0.50, 0.11, 0.23, 0.16),
        grade={"KIRC_CCA": (0.15, 0.50, 0.35), "KIRC_CCB": (0.05, 0.35, 0.60)},
        age=(61, 12, 26, 90),
        female=0.35,
        tmb_high=0.02,
    ),
    # TCGA Network, Nature 2011 (OV): ~50% HR-deficient; BRCA1/2 germline or somatic.
    "OV": _TypeSpec(
        subtypes={"OV_HGSOC_HRD": 0.50, "OV_HGSOC_HRP": 0.50},
        drivers=(
            _g("TP53", 0.96, _TP53),
            _one_of(
                _g("BRCA1", {"OV_HGSOC_HRD": 0.55}, _BRCA1),
                _g("BRCA2", {"OV_HGSOC_HRD": 0.45}, _BRCA2),
            ),
            _g("NF1", {"OV_HGSOC_HRP": 0.12, "OV_HGSOC_HRD": 0.04}, _NF1),
            _g("RB1", {"OV_HGSOC_HRP": 0.06, "OV_HGSOC_HRD": 0.04}, _RB1),
            _g("PIK3CA", 0.02, _PIK3CA),
        ),
        stage=(0.03, 0.06, 0.75, 0.16),
        grade=(0.0, 0.0, 1.0),  # high-grade serous by definition
        age=(60, 11, 30, 90),
        female=1.0,
        tmb_high={"OV_HGSOC_HRD": 0.06, "OV_HGSOC_HRP": 0.02},
    ),
    # TCGA Network, Nature 2017 (CESC): APOBEC-driven PIK3CA helical mutations; HPV in ~95%.
    "CESC": _TypeSpec(
        subtypes={"CESC_SCC": 0.85, "CESC_ADENO": 0.15},
        drivers=(
            _g("PIK3CA", {"CESC_SCC": 0.32, "CESC_ADENO": 0.20}, _PIK3CA_HELICAL),
            _g("KRAS", {"CESC_SCC": 0.02, "CESC_ADENO": 0.15}, {"G12D": 50, "G12V": 50}),
            _g("ERBB2", {"CESC_SCC": 0.04, "CESC_ADENO": 0.08}, {"AMP": 50, "S310F": 50}),
            _g("PTEN", 0.08, _PTEN),
            _g("FBXW7", 0.10, _FBXW7),
            _g("STK11", {"CESC_SCC": 0.02, "CESC_ADENO": 0.06}, _STK11),
            _g("NFE2L2", {"CESC_SCC": 0.04}, _NFE2L2),
            _g("KMT2D", 0.08, _KMT2D),
            _g("TP53", 0.05, _TP53),
        ),
        stage=(0.55, 0.22, 0.14, 0.09),
        grade=(0.08, 0.45, 0.47),
        age=(47, 14, 20, 88),
        female=1.0,
        tmb_high=0.20,
        markers=(_Marker("HPV", {"CESC_SCC": 0.96, "CESC_ADENO": 0.75}, "positive",
                         "negative"),),
    ),
    # TCGA Network, Nature 2015 (HNSC): HPV-positive tumours rarely carry TP53 mutations.
    "HNSC": _TypeSpec(
        subtypes={"HNSC_HPVPOS": 0.20, "HNSC_HPVNEG": 0.80},
        drivers=(
            _g("TP53", {"HNSC_HPVPOS": 0.05, "HNSC_HPVNEG": 0.84}, _TP53),
            _g("CDKN2A", {"HNSC_HPVPOS": 0.03, "HNSC_HPVNEG": 0.55}, _CDKN2A),
            _g("PIK3CA", {"HNSC_HPVPOS": 0.40, "HNSC_HPVNEG": 0.18}, _PIK3CA_HELICAL),
            _g("NOTCH1", 0.18, _NOTCH1),
            _g("KMT2D", 0.16, _KMT2D),
            _g("EGFR", {"HNSC_HPVNEG": 0.10}, {"AMP": 1}),
            _g("NFE2L2", {"HNSC_HPVNEG": 0.06}, _NFE2L2),
            _g("HRAS", {"HNSC_HPVNEG": 0.05}, _HRAS),
            _g("FBXW7", 0.05, _FBXW7),
            _g("PTEN", 0.04, _PTEN),
            _g("KEAP1", {"HNSC_HPVNEG": 0.04}, _KEAP1),
            _g("FGFR3", 0.03, {"S249C": 70, "R248C": 30}),
        ),
        stage=(0.06, 0.18, 0.20, 0.56),
        grade=(0.12, 0.60, 0.28),
        age=(61, 12, 20, 90),
        female={"HNSC_HPVPOS": 0.15, "HNSC_HPVNEG": 0.30},
        tmb_high={"HNSC_HPVPOS": 0.10, "HNSC_HPVNEG": 0.22},
        markers=(
            _Marker("HPV", {"HNSC_HPVPOS": 1.0}, "positive", "negative"),
            _pdl1(0.40),
        ),
    ),
    # TCGA Network, Cell 2017 (LIHC); TP53 R249S is the aflatoxin-linked hotspot of
    # HBV-endemic regions (Hsu et al., Nature 1991).
    "LIHC": _TypeSpec(
        subtypes={"LIHC_HBV": 0.35, "LIHC_HCV": 0.25, "LIHC_NONVIRAL": 0.40},
        drivers=(
            _g("TERT", {"LIHC_HBV": 0.35, "LIHC_HCV": 0.45, "LIHC_NONVIRAL": 0.52}, _TERT),
            _g("TP53", {"LIHC_HBV": 0.45, "LIHC_HCV": 0.25, "LIHC_NONVIRAL": 0.24},
               {**_TP53, "R249S": 12}),
            _g("CTNNB1", {"LIHC_HBV": 0.15, "LIHC_HCV": 0.28, "LIHC_NONVIRAL": 0.35},
               {"S45P": 30, "S45F": 20, "T41A": 50}),
            _g("AXIN1", 0.08, {"T806I": 20, "R146*": 40, "HOMDEL": 40}),
            _g("ARID1A", 0.08, _ARID1A),
            _g("CDKN2A", 0.05, {"HOMDEL": 1}),
            _g("BAP1", 0.05, {"Q267*": 35, "E402fs": 35, "HOMDEL": 30}),
            _g("RB1", 0.04, _RB1),
            _g("KEAP1", 0.03, _KEAP1),
            _g("NFE2L2", 0.03, _NFE2L2),
            _g("PIK3CA", 0.02, _PIK3CA),
        ),
        stage=(0.47, 0.24, 0.25, 0.04),
        grade=(0.15, 0.48, 0.37),
        age=(61, 13, 16, 90),
        female=0.32,
        tmb_high=0.05,
    ),
    # TCGA Network, Cell 2017 (SARC): DDLPS is defined by MDM2 (with CDK4) amplification;
    # LMS and UPS by TP53 / RB1 loss.
    "SARC": _TypeSpec(
        subtypes={"SARC_LMS": 0.42, "SARC_DDLPS": 0.30, "SARC_UPS": 0.28},
        drivers=(
            _g("MDM2", {"SARC_DDLPS": 1.0}, {"AMP": 1}),
            _g("CDK4", {"SARC_DDLPS": 0.90}, {"AMP": 1}),
            _g("TP53", {"SARC_LMS": 0.50, "SARC_UPS": 0.45, "SARC_DDLPS": 0.02}, _TP53),
            _g("RB1", {"SARC_LMS": 0.35, "SARC_UPS": 0.20}, _RB1),
            _g("ATRX", {"SARC_LMS": 0.20, "SARC_UPS": 0.15, "SARC_DDLPS": 0.02}, _ATRX),
            _g("PTEN", {"SARC_LMS": 0.15, "SARC_UPS": 0.05}, {"HOMDEL": 1}),
            _g("CDKN2A", {"SARC_UPS": 0.20, "SARC_LMS": 0.05}, {"HOMDEL": 1}),
            _g("NF1", {"SARC_UPS": 0.10, "SARC_LMS": 0.03}, _NF1),
        ),
        stage=(0.25, 0.25, 0.30, 0.20),
        grade={"SARC_LMS": (0.20, 0.40, 0.40), "SARC_DDLPS": (0.05, 0.35, 0.60),
               "SARC_UPS": (0.0, 0.15, 0.85)},  # FNCLCC grade
        age=(61, 15, 20, 90),
        female=0.54,
        tmb_high=0.03,
    ),
})  # fmt: skip

# Genes a routine panel reports for each type, so a note can say "EGFR negative".
TESTED_GENES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "BRCA": ("ERBB2", "PIK3CA", "ESR1", "BRCA1", "BRCA2", "TP53", "PTEN", "CDH1", "GATA3"),
    "LUAD": ("EGFR", "KRAS", "ALK", "ROS1", "BRAF", "MET", "RET", "ERBB2", "TP53", "STK11",
             "KEAP1"),
    "LUSC": ("EGFR", "ALK", "KRAS", "TP53", "PIK3CA", "CDKN2A", "SOX2", "NFE2L2", "KEAP1",
             "FGFR3"),
    "COAD": ("KRAS", "NRAS", "BRAF", "PIK3CA", "APC", "TP53", "SMAD4", "ERBB2", "MLH1"),
    "PAAD": ("KRAS", "BRAF", "TP53", "CDKN2A", "SMAD4", "BRCA1", "BRCA2"),
    "SKCM": ("BRAF", "NRAS", "NF1", "KIT", "CDKN2A", "TERT", "TP53"),
    "GBM": ("IDH1", "EGFR", "TERT", "PTEN", "TP53", "CDKN2A", "ATRX"),
    "PRAD": ("ERG", "SPOP", "TP53", "PTEN", "BRCA2", "ATM", "FOXA1"),
    "THCA": ("BRAF", "NRAS", "HRAS", "RET", "TERT"),
    "KIRC": ("VHL", "PBRM1", "SETD2", "BAP1"),
    "OV": ("TP53", "BRCA1", "BRCA2"),
    "CESC": ("PIK3CA", "KRAS", "ERBB2", "PTEN", "TP53"),
    "HNSC": ("TP53", "PIK3CA", "CDKN2A", "NOTCH1", "HRAS"),
    "LIHC": ("TERT", "TP53", "CTNNB1", "AXIN1", "ARID1A"),
    "SARC": ("TP53", "RB1", "MDM2", "CDK4", "ATRX", "PTEN"),
})  # fmt: skip

# Shares of the demo cohort: GLOBOCAN 2020 incidence (Sung et al., CA Cancer J Clin 2021)
# flattened so every type can be learned, with SARC kept deliberately rare.
CANCER_TYPE_PREVALENCE: Mapping[str, float] = MappingProxyType({
    "BRCA": 0.12, "LUAD": 0.09, "LUSC": 0.07, "COAD": 0.09, "PAAD": 0.05, "SKCM": 0.06,
    "GBM": 0.05, "PRAD": 0.08, "THCA": 0.06, "KIRC": 0.06, "OV": 0.06, "CESC": 0.05,
    "HNSC": 0.07, "LIHC": 0.07, "SARC": 0.02,
})  # fmt: skip


# ------------------------------------------------------------------------ compilation


def _value(v: PerSubtype, subtype: str) -> float:
    return float(v) if isinstance(v, int | float) else float(v.get(subtype, 0.0))


def _cumulative(weights: tuple[float, ...]) -> tuple[float, ...]:
    total = sum(weights)
    acc, out = 0.0, []
    for w in weights:
        acc += w
        out.append(acc / total)
    return tuple(out)


@dataclass(frozen=True)
class _GeneDraw:
    gene: str
    upper: float  # the gene fires when the group's uniform is below this (cumulative)
    event_cum: tuple[float, ...]
    events: tuple[tuple[DriverEvent, ...], ...]


@dataclass(frozen=True)
class _SubtypeDraw:
    groups: tuple[tuple[_GeneDraw, ...], ...]
    grade_cum: tuple[float, ...] | None
    female: float
    tmb_high: float
    markers: tuple[tuple[str, float, str, str], ...]


@dataclass(frozen=True)
class _TypeDraw:
    subtypes: tuple[str, ...]
    subtype_cum: tuple[float, ...]
    stage_cum: tuple[float, ...] | None
    age: NormalDist
    age_bounds: tuple[int, int]
    by_subtype: Mapping[str, _SubtypeDraw]
    n_uniforms: int


def _compile_events(gene: str, events: Mapping[str, float]) -> tuple[tuple, tuple]:
    specs = tuple(events)
    parsed = tuple(tuple(parse_event(gene, s) for s in spec.split("+")) for spec in specs)
    return _cumulative(tuple(events[s] for s in specs)), parsed


def _compile(cancer_type: str, spec: _TypeSpec) -> _TypeDraw:
    subtypes = tuple(spec.subtypes)
    if subtypes != SUBTYPES[cancer_type]:
        raise ConfigError(f"{cancer_type}: subtype table must list {SUBTYPES[cancer_type]}")
    by_subtype = {}
    for sub in subtypes:
        groups = []
        for group in spec.drivers:
            upper, draws = 0.0, []
            for g in group:
                if g.gene not in DRIVER_GENES:
                    raise ConfigError(f"{cancer_type}: {g.gene} is not in schema.DRIVER_GENES")
                upper += _value(g.freq, sub)
                draws.append(_GeneDraw(g.gene, upper, *_compile_events(g.gene, g.events)))
            if upper > 1.0 + 1e-9:
                raise ConfigError(f"{cancer_type}/{sub}: exclusive genes exceed 100%")
            groups.append(tuple(draws))
        grade = spec.grade if spec.grade is None or isinstance(spec.grade, tuple) else (
            spec.grade[sub])  # fmt: skip
        markers = tuple((m.name, _value(m.p_first, sub), m.first, m.second)
                        for m in spec.markers)  # fmt: skip
        by_subtype[sub] = _SubtypeDraw(
            groups=tuple(groups),
            grade_cum=None if grade is None else _cumulative(grade),
            female=_value(spec.female, sub),
            tmb_high=_value(spec.tmb_high, sub),
            markers=markers,
        )
    mean, sd, lo, hi = spec.age
    # subtype, stage, grade, age, sex, TMB, one per marker, two per driver group
    n_uniforms = 6 + len(spec.markers) + 2 * len(spec.drivers)
    return _TypeDraw(
        subtypes=subtypes,
        subtype_cum=_cumulative(tuple(spec.subtypes.values())),
        stage_cum=None if spec.stage is None else _cumulative(spec.stage),
        age=NormalDist(mean, sd),
        age_bounds=(lo, hi),
        by_subtype=MappingProxyType(by_subtype),
        n_uniforms=n_uniforms,
    )


_DRAWS: Mapping[str, _TypeDraw] = MappingProxyType(
    {t: _compile(t, _SPECS[t]) for t in CANCER_TYPES}
)
_TYPE_CUM = _cumulative(tuple(CANCER_TYPE_PREVALENCE[t] for t in CANCER_TYPES))
_BIOMARKER_ORDER = {b: i for i, b in enumerate(BIOMARKERS)}


def _pick(cum: tuple[float, ...], u: float) -> int:
    return min(bisect.bisect_right(cum, u), len(cum) - 1)


# ---------------------------------------------------------------------------- sampling


def sample_cancer_type(rng: np.random.Generator) -> str:
    """One cancer type drawn with the demo cohort's prevalences."""
    return CANCER_TYPES[_pick(_TYPE_CUM, rng.random())]


def sample_profile(cancer_type: str, rng: np.random.Generator) -> ClinicalProfile:
    """A clinical profile of `cancer_type` whose subtype, drivers and biomarkers agree."""
    try:
        draw = _DRAWS[cancer_type]
    except KeyError:
        raise ConfigError(f"unknown cancer type {cancer_type!r}") from None
    u = rng.random(draw.n_uniforms).tolist()
    subtype = draw.subtypes[_pick(draw.subtype_cum, u[0])]
    sub = draw.by_subtype[subtype]
    stage = "" if draw.stage_cum is None else STAGES[_pick(draw.stage_cum, u[1])]
    grade = 0 if sub.grade_cum is None else 1 + _pick(sub.grade_cum, u[2])
    lo, hi = draw.age_bounds
    age = min(hi, max(lo, round(draw.age.inv_cdf(min(max(u[3], 1e-9), 1 - 1e-9)))))
    sex = "F" if u[4] < sub.female else "M"
    tmb = "high" if u[5] < sub.tmb_high else "low"

    biomarkers = [(name, first if u[6 + i] < p else second)
                  for i, (name, p, first, second) in enumerate(sub.markers)]  # fmt: skip
    biomarkers.append(("TMB", tmb))
    biomarkers.sort(key=lambda b: _BIOMARKER_ORDER[b[0]])

    drivers: list[DriverEvent] = []
    k = 6 + len(sub.markers)
    for i, group in enumerate(sub.groups):
        u_gene, u_event = u[k + 2 * i], u[k + 2 * i + 1]
        for g in group:
            if u_gene < g.upper:
                drivers.extend(g.events[_pick(g.event_cum, u_event)])
                break
    return ClinicalProfile(
        cancer_type=cancer_type,
        subtype=subtype,
        stage=stage,
        grade=grade,
        age=age,
        sex=sex,
        drivers=tuple(drivers),
        biomarkers=tuple(biomarkers),
        tmb_class=tmb,
    )


# ----------------------------------------------------------------------- table queries


def subtype_frequencies(cancer_type: str) -> Mapping[str, float]:
    """Subtype shares of a type, summing to 1."""
    spec = _SPECS[cancer_type]
    total = sum(spec.subtypes.values())
    return MappingProxyType({s: f / total for s, f in spec.subtypes.items()})


def gene_frequencies(cancer_type: str) -> Mapping[str, float]:
    """Expected share of cases of a type with a driver event in each gene."""
    spec = _SPECS[cancer_type]
    out: dict[str, float] = {}
    for sub, share in subtype_frequencies(cancer_type).items():
        for group in spec.drivers:
            for g in group:
                out[g.gene] = out.get(g.gene, 0.0) + share * _value(g.freq, sub)
    return MappingProxyType(out)


def all_driver_events() -> tuple[DriverEvent, ...]:
    """Every distinct driver event any profile can carry, in a stable order."""
    seen: dict[DriverEvent, None] = {}
    for t in CANCER_TYPES:
        for sub in _DRAWS[t].by_subtype.values():
            for group in sub.groups:
                for g in group:
                    for combo in g.events:
                        seen.update(dict.fromkeys(combo))
    return tuple(seen)
