"""The recall ceilings of a perfect reader of what each note states (core.eval.evaluate)."""

from __future__ import annotations

import dataclasses

import pytest

from core.data.schema import NECROSIS_LEVELS, TIL_LEVELS, Case, Variant
from core.eval.evaluate import (
    genomic_group,
    profile_agrees_with_note,
    slide_agrees_with_note,
    slide_group,
    statement_ceiling,
)
from core.eval.metrics import group_recall_ceiling

BRISK, FOCAL = TIL_LEVELS[2], NECROSIS_LEVELS[1]


def _case(i: int, **changes) -> Case:
    base = Case(
        case_id=f"C{i}", cancer_type="SKCM", label="SKCM", subtype="SKCM_BRAF", stage="II",
        grade=2, age=50, sex="F", split="test", histology=(BRISK, FOCAL),
        biomarkers=(("TMB", "high"),),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def _driver(gene: str, change: str) -> Variant:
    return Variant(
        chrom="chr7", pos=1, ref="A", alt="T", gene=gene, consequence="missense_variant",
        hgvsp=f"p.{change}" if change else "", role="driver", vaf=0.4, depth=100,
    )  # fmt: skip


def test_a_slide_agrees_with_what_the_note_states_and_nothing_more() -> None:
    target = _case(0)
    other_grade = _case(1, grade=3)
    other_til = _case(2, histology=(TIL_LEVELS[0], FOCAL))
    other_type = _case(3, cancer_type="BRCA", subtype="BRCA_LUMA")
    only_type = slide_agrees_with_note(target, "melanoma", {"TYPE:SKCM"})
    assert only_type(other_grade) and only_type(other_til) and not only_type(other_type)
    graded = slide_agrees_with_note(target, "melanoma G2", {"TYPE:SKCM", "GRADE:2"})
    assert not graded(other_grade) and graded(other_til)
    with_tils = slide_agrees_with_note(target, "...", {"TYPE:SKCM", BRISK})
    assert with_tils(other_grade) and not with_tils(other_til)
    assert with_tils(target)


def test_a_profile_agrees_with_named_drivers_negatives_and_tmb() -> None:
    v600e, v600k = _driver("BRAF", "V600E"), _driver("BRAF", "V600K")
    target = _case(0, variants=(v600e,))
    same_gene = _case(1, variants=(v600k,))
    with_nras = _case(2, variants=(v600e, _driver("NRAS", "Q61R")))
    low_tmb = _case(3, variants=(v600e,), biomarkers=(("TMB", "low"),))
    gene_only = profile_agrees_with_note(target, "BRAF mutated", {"GENE:BRAF"})
    assert gene_only(same_gene) and gene_only(with_nras) and gene_only(low_tmb)
    named = profile_agrees_with_note(target, "BRAF V600E; NRAS wild-type; TMB high",
                                     {"GENE:BRAF", "GENE:NRAS", "BIOMARKER:TMB"})  # fmt: skip
    assert named(target)
    assert not named(same_gene) and not named(with_nras) and not named(low_tmb)


def test_the_statement_ceiling_counts_the_slides_a_note_leaves_tied() -> None:
    gallery = [_case(i, grade=1 + i % 3) for i in range(30)]  # 10 slides of each grade
    targets = [gallery[0], gallery[0]]  # a grade-1 case, two notes about it
    texts = ["melanoma", "melanoma grade 1"]  # the first leaves all 30 tied, the second 10
    got = statement_ceiling(targets, texts, "en", gallery, slide_agrees_with_note, 5)
    assert got == pytest.approx((5 / 30 + 5 / 10) / 2)
    assert statement_ceiling([], [], "en", gallery, slide_agrees_with_note, 5) is None
    # Never above the group ceiling, which assumes a note states everything.
    group = group_recall_ceiling([slide_group(c) for c in targets],
                                 [slide_group(c) for c in gallery], 5)  # fmt: skip
    assert got <= group


def test_genomic_groups_ignore_the_type_the_profile_does_not_show() -> None:
    v600e = _driver("BRAF", "V600E")
    skcm = _case(0, variants=(v600e,))
    thca = _case(1, cancer_type="THCA", subtype="", variants=(v600e,))
    assert genomic_group(skcm) == genomic_group(thca)
    assert genomic_group(skcm) != genomic_group(dataclasses.replace(thca, biomarkers=()))
