"""Summary facts: treatment categories by type/stage/biomarker, CIViC-backed targeted options,
next steps and questions, validation of hand-entered facts, and traceability of every item."""

from __future__ import annotations

import pytest

from core.errors import InputError
from core.knowledge import KnowledgeBase
from core.summaries.facts import (
    MAX_FREE_TEXT,
    TREATMENT_CATEGORIES,
    Driver,
    FactsInput,
    coverage_inputs,
    derive_facts,
    manual_key,
    parse_change,
)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def categories(facts) -> list[str]:  # noqa: ANN001
    return [o.category for o in facts.options]


def test_her2_positive_breast_cancer_gets_a_civic_backed_her2_option(kb: KnowledgeBase) -> None:
    f = derive_facts(
        FactsInput(
            "BRCA",
            "BRCA_HER2",
            "II",
            3,
            50,
            (("ER", "negative"), ("HER2", "positive")),
            (Driver("ERBB2", "amplification"),),
        ),  # fmt: skip
        kb,
    )
    (targeted,) = [o for o in f.options if o.category == "targeted_therapy"]
    assert targeted.gene == "HER2" and "trastuzumab" in targeted.drugs
    assert {"driver:ERBB2", "biomarker:HER2"} <= set(targeted.basis)
    evidence = [b for b in targeted.basis if b.startswith("civic:EID")]
    assert evidence and all("level A" in f.fact_map()[b] for b in evidence)
    # ER-negative: no hormone therapy; HER2-positive: chemotherapy at every stage.
    assert "hormone_therapy" not in categories(f) and "chemotherapy" in categories(f)


def test_only_level_a_evidence_becomes_a_patient_option(kb: KnowledgeBase) -> None:
    braf = derive_facts(
        FactsInput("SKCM", "SKCM_BRAF", "III", drivers=(Driver("BRAF", "V600E"),)), kb
    )
    (opt,) = [o for o in braf.options if o.category == "targeted_therapy"]
    assert opt.gene == "BRAF" and {"dabrafenib", "trametinib", "vemurafenib"} & set(opt.drugs)
    # TP53 R175H has only level-B (pan-cancer trial) evidence: never offered to a patient.
    tp53 = derive_facts(
        FactsInput("BRCA", "BRCA_TNBC", "II", drivers=(Driver("TP53", "R175H"),)), kb
    )
    assert not any(o.gene for o in tp53.options)


def test_stage_drives_the_guideline_categories(kb: KnowledgeBase) -> None:
    early = derive_facts(FactsInput("COAD", "COAD_MSS", "I", biomarkers=(("MSI", "stable"),)), kb)
    assert categories(early) == ["surgery"]
    late = derive_facts(FactsInput("COAD", "COAD_MSIH", "IV", biomarkers=(("MSI", "high"),)), kb)
    assert categories(late) == ["chemotherapy", "immunotherapy", "clinical_trial"]
    pdl1 = derive_facts(FactsInput("LUAD", "LUAD_OTHER", "IV", biomarkers=(("PDL1", "high"),)), kb)
    assert "immunotherapy" in categories(pdl1) and "surgery" not in categories(pdl1)


def test_unstaged_glioblastoma_and_thyroid_wording(kb: KnowledgeBase) -> None:
    gbm = derive_facts(
        FactsInput("GBM", "GBM_MGMT_METH", "", biomarkers=(("MGMT", "methylated"),)), kb
    )
    assert categories(gbm) == ["surgery", "radiotherapy", "chemotherapy", "clinical_trial"]
    thca = derive_facts(FactsInput("THCA", "THCA_CLASSIC", "II"), kb)
    variants = {o.category: o.variant for o in thca.options}
    assert variants["radiotherapy"] == "iodine" and variants["hormone_therapy"] == "thyroid"


def test_hormone_therapy_follows_hormone_receptors(kb: KnowledgeBase) -> None:
    luma = derive_facts(FactsInput("BRCA", "BRCA_LUMA", "I", biomarkers=(("ER", "positive"),)), kb)
    (hormone,) = [o for o in luma.options if o.category == "hormone_therapy"]
    assert "biomarker:ER" in hormone.basis
    tnbc = derive_facts(FactsInput("BRCA", "BRCA_TNBC", "I", biomarkers=(("ER", "negative"),)), kb)
    assert "hormone_therapy" not in categories(tnbc)


def test_questions_and_next_steps_follow_the_options(kb: KnowledgeBase) -> None:
    young = derive_facts(FactsInput("CESC", "CESC_SCC", "II", age=32), kb)
    keys = [q.key for q in young.questions]
    assert "q.fertility" in keys and "q.stage" in keys and "q.surgery" not in keys
    assert "next.radiotherapy" in [s.key for s in young.next_steps]
    old = derive_facts(FactsInput("CESC", "CESC_SCC", "II", age=70), kb)
    assert "q.fertility" not in [q.key for q in old.questions]


def test_every_item_of_every_coverage_input_is_traceable(kb: KnowledgeBase) -> None:
    inputs = coverage_inputs()
    assert {(f.cancer_type, f.stage) for f in inputs} >= {("GBM", ""), ("BRCA", "IV")}
    for inp in inputs:
        f = derive_facts(inp, kb)
        known = f.fact_map()
        assert f.options and all(o.category in TREATMENT_CATEGORIES for o in f.options)
        for item in (*f.options, *f.next_steps, *f.questions):
            assert item.basis and set(item.basis) <= known.keys(), (inp, item)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cancer_type": "XYZ"}, "cancer type"),
        ({"cancer_type": "BRCA", "subtype": "LUAD_EGFR"}, "not a BRCA subtype"),
        ({"cancer_type": "BRCA", "stage": "V"}, "stage"),
        ({"cancer_type": "BRCA", "biomarkers": (("HER2", "high"),)}, "HER2 status"),
        ({"cancer_type": "BRCA", "drivers": (Driver("braf!", "V600E"),)}, "gene"),
    ],
)
def test_invalid_hand_entered_facts_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        FactsInput(**kwargs)


def test_manual_key_and_free_text(kb: KnowledgeBase) -> None:
    a, b = FactsInput("OV", "OV_HGSOC_HRD", "III"), FactsInput("OV", "OV_HGSOC_HRD", "IV")
    assert manual_key(a) == manual_key(FactsInput("OV", "OV_HGSOC_HRD", "III")) != manual_key(b)
    f = derive_facts(a, kb)
    assert f.case_key == manual_key(a)
    assert f.with_free_text("  note ", "").clinician_note == "note"
    with pytest.raises(InputError, match="at most"):
        f.with_free_text("x" * (MAX_FREE_TEXT + 1), "")
    assert parse_change("AMP") == "amplification" and parse_change("p.V600E") == "V600E"
