"""Clinical profile tables and sampler: schema coverage, consistency, frequencies."""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from core.data import oncology
from core.data.oncology import (
    CANCER_TYPE_PREVALENCE,
    DRIVER_KINDS,
    TESTED_GENES,
    ClinicalProfile,
    DriverEvent,
    all_driver_events,
    gene_frequencies,
    parse_event,
    sample_cancer_type,
    sample_profile,
    subtype_frequencies,
)
from core.data.schema import (
    BIOMARKER_STATUSES,
    BIOMARKERS,
    CANCER_TYPES,
    DRIVER_GENES,
    STAGES,
    SUBTYPES,
)
from core.errors import ConfigError

N = 3000
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def samples() -> dict[str, list[ClinicalProfile]]:
    rng = np.random.default_rng(2024)
    return {t: [sample_profile(t, rng) for _ in range(N)] for t in CANCER_TYPES}


def _share(profiles: list[ClinicalProfile], pred) -> float:
    return sum(map(pred, profiles)) / len(profiles)


def _has(p: ClinicalProfile, gene: str, kind: str | None = None) -> bool:
    return any(d.gene == gene and (kind is None or d.kind == kind) for d in p.drivers)


def test_tables_cover_the_schema() -> None:
    for t in CANCER_TYPES:
        freqs = subtype_frequencies(t)
        assert tuple(freqs) == SUBTYPES[t]
        assert math.isclose(sum(freqs.values()), 1.0)
        assert set(TESTED_GENES[t]) <= set(DRIVER_GENES)
        assert set(gene_frequencies(t)) <= set(DRIVER_GENES)
    assert set(TESTED_GENES) == set(CANCER_TYPES) == set(CANCER_TYPE_PREVALENCE)
    assert math.isclose(sum(CANCER_TYPE_PREVALENCE.values()), 1.0)


def test_every_driver_event_is_well_formed() -> None:
    events = all_driver_events()
    assert {e.gene for e in events} <= set(DRIVER_GENES)
    assert {e.kind for e in events} == set(DRIVER_KINDS)
    for e in events:
        assert bool(e.partner) == (e.kind == "FUSION")
        assert bool(e.protein_change) == (e.kind not in ("AMPLIFICATION", "DELETION", "FUSION"))


def test_parse_event_shorthand() -> None:
    assert parse_event("BRAF", "V600E") == DriverEvent("BRAF", "MISSENSE", "V600E")
    assert parse_event("TP53", "R213*").kind == "NONSENSE"
    assert parse_event("TP53", "R209fs").kind == "FRAMESHIFT"
    assert parse_event("EGFR", "E746_A750del").kind == "INFRAME_DELETION"
    assert parse_event("MET", "X1010_splice").residue == 1010
    assert parse_event("ALK", "fusion:EML4") == DriverEvent("ALK", "FUSION", partner="EML4")
    assert parse_event("TERT", "promoter:C228T").residue == 0
    with pytest.raises(ConfigError):
        parse_event("KRAS", "G12")
    with pytest.raises(ConfigError):
        sample_profile("XXXX", np.random.default_rng(0))


def test_labels() -> None:
    assert DriverEvent("ALK", "FUSION", partner="EML4").label == "EML4-ALK fusion"
    assert DriverEvent("ERBB2", "AMPLIFICATION").label == "ERBB2 amplification"
    assert DriverEvent("BRAF", "MISSENSE", "V600E").label == "BRAF V600E"


def test_profiles_are_valid(samples: dict[str, list[ClinicalProfile]]) -> None:
    for t, profiles in samples.items():
        for p in profiles:
            assert p.cancer_type == t and p.subtype in SUBTYPES[t]
            assert p.stage in STAGES or (p.stage == "" and t == "GBM")
            assert p.grade in (0, 1, 2, 3) and 15 <= p.age <= 90 and p.sex in ("F", "M")
            names = [b for b, _ in p.biomarkers]
            assert len(names) == len(set(names)) and set(names) <= set(BIOMARKERS)
            assert all(s in BIOMARKER_STATUSES for _, s in p.biomarkers)
            assert ("TMB", p.tmb_class) in p.biomarkers
            assert len(p.drivers) == len(set(p.drivers))
            assert p.driver_genes == tuple(sorted({d.gene for d in p.drivers}))


