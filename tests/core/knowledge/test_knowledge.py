"""Knowledge tables: the build reproduces the shipped files, and the lookups answer correctly.

The loader tests use only the shipped `assets/knowledge/`; the build tests need the shared
source data and skip without it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.data.schema import CANCER_TYPES
from core.errors import InputError
from core.knowledge import build
from core.knowledge.tables import (
    MANIFEST,
    PAN_CANCER_DISEASES,
    TABLES,
    Hotspot,
    KnowledgeBase,
    default_dir,
    encode_row,
    normalize_protein_change,
    read_table,
)

SRC = build.default_src()
needs_src = pytest.mark.skipif(
    not (SRC / build.CIVIC_EVIDENCE).is_file(),
    reason=f"shared source data not found at {SRC} (set CMKD_SHARED_DATA to run the build)",
)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


# --- build -----------------------------------------------------------------------------------


@needs_src
def test_build_reproduces_the_shipped_tables_byte_for_byte(tmp_path: Path) -> None:
    build.build(SRC, tmp_path)
    for name in (*TABLES, MANIFEST):
        assert (tmp_path / name).read_bytes() == (default_dir() / name).read_bytes(), name
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"


@needs_src
def test_build_fails_on_a_hand_mapped_disease_missing_from_civic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    diseases = {**build.TCGA_TO_CIVIC_DISEASES, "GBM": ("Glioblastoma", "Not A Disease")}
    monkeypatch.setattr(build, "TCGA_TO_CIVIC_DISEASES", diseases)
    with pytest.raises(InputError, match="Not A Disease"):
        build.build(SRC, tmp_path)


def test_build_cli_reports_a_missing_source_as_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = build.main(["--src", str(tmp_path / "absent"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_hand_maps_cover_exactly_the_cohort_cancer_types() -> None:
    assert set(build.TCGA_TO_ONCOTREE) == set(CANCER_TYPES)
    assert set(build.TCGA_TO_CIVIC_DISEASES) == set(CANCER_TYPES)


def test_shipped_tables_stay_small() -> None:
    total = sum((default_dir() / name).stat().st_size for name in (*TABLES, MANIFEST))
    assert total < 5_000_000


# --- loading ---------------------------------------------------------------------------------


def test_manifest_counts_match_the_loaded_rows(kb: KnowledgeBase) -> None:
    tables = kb.manifest["tables"]
    assert tables["civic_evidence.tsv"]["rows"] == len(kb.evidence)
    assert tables["hotspots.tsv"]["rows"] == len(kb.hotspots)
    assert tables["hotspots.tsv"]["licence"].startswith("ODbL")
    assert len(kb.oncotree_types) == len(CANCER_TYPES)


def test_table_codec_round_trips_lists_and_counts(tmp_path: Path) -> None:
    row = Hotspot("KRAS", "G12", 12, "G", "Hotspot", 3, "<0.0001", (("D", 2), ("V", 1)), (), 0)
    path = tmp_path / "hotspots.tsv"
    header = "\t".join(f for f in Hotspot.__dataclass_fields__)
    path.write_text(header + "\n" + "\t".join(encode_row(row)) + "\n", encoding="utf-8")
    assert read_table(path, Hotspot) == (row,)


def test_encode_row_rejects_a_list_separator_inside_an_item() -> None:
    row = Hotspot("KRAS", "G12", 12, "G", "Hotspot", 3, "1", (("a|b", 2),), (), 0)
    with pytest.raises(ValueError):
        encode_row(row)


def test_load_names_the_file_with_a_wrong_header(tmp_path: Path) -> None:
    shutil.copytree(default_dir(), tmp_path, dirs_exist_ok=True)
    path = tmp_path / "gene_roles.tsv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("gene\trole\n" + "".join(lines[1:]), encoding="utf-8")
    with pytest.raises(InputError, match="gene_roles.tsv"):
        KnowledgeBase.load(tmp_path)


def test_load_of_a_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="manifest"):
        KnowledgeBase.load(tmp_path / "absent")


# --- protein changes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("V600E", "V600E"),
        ("p.V600E", "V600E"),
        ("p.Val600Glu", "V600E"),
        ("p.(Val600Glu)", "V600E"),
        ("VAL600GLU", "V600E"),
        ("p.Gln22Ter", "Q22*"),
        ("p.Glu746_Ala750del", "E746_A750del"),
        ("p.Asp770_Asn771insSerValAsp", "D770_N771insSVD"),
        ("Amplification", "Amplification"),
    ],
)
def test_normalize_protein_change(text: str, expected: str) -> None:
    assert normalize_protein_change(text) == expected


AA3 = {"Ala": "A", "Cys": "C", "Gly": "G", "Lys": "K", "Trp": "W", "Val": "V", "Ter": "*"}


@given(
    ref=st.sampled_from(sorted(AA3)),
    alt=st.sampled_from(sorted(AA3)),
    pos=st.integers(min_value=1, max_value=5000),
)
def test_three_letter_changes_become_one_letter_and_stay_so(ref: str, alt: str, pos: int) -> None:
    one = normalize_protein_change(f"p.{ref}{pos}{alt}")
    assert one == f"{AA3[ref]}{pos}{AA3[alt]}"
    assert normalize_protein_change(one) == one


# --- lookups ---------------------------------------------------------------------------------


def test_braf_v600e_has_level_a_evidence_in_melanoma(kb: KnowledgeBase) -> None:
    assert kb.best_evidence_level("BRAF", "p.Val600Glu", "SKCM") == "A"
    top = kb.evidence_for("BRAF", "V600E", "SKCM")[0]
    assert top.evidence_level == "A"
    assert top.disease in kb.oncotree("SKCM").civic_diseases


def test_tumour_type_restricts_evidence_to_its_diseases(kb: KnowledgeBase) -> None:
    every = kb.evidence_for("BRAF", "V600E")
    colon = kb.evidence_for("BRAF", "V600E", "COAD")
    allowed = {*kb.oncotree("COAD").civic_diseases, *PAN_CANCER_DISEASES}
    assert colon and len(colon) < len(every)
    assert {e.disease for e in colon} <= allowed
    assert "Colorectal Cancer" in {e.disease for e in colon}
    levels = [e.evidence_level for e in colon]
    assert levels == sorted(levels)


def test_residue_level_evidence_applies_to_every_change_at_the_residue(
    kb: KnowledgeBase,
) -> None:
    v600k = kb.evidence_for("BRAF", "p.Val600Lys")
    assert {"V600K", "V600"} <= {e.variant for e in v600k}
    assert all(e.gene == "BRAF" and e.variant in {"V600K", "V600"} for e in v600k)


def test_no_evidence_and_no_level_for_an_unknown_change(kb: KnowledgeBase) -> None:
    assert kb.evidence_for("BRAF", "p.Trp1Cys") == ()
    assert kb.best_evidence_level("BRAF", "W1C") is None


def test_unknown_tumour_type_is_an_input_error(kb: KnowledgeBase) -> None:
    with pytest.raises(InputError, match="XYZ"):
        kb.evidence_for("BRAF", "V600E", "XYZ")


def test_assertions_carry_amp_tiers(kb: KnowledgeBase) -> None:
    her2 = kb.assertions_for("ERBB2", "Amplification", "BRCA")
    assert her2 and her2[0].amp_category == "Tier I - Level A"
    assert "Trastuzumab" in her2[0].therapies
    assert kb.assertions_for("ERBB2", "Amplification", "GBM") == ()


def test_kras_g12_is_a_hotspot(kb: KnowledgeBase) -> None:
    h = kb.hotspot("KRAS", "p.Gly12Asp")
    assert h is not None and h.residue == "G12" and h.hotspot_class == "Hotspot"
    assert dict(h.variant_aas)["D"] > 0
    assert kb.hotspot("kras", "G12C") == h
    assert kb.hotspot("KRAS", "A12D") is None  # other reference residue: another isoform
    assert kb.hotspot("KRAS", "G500D") is None
    assert kb.hotspot("KRAS", "Amplification") is None


def test_gene_roles(kb: KnowledgeBase) -> None:
    tp53, kras = kb.gene_role("TP53"), kb.gene_role("kras")
    assert tp53 is not None and tp53.role == "Tumor_Suppressor"
    assert kras is not None and kras.role == "Oncogene"
    assert tp53.n_citations == (
        tp53.oncogene_citations + tp53.tumor_suppressor_citations + tp53.driver_citations
    )
    assert kb.gene_role("NOTAGENE") is None


def test_oncotree_gives_glioblastoma_with_an_ncit_code(kb: KnowledgeBase) -> None:
    gbm = kb.oncotree("GBM")
    assert gbm is not None and gbm.oncotree_code == "GB"
    assert "Glioblastoma" in gbm.name
    assert gbm.nci_code.startswith("C") and gbm.nci_code_node == "GB"
    assert "Glioblastoma" in gbm.civic_diseases
    assert kb.oncotree("gbm") == gbm
    assert kb.oncotree("XYZ") is None


def test_variant_by_coordinates_matches_snvs_and_padded_indels(kb: KnowledgeBase) -> None:
    (v600e,) = kb.variant_by_coordinates("7", 140453136, "A", "T")
    assert (v600e.gene, v600e.variant) == ("BRAF", "V600E")
    assert kb.variant_by_coordinates("chr7", 140453136, "A", "T") == (v600e,)
    assert kb.variant_by_coordinates("7", 140453136, "A", "G") == ()
    assert kb.variant_by_coordinates("7", 140453136, "A", "T", build="GRCh38") == ()
    padded = kb.variant_by_coordinates("7", 55242464, "AGGAATTAAGAGAAGC", "A")
    assert [v.variant for v in padded] == ["E746_A750del"]
