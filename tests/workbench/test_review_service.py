"""ReviewService on its own store: recording, the queue, precision@k by hand, CSV, negatives."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import InputError
from workbench.errors import PermissionDenied
from workbench.review_service import CSV_COLUMNS, ReviewService, Shown
from workbench.roles import User
from workbench.store import Store, pseudonym

REVIEWER = User("rita", "reviewer")


@pytest.fixture()
def reviews(tmp_path: Path) -> ReviewService:
    svc = ReviewService(Store(tmp_path / "store.sqlite"))
    # q1 (pt): notes ranked 1-3 and one slide; q2 (hi): two notes.
    svc.record_search(REVIEWER, "q1", "psn-a", "pt", ["TYPE:BRCA"], "BRCA",
                      np.ones(4, np.float32), [Shown("C1", "note", 10, 1, 0.9),
                      Shown("C1", "note", 11, 2, 0.8), Shown("C2", "note", 20, 3, 0.7),
                      Shown("C3", "slide", 30, 1, 0.3)])  # fmt: skip
    q2 = [Shown("C4", "note", 40, 1, 0.6), Shown("C5", "note", 50, 2, 0.5)]
    svc.record_search(REVIEWER, "q2", "psn-b", "hi", [], "LUAD", np.zeros(4, np.float32), q2)
    return svc


def test_queue_shrinks_as_matches_are_reviewed(reviews: ReviewService) -> None:
    assert len(reviews.pending(REVIEWER)) == 6
    r = reviews.review(REVIEWER, "q1", 11, "relevant", "  same subtype  ")
    assert (r.case_id, r.modality, r.rank, r.comment, r.user) == ("C1", "note", 2, "same subtype",
                                                                  "rita")  # fmt: skip
    pending = reviews.pending(REVIEWER)
    assert len(pending) == 5 and 11 not in {p.row for p in pending}
    assert pending[0].query_id == "q2"  # newest search first
    # Reviewing again replaces the verdict; the audit keeps both, without the comment.
    reviews.review(REVIEWER, "q1", 11, "wrong_modality")
    assert [x.verdict for x in reviews.reviews(REVIEWER)] == ["wrong_modality"]
    entries = reviews.store.audit_entries(action="review")
    assert len(entries) == 2 and all("comment" not in e.details for e in entries)


def test_precision_at_k_by_hand(reviews: ReviewService) -> None:
    for query_id, row, verdict in [("q1", 10, "relevant"), ("q1", 11, "not_relevant"),
                                   ("q1", 20, "relevant"), ("q1", 30, "wrong_modality"),
                                   ("q2", 40, "relevant")]:  # fmt: skip
        reviews.review(REVIEWER, query_id, row, verdict)
    got = {(p.lang, p.modality): p for p in reviews.precision_at_k(REVIEWER, k=2)}
    # pt notes @2: ranks 1, 2 reviewed -> 1/2; rank 3 is beyond k. pt slide: 0/1. hi: 1/1.
    assert got[("pt", "note")].precision == pytest.approx(0.5)
    assert (got[("pt", "note")].queries, got[("pt", "note")].reviewed) == (1, 2)
    assert got[("pt", "slide")].precision == 0.0
    assert got[("hi", "note")].precision == 1.0
    at3 = {(p.lang, p.modality): p.precision for p in reviews.precision_at_k(REVIEWER, k=3)}
    assert at3[("pt", "note")] == pytest.approx(2 / 3)
    with pytest.raises(InputError):
        reviews.precision_at_k(REVIEWER, k=0)


def test_csv_export_is_atomic_audited_and_defused(reviews: ReviewService, tmp_path: Path) -> None:
    reviews.review(REVIEWER, "q2", 50, "not_relevant", '=HYPERLINK("x")')
    out = reviews.export_csv(REVIEWER, tmp_path / "exports" / "reviews.csv")
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 2
    row = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert (row["case_id"], row["row"], row["verdict"]) == ("C5", "50", "not_relevant")
    assert row["comment"].startswith("'=")  # a spreadsheet shows it, does not run it
    assert not [p for p in out.parent.iterdir() if p.name != "reviews.csv"]  # no temp left
    assert reviews.store.audit_entries(action="export_reviews")[0].details == {"rows": 1}


def test_hard_negatives_carry_the_query_embedding(reviews: ReviewService) -> None:
    reviews.review(REVIEWER, "q1", 10, "relevant")
    reviews.review(REVIEWER, "q1", 30, "wrong_modality")
    reviews.review(REVIEWER, "q2", 40, "not_relevant")
    negatives = reviews.hard_negatives(REVIEWER)
    assert [(n.query_id, n.case_id, n.modality, n.row, n.verdict) for n in negatives] == [
        ("q1", "C3", "slide", 30, "wrong_modality"), ("q2", "C4", "note", 40, "not_relevant"),
    ]  # fmt: skip
    np.testing.assert_array_equal(negatives[0].embedding, np.ones(4, np.float32))


def test_bad_reviews_and_roles_are_refused(reviews: ReviewService) -> None:
    with pytest.raises(InputError, match="unknown verdict"):
        reviews.review(REVIEWER, "q1", 10, "maybe")
    with pytest.raises(InputError, match="was not shown"):
        reviews.review(REVIEWER, "q1", 99, "relevant")
    with pytest.raises(InputError, match="at most"):
        reviews.review(REVIEWER, "q1", 10, "relevant", "x" * 5000)
    for user in (None, User("gus", "genetic_counsellor")):
        for call in (lambda u: reviews.pending(u), lambda u: reviews.csv_bytes(u),
                     lambda u: reviews.review(u, "q1", 10, "relevant"),
                     lambda u: reviews.hard_negatives(u)):  # fmt: skip
            with pytest.raises(PermissionDenied):
                call(user)


def stored_bytes(store: Store) -> bytes:
    return b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))


def test_query_text_is_kept_only_once_judged_and_exported_as_jsonl(tmp_path: Path) -> None:
    svc = ReviewService(Store(tmp_path / "store.sqlite"), salt="pepper")
    judged, unjudged = "Carcinoma ductal invasivo, HER2 positivo", "Maria Souza, melanoma"
    shown = [Shown("C1", "note", 10, 1, 0.9), Shown("C2", "note", 11, 2, 0.8),
             Shown("C3", "slide", 20, 1, 0.3)]  # fmt: skip
    vector = np.ones(4, np.float32)
    svc.record_search(REVIEWER, "q1", pseudonym(judged, "pepper"), "pt", [], "BRCA", vector, shown)
    svc.record_search(REVIEWER, "q2", pseudonym(unjudged, "pepper"), "pt", [], "SKCM", vector,
                      [Shown("C4", "note", 40, 1, 0.5)])  # fmt: skip
    svc.record_search(REVIEWER, "q3", "psn-x", "hi", [], "LUAD", vector, [Shown("C5", "note", 50,
                      1, 0.4)])  # fmt: skip
    assert judged.encode() not in stored_bytes(svc.store)  # a search keeps the pseudonym only

    with pytest.raises(InputError, match="not the text"):
        svc.review(REVIEWER, "q1", 10, "relevant", query_text=unjudged)
    svc.review(REVIEWER, "q1", 10, "relevant", query_text=judged)
    svc.review(REVIEWER, "q1", 11, "not_relevant", query_text=judged)
    svc.review(REVIEWER, "q1", 20, "wrong_modality")  # the text is kept per query already
    svc.review(REVIEWER, "q3", 50, "not_relevant")  # from the queue: no text at hand
    assert judged.encode() in stored_bytes(svc.store)
    assert unjudged.encode() not in stored_bytes(svc.store)  # never judged: pseudonym only
    assert [e.details["kept_text"] for e in svc.store.audit_entries(action="review")][::-1] == [
        True, True, False, False,
    ]  # fmt: skip

    negatives = svc.hard_negatives(REVIEWER)
    assert [(n.query_id, n.row, n.text) for n in negatives] == [
        ("q1", 11, judged), ("q1", 20, judged), ("q3", 50, ""),
    ]  # fmt: skip

    out = tmp_path / "job" / "hard_negatives.jsonl"
    assert svc.export_hard_negatives(REVIEWER, out) == 3
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert lines == [
        {"text": judged, "lang": "pt", "case_id": c, "modality": m, "verdict": v}
        for c, m, v in [("C1", "note", "relevant"), ("C2", "note", "not_relevant"),
                        ("C3", "slide", "wrong_modality")]
    ]  # fmt: skip
    assert out.stat().st_mode & 0o777 == 0o600  # patient text: readable by the owner only
    assert [p.name for p in out.parent.iterdir()] == ["hard_negatives.jsonl"]
    entry = svc.store.audit_entries(action="export_hard_negatives")[0]
    assert entry.details == {"rows": 3, "negatives": 2, "without_text": 1}
    assert judged not in json.dumps(entry.details) and entry.target == str(out)

    with pytest.raises(PermissionDenied):
        svc.export_hard_negatives(User("gus", "genetic_counsellor"), out)
    with pytest.raises(InputError, match="cannot check"):  # no salt: texts cannot be checked
        ReviewService(svc.store).review(REVIEWER, "q2", 40, "relevant", query_text=unjudged)
