"""The model hooks: the genomic encoder's variant probe and the student's annotation reader,
loaded from a tiny built workspace, and what the report says when they are missing."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from core.data.schema import CANCER_TYPES
from core.genomics import classes as C
from core.genomics.interpret import interpret_file
from core.genomics.models import (
    CONFIG_FILE,
    GenomicScorer,
    auc,
    load_models,
    record_variant,
    train_variant_probe,
)
from core.genomics.records import Annotation, FreeText, VariantRecord
from core.knowledge.tables import KnowledgeBase

GERMAN = Path(__file__).parent / "golden" / "german_free_text" / "input.vcf"


@pytest.fixture(scope="module")
def probe_dir(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probe") / "variant_probe"
    train_variant_probe(tiny_models / "cohort", tiny_models / "models/teacher", out)
    return out


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def test_a_vcf_allele_reaches_the_featuriser_with_its_protein_change() -> None:
    """The cohort's variants carry "p.V600E"; an uploaded VCF's variant reads the same,
    whatever notation the annotator wrote."""
    record = VariantRecord(
        line=12, chrom="chr7", pos=140753336, id=".", ref="A", alt="T", allele_index=1,
        n_alts=1, kind="SNV", qual=None, filters=("PASS",), info={}, vaf=0.4, depth=100,
        annotations=(Annotation("CSQ", "BRAF", "missense_variant", "MODERATE",
                                hgvsp="ENSP00000288602.6:p.Val600Glu"),),
    )  # fmt: skip
    variant = record_variant(record)
    assert (variant.gene, variant.hgvsp, variant.consequence) == (
        "BRAF",
        "p.V600E",
        "missense_variant",
    )
    bare = record_variant(dataclasses.replace(record, annotations=()))
    assert bare.hgvsp == "" and bare.gene == ""


def test_auc_counts_ranks_and_ties() -> None:
    assert auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == 0.75
    assert auc(torch.tensor([0.5, 0.5]), torch.tensor([0, 1])) == 0.5
    assert auc(torch.tensor([0.2, 0.3]), torch.tensor([1, 1])) is None


def test_probe_is_fitted_on_train_and_measured_on_every_split(probe_dir, tiny_models) -> None:
    record = json.loads((probe_dir / CONFIG_FILE).read_text())
    teacher = json.loads((tiny_models / "models/teacher/config.json").read_text())
    assert record["kind"] == "variant_probe" and record["teacher_version"] == teacher["version"]
    train = record["metrics"]["train"]
    assert train["n"] > train["drivers"] > 0 and 0.5 < train["auc"] <= 1.0
    assert set(record["metrics"]) == {"train", "val", "test"}


def test_models_read_a_german_annotation_and_score_every_variant(probe_dir, tiny_models, kb):
    models = load_models(tiny_models / "models/teacher", tiny_models / "models/student",
                         probe_dir)  # fmt: skip
    assert models.scorer_status.startswith("available: teacher-")
    assert models.reader_status.startswith("available: student-")
    calls: list[int] = []
    assert isinstance(models.variant_scorer, GenomicScorer)
    forward = models.variant_scorer._probabilities
    models.variant_scorer._probabilities = lambda rows: calls.append(len(rows)) or forward(rows)
    report = interpret_file(GERMAN, "SKCM", interpreter=models.interpreter(kb))
    data = json.loads(report.to_json())
    assert data["genomic_encoder_score"] == models.scorer_status
    assert all(0.0 <= v["score"] <= 1.0 for v in data["variants"])
    assert calls == [2]  # one forward pass for the file's two variants
    braf = next(v for v in data["variants"] if v["gene"] == "BRAF")
    comment, annotation = braf["annotation_readings"]  # COMMENT, then the CSQ ANNOTATION
    assert "GENE:BRAF=BRAF" in annotation["entities"] and annotation["genes"] == ["BRAF"]
    assert annotation["implies"] == C.PATHOGENIC and annotation["cues"] == ["Aktivierende Mutation"]
    assert annotation["cancer_type"] in CANCER_TYPES and 0.0 < annotation["cancer_type_p"] <= 1.0
    assert comment["implies"] == C.VUS and comment["entities"] == []
    assert "names BRAF (the annotated gene)" in braf["annotation_reading"]
    # evidence only: the same file without models gets the same classes and points
    plain = interpret_file(GERMAN, "SKCM")
    assert [(v.variant_class, v.points) for v in plain.variants] == [
        (v.variant_class, v.points) for v in report.variants
    ]


def test_reader_says_what_the_wording_supports(tiny_models) -> None:
    reader = load_models(tiny_models / "models/teacher", tiny_models / "models/student",
                         tiny_models / "none").annotation_reader  # fmt: skip
    assert reader is not None
    texts = [
        FreeText("NOTE", "KRAS-Variante, als pathogen eingestuft", "de"),
        FreeText("NOTE", "Polymorphismus, wahrscheinlich benigne", "de"),
        FreeText("NOTE", "variante patogénica o polimorfismo", "es"),
        FreeText("NOTE", "BRAF基因激活性热点突变", "zh"),  # no lexicon column: all languages
    ]
    pathogenic, benign, mixed, chinese = reader(texts)
    assert (pathogenic.implies, pathogenic.genes, pathogenic.cues) == (
        C.PATHOGENIC, ("KRAS",), ("pathogen",))  # fmt: skip
    assert benign.implies == C.BENIGN and "FINDING:BENIGN_VARIANT=Polymorphismus" in benign.entities
    assert mixed.implies == C.VUS and len(mixed.cues) == 2  # conflicting words
    assert chinese.implies == C.VUS
    assert reader(texts[:1]) == [pathogenic]  # cached: same reading


def test_missing_or_mismatched_models_are_reported_not_raised(
    tiny_models, probe_dir, tmp_path, kb
) -> None:
    missing = load_models(tmp_path / "teacher", tmp_path / "student", tmp_path / "probe")
    assert missing.scorer_status == f"not available: no teacher in {tmp_path / 'teacher'}"
    assert missing.reader_status == f"not available: no student in {tmp_path / 'student'}"
    report = interpret_file(GERMAN, "SKCM", interpreter=missing.interpreter(kb))
    data = json.loads(report.to_json())
    assert data["annotation_reader"] == missing.reader_status
    assert all(v["score"] is None and v["annotation_reading"] == "not available"
               for v in data["variants"])  # fmt: skip
    other = tmp_path / "other_probe"
    shutil.copytree(probe_dir, other)
    record = json.loads((other / CONFIG_FILE).read_text())
    (other / CONFIG_FILE).write_text(json.dumps(record | {"teacher_version": "teacher-old"}))
    stale = load_models(tiny_models / "models/teacher", tmp_path / "student", other)
    assert stale.variant_scorer is None and "trained on teacher-old" in stale.scorer_status
    assert "cmkd vcf-probe" in stale.scorer_status
