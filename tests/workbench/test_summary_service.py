"""Summary service and `cmkd summary`: roles, approvals bound to the exact text, invalidation
by edits, exports and their audit, the reference-tile hook."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from core.errors import InputError
from core.summaries.facts import FactsInput
from core.summaries.render import DRAFT_MARK
from workbench.commands import summary as summary_command
from workbench.errors import PermissionDenied
from workbench.roles import User
from workbench.store import Store
from workbench.summary_service import SummaryService

NURSE = User("nadia", "nurse")
ONCOLOGIST = User("oscar", "oncologist")
REVIEWER = User("rita", "reviewer")


@pytest.fixture()
def service(tiny_cohort: Path, tmp_path: Path) -> SummaryService:
    return SummaryService(Store(tmp_path / "store.sqlite"), tiny_cohort)


@pytest.fixture()
def case_id(service: SummaryService) -> str:
    """A case with a tile, so the picture is part of the summary."""
    return next(c for c in service.case_ids() if service.case(c).tile_paths)


def test_roles_are_enforced(service: SummaryService, case_id: str) -> None:
    with pytest.raises(PermissionDenied, match="rita"):
        service.draft_for_case(REVIEWER, case_id, "sw")  # a reviewer cannot write
    with pytest.raises(PermissionDenied):
        service.draft_for_case(None, case_id, "sw")  # nobody signed in
    draft = service.draft_for_case(NURSE, case_id, "sw")
    with pytest.raises(PermissionDenied, match="nadia"):
        service.approve(NURSE, draft)  # a nurse cannot approve
    with pytest.raises(PermissionDenied, match="rita"):
        service.save_free_text(REVIEWER, draft, "x", "")


def test_export_needs_an_approval_of_this_exact_summary(
    service: SummaryService, case_id: str
) -> None:
    draft = service.draft_for_case(NURSE, case_id, "sw")
    assert not draft.approved and draft.summary.tile is not None and draft.summary.tile.own
    for fmt in ("pdf", "txt", "md"):
        with pytest.raises(PermissionDenied, match="not approved"):
            service.export(NURSE, draft, fmt)
    marked = service.export(NURSE, draft, "txt", as_draft=True).decode()
    assert marked.startswith(DRAFT_MARK) and draft.summary.title.upper() in marked

    approval = service.approve(ONCOLOGIST, draft)
    assert (approval.approved_by, approval.role) == ("oscar", "oncologist")
    approved = service.draft_for_case(NURSE, case_id, "sw")
    assert approved.approval == approval and approved.summary_hash == draft.summary_hash
    text = service.export(NURSE, approved, "txt").decode()
    assert DRAFT_MARK not in text and "oscar" in text  # "Imekaguliwa ... na oscar tarehe ..."
    pdf = service.export(NURSE, approved, "pdf")
    assert DRAFT_MARK not in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()

    actions = [e.action for e in service.store.audit_entries()]
    assert actions.count("export_summary") == 3 and "approve_summary" in actions
    assert service.store.verify_audit() == len(actions)


def test_an_edit_after_approval_invalidates_it(service: SummaryService, case_id: str) -> None:
    draft = service.draft_for_case(NURSE, case_id, "pt")
    service.approve(ONCOLOGIST, draft)
    approved = service.draft_for_case(NURSE, case_id, "pt")
    edited = service.save_free_text(NURSE, approved, "Volte na terça-feira.", "")
    assert not edited.approved and edited.summary_hash != approved.summary_hash
    assert "Volte na terça-feira." in edited.summary.to_text()
    with pytest.raises(PermissionDenied):
        service.export(NURSE, edited, "pdf")
    with pytest.raises(InputError, match="changed since"):
        service.approve(ONCOLOGIST, approved)  # the stale draft cannot be approved any more
    # Reverting the text does not bring the old approval back.
    reverted = service.save_free_text(NURSE, edited, "", "")
    assert reverted.summary_hash == approved.summary_hash and not reverted.approved
    entry = service.store.audit_entries(action="edit_summary")[-1]
    assert entry.details["approvals_invalidated"] == 1 and "terça" not in str(entry.details)


def test_prognosis_only_from_a_clinician(service: SummaryService, case_id: str) -> None:
    draft = service.draft_for_case(ONCOLOGIST, case_id, "en")
    assert "prognosis" not in {s.key for s in draft.summary.sections}
    edited = service.save_free_text(ONCOLOGIST, draft, "", "We talked about this on Monday.")
    (free,) = [s for s in edited.summary.sentences() if not s.generated]
    assert free.section == "prognosis" and free.trace == ("prognosis",)


def test_facts_entered_by_hand(service: SummaryService) -> None:
    facts = service.facts_for_entry(FactsInput("PAAD", "PAAD_BASAL", "II", age=50))
    draft = service.draft(ONCOLOGIST, facts, "es")
    assert draft.case_key.startswith("manual-") and draft.summary.tile is None
    service.approve(ONCOLOGIST, draft)
    assert service.draft(NURSE, facts, "es").approved
    with pytest.raises(InputError):
        service.facts_for_entry(FactsInput("PAAD", case_id="SYN-00001"))
    with pytest.raises(InputError, match="no case"):
        service.facts_for_case("NOPE-1")


def test_reference_tile_provider_hook(service: SummaryService, case_id: str) -> None:
    other = next(c for c in service.case_ids() if c != case_id and service.case(c).tile_paths)
    reference = service.cohort_dir / service.case(other).tile_paths[0]  # "nearest" stand-in
    hooked = SummaryService(
        service.store, service.cohort_dir, reference_tile_provider=lambda case: reference
    )
    draft = hooked.draft_for_case(NURSE, case_id, "sw")
    assert draft.summary.tile is not None and not draft.summary.tile.own
    (caption,) = [s for s in draft.summary.sentences() if s.section == "image"]
    assert caption.key == "image.caption_reference"


# --- cmkd summary ----------------------------------------------------------------------------


def cmkd(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="cmkd")
    summary_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_prints_drafts_but_writes_files_only_when_approved(
    tiny_workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = SummaryService(Store(tiny_workspace / "store.sqlite"), tiny_workspace / "cohort")
    case_id = service.case_ids()[0]
    assert cmkd("summary", case_id, "--lang", "sw") == 0
    out = capsys.readouterr().out
    assert out.startswith(DRAFT_MARK) and out.rstrip().endswith(DRAFT_MARK)

    pdf = tmp_path / "out" / "summary.pdf"
    assert cmkd("summary", case_id, "--lang", "sw", "--out", str(pdf)) == 2
    assert "not approved" in capsys.readouterr().err and not pdf.exists()
    assert cmkd("summary", case_id, "--lang", "sw", "--out", str(pdf), "--draft") == 0
    assert DRAFT_MARK in PdfReader(pdf).pages[0].extract_text()

    service.approve(ONCOLOGIST, service.draft_for_case(ONCOLOGIST, case_id, "sw"))
    assert cmkd("summary", case_id, "--lang", "sw", "--format", "pdf", "--out", str(pdf)) == 0
    assert DRAFT_MARK not in PdfReader(pdf).pages[0].extract_text()
    md = tmp_path / "summary.md"
    assert cmkd("summary", case_id, "--lang", "sw", "--out", str(md)) == 0
    assert md.read_text(encoding="utf-8").startswith("# ")
    with pytest.raises(InputError, match="--out"):
        cmkd("summary", case_id, "--lang", "sw", "--format", "pdf")
    with pytest.raises(InputError, match="no case"):
        cmkd("summary", "NOPE-1", "--lang", "sw")


def test_reference_tile_is_the_nearest_other_slide_in_the_index(tiny_cohort, tmp_path) -> None:
    import numpy as np

    from core.data.cohort_io import load_cases
    from core.index import IndexMeta, VectorIndex
    from workbench.summary_service import index_tile_provider

    a, b, c = [case for case in load_cases(tiny_cohort) if case.tile_paths][:3]
    vectors = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.1, 0.9, 0.4]], np.float32)
    meta = [IndexMeta(x.case_id, "slide", x.cancer_type, x.subtype, x.stage) for x in (a, b, c)]
    VectorIndex.build(vectors, meta, "teacher-test").save(tmp_path / "index")

    provide = index_tile_provider(tmp_path / "index", tiny_cohort)
    assert provide(a) == tiny_cohort / b.tile_paths[0]
    assert provide(c) == tiny_cohort / b.tile_paths[0]
    without_index = index_tile_provider(tmp_path / "none", tiny_cohort)
    assert without_index(a) == tiny_cohort / a.tile_paths[0]
