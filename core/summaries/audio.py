"""Spoken summaries for patients who do not read, via espeak-ng when it is installed.

espeak-ng (Debian package `espeak-ng`) is optional: `available()` says whether the binary is on
PATH, and nothing here runs at import time. The WAV is written by `espeak-ng -w` into a private
temporary folder and returned as bytes.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from core.errors import CmkdError
from core.summaries.render import Summary

BINARY = "espeak-ng"
# Summary language -> espeak-ng voice: Brazilian Portuguese for Sao Paulo; Swahili as shipped.
VOICES: Mapping[str, str] = MappingProxyType(
    {"en": "en", "pt": "pt-br", "es": "es", "sw": "sw", "hi": "hi", "de": "de", "fr": "fr"}
)
WORDS_PER_MINUTE = 140  # slower than espeak-ng's default 175, for listeners new to the terms
TIMEOUT_S = 120  # a one-page summary takes a few seconds


def binary() -> str | None:
    """Path of espeak-ng, or None when it is not installed."""
    return shutil.which(BINARY)


def available(lang: str) -> bool:
    """Whether a spoken summary can be made in `lang` on this machine."""
    return lang in VOICES and binary() is not None


def spoken_text(summary: Summary) -> str:
    """What is read aloud: the title, then every sentence, one per line."""
    return "\n".join([summary.title, *(s.text for s in summary.sentences())])


def summary_wav(summary: Summary) -> bytes:
    """The summary read aloud as a WAV file; CmkdError when espeak-ng is missing or fails."""
    exe = binary()
    if exe is None or summary.lang not in VOICES:
        raise CmkdError(f"no speech for {summary.lang!r}: install espeak-ng to enable audio")
    with tempfile.TemporaryDirectory(prefix="cmkd-audio-") as tmp:
        text_path, wav_path = Path(tmp) / "summary.txt", Path(tmp) / "summary.wav"
        text_path.write_text(spoken_text(summary), encoding="utf-8")
        cmd = [exe, "-v", VOICES[summary.lang], "-s", str(WORDS_PER_MINUTE),
               "-w", str(wav_path), "-f", str(text_path)]  # fmt: skip
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as e:
            detail = getattr(e, "stderr", b"") or b""
            raise CmkdError(
                f"espeak-ng failed: {e} {detail.decode(errors='replace')}".strip()
            ) from e
        return wav_path.read_bytes()
