"""Language packs: validation errors name file and line, the held-out split is fixed by the
English side, installation is atomic, and the lexicon column joins the entity matcher."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from core.data import language_packs
from core.data.language_packs import (
    LEXICON_FILE,
    PHRASES_FILE,
    build_pack,
    install_pack,
    installed_packs,
    load_pack,
    merged_lexicon,
)
from core.data.lexicon import default_lexicon
from core.errors import InputError

PACK = Path(__file__).resolve().parents[2] / "data" / "language_pack_it"
PHRASES = (PACK / PHRASES_FILE).read_bytes()
LEXICON = (PACK / LEXICON_FILE).read_bytes()


def lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def test_the_example_pack_loads_and_splits_by_the_english_side() -> None:
    pack = load_pack(PACK)
    assert (pack.code, pack.name, pack.script) == ("it", "Italiano", "Latin")
    assert len(pack.phrases) == 61 and len(pack.terms) >= 30
    train, heldout = pack.split("train"), pack.split("heldout")
    assert len(heldout) == 13 and len(train) + len(heldout) == len(pack.phrases)
    assert not set(train) & set(heldout)
    # Shuffling the rows keeps the same held-out phrases: the split hangs on the text only.
    rows = lines(PHRASES)
    body = rows[1:]
    random.Random(3).shuffle(body)
    shuffled = build_pack("it", b"".join([rows[0], *body]), LEXICON)
    assert set(shuffled.split("heldout")) == set(heldout)
    assert [r.texts["it"] for r in pack.parallel_rows("heldout")] == [t for _, t in heldout]
    with pytest.raises(InputError, match="unknown pack split"):
        pack.split("test")


def replace_line(data: bytes, lineno: int, new: bytes) -> bytes:
    rows = lines(data)
    rows[lineno - 1] = new
    return b"".join(rows)


@pytest.mark.parametrize(
    ("phrases", "lexicon", "expected"),
    [
        (replace_line(PHRASES, 1, b"en\tes\n"), LEXICON, "phrases.tsv: line 1: the header"),
        (replace_line(PHRASES, 4, b"only English\n"), LEXICON,
         "phrases.tsv: line 4: expected 2 tab-separated cells, found 1"),
        (replace_line(PHRASES, 5, b"Some text.\t \n"), LEXICON, "phrases.tsv: line 5: empty cell"),
        (replace_line(PHRASES, 9, lines(PHRASES)[2]), LEXICON,
         "phrases.tsv: line 9: duplicate English sentence (first on line 3)"),
        (replace_line(PHRASES, 7, b"Caf\xe9 au lait.\tCaff\xe8 latte.\n"), LEXICON,
         "phrases.tsv: line 7: not UTF-8 text"),
        (b"".join(lines(PHRASES)[:40]), LEXICON, "phrases.tsv: 39 phrases; a pack needs at least"),
        (PHRASES, replace_line(LEXICON, 3, b"TYPE:NOPE\tnessuno\n"),
         "lexicon.tsv: line 3: unknown concept id 'TYPE:NOPE'"),
        (PHRASES, replace_line(LEXICON, 4, b"TYPE:COAD\tcancro del colon||tumore\n"),
         "lexicon.tsv: line 4: empty term"),
        (PHRASES, replace_line(LEXICON, 5, lines(LEXICON)[1]),
         "lexicon.tsv: line 5: duplicate concept id TYPE:BRCA"),
        # "melanoma" is already an English term of MORPH:MELANOMA.
        (PHRASES, replace_line(LEXICON, 7, b"TYPE:SKCM\tmelanoma\n"),
         "lexicon.tsv: line 7: term 'melanoma' already names MORPH:MELANOMA"),
        (PHRASES, replace_line(LEXICON, 1, b"concept_id\tterms\n"),
         "lexicon.tsv: line 1: the header must be concept_id<TAB>it"),
    ],
)  # fmt: skip
def test_validation_errors_name_the_file_and_line(
    phrases: bytes, lexicon: bytes, expected: str
) -> None:
    with pytest.raises(InputError) as err:
        build_pack("it", phrases, lexicon)
    assert str(err.value).startswith(expected), str(err.value)


@pytest.mark.parametrize("code", ["ITA", "i", "pt", "en", "it1"])
def test_codes_must_be_new_iso_639_1(code: str) -> None:
    with pytest.raises(InputError, match="language"):
        build_pack(code, PHRASES, LEXICON)


def test_install_is_atomic_and_replaces_a_pack_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packs = tmp_path / "languages"
    pack = install_pack(packs, "it", PHRASES, LEXICON, "Italiano")
    assert installed_packs(packs) == {"it": packs / "it"}
    again = load_pack(packs / "it")
    assert (again.phrases, dict(again.terms), again.name) == (
        pack.phrases, dict(pack.terms), "Italiano",
    )  # fmt: skip
    before = {p.name: p.read_bytes() for p in (packs / "it").iterdir()}

    # An invalid file writes nothing: the installed pack stays as it was.
    with pytest.raises(InputError, match="lexicon.tsv: line 2"):
        install_pack(packs, "it", PHRASES, replace_line(LEXICON, 2, b"X:Y\tz\n"))
    # A crash halfway through writing leaves no half pack and no temporary folder behind.
    real_write = language_packs.write_atomic

    def crash_after_first(path: Path, data: bytes, mode: int | None = None) -> None:
        real_write(path, data, mode)
        if path.name == language_packs.PACK_FILE:
            raise OSError("disk full")

    monkeypatch.setattr(language_packs, "write_atomic", crash_after_first)
    with pytest.raises(OSError, match="disk full"):
        install_pack(packs, "it", b"".join(lines(PHRASES)[:55]), LEXICON, "Nuovo")
    assert {p.name: p.read_bytes() for p in (packs / "it").iterdir()} == before
    assert sorted(p.name for p in packs.iterdir()) == ["it"]


def test_the_lexicon_column_joins_the_entity_matcher() -> None:
    pack = load_pack(PACK)
    lexicon = merged_lexicon([pack])
    text = "Carcinoma mammario con metastasi al fegato, HER2 positivo."
    found = {m.concept_id: m.text for m in lexicon.match(text, "it")}
    assert found == {
        "TYPE:BRCA": "Carcinoma mammario", "FINDING:METASTASIS": "metastasi",
        "SITE:LIVER": "fegato", "BIOMARKER:HER2": "HER2", "FINDING:POSITIVE": "positivo",
    }  # fmt: skip
    assert lexicon.concept("TYPE:BRCA").preferred("it") == "carcinoma mammario"
    assert lexicon.concept("GENE:TP53").preferred("it") == "TP53"  # English fallback
    assert default_lexicon().match(text, "es") != lexicon.match(text, "it")
    with pytest.raises(InputError, match="belongs to"):  # a second pack may not take a term
        lexicon.with_language("xx", {"TYPE:LUAD": ("carcinoma mammario",)})
