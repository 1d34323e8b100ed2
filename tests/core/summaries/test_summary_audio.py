"""Spoken summaries: optional espeak-ng (WAV for the Swahili and Portuguese voices)."""

from __future__ import annotations

import shutil

import pytest

from core.errors import CmkdError
from core.knowledge import KnowledgeBase
from core.summaries import audio
from core.summaries.facts import FactsInput, derive_facts
from core.summaries.render import PhraseBank, render


def test_unavailable_without_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio.shutil, "which", lambda _name: None)
    assert not audio.available("sw")
    summary = render(derive_facts(FactsInput("LIHC"), KnowledgeBase.load()), PhraseBank.load("sw"))
    with pytest.raises(CmkdError, match="install espeak-ng"):
        audio.summary_wav(summary)


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="needs espeak-ng: as root run `apt-get install -y espeak-ng`",
)
@pytest.mark.parametrize("lang", ["sw", "pt"])
def test_wav_in_the_patients_language(lang: str) -> None:
    assert audio.available(lang)
    summary = render(derive_facts(FactsInput("LIHC"), KnowledgeBase.load()), PhraseBank.load(lang))
    wav = audio.summary_wav(summary)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert len(wav) > 100_000  # several seconds of speech, not an empty file