def test_sex_follows_the_type(samples: dict[str, list[ClinicalProfile]]) -> None:
    assert all(p.sex == "M" for p in samples["PRAD"])
    assert all(p.sex == "F" for p in samples["OV"] + samples["CESC"])
    assert _share(samples["BRCA"], lambda p: p.sex == "F") > 0.97


def test_subtypes_agree_with_drivers_and_biomarkers(
    samples: dict[str, list[ClinicalProfile]],
) -> None:
    for p in samples["BRCA"]:
        her2 = p.subtype == "BRCA_HER2"
        assert _has(p, "ERBB2", "AMPLIFICATION") == her2
        assert (("HER2", "positive") in p.biomarkers) == her2
        if p.subtype == "BRCA_TNBC":
            assert {("ER", "negative"), ("PR", "negative")} <= set(p.biomarkers)
    for p in samples["LUAD"]:
        egfr = {d.kind for d in p.drivers if d.gene == "EGFR"}
        assert bool(egfr) == (p.subtype == "LUAD_EGFR")
        assert egfr <= {"MISSENSE", "INFRAME_DELETION"}
        assert _has(p, "ALK", "FUSION") == (p.subtype == "LUAD_ALK")
        assert _has(p, "KRAS") == (p.subtype == "LUAD_KRAS")
    for p in samples["SKCM"]:
        braf = [d.protein_change for d in p.drivers if d.gene == "BRAF"]
        assert bool(braf) == (p.subtype == "SKCM_BRAF")
        assert all(c.startswith("V600") for c in braf)
    for p in samples["COAD"]:
        msih = p.subtype == "COAD_MSIH"
        assert (("MSI", "high") in p.biomarkers) == msih
        assert not msih or p.tmb_class == "high"
    for p in samples["OV"]:
        assert (_has(p, "BRCA1") or _has(p, "BRCA2")) == (p.subtype == "OV_HGSOC_HRD")
    for p in samples["PRAD"]:
        erg = [d for d in p.drivers if d.gene == "ERG"]
        assert bool(erg) == (p.subtype == "PRAD_ERG")
        assert all(d.kind == "FUSION" and d.partner == "TMPRSS2" for d in erg)
    for p in samples["GBM"]:
        assert (("MGMT", "methylated") in p.biomarkers) == (p.subtype == "GBM_MGMT_METH")
    for p in samples["SARC"]:
        assert _has(p, "MDM2", "AMPLIFICATION") == (p.subtype == "SARC_DDLPS")
    hnsc = samples["HNSC"]
    for p in hnsc:
        assert (("HPV", "positive") in p.biomarkers) == (p.subtype == "HNSC_HPVPOS")
    pos = [p for p in hnsc if p.subtype == "HNSC_HPVPOS"]
    neg = [p for p in hnsc if p.subtype == "HNSC_HPVNEG"]
    tp53 = [_share(group, lambda p: _has(p, "TP53")) for group in (pos, neg)]
    assert tp53[0] < 0.15 and tp53[1] > 0.7


def _within(observed: float, expected: float, n: int) -> bool:
    return abs(observed - expected) <= 4 * math.sqrt(expected * (1 - expected) / n) + 0.005


def test_frequencies_match_the_tables(samples: dict[str, list[ClinicalProfile]]) -> None:
    for t, profiles in samples.items():
        subtypes = Counter(p.subtype for p in profiles)
        for sub, expected in subtype_frequencies(t).items():
            assert _within(subtypes[sub] / N, expected, N), (t, sub)
        for gene, expected in gene_frequencies(t).items():
            assert _within(_share(profiles, lambda p, g=gene: _has(p, g)), expected, N), (t, gene)


