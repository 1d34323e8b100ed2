"""The shipped multilingual lexicon and its entity matcher."""

from __future__ import annotations

import csv
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from core.data.lexicon import (
    CATEGORY_PREFIXES,
    Concept,
    EntityMatch,
    Lexicon,
    default_lexicon,
    default_path,
)
from core.data.schema import BIOMARKERS, CANCER_TYPES, DRIVER_GENES, LANGUAGES, STAGES, SUBTYPES
from core.errors import InputError

# Ids other modules code against (besides the schema-derived ones checked below).
PROMISED_IDS = """
SITE:BREAST SITE:LUNG SITE:COLON SITE:RECTUM SITE:PANCREAS SITE:SKIN SITE:BRAIN SITE:PROSTATE
SITE:THYROID SITE:KIDNEY SITE:OVARY SITE:CERVIX SITE:HEAD_NECK SITE:ORAL_CAVITY SITE:LARYNX
SITE:OROPHARYNX SITE:LIVER SITE:SOFT_TISSUE SITE:RETROPERITONEUM SITE:UTERUS SITE:LYMPH_NODE
SITE:BONE SITE:PLEURA SITE:PERITONEUM SITE:ADRENAL
MORPH:ADENOCARCINOMA MORPH:SQUAMOUS_CELL_CARCINOMA MORPH:DUCTAL_CARCINOMA MORPH:LOBULAR_CARCINOMA
MORPH:PAPILLARY_CARCINOMA MORPH:CLEAR_CELL_CARCINOMA MORPH:SEROUS_CARCINOMA MORPH:MELANOMA
MORPH:GLIOBLASTOMA MORPH:HEPATOCELLULAR_CARCINOMA MORPH:LEIOMYOSARCOMA MORPH:LIPOSARCOMA
MORPH:PLEOMORPHIC_SARCOMA MORPH:DUCTAL_ADENOCARCINOMA MORPH:ACINAR_ADENOCARCINOMA
MORPH:CARCINOMA MORPH:SARCOMA MORPH:NEOPLASM
VARKIND:MISSENSE VARKIND:NONSENSE VARKIND:FRAMESHIFT VARKIND:INFRAME_DELETION VARKIND:SPLICE
VARKIND:AMPLIFICATION VARKIND:FUSION VARKIND:DELETION VARKIND:WILDTYPE VARKIND:HOTSPOT
GRADE:1 GRADE:2 GRADE:3
TX:TRASTUZUMAB TX:PERTUZUMAB TX:OSIMERTINIB TX:ALECTINIB TX:SOTORASIB TX:PEMBROLIZUMAB
TX:NIVOLUMAB TX:IPILIMUMAB TX:DABRAFENIB TX:TRAMETINIB TX:CETUXIMAB TX:BEVACIZUMAB TX:OLAPARIB
TX:TAMOXIFEN TX:LETROZOLE TX:ENZALUTAMIDE TX:ABIRATERONE TX:TEMOZOLOMIDE TX:LENVATINIB
TX:SORAFENIB TX:ATEZOLIZUMAB TX:SUNITINIB TX:CABOZANTINIB TX:CARBOPLATIN TX:CISPLATIN
TX:PACLITAXEL TX:DOCETAXEL TX:GEMCITABINE TX:FOLFOX TX:FOLFIRINOX TX:CAPECITABINE
TX:DOXORUBICIN TX:CHEMOTHERAPY TX:RADIOTHERAPY TX:SURGERY TX:IMMUNOTHERAPY
TX:TARGETED_THERAPY TX:HORMONE_THERAPY TX:CHEMORADIOTHERAPY TX:PALLIATIVE_CARE
""".split()

HEADER = "concept_id\tcategory\tncit\t" + "\t".join(LANGUAGES)


@pytest.fixture(scope="module")
def lex() -> Lexicon:
    return default_lexicon()


def _row(cid: str, category: str, *terms: str, ncit: str = "") -> str:
    cells = terms if len(terms) > 1 else terms * len(LANGUAGES)
    return "\t".join((cid, category, ncit, *cells))


def _found(lex: Lexicon, text: str, lang: str | None) -> list[tuple[str, str]]:
    return [(m.concept_id, m.text) for m in lex.match(text, lang)]


# --- the shipped data ---------------------------------------------------------------------


def test_default_lexicon_is_the_shipped_file_loaded_once(lex: Lexicon) -> None:
    assert default_path().is_file()
    assert default_lexicon() is lex
    assert lex.languages == LANGUAGES


