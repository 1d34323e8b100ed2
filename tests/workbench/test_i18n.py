"""UI translations: complete, consistent catalogues and the lookup rules of workbench.i18n."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.data.schema import LANGUAGES
from core.errors import ConfigError
from workbench import i18n
from workbench.i18n import (
    UI_LANGUAGES,
    catalog,
    label,
    missing_keys,
    session_language,
    translate,
    translator,
)

# Words that are the same in English and the language (e.g. "Version" in German, "Test" in
# French) are fine; more than this many identical strings means an untranslated copy.
MAX_SAME_AS_ENGLISH = 5


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


@pytest.fixture()
def fake_catalogs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point i18n at an empty folder of catalogues; the cache is cleared around the test."""
    monkeypatch.setattr(i18n, "I18N_DIR", tmp_path)
    catalog.cache_clear()
    yield tmp_path
    catalog.cache_clear()


def write_catalogs(folder: Path, **catalogs: dict[str, str]) -> None:
    for lang in UI_LANGUAGES:
        data = catalogs.get(lang, {"greeting": f"{lang}: hello {{name}}"})
        (folder / f"{lang}.json").write_text(json.dumps(data), encoding="utf-8")


def test_ui_languages_are_the_schema_languages() -> None:
    assert set(UI_LANGUAGES) == set(LANGUAGES)


def test_every_catalogue_has_exactly_the_english_keys() -> None:
    assert missing_keys() == {lang: set() for lang in UI_LANGUAGES}
    for lang in UI_LANGUAGES:
        assert catalog(lang).keys() == catalog("en").keys(), lang


def test_no_empty_strings() -> None:
    empty = [(lang, k) for lang in UI_LANGUAGES for k, v in catalog(lang).items() if not v.strip()]
    assert empty == []


def test_placeholders_are_identical_across_languages() -> None:
    for key, english in catalog("en").items():
        for lang in UI_LANGUAGES:
            assert placeholders(catalog(lang)[key]) == placeholders(english), (lang, key)


def test_no_catalogue_is_an_untranslated_copy_of_english() -> None:
    english = catalog("en")
    for lang in UI_LANGUAGES:
        if lang == "en":
            continue
        same = sorted(k for k, v in catalog(lang).items() if v == english[k])
        assert len(same) <= MAX_SAME_AS_ENGLISH, (lang, same)


def test_strings_hold_no_markup_that_streamlit_would_interpret() -> None:
    # "$" starts LaTeX in st.markdown; "<" would be HTML (escaped, but shown as noise).
    bad = [
        (lang, k) for lang in UI_LANGUAGES for k, v in catalog(lang).items() if {"$", "<"} & set(v)
    ]
    assert bad == []


def test_translate_fills_placeholders_in_the_chosen_language() -> None:
    pt = translate("home.workspace_path", "pt", path="/data/ws")
    en = translate("home.workspace_path", "en", path="/data/ws")
    assert "/data/ws" in pt and "/data/ws" in en
    assert pt != en
    assert translator("hi")("home.title") == catalog("hi")["home.title"]


def test_unknown_key_and_unknown_language_fail_loudly() -> None:
    with pytest.raises(KeyError):
        translate("home.no_such_key", "pt")
    with pytest.raises(ValueError, match="unknown UI language"):
        translate("home.title", "xx")
    with pytest.raises(ValueError):
        translator("xx")


def test_label_translates_known_values_and_passes_unknown_ones_through() -> None:
    assert label("split", "train", "pt") == catalog("pt")["split.train"]
    assert label("model_kind", "quantum-head", "pt") == "quantum-head"


def test_session_language_defaults_to_english() -> None:
    assert session_language({}) == "en"
    assert session_language({"ui_lang": "sw"}) == "sw"
    assert session_language({"ui_lang": "klingon"}) == "en"
    assert session_language({"ui_lang": None}) == "en"


def test_missing_key_falls_back_to_english_and_is_reported(fake_catalogs: Path) -> None:
    write_catalogs(
        fake_catalogs,
        en={"greeting": "hello {name}", "farewell": "bye"},
        pt={"greeting": "olá {name}", "extra": "só em português"},
    )
    assert translate("farewell", "pt") == "bye"
    assert translate("greeting", "pt", name="Ana") == "olá Ana"
    missing = missing_keys()
    assert missing["pt"] == {"farewell"}
    assert missing["en"] == {"extra"}
    assert missing["de"] == {"farewell", "extra"}


def test_malformed_catalogue_is_a_config_error(fake_catalogs: Path) -> None:
    write_catalogs(fake_catalogs)
    (fake_catalogs / "sw.json").write_text('{"greeting": ["not", "a", "string"]}', encoding="utf-8")
    (fake_catalogs / "hi.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="flat JSON object"):
        catalog("sw")
    with pytest.raises(ConfigError, match="hi.json"):
        catalog("hi")
