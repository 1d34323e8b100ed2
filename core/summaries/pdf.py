"""PDF export of a patient summary, with embedded Noto fonts for Latin and Devanagari.

Text is shaped by HarfBuzz (fpdf2's `set_text_shaping`), so Hindi conjuncts and vowel signs
render correctly; Noto Sans is the fallback for Latin text inside Hindi (gene and drug names).

Extractability: when HarfBuzz turns one cluster of characters into several glyphs (a
conjunct with a pre-base vowel sign, such as "क्लि"), fpdf2 maps the whole cluster's text to
the first glyph and leaves the others without a Unicode mapping, and PDF readers then emit
junk for them. `_map_cluster_continuations` maps those glyphs to ZERO WIDTH SPACE instead,
which readers drop or show as nothing, so copying and extracting text recovers the words.
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from core.summaries.render import DRAFT_MARK, LIST_SECTIONS, Summary

FONT_DIR = Path(__file__).resolve().parents[2] / "assets" / "fonts"
LATIN = "NotoSans"
DEVANAGARI = "NotoSansDevanagari"
# Language -> main font family; Noto Sans covers every Latin-script language here.
FAMILY = {"hi": DEVANAGARI}
ZERO_WIDTH_SPACE = 0x200B

TITLE_PT, HEADING_PT, BODY_PT, SMALL_PT = 18, 13, 11.5, 9
LINE_MM = 6.2  # body line height
IMAGE_MM = 55  # width of the tumour picture
WATERMARK_PT = 34
WATERMARK_GREY = 215  # light enough to read the text through it


class _SummaryPDF(FPDF):
    """An A4 document that stamps the draft watermark on every page when `draft` is set."""

    def __init__(self, draft: bool) -> None:
        super().__init__(format="A4")
        self.draft = draft

    def header(self) -> None:
        if not self.draft:
            return
        style = (self.font_family, self.font_style, self.font_size_pt)
        self.set_font(LATIN, "B", WATERMARK_PT)
        self.set_text_color(WATERMARK_GREY)
        with self.rotation(45, self.w / 2, self.h / 2):
            width = self.get_string_width(DRAFT_MARK)
            self.text(self.w / 2 - width / 2, self.h / 2, DRAFT_MARK)
        self.set_text_color(0)
        self.set_font(*style)


def _add_fonts(pdf: FPDF) -> None:
    for family, stem in ((LATIN, "NotoSans"), (DEVANAGARI, "NotoSansDevanagari")):
        pdf.add_font(family, "", FONT_DIR / f"{stem}-Regular.ttf")
        pdf.add_font(family, "B", FONT_DIR / f"{stem}-Bold.ttf")


def _map_cluster_continuations(pdf: FPDF) -> None:
    """Give glyphs that continue a shaped cluster a zero-width Unicode mapping (see module doc).

    Relies on fpdf2's subset map (pinned 2.8.9): glyphs with an empty `unicode` tuple get no
    ToUnicode entry otherwise. Runs after all text is placed, when no lookup follows.
    """
    for font in pdf.fonts.values():
        subset = getattr(font, "subset", None)
        if subset is None:
            continue
        for glyph, _code in subset.items():
            if glyph is not None and glyph.unicode == ():
                glyph.unicode = (ZERO_WIDTH_SPACE,)


def summary_pdf(summary: Summary, draft: bool = False, footer: str = "") -> bytes:
    """The summary as a PDF; `draft` adds a banner and a watermark on every page; `footer` is
    a last line such as who approved it and when."""
    pdf = _SummaryPDF(draft)
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=16)
    _add_fonts(pdf)
    family = FAMILY.get(summary.lang, LATIN)
    pdf.set_fallback_fonts([LATIN] if family != LATIN else [])
    pdf.set_text_shaping(True)
    pdf.set_title(summary.title)
    pdf.set_lang(summary.lang)
    pdf.add_page()

    def para(text: str, size: float = BODY_PT, style: str = "", gap: float = 1.5) -> None:
        pdf.set_font(family, style, size)
        pdf.multi_cell(0, size * 0.53, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(gap)

    if draft:
        para(f"{DRAFT_MARK}. {summary.draft_note}", SMALL_PT, "B", 3)
    para(summary.title, TITLE_PT, "B", 3)
    para(summary.intro.text)
    for section in summary.sections:
        pdf.ln(2)
        para(section.heading, HEADING_PT, "B", 1)
        if section.key == "image" and summary.tile is not None:
            pdf.image(str(summary.tile.path), w=IMAGE_MM)
            pdf.ln(1)
        for sentence in section.sentences:
            text = f"• {sentence.text}" if section.key in LIST_SECTIONS else sentence.text
            para(text, gap=0.8)
    pdf.ln(3)
    para(summary.disclaimer.text, SMALL_PT, "B")
    if footer:
        para(footer, SMALL_PT)
    _map_cluster_continuations(pdf)
    return bytes(pdf.output())