def test_has_300_concepts_each_with_terms_in_every_language(lex: Lexicon) -> None:
    assert len(lex.concepts) >= 300
    for concept in lex.concepts.values():
        assert set(concept.terms) == set(LANGUAGES), concept.concept_id
        for lang, terms in concept.terms.items():
            assert terms and all(t.strip() == t and t for t in terms), (concept.concept_id, lang)


def test_required_ids_exist(lex: Lexicon) -> None:
    required = (
        [f"TYPE:{t}" for t in CANCER_TYPES]
        + [f"SUBTYPE:{s}" for subs in SUBTYPES.values() for s in subs]
        + [f"GENE:{g}" for g in DRIVER_GENES]
        + [f"BIOMARKER:{b}" for b in BIOMARKERS]
        + [f"STAGE:{s}" for s in STAGES]
        + PROMISED_IDS
    )
    assert [cid for cid in required if cid not in lex.concepts] == []


def test_types_and_biomarkers_are_exactly_the_schema_sets(lex: Lexicon) -> None:
    assert lex.ids("cancer_type") == tuple(f"TYPE:{t}" for t in CANCER_TYPES)
    assert set(lex.ids("biomarker")) == {f"BIOMARKER:{b}" for b in BIOMARKERS}
    assert set(lex.ids("subtype")) == {f"SUBTYPE:{s}" for v in SUBTYPES.values() for s in v}
    every = [cid for cat in CATEGORY_PREFIXES for cid in lex.ids(cat)]
    assert sorted(every) == sorted(lex.concepts)


def test_gene_symbols_are_terms_in_every_language(lex: Lexicon) -> None:
    for gene in DRIVER_GENES:
        for lang in LANGUAGES:
            assert gene in lex.concept(f"GENE:{gene}").terms[lang]


def test_every_term_is_found_as_itself_in_its_language(lex: Lexicon) -> None:
    for concept in lex.concepts.values():
        for lang, terms in concept.terms.items():
            for term in terms:
                assert lex.match(term, lang) == [
                    EntityMatch(concept.concept_id, 0, len(term), term)
                ], (lang, term)


def test_ncit_codes_are_ones_oncotree_uses(lex: Lexicon) -> None:
    # Codes come from OncoTree, never from memory; the shared data sits beside the repo.
    shared = Path(os.environ.get("CMKD_SHARED_DATA", default_path().parents[3] / "shared/data"))
    tsv = shared / "oncotree_2025_10_03.tsv"
    if not tsv.is_file():
        pytest.skip(f"OncoTree table not found at {tsv} (set CMKD_SHARED_DATA)")
    with tsv.open(encoding="utf-8") as f:
        known = {
            code
            for row in csv.DictReader(f, delimiter="\t")
            for code in row["nci_codes"].split("|")
        }
    coded = {c.concept_id: c.ncit for c in lex.concepts.values() if c.ncit}
    assert len(coded) >= 60
    assert {cid: code for cid, code in coded.items() if code not in known} == {}


def test_terms_are_nfc(lex: Lexicon) -> None:
    for concept in lex.concepts.values():
        for terms in concept.terms.values():
            assert all(unicodedata.is_normalized("NFC", t) for t in terms)


# --- lookup -------------------------------------------------------------------------------


def test_term_is_preferred_without_rng_and_a_synonym_with_it(lex: Lexicon) -> None:
    concept = lex.concept("TYPE:BRCA")
    assert isinstance(concept, Concept) and concept.category == "cancer_type"
    assert concept.ncit == "C9245"
    assert lex.term("TYPE:BRCA", "pt") == concept.preferred("pt") == concept.terms["pt"][0]
    draws = [lex.term("TYPE:BRCA", "hi", np.random.default_rng(s)) for s in range(40)]
    assert set(draws) <= set(concept.terms["hi"]) and len(set(draws)) > 1
    again = [lex.term("TYPE:BRCA", "hi", np.random.default_rng(s)) for s in range(40)]
    assert draws == again


@pytest.mark.parametrize(
    "call",
    [
        lambda lx: lx.concept("TYPE:NOPE"),
        lambda lx: lx.term("TYPE:BRCA", "xx"),
        lambda lx: lx.ids("colour"),
        lambda lx: lx.match("breast cancer", "xx"),
        lambda lx: lx.concept("TYPE:BRCA").preferred("xx"),
    ],
)
def test_unknown_ids_languages_and_categories_raise_input_error(lex: Lexicon, call) -> None:
    with pytest.raises(InputError):
        call(lex)


