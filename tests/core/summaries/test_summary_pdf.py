"""PDF export: embedded fonts, Devanagari and Latin text recovered by extraction, draft mark."""

from __future__ import annotations

import io
import unicodedata

import pytest
from PIL import Image
from pypdf import PdfReader

from core.knowledge import KnowledgeBase
from core.summaries.facts import Driver, FactsInput, SummaryFacts, derive_facts
from core.summaries.pdf import summary_pdf
from core.summaries.render import DRAFT_MARK, PhraseBank, Tile, render


def normalised(text: str) -> str:
    """NFC without whitespace and format characters: extraction re-flows lines and may split a
    word where the layout placed a glyph apart, and zero-width marks carry no text."""
    return "".join(
        c for c in unicodedata.normalize("NFC", text)
        if not c.isspace() and unicodedata.category(c) != "Cf"
    )  # fmt: skip


def extract(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture(scope="module")
def facts() -> SummaryFacts:
    markers = (("ER", "positive"), ("HER2", "positive"))
    entry = FactsInput(
        "BRCA", "BRCA_HER2", "III", 3, 38, markers, (Driver("ERBB2", "amplification"),)
    )
    return derive_facts(entry, KnowledgeBase.load()).with_free_text("", "")


@pytest.fixture(scope="module")
def tile(tmp_path_factory: pytest.TempPathFactory) -> Tile:
    path = tmp_path_factory.mktemp("tile") / "tile.png"
    Image.new("RGB", (64, 64), (200, 120, 160)).save(path)
    return Tile(path, own=True)


@pytest.mark.parametrize("lang", ["hi", "sw", "pt"])
def test_text_round_trip(lang: str, facts: SummaryFacts, tile: Tile) -> None:
    summary = render(facts, PhraseBank.load(lang), tile)
    data = summary_pdf(summary, footer="ok")
    assert data.startswith(b"%PDF")
    text = normalised(extract(data))
    missing = [s.text for s in summary.sentences() if normalised(s.text) not in text]
    assert not missing
    assert normalised(summary.title) in text and DRAFT_MARK not in extract(data)


def test_fonts_are_embedded_and_the_picture_is_placed(facts: SummaryFacts, tile: Tile) -> None:
    reader = PdfReader(io.BytesIO(summary_pdf(render(facts, PhraseBank.load("hi"), tile))))
    fonts, images = set(), 0
    for page in reader.pages:
        resources = page["/Resources"]
        for font in resources.get("/Font", {}).values():
            font = font.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            assert "/FontFile2" in descriptor.get_object()  # embedded TrueType subset
            fonts.add(str(font["/BaseFont"]).split("+")[-1])
        images += len(page.images)
    assert {"NotoSansDevanagari", "NotoSans"} <= fonts  # Devanagari plus Latin names
    assert images == 1


def test_draft_is_marked_on_every_page(facts: SummaryFacts) -> None:
    data = summary_pdf(render(facts, PhraseBank.load("sw")), draft=True)
    pages = PdfReader(io.BytesIO(data)).pages
    assert len(pages) > 1
    assert all(DRAFT_MARK in page.extract_text() for page in pages)


def test_mapping_glyph_clusters_is_what_makes_hindi_extractable(
    facts: SummaryFacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.summaries.pdf as pdf

    monkeypatch.setattr(pdf, "_map_cluster_continuations", lambda _pdf: None)
    summary = render(facts, PhraseBank.load("hi"))
    text = normalised(extract(pdf.summary_pdf(summary)))
    assert any(normalised(s.text) not in text for s in summary.sentences())
