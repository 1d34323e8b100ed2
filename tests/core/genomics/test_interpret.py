"""Somatic interpretation: SOP criteria, AMP tiers, abstention, hooks, TMB and the outputs."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import InputError
from core.genomics import classes as C
from core.genomics.interpret import (
    NOT_AVAILABLE,
    TSV_COLUMNS,
    AnnotationReading,
    InterpretConfig,
    Interpreter,
    evaluate_cohort,
    f1_scores,
    interpret_file,
)
from core.genomics.reader import read_all
from core.genomics.records import Annotation, FreeText, VariantRecord
from core.knowledge.tables import PAN_CANCER_DISEASES, KnowledgeBase

# A tumour/normal VCF on GRCh37 with VEP-style CSQ: an unknown missense, a truncating variant
# in a tumour suppressor, BRAF V600E (with a German note), a multi-allelic KRAS record whose
# first ALT the tumour does not carry (GT 0/2), a common SNP, and a filtered synonymous call.
SMALL_VCF = """\
##fileformat=VCFv4.2
##reference=GRCh37
##contig=<ID=2,length=243199373>
##contig=<ID=3,length=198022430>
##contig=<ID=7,length=159138663>
##contig=<ID=12,length=133851895>
##contig=<ID=17,length=81195210>
##FILTER=<ID=LowQual,Description="Low quality">
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. \
Format: Allele|Consequence|IMPACT|SYMBOL|HGVSp|gnomAD_AF|ANNOTATION">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tPATIENT_TUMOR\tPATIENT_NORMAL
2\t179400000\t.\tC\tT\t50\tPASS\tCSQ=T|missense_variant|MODERATE|TTN|p.A123V||\tGT:AD:DP\t\
0/1:80,20:100\t0/0:60,0:60
3\t47100000\t.\tC\tA\t50\tPASS\tCSQ=A|stop_gained|HIGH|SETD2|p.E500*||\tGT:AD:DP\t\
0/1:70,30:100\t0/0:60,0:60
7\t140453136\t.\tA\tT\t50\tPASS\tCSQ=T|missense_variant|MODERATE|BRAF|p.V600E||\
Aktivierende%20Hotspot-Mutation\tGT:AD:DP\t0/1:60,40:100\t0/0:60,0:60
12\t25398284\t.\tC\tA,T\t50\tPASS\tCSQ=A|missense_variant|MODERATE|KRAS|p.G12V||,\
T|missense_variant|MODERATE|KRAS|p.G12D||\tGT:AD:DP\t0/2:60,0,40:100\t0/0:60,0,0:60
17\t7579472\trs1042522\tG\tC\t50\tPASS\tCSQ=C|missense_variant|MODERATE|TP53|p.P72R|0.3|\t\
GT:AD:DP\t0/1:50,50:100\t0/1:30,30:60
17\t7579500\t.\tG\tA\t5\tLowQual\tCSQ=A|synonymous_variant|LOW|TP53|p.P63=||\tGT:AD:DP\t\
0/1:90,10:100\t0/0:60,0:60
"""


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture(scope="module")
def interp(kb: KnowledgeBase) -> Interpreter:
    return Interpreter(kb)


@pytest.fixture()
def small_vcf(tmp_path: Path) -> Path:
    path = tmp_path / "small.vcf"
    path.write_text(SMALL_VCF)
    return path


def record(
    gene: str = "",
    consequence: str = "",
    hgvsp: str = "",
    af: float | None = None,
    *,
    absent_in_gnomad: bool = True,
    annotated: bool = True,
    **fields: object,
) -> VariantRecord:
    """A VariantRecord as the reader makes one, with a VEP CSQ annotation."""
    extra = {"gnomAD_AF": "" if af is None else str(af)} if absent_in_gnomad or af else {}
    ann = Annotation("CSQ", gene, consequence, "", "", hgvsp, af, extra)
    base = VariantRecord(
        line=20, chrom="7", pos=140453136, id=".", ref="A", alt="T", allele_index=1, n_alts=1,
        kind="snv", qual=50.0, filters=("PASS",), info={}, genotype="0/1", depth=100, vaf=0.4,
        annotations=(ann,) if annotated else (),
    )  # fmt: skip
    return replace(base, **fields)


def codes(v) -> list[str]:
    return [c.code for c in v.criteria]


# ------------------------------------------------------------------------------ rules


def test_braf_v600e_in_melanoma_is_oncogenic_tier_one_with_level_a_evidence(interp) -> None:
    v = interp.interpret(record("BRAF", "missense_variant", "p.V600E"), "SKCM")
    assert v.oncogenicity == C.ONCOGENIC and v.points >= 10
    assert {"OS1", "OS3", "OP4"} <= set(codes(v))
    assert v.tier == "I" and v.variant_class == C.PATHOGENIC
    level_a = [e for e in v.evidence if e.level == "A" and e.in_tumor_type]
    assert level_a and all("Melanoma" in e.disease for e in level_a)
    assert "Vemurafenib" in v.therapies or "Dabrafenib" in v.therapies
    assert "EID" in v.tier_reason and not v.abstention


def test_a_tumour_type_without_level_a_b_evidence_gives_tier_two(kb, interp) -> None:
    # BRAF V600E has tumour-agnostic (pan-cancer) level B evidence, so it is tier I in every
    # type; without those rows, prostate cancer has no A/B evidence for it: tier II.
    organ_only = replace_evidence(kb, [e for e in kb.evidence
                                       if e.disease not in PAN_CANCER_DISEASES])  # fmt: skip
    v = Interpreter(organ_only).interpret(record("BRAF", "missense_variant", "p.V600E"), "PRAD")
    assert v.tier == "II" and "not in this tumour type" in v.tier_reason
    assert v.oncogenicity == C.ONCOGENIC  # oncogenicity does not depend on the tumour type
    egfr = record("EGFR", "missense_variant", "p.L858R")
    assert interp.interpret(egfr, "LUAD").tier == "I"
    assert interp.interpret(egfr, "BRCA").tier == "II"
    assert interp.interpret(egfr, None).tier == "II"  # no type given: never tier I


def replace_evidence(kb: KnowledgeBase, evidence: list) -> KnowledgeBase:
    return KnowledgeBase(tuple(evidence), kb.variants, kb.assertions, kb.hotspots,
                         kb.gene_roles, kb.oncotree_types, kb.manifest)  # fmt: skip


def test_common_snp_is_benign_tier_four(interp) -> None:
    v = interp.interpret(record("TP53", "missense_variant", "p.P72R", af=0.3), "BRCA")
    assert v.oncogenicity == C.BENIGN and codes(v) == ["SBVS1"] and v.points == -8
    assert v.tier == "IV" and v.variant_class == C.BENIGN
    rare = interp.interpret(record("TTN", "missense_variant", "p.A123V", af=0.02), "BRCA")
    assert codes(rare) == ["SBS1"] and rare.oncogenicity == C.LIKELY_BENIGN


def test_truncating_variant_in_a_tumour_suppressor_is_likely_oncogenic(interp) -> None:
    v = interp.interpret(record("SETD2", "stop_gained", "p.E500*"), "KIRC")
    assert codes(v) == ["OVS1", "OP4"] and v.points == 9
    assert v.oncogenicity == C.LIKELY_ONCOGENIC and v.variant_class == C.PATHOGENIC
    # the same change in an oncogene is no null-variant evidence
    assert "OVS1" not in codes(interp.interpret(record("KIT", "stop_gained", "p.E500*"), "KIRC"))


def test_unknown_missense_is_vus_tier_three_with_a_reason(interp) -> None:
    v = interp.interpret(record("TTN", "missense_variant", "p.A123V"), "BRCA")
    assert v.oncogenicity == C.VUS and v.tier == "III" and v.variant_class == C.VUS
    assert codes(v) == ["OP4"] and "not enough evidence" in v.abstention
    assert not v.evidence and v.n_evidence == 0


def test_conflicting_strong_evidence_abstains(interp) -> None:
    v = interp.interpret(record("BRAF", "missense_variant", "p.V600E", af=0.2), "SKCM")
    assert "SBVS1" in codes(v) and "OS1" in codes(v)
    assert v.oncogenicity == C.VUS and v.tier == "III" and v.variant_class == C.VUS
    assert v.abstention.startswith("conflicting evidence")


def test_unannotated_record_abstains_and_says_why(interp) -> None:
    v = interp.interpret(record(annotated=False), "SKCM")  # build unknown: no coordinates
    assert v.variant_class == C.VUS and not v.criteria and "no gene/consequence" in v.abstention


def test_grch37_coordinates_find_civic_without_annotation(interp) -> None:
    v = interp.interpret(record(annotated=False), "SKCM", build="GRCh37")
    assert v.gene == "BRAF" and v.tier == "I"
    assert {e.match for e in v.evidence} == {"coordinates"}


def test_population_frequency_needs_a_declared_field_for_op4(interp) -> None:
    v = interp.interpret(record("TTN", "missense_variant", "p.A1V", absent_in_gnomad=False), "")
    assert "OP4" not in codes(v) and v.population_af is None


def test_amplification_and_fusion_use_alteration_level_civic_entries(interp) -> None:
    amp = record("ERBB2", "transcript_amplification", kind="symbolic", alt="<DUP>",
                 sv_type="DUP", info={"CN": 9})  # fmt: skip
    v = interp.interpret(amp, "BRCA")
    assert codes(v) == ["OS1", "XS1"] and v.tier == "I" and "Trastuzumab" in v.therapies
    assert {e.match for e in v.evidence} == {"alteration"}
    bnd = record("EML4", "gene_fusion", kind="breakend", alt="A[2:29446000[")
    v = Interpreter(interp.kb, InterpretConfig(max_evidence=500)).interpret(bnd, "LUAD", "unknown",
                                                                             "ALK")  # fmt: skip
    assert v.fusion_partner == "ALK" and "XS2" in codes(v) and v.tier == "I"
    assert {e.civic_variant for e in v.evidence} >= {"ALK EML4::ALK", "ALK Fusion"}
    assert len(v.evidence) == v.n_evidence > InterpretConfig().max_evidence


def test_hooks_are_reported_not_faked(kb, interp) -> None:
    braf = record("BRAF", "missense_variant", "p.V600E")
    plain = interp.interpret(braf, "SKCM")
    assert plain.score is None and plain.annotation_reading == NOT_AVAILABLE
    batches: list[int] = []
    seen: list[FreeText] = []
    reading = AnnotationReading(C.PATHOGENIC, ("onkogen",), ("BRAF",), ("GENE:BRAF=BRAF",),
                                "SKCM", 0.8)  # fmt: skip

    def scorer(records):
        batches.append(len(records))
        return [0.97] * len(records)

    def reader(texts):
        seen.extend(texts)
        return [reading] * len(texts)

    hooked = Interpreter(kb, variant_scorer=scorer, annotation_reader=reader)
    note = FreeText("ANNOTATION", "BRAF onkogen", "de")
    noted = replace(braf, free_text=(note,))
    v, again = hooked.interpret_batch([noted, noted], "SKCM")
    assert batches == [2] and seen == [note]  # one call per batch, each text read once
    assert v.score == 0.97 and "OP1" in codes(v) and v.points == plain.points
    assert v.annotation_readings == (reading,) and again.annotation_readings == (reading,)
    assert "supports pathogenic (onkogen)" in v.annotation_reading
    assert "names BRAF (the annotated gene)" in v.annotation_reading
    assert "agrees with the class pathogenic" in v.annotation_reading
    low = Interpreter(kb, variant_scorer=lambda rs: [0.01] * len(rs)).interpret(braf)
    assert "SBP1" in codes(low)


def test_the_genomic_encoder_is_evidence_and_never_decides_a_class(kb) -> None:
    # No population field: SBP1 alone would be -1 points, which the SOP's cut-offs call
    # likely benign; the score is listed but the class stays VUS for lack of evidence.
    bare = record("TTN", "missense_variant", "p.A123V", absent_in_gnomad=False)
    for p, code in ((0.02, "SBP1"), (0.99, "OP1")):
        v = Interpreter(kb, variant_scorer=lambda rs, p=p: [p] * len(rs)).interpret(bare)
        assert codes(v) == [code] and v.points == 0 and v.variant_class == C.VUS
        assert "no oncogenic or benign criterion applies" in v.abstention
        assert "(not counted)" in v.criteria[0].reason
    # a +5 hotspot stays VUS; the reason says what counting the encoder would have done
    tp53 = record("TP53", "missense_variant", "p.R282W")
    base = Interpreter(kb).interpret(tp53, "BRCA")
    scored = Interpreter(kb, variant_scorer=lambda rs: [0.95] * len(rs)).interpret(tp53, "BRCA")
    assert base.points == scored.points == 5 and "OP1" in codes(scored)
    assert base.variant_class == scored.variant_class == C.VUS
    assert "would make it likely oncogenic" in scored.class_reason
    assert "would make" not in base.class_reason


def test_analyses_are_shared_across_residues_without_knowledge(kb) -> None:
    interp = Interpreter(kb)
    a = interp.interpret(record("BRAF", "missense_variant", "p.A123V"), "SKCM")
    b = interp.interpret(record("BRAF", "missense_variant", "p.K321E"), "SKCM")
    assert (a.protein_change, b.protein_change) == ("A123V", "K321E")
    assert a.criteria is b.criteria and len(interp._analyses) == 1
    hot = interp.interpret(record("BRAF", "missense_variant", "p.V600K"), "SKCM")
    assert "OS1" in codes(hot) or "OS3" in codes(hot)  # V600 is known: its own analysis
    assert len(interp._analyses) == 2


def test_unknown_tumour_type_is_an_input_error(interp) -> None:
    with pytest.raises(InputError, match="unknown tumour type 'XYZ'"):
        interp.interpret(record("BRAF", "missense_variant", "p.V600E"), "XYZ")


def test_oncogenicity_cut_offs() -> None:
    got = [C.oncogenicity_class(p) for p in (10, 9, 6, 5, 0, -1, -6, -7)]
    assert got == [C.ONCOGENIC, C.LIKELY_ONCOGENIC, C.LIKELY_ONCOGENIC, C.VUS, C.VUS,
                   C.LIKELY_BENIGN, C.LIKELY_BENIGN, C.BENIGN]  # fmt: skip


def test_consequence_terms_are_ranked_and_aliases_mapped() -> None:
    assert C.so_terms("missense_variant&splice_region_variant")[0] == "missense_variant"
    assert C.so_terms("splice_region_variant&stop_gained")[0] == "stop_gained"
    assert C.so_terms("NON_SYNONYMOUS_CODING") == ("missense_variant",)
    assert C.so_terms("frameshift deletion") == ("frameshift_variant",)
    assert C.severity_rank("made_up_term") == C.UNRANKED


# ----------------------------------------------------------------------- whole files


def test_file_interpretation_with_tmb_and_actionable_findings(small_vcf, interp) -> None:
    report = interpret_file(small_vcf, "SKCM", panel_mb=2.0, interpreter=interp)
    assert report.sample == "PATIENT_TUMOR" and report.normal_sample == "PATIENT_NORMAL"
    assert report.build == "GRCh37"
    assert report.n_records == 7 and report.n_not_in_sample == 1  # KRAS G12V: 0/2
    genes = [(v.gene, v.protein_change) for v in report.variants]
    assert ("KRAS", "G12V") not in genes and ("KRAS", "G12D") in genes
    # TTN, SETD2, BRAF, KRAS G12D count; the common SNP and the filtered call do not
    assert report.tmb_mutations == 4 and report.tmb == pytest.approx(2.0)
    assert [v.gene for v in report.actionable][:1] == ["BRAF"]
    assert all(v.tier in ("I", "II") and v.passed for v in report.actionable)
    braf = next(v for v in report.variants if v.gene == "BRAF")
    assert braf.annotation_text[0].text == "Aktivierende Hotspot-Mutation"
    assert report.counts()["class"] == {"pathogenic": 3, "benign": 1, "VUS": 2}
    half = interpret_file(small_vcf, "SKCM", panel_mb=4.0, interpreter=interp)
    assert half.tmb == pytest.approx(1.0)


def test_json_and_tsv_outputs(small_vcf, interp) -> None:
    report = interpret_file(small_vcf, "SKCM", interpreter=interp)
    data = json.loads(report.to_json())
    assert data["summary"]["n_variants"] == len(report.variants) == len(data["variants"])
    assert data["genomic_encoder_score"] == NOT_AVAILABLE
    braf = next(v for v in data["variants"] if v["gene"] == "BRAF")
    assert braf["tier"] == "I" and braf["criteria"][0]["code"] == "OS1" and braf["therapies"]
    assert data["actionable"][0]["gene"] == "BRAF"
    rows = [line.split("\t") for line in report.to_tsv().splitlines()]
    assert tuple(rows[0]) == TSV_COLUMNS and len(rows) == len(report.variants) + 1
    assert all(len(r) == len(TSV_COLUMNS) for r in rows)
    col = {name: i for i, name in enumerate(TSV_COLUMNS)}
    braf_row = next(r for r in rows if r[col["gene"]] == "BRAF")
    assert braf_row[col["class"]] == "pathogenic" and "EID" in braf_row[col["civic_evidence"]]


@pytest.mark.parametrize("name", ["annotated.vcf", "annotated.vcf.gz"])
def test_annotated_vcf_rereads_with_the_reader(small_vcf, interp, tmp_path, name) -> None:
    report = interpret_file(small_vcf, "SKCM", interpreter=interp)
    out = report.write_annotated_vcf(tmp_path / name)
    header, records, warnings = read_all(out)
    assert not warnings and header.samples == ("PATIENT_TUMOR", "PATIENT_NORMAL")
    assert len(records) == 7
    by_key = {r.key: r for r in records}
    braf = by_key["7:140453136:A>T"]
    assert braf.info["CMKD_CLASS"] == "pathogenic" and braf.info["CMKD_TIER"] == "I"
    assert braf.info["CMKD_EVIDENCE"].startswith("OS1&OS3&OM4&OP4&EID")
    # multi-allelic: one value per ALT (raw INFO text), "." for the allele not carried
    assert by_key["12:25398284:C>A"].info["CMKD_TIER"] == ".,II"
    assert by_key["17:7579472:G>C"].info["CMKD_ONCOGENICITY"] == "benign"
    # annotating an annotated file replaces its fields rather than adding a second set
    again = interpret_file(out, "LUAD", interpreter=interp).write_annotated_vcf(
        tmp_path / f"again-{name}"
    )
    text = again.read_bytes() if name.endswith(".vcf") else gzip.decompress(again.read_bytes())
    assert text.count(b"##INFO=<ID=CMKD_TIER") == 1 and b"tumor_type=LUAD" in text
    assert {r.key: r for r in read_all(again)[1]}["7:140453136:A>T"].info["CMKD_TIER"] == "I"


def test_truncated_file_is_rejected_whole(tmp_path, interp) -> None:
    path = tmp_path / "cut.vcf"
    path.write_text(SMALL_VCF.rsplit("\n", 3)[0][:-40] + "\tbroken\n")
    with pytest.raises(InputError, match=r"cut.vcf: line \d+: "):
        interpret_file(path, "SKCM", interpreter=interp)


# ---------------------------------------------------------------------------- measured


def test_f1_scores_arithmetic() -> None:
    confusion = {("pathogenic", "pathogenic"): 8, ("pathogenic", "VUS"): 2,
                 ("VUS", "VUS"): 9, ("VUS", "pathogenic"): 1, ("benign", "benign"): 5}  # fmt: skip
    got = f1_scores(confusion)
    p = got["per_class"]["pathogenic"]
    assert p["precision"] == pytest.approx(8 / 9, abs=1e-4) and (p["recall"], p["support"]) == (
        0.8,
        10,
    )
    assert p["f1"] == pytest.approx(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8), abs=1e-4)
    assert got["per_class"]["benign"]["f1"] == 1.0
    assert got["macro_f1"] == pytest.approx(
        sum(m["f1"] for m in got["per_class"].values()) / 3, abs=1e-4
    )


def test_evaluate_cohort_scores_every_test_variant(tiny_cohort: Path, interp) -> None:
    result = evaluate_cohort(tiny_cohort, interpreter=interp)
    assert result["n_cases"] > 0 and result["unmatched"] == 0
    total = sum(sum(row.values()) for row in result["confusion"].values())
    assert total == result["n_variants"] > 0
    assert set(result["per_class"]) == set(C.CLASSES)
    # benign polymorphisms carry gnomAD frequencies, so they are never called pathogenic
    assert result["confusion"]["benign"]["pathogenic"] == 0
    assert 0.5 < result["macro_f1"] <= 1.0