# --- matching -----------------------------------------------------------------------------


def test_hindi_sentence_finds_breast_cancer_and_her2_at_their_offsets(lex: Lexicon) -> None:
    text = "मरीज़ को स्तन कैंसर है और HER2 पॉज़िटिव है।"
    found = lex.match(text, "hi")
    by_id = {m.concept_id: m for m in found}
    brca, her2 = by_id["TYPE:BRCA"], by_id["BIOMARKER:HER2"]
    assert (brca.start, brca.end) == (text.index("स्तन"), text.index("स्तन") + len("स्तन कैंसर"))
    assert (her2.start, her2.text) == (text.index("HER2"), "HER2")
    assert by_id["FINDING:POSITIVE"].text == "पॉज़िटिव"


def test_devanagari_vowel_signs_stay_inside_words(lex: Lexicon) -> None:
    # "कैंसरों" (cancers, oblique plural) and "स्तनों" are single words: no partial match.
    assert lex.match("स्तनों के कैंसरों", "hi") == []
    assert _found(lex, "स्तन", "hi") == [("SITE:BREAST", "स्तन")]


def test_longest_match_wins(lex: Lexicon) -> None:
    text = "Dx: non-small cell lung carcinoma of the left lung."
    assert _found(lex, text, "en") == [
        ("DX:NSCLC", "non-small cell lung carcinoma"),
        ("SITE:LUNG", "lung"),
    ]
    assert _found(lex, "invasive ductal carcinoma", "en") == [
        ("MORPH:DUCTAL_CARCINOMA", "invasive ductal carcinoma")
    ]


def test_hyphens_and_spaces_are_interchangeable(lex: Lexicon) -> None:
    assert _found(lex, "non small cell lung cancer", "en") == [
        ("DX:NSCLC", "non small cell lung cancer")
    ]
    assert _found(lex, "PD L1 22C3", "en")[0] == ("BIOMARKER:PDL1", "PD L1")


def test_word_boundaries(lex: Lexicon) -> None:
    assert _found(lex, "ALKaline phosphatase raised", "en") == []
    assert _found(lex, "ALK rearranged", "en") == [
        ("GENE:ALK", "ALK"),
        ("VARKIND:FUSION", "rearranged"),
    ]
    assert _found(lex, "(EGFR)", "en") == [("GENE:EGFR", "EGFR")]
    assert _found(lex, "KRAS_G12C", "en") == [("GENE:KRAS", "KRAS")]


def test_short_acronyms_are_case_sensitive_other_terms_are_not(lex: Lexicon) -> None:
    assert _found(lex, "Er hat keine Metastasen.", "de") == [("FINDING:METASTASIS", "Metastasen")]
    assert _found(lex, "ER positiv", "de") == [
        ("BIOMARKER:ER", "ER"),
        ("FINDING:POSITIVE", "positiv"),
    ]
    assert _found(lex, "we met at the kit store", "en") == []
    assert _found(lex, "eGFR 90", "en") == []
    assert _found(lex, "BREAST CANCER, her2", "en") == [
        ("TYPE:BRCA", "BREAST CANCER"),
        ("BIOMARKER:HER2", "her2"),
    ]


def test_her2_names_the_biomarker_and_erbb2_the_gene(lex: Lexicon) -> None:
    assert _found(lex, "ERBB2 amplification; HER2 3+", "en")[:3] == [
        ("GENE:ERBB2", "ERBB2"),
        ("VARKIND:AMPLIFICATION", "amplification"),
        ("BIOMARKER:HER2", "HER2"),
    ]


def test_accents_matter_and_nfd_input_keeps_original_offsets(lex: Lexicon) -> None:
    nfc = "Paciente com câncer de mama."
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    (m,) = lex.match(nfd, "pt")
    assert m.concept_id == "TYPE:BRCA" and m.text == nfd[m.start : m.end]
    assert unicodedata.normalize("NFC", m.text) == "câncer de mama"
    # Without its accent "câncer" is only the English "cancer": no breast-cancer match.
    assert _found(lex, "cancer de mama", "pt") == [
        ("MORPH:NEOPLASM", "cancer"),
        ("SITE:BREAST", "mama"),
    ]


def test_curly_apostrophes_match_straight_ones(lex: Lexicon) -> None:
    assert _found(lex, "cancer de l’ovaire", "fr") == [("TYPE:OV", "cancer de l’ovaire")]


