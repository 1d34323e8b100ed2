"""UI translations: flat JSON catalogues per language, `assets/i18n/<lang>.json` for the shell
and `assets/i18n/<feature>/<lang>.json` per feature (merged; a key may be defined only once),
so that features add strings without editing one shared file.

Each catalogue maps a dotted key (e.g. "home.title") to a string that may hold `{name}`
placeholders filled by `translate`. Clinical content (notes, summaries) is not translated
here; this module only covers the interface.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

from core.errors import ConfigError

I18N_DIR = Path(__file__).resolve().parent.parent / "assets" / "i18n"
DEFAULT_LANGUAGE = "en"
SESSION_KEY = "ui_lang"  # session-state key of the sidebar language picker

# Language code -> its name in that language, as shown in the language picker.
UI_LANGUAGES: Mapping[str, str] = MappingProxyType(
    {
        "en": "English",
        "pt": "Português",
        "es": "Español",
        "sw": "Kiswahili",
        "hi": "हिन्दी",
        "de": "Deutsch",
        "fr": "Français",
    }
)


@cache
def catalog(lang: str) -> Mapping[str, str]:
    """The read-only key -> string catalogue of `lang`, read once per process."""
    if lang not in UI_LANGUAGES:
        raise ValueError(f"unknown UI language {lang!r}; expected one of {sorted(UI_LANGUAGES)}")
    data: dict[str, str] = {}
    for path in (I18N_DIR / f"{lang}.json", *sorted(I18N_DIR.glob(f"*/{lang}.json"))):
        try:
            part = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read UI translations: {exc}") from exc
        if not isinstance(part, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in part.items()
        ):
            raise ConfigError(f"{path}: must be a flat JSON object of string keys to strings")
        if clash := sorted(data.keys() & part.keys()):
            raise ConfigError(f"{path}: keys already defined elsewhere: {', '.join(clash[:5])}")
        data.update(part)
    return MappingProxyType(data)


def translate(key: str, lang: str, /, **kwargs: object) -> str:
    """The UI string `key` in `lang` with `{name}` placeholders filled from `kwargs`.

    Falls back to English when `lang` lacks the key (tests keep every catalogue complete);
    raises KeyError when English lacks it too, so a typo in a key fails loudly.
    """
    text = catalog(lang).get(key)
    if text is None:
        text = catalog(DEFAULT_LANGUAGE)[key]
    return text.format(**kwargs) if kwargs else text


def translator(lang: str) -> Callable[..., str]:
    """`translate` bound to `lang`: `t = translator(lang); t("home.title")`."""
    catalog(lang)  # fail now on an unknown language, not at the first string

    def t(key: str, /, **kwargs: object) -> str:
        return translate(key, lang, **kwargs)

    return t


def label(group: str, value: str, lang: str) -> str:
    """Translation of `group.value` (e.g. "split.train") when known, else `value` itself.

    For open-ended values such as model kinds, where a new value must still display.
    """
    key = f"{group}.{value}"
    return translate(key, lang) if key in catalog(DEFAULT_LANGUAGE) else value


def session_language(state: Mapping[str, object]) -> str:
    """The UI language chosen in a session state (st.session_state), English if none is valid."""
    lang = state.get(SESSION_KEY)
    return lang if isinstance(lang, str) and lang in UI_LANGUAGES else DEFAULT_LANGUAGE


def missing_keys() -> dict[str, set[str]]:
    """Per language, the keys that some other catalogue has and this one lacks."""
    all_keys = set().union(*(catalog(lang).keys() for lang in UI_LANGUAGES))
    return {lang: all_keys - catalog(lang).keys() for lang in UI_LANGUAGES}
