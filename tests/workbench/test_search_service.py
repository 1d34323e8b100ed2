"""SearchService over the tiny real teacher, student and index: grouping, filters, more like
this, stale models, bad input, audit, roles, and the Hindi HER2 scenario's mechanism."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from core.data.schema import CANCER_TYPES, MODALITIES
from core.errors import InputError
from core.index import StaleIndexError
from workbench.errors import PermissionDenied
from workbench.registry import Registry
from workbench.roles import User
from workbench.search_service import SearchConfig, SearchService, case_concepts, service_for
from workbench.text_models import production_student
from workbench.workspace import Workspace

ONCOLOGIST = User("olga", "oncologist")
HINDI_HER2 = "HER2 एम्प्लीफिकेशन के साथ मेटास्टेटिक स्तन कैंसर"  # metastatic BC, HER2 amplified
PT_QUERY = "Paciente com câncer de mama, HER2 positivo, estádio II."


def linked_workspace(tiny_models: Path, root: Path, student: Path | None = None) -> Workspace:
    """A writable workspace linking the tiny models (optionally another student)."""
    (root / "models").mkdir(parents=True)
    for part in ("cohort", "index", "models/teacher"):
        (root / part).symlink_to(tiny_models / part, target_is_directory=True)
    (root / "models/student").symlink_to(student or tiny_models / "models/student")
    return Workspace(root)


@pytest.fixture(scope="module")
def service(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> SearchService:
    return SearchService(linked_workspace(tiny_models, tmp_path_factory.mktemp("search") / "ws"))


def test_results_are_grouped_by_modality_and_ranked(service: SearchService) -> None:
    r = service.search(ONCOLOGIST, PT_QUERY, k=3)
    assert r.lang == "pt" and r.lang_detected and r.predicted_type in CANCER_TYPES
    assert list(r.groups) == list(MODALITIES)
    for modality, hits in r.groups.items():
        assert 1 <= len(hits) <= 3
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert all(h.modality == modality and h.query_id == r.query_id for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        for h in hits:
            w = service.cfg.entity_weight
            assert h.score == pytest.approx(h.similarity + w * h.evidence, abs=1e-3)
            assert h.type_source == "teacher" and h.cancer_type in CANCER_TYPES
    concepts = {e.concept_id for e in r.entities}
    assert {"TYPE:BRCA", "BIOMARKER:HER2"} <= concepts
    d = json.loads(json.dumps(r.to_dict()))
    assert {"case_id", "modality", "score", "cancer_type"} <= set(d["results"][0])


def test_filters_restrict_modality_type_and_stage(service: SearchService) -> None:
    r = service.search(ONCOLOGIST, PT_QUERY, k=5, modalities=("slide",))
    assert list(r.groups) == ["slide"]
    r = service.search(ONCOLOGIST, PT_QUERY, k=5, cancer_types=("LUAD",), stages=("II",))
    hits = r.hits
    assert hits and all(h.recorded_type == "LUAD" and h.stage == "II" for h in hits)
    with pytest.raises(InputError, match="unknown modality"):
        service.search(ONCOLOGIST, PT_QUERY, modalities=("xray",))


def test_more_like_this_excludes_the_case(service: SearchService) -> None:
    case_id = next(iter(service.cases))
    r = service.more_like_this(ONCOLOGIST, case_id, k=5)
    assert r.like_case == case_id and r.hits
    assert all(h.case_id != case_id for h in r.hits)
    assert f"TYPE:{service.cases[case_id].cancer_type}" in {e.concept_id for e in r.entities}
    with pytest.raises(InputError, match="not in the search index"):
        service.more_like_this(ONCOLOGIST, "NO-SUCH-CASE")


def test_hindi_her2_query_puts_her2_amplified_breast_cases_first(service: SearchService) -> None:
    her2 = {c.case_id for c in service.cases.values()
            if c.subtype == "BRCA_HER2" and "ERBB2" in c.drivers}  # fmt: skip
    assert her2, "the tiny cohort should hold HER2-positive breast cases"
    r = service.search(ONCOLOGIST, HINDI_HER2, k=len(her2), ui_lang="pt")
    assert r.lang == "hi"
    wanted = {"BIOMARKER:HER2", "VARKIND:AMPLIFICATION", "FINDING:METASTASIS", "TYPE:BRCA"}
    assert {e.concept_id for e in r.entities} == wanted
    for hits in r.groups.values():
        for h in hits:
            if h.case_id in her2:  # none of them is stage IV: 3 of the 4 concepts
                assert h.evidence == pytest.approx(0.75)
                shared = {e.concept_id: e.term for e in h.shared}
                assert shared["BIOMARKER:HER2"] == "HER2"
                assert shared["VARKIND:AMPLIFICATION"] == "amplificação"  # the UI language
    # Evidence outweighing the tiny models' noisy cosines: exactly those cases on top.
    strong = dataclasses.replace(service.cfg, entity_weight=10.0)
    service.cfg, default = strong, service.cfg
    try:
        r = service.search(ONCOLOGIST, HINDI_HER2, k=len(her2), record=False)
    finally:
        service.cfg = default
    for modality, hits in r.groups.items():  # each case has a slide, a profile, notes
        assert len(hits) == len(her2) and {h.case_id for h in hits} <= her2, modality
    plain = dataclasses.replace(service.cfg, entity_weight=0.0)
    service.cfg = plain
    try:
        r = service.search(ONCOLOGIST, HINDI_HER2, k=3, record=False)
    finally:
        service.cfg = default
    assert all(h.score == h.similarity for h in r.hits)  # weight 0: plain vector search


def test_negation_and_case_concepts(service: SearchService) -> None:
    ids = [e.concept_id for e in service.query_entities("breast cancer, HER2 negative", "en", "en")]
    assert ids == ["TYPE:BRCA", "NOT:BIOMARKER:HER2"]
    her2 = next(c for c in service.cases.values() if c.subtype == "BRCA_HER2")
    concepts = case_concepts(her2)
    assert {"TYPE:BRCA", "SUBTYPE:BRCA_HER2", "BIOMARKER:HER2", "GENE:ERBB2",
            "VARKIND:AMPLIFICATION"} <= concepts  # fmt: skip
    assert "NOT:BIOMARKER:HER2" not in concepts


def test_slide_histology_is_evidence(service: SearchService) -> None:
    """ "Brisk TILs" in a query is supported by exactly the cases whose slides show them."""
    ids = [
        e.concept_id
        for e in service.query_entities(
            "TNBC, linfócitos infiltrantes tumorais abundantes e necrose extensa", "pt", "pt"
        )
    ]
    assert ids[-2:] == ["FINDING:TIL_BRISK", "FINDING:NECROSIS_EXTENSIVE"]
    entities = service.query_entities("brisk TILs", "en", "en")
    assert service.evidence_concepts(entities) == ("FINDING:TIL_BRISK",)
    cases = service.cases.values()
    supported = {c.case_id for c in cases if "FINDING:TIL_BRISK" in case_concepts(c)}
    brisk = {c.case_id for c in cases if c.histology[:1] == ("FINDING:TIL_BRISK",)}
    assert supported == brisk and brisk, "the tiny cohort should hold slides with brisk TILs"


def test_english_query_uses_the_teacher_text_branch(service: SearchService) -> None:
    r = service.search(ONCOLOGIST, "invasive breast carcinoma with HER2 amplification", k=2)
    assert r.lang == "en" and r.hits and not r.notices


@pytest.mark.parametrize(
    ("query", "lang", "message"),
    [
        ("", None, "empty"),
        ("   \n ", None, "empty"),
        ("!!! ??? 🙂🙂", None, "no words"),
        ("12345 %%%", None, "no words"),
        ("Рак молочной железы", None, "unsupported script"),
        ("乳腺癌", None, "unsupported script"),
        ("breast cancer", "tlh", "unsupported language"),
    ],
)
def test_bad_input_gives_a_clear_message(
    service: SearchService, query: str, lang: str | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        service.search(ONCOLOGIST, query, lang)


def test_long_query_is_truncated_with_a_notice(service: SearchService) -> None:
    r = service.search(ONCOLOGIST, "carcinoma da mama " * 600, k=1)  # 10,800 characters
    assert len(r.query) == service.cfg.max_query_chars
    (notice,) = r.notices
    assert notice.code == "truncated" and notice.params["original"] > 10_000


def test_roles_are_checked(service: SearchService) -> None:
    for user in (None, User("nina", "nurse")):
        with pytest.raises(PermissionDenied):
            service.search(user, PT_QUERY)
        with pytest.raises(PermissionDenied):
            service.more_like_this(user, next(iter(service.cases)))


def test_audit_pseudonymises_the_query_and_shown_results_are_queued(
    service: SearchService,
) -> None:
    secret = "Maria Souza, carcinoma da mama HER2 positivo"
    r = service.search(ONCOLOGIST, secret, k=2)
    entry = next(e for e in service.store.audit_entries(action="search")
                 if e.details["query_id"] == r.query_id)  # fmt: skip
    assert entry.target.startswith("psn-") and entry.actor == "olga"
    db = service.store.path
    stored = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert secret.encode() not in stored and b"Maria" not in stored
    pending = [p for p in service.reviews.pending(ONCOLOGIST) if p.query_id == r.query_id]
    assert sorted((p.case_id, p.modality) for p in pending) == sorted(
        (h.case_id, h.modality) for h in r.hits
    )
    assert all(p.query_pseudonym == entry.target for p in pending)


def test_stale_index_is_refused(tiny_models: Path, tmp_path: Path) -> None:
    student = tmp_path / "student"
    shutil.copytree(tiny_models / "models/student", student)
    config = json.loads((student / "config.json").read_text())
    config["teacher_version"] = "teacher-other"
    (student / "config.json").write_text(json.dumps(config))
    with pytest.raises(StaleIndexError, match="distil the student again"):
        SearchService(linked_workspace(tiny_models, tmp_path / "ws", student))


def test_config_rejects_bad_values() -> None:
    with pytest.raises(InputError):
        SearchConfig(entity_weight=-1)
    with pytest.raises(InputError):
        SearchConfig(max_query_chars=0)


def test_service_for_loads_a_new_service_after_a_promotion(
    tiny_models: Path, tmp_path: Path
) -> None:
    ws = linked_workspace(tiny_models, tmp_path / "ws")
    first = service_for(ws.root)
    assert service_for(ws.root) is first  # cached while production stays
    registry = Registry(ws)
    shutil.copytree(tiny_models / "models/student", ws.models_dir / "runs" / "v2")
    registry.register("v2", {"version": "v2", "status": "succeeded"})
    registry.promote(User("ada", "admin"), "v2")

    second = service_for(ws.root)
    assert second is not first and service_for(ws.root) is second
    assert second.student.student is not first.student.student
    assert production_student(ws) is second.student.student  # classify's cache follows it too
    assert second.search(ONCOLOGIST, PT_QUERY, k=1).hits
    registry.rollback(User("ada", "admin"))
    assert service_for(ws.root) is first  # the previous production's service, still loaded