def test_language_selects_terms_and_english_is_always_tried(lex: Lexicon) -> None:
    text = "carcinoma ductal invasivo; breast cancer; Mammakarzinom"
    assert _found(lex, text, "pt") == [
        ("MORPH:DUCTAL_CARCINOMA", "carcinoma ductal invasivo"),
        ("TYPE:BRCA", "breast cancer"),
    ]
    assert _found(lex, text, "de") == [
        ("MORPH:CARCINOMA", "carcinoma"),
        ("TYPE:BRCA", "breast cancer"),
        ("TYPE:BRCA", "Mammakarzinom"),
    ]
    assert [m.concept_id for m in lex.match(text, None)] == [
        "MORPH:DUCTAL_CARCINOMA",
        "TYPE:BRCA",
        "TYPE:BRCA",
    ]


def test_matches_are_ordered_non_overlapping_and_offsets_round_trip(lex: Lexicon) -> None:
    # A note built from random terms separated by ";" (in no term) yields exactly those terms.
    rng = np.random.default_rng(7)
    ids = list(lex.concepts)
    for lang in LANGUAGES:
        picked = [ids[i] for i in rng.integers(len(ids), size=25)]
        terms = [lex.term(cid, lang, rng) for cid in picked]
        text = " ; ".join(terms)
        found = lex.match(text, lang)
        assert [m.concept_id for m in found] == picked
        assert [m.text for m in found] == terms
        assert all(text[m.start : m.end] == m.text for m in found)
        assert all(a.end <= b.start for a, b in zip(found, found[1:], strict=False))


# --- loader validation --------------------------------------------------------------------

GOOD = _row("GENE:EGFR", "gene", "EGFR")
NO_ES = _row("GENE:KRAS", "gene", "KRAS", "KRAS", "", "KRAS", "KRAS", "KRAS", "KRAS")
CLASH = _row("BIOMARKER:EGFR", "biomarker", "egfr")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([GOOD, GOOD], "line 3: duplicate concept id GENE:EGFR (first on line 2)"),
        ([NO_ES], "line 2: missing es term for GENE:KRAS"),
        ([GOOD, _row("GENE:ALK", "genes", "ALK")], "line 3: unknown category 'genes'"),
        ([_row("gene:alk", "gene", "ALK")], "line 2: bad concept id 'gene:alk'"),
        ([_row("TX:ALK", "gene", "ALK")], "line 2: concept id TX:ALK of category gene"),
        ([GOOD, CLASH], "line 3: en term 'egfr' already belongs to GENE:EGFR (line 2)"),
        ([GOOD, "GENE:ALK\tgene\t\tALK"], "line 3: expected 10 tab-separated columns, found 4"),
        ([_row("GENE:ALK", "gene", "ALK|")], "line 2: empty en term"),
        ([_row("GENE:ALK", "gene", "ALK|alk")], "line 2: repeated en term"),
        ([_row("GENE:ALK", "gene", "ALK", ncit="4194")], "line 2: bad NCIt code '4194'"),
        ([_row("SITE:X", "site", unicodedata.normalize("NFD", "fígado"))], "line 2: en term"),
    ],
)  # fmt: skip
def test_loader_rejects_bad_rows_naming_the_line(rows: list[str], message: str) -> None:
    with pytest.raises(InputError) as err:
        Lexicon.parse("\n".join([HEADER, *rows]) + "\n")
    assert str(err.value).startswith("concepts.tsv: ") and message in str(err.value)


def test_loader_rejects_a_header_without_every_language() -> None:
    header = "concept_id\tcategory\tncit\ten\tpt"
    with pytest.raises(InputError, match=r"concepts.tsv: line 1: language columns"):
        Lexicon.parse(header + "\nGENE:EGFR\tgene\t\tEGFR\tEGFR\n")


def test_load_reads_a_file_with_an_extra_language_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "concepts.tsv"
    path.write_text(HEADER + "\tit\n" + _row("GENE:EGFR", "gene", *["EGFR"] * 8) + "\n", "utf-8")
    lex = Lexicon.load(path)
    assert lex.languages == (*LANGUAGES, "it")
    assert _found(lex, "mutazione di EGFR", "it") == [("GENE:EGFR", "EGFR")]
    path.write_text(HEADER + "\n" + _row("GENE:EGFR", "gen", "EGFR") + "\n", "utf-8")
    with pytest.raises(InputError, match=r"^concepts.tsv: line 2: unknown category"):
        Lexicon.load(path)
    with pytest.raises(InputError, match=r"missing.tsv: cannot read"):
        Lexicon.load(tmp_path / "missing.tsv")