def test_published_anchor_frequencies(samples: dict[str, list[ClinicalProfile]]) -> None:
    assert 0.85 < _share(samples["PAAD"], lambda p: _has(p, "KRAS")) < 0.97
    assert 0.45 < _share(samples["SKCM"], lambda p: _has(p, "BRAF")) < 0.55
    assert _share(samples["GBM"], lambda p: _has(p, "IDH1")) < 0.1
    assert 0.11 < _share(samples["LUAD"], lambda p: _has(p, "EGFR")) < 0.19
    stage_iv = {t: _share(samples[t], lambda p: p.stage == "IV") for t in ("PAAD", "LUAD", "THCA")}
    assert stage_iv["PAAD"] > 0.4 and stage_iv["LUAD"] > 0.4 and stage_iv["THCA"] < 0.2
    assert Counter(p.stage for p in samples["THCA"]).most_common(1)[0][0] == "I"


def test_sampling_is_deterministic() -> None:
    def draw(seed: int) -> list[ClinicalProfile]:
        rng = np.random.default_rng(seed)
        return [sample_profile(t, rng) for t in CANCER_TYPES for _ in range(20)]

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_cancer_type_prevalence() -> None:
    rng = np.random.default_rng(0)
    counts = Counter(sample_cancer_type(rng) for _ in range(20000))
    assert set(counts) == set(CANCER_TYPES)
    assert 0.01 < counts["SARC"] / 20000 < 0.03
    assert counts["SARC"] == min(counts.values())


def _reference_data() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(3D hotspot residues, CIViC variant names), from the shared data or shipped tables."""
    shared = Path(os.environ.get("CMKD_SHARED_DATA", REPO.parent / "shared" / "data"))
    sources = [
        (shared / "3dhotspots_residues.tsv", ("Gene", "Residue"),
         shared / "civic_01-Aug-2024-VariantSummaries.tsv", ("gene", "variant")),
        (REPO / "assets/knowledge/hotspots.tsv", ("gene", "residue"),
         REPO / "assets/knowledge/civic_variants.tsv", ("gene", "variant")),
    ]  # fmt: skip
    for residues, rcols, civic, ccols in sources:
        if residues.is_file() and civic.is_file():

            def rows(path: Path, cols: tuple[str, str]) -> set[tuple[str, str]]:
                with path.open(encoding="utf-8", newline="") as f:
                    reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
                    # CIViC names some variants with their cDNA change: "R167Q (c.500G>A)"
                    return {(r[cols[0]], r[cols[1]].split(" (")[0].upper()) for r in reader}

            return rows(residues, rcols), rows(civic, ccols)
    pytest.skip(f"no 3D hotspot / CIViC tables in {shared} or assets/knowledge")


def test_missense_hotspots_are_known() -> None:
    residues, civic = _reference_data()
    missense = [e for e in all_driver_events() if e.kind == "MISSENSE"]
    unknown = [
        e.label for e in missense
        if (e.gene, e.protein_change[:-1]) not in residues
        and (e.gene, e.protein_change.upper()) not in civic
    ]  # fmt: skip
    assert not unknown, f"missense drivers in neither 3D hotspots nor CIViC: {unknown}"
    assert len(missense) > 50


def test_one_generator_call_per_profile() -> None:
    # What keeps sampling fast and its stream stable; timing itself is not asserted.
    class Counting:
        def __init__(self) -> None:
            self.rng, self.calls = np.random.default_rng(0), 0

        def random(self, *args):
            self.calls += 1
            return self.rng.random(*args)

    rng = Counting()
    oncology.sample_profile("BRCA", rng)  # type: ignore[arg-type]
    assert rng.calls == 1
