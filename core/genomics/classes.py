"""Vocabularies and scoring rules of somatic variant interpretation, with no knowledge lookups.

- The seed article's three classes (pathogenic / benign / VUS).
- Oncogenicity in the ClinGen/CGC/VICC 2022 vocabulary (Horak et al., Genet Med 2022;24:986):
  criteria with fixed points (very strong 8, strong 4, moderate 2, supporting 1; benign
  criteria negative) summed and cut into five classes.
- AMP/ASCO/CAP 2017 tiers I-IV (Li et al., J Mol Diagn 2017;19:4).
- Sequence Ontology consequence terms ranked by severity (Ensembl VEP's order), with the
  older SnpEff EFF and ANNOVAR spellings mapped onto them.

docs/vcf.md explains which criteria the interpreter applies and from which data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

# The seed article's classes; `Variant.role` of the synthetic cohort maps onto them.
PATHOGENIC, BENIGN, VUS = "pathogenic", "benign", "VUS"
CLASSES: tuple[str, ...] = (PATHOGENIC, BENIGN, VUS)
ROLE_TO_CLASS: Mapping[str, str] = MappingProxyType(
    {"driver": PATHOGENIC, "benign": BENIGN, "passenger": VUS}
)

ONCOGENIC, LIKELY_ONCOGENIC, LIKELY_BENIGN = "oncogenic", "likely oncogenic", "likely benign"
ONCOGENICITY: tuple[str, ...] = (ONCOGENIC, LIKELY_ONCOGENIC, VUS, LIKELY_BENIGN, BENIGN)

TIERS: tuple[str, ...] = ("I", "II", "III", "IV")


@dataclass(frozen=True, slots=True)
class CriterionSpec:
    code: str
    points: int
    summary: str  # what the criterion says, shortened from the SOP (or our extension)


# The criteria the interpreter can apply. OM1 is read from 3D clusters and the OS3/OM3/OP3
# counts from the 3D hotspots table (Gao et al. 2017), standing in for cancerhotspots.org;
# XS1/XS2 are this workbench's extensions for copy-number and fusion events, which the SOP
# (written for SNVs and small indels) does not score.
CRITERIA: Mapping[str, CriterionSpec] = MappingProxyType(
    {
        c.code: c
        for c in (
            CriterionSpec("OVS1", 8, "null variant in a tumour suppressor gene"),
            CriterionSpec("OS1", 4, "same change as an established oncogenic variant"),
            CriterionSpec("OS2", 4, "functional studies support an oncogenic effect"),
            CriterionSpec("OS3", 4, "hotspot: >=50 samples at the residue, >=10 with this change"),
            CriterionSpec("OM1", 2, "in a critical region (a 3D mutation cluster)"),
            CriterionSpec("OM2", 2, "in-frame length change in a cancer gene"),
            CriterionSpec("OM3", 2, "hotspot: <50 samples at the residue, >=10 with this change"),
            CriterionSpec("OM4", 2, "another oncogenic missense change at this residue"),
            CriterionSpec("OP1", 1, "computational evidence supports an oncogenic effect"),
            CriterionSpec("OP3", 1, "hotspot residue, <10 samples with this change"),
            CriterionSpec("OP4", 1, "absent from population databases"),
            CriterionSpec("SBVS1", -8, "population allele frequency > 5%"),
            CriterionSpec("SBS1", -4, "population allele frequency > 1%"),
            CriterionSpec("SBP1", -1, "computational evidence suggests no effect"),
            CriterionSpec("SBP2", -1, "synonymous variant"),
            CriterionSpec("XS1", 4, "amplification of an oncogene (workbench extension)"),
            CriterionSpec("XS2", 4, "fusion involving an oncogene (workbench extension)"),
        )
    }
)

# A case with both at least this many oncogenic points and at most minus this many benign
# points has conflicting strong evidence: the interpreter abstains (VUS) instead of summing.
CONFLICT_POINTS = 4


def oncogenicity_class(points: int) -> str:
    """The SOP's cut-offs: >=10 oncogenic, 6-9 likely oncogenic, 0-5 VUS, -1..-6 likely
    benign, <=-7 benign."""
    if points >= 10:
        return ONCOGENIC
    if points >= 6:
        return LIKELY_ONCOGENIC
    if points >= 0:
        return VUS
    return LIKELY_BENIGN if points >= -6 else BENIGN


def article_class(oncogenicity: str, tier: str) -> str:
    """Three classes: pathogenic = (likely) oncogenic or clinically significant (tier I/II);
    benign = (likely) benign; VUS otherwise."""
    if oncogenicity in (BENIGN, LIKELY_BENIGN):
        return BENIGN
    if oncogenicity in (ONCOGENIC, LIKELY_ONCOGENIC) or tier in ("I", "II"):
        return PATHOGENIC
    return VUS


# ----------------------------------------------------------------- consequence terms

# Ensembl VEP's severity order (most severe first), with SnpEff-only SO terms placed next to
# their VEP equivalents.
SO_RANKING: tuple[str, ...] = (
    "transcript_ablation", "exon_loss_variant", "splice_acceptor_variant",
    "splice_donor_variant", "stop_gained", "frameshift_variant", "stop_lost", "start_lost",
    "transcript_amplification", "gene_fusion", "bidirectional_gene_fusion",
    "feature_elongation", "feature_truncation", "inframe_insertion",
    "disruptive_inframe_insertion", "conservative_inframe_insertion", "inframe_deletion",
    "disruptive_inframe_deletion", "conservative_inframe_deletion", "missense_variant",
    "protein_altering_variant", "splice_donor_5th_base_variant", "splice_region_variant",
    "splice_donor_region_variant", "splice_polypyrimidine_tract_variant",
    "incomplete_terminal_codon_variant", "start_retained_variant", "stop_retained_variant",
    "synonymous_variant", "coding_sequence_variant", "mature_miRNA_variant",
    "5_prime_UTR_premature_start_codon_gain_variant", "5_prime_UTR_variant",
    "3_prime_UTR_variant", "non_coding_transcript_exon_variant", "intron_variant",
    "NMD_transcript_variant", "non_coding_transcript_variant", "upstream_gene_variant",
    "downstream_gene_variant", "TFBS_ablation", "TFBS_amplification",
    "TF_binding_site_variant", "regulatory_region_ablation",
    "regulatory_region_amplification", "regulatory_region_variant", "intergenic_variant",
    "sequence_variant",
)  # fmt: skip
_RANK: Mapping[str, int] = MappingProxyType({t: i for i, t in enumerate(SO_RANKING)})
UNRANKED = len(SO_RANKING)  # terms we do not know sort after every known one

# Old SnpEff EFF effect names and ANNOVAR (Func / ExonicFunc) values -> SO terms.
_ALIASES: Mapping[str, str] = MappingProxyType({
    "NON_SYNONYMOUS_CODING": "missense_variant", "SYNONYMOUS_CODING": "synonymous_variant",
    "STOP_GAINED": "stop_gained", "STOP_LOST": "stop_lost", "START_LOST": "start_lost",
    "FRAME_SHIFT": "frameshift_variant", "CODON_DELETION": "inframe_deletion",
    "CODON_INSERTION": "inframe_insertion",
    "CODON_CHANGE_PLUS_CODON_DELETION": "disruptive_inframe_deletion",
    "CODON_CHANGE_PLUS_CODON_INSERTION": "disruptive_inframe_insertion",
    "SPLICE_SITE_ACCEPTOR": "splice_acceptor_variant",
    "SPLICE_SITE_DONOR": "splice_donor_variant", "SPLICE_SITE_REGION": "splice_region_variant",
    "EXON_DELETED": "exon_loss_variant", "INTRON": "intron_variant",
    "UTR_5_PRIME": "5_prime_UTR_variant", "UTR_3_PRIME": "3_prime_UTR_variant",
    "UPSTREAM": "upstream_gene_variant", "DOWNSTREAM": "downstream_gene_variant",
    "INTERGENIC": "intergenic_variant", "SYNONYMOUS_STOP": "stop_retained_variant",
    "NON_SYNONYMOUS_START": "start_lost",
    "nonsynonymous SNV": "missense_variant", "synonymous SNV": "synonymous_variant",
    "stopgain": "stop_gained", "stoploss": "stop_lost", "startloss": "start_lost",
    "frameshift deletion": "frameshift_variant", "frameshift insertion": "frameshift_variant",
    "frameshift substitution": "frameshift_variant",
    "nonframeshift deletion": "inframe_deletion", "nonframeshift insertion": "inframe_insertion",
    "nonframeshift substitution": "protein_altering_variant",
    "splicing": "splice_donor_variant",  # ANNOVAR does not say which canonical site
    "intronic": "intron_variant",
    "UTR5": "5_prime_UTR_variant", "UTR3": "3_prime_UTR_variant",
    "upstream": "upstream_gene_variant", "downstream": "downstream_gene_variant",
    "intergenic": "intergenic_variant", "ncRNA_exonic": "non_coding_transcript_exon_variant",
})  # fmt: skip

# Consequence groups the rules use.
NULL_TERMS = frozenset({
    "transcript_ablation", "exon_loss_variant", "splice_acceptor_variant",
    "splice_donor_variant", "stop_gained", "frameshift_variant", "start_lost",
})  # fmt: skip
INFRAME_TERMS = frozenset({
    "inframe_insertion", "inframe_deletion", "disruptive_inframe_insertion",
    "conservative_inframe_insertion", "disruptive_inframe_deletion",
    "conservative_inframe_deletion",
})  # fmt: skip
SPLICE_TERMS = frozenset({"splice_acceptor_variant", "splice_donor_variant", "exon_loss_variant"})
PROMOTER_TERMS = frozenset({"upstream_gene_variant", "5_prime_UTR_variant"})
FUSION_TERMS = frozenset({"gene_fusion", "bidirectional_gene_fusion"})
# Non-synonymous coding changes: what tumour mutational burden counts.
TMB_TERMS = frozenset({
    "missense_variant", "stop_gained", "stop_lost", "start_lost", "frameshift_variant",
    "protein_altering_variant", *INFRAME_TERMS,
})  # fmt: skip


@lru_cache(maxsize=4096)  # annotators use few distinct consequence strings
def so_terms(consequence: str) -> tuple[str, ...]:
    """SO terms of an annotator's consequence field ('&'- or ','-joined; EFF and ANNOVAR
    names mapped), most severe first."""
    parts = (p.strip() for p in consequence.replace(",", "&").split("&"))
    terms = {_ALIASES.get(p, p) for p in parts if p}
    return tuple(sorted(terms, key=severity_rank))


def severity_rank(term: str) -> int:
    """0 for the most severe SO term; UNRANKED for terms outside the ranking."""
    return _RANK.get(term, UNRANKED)
