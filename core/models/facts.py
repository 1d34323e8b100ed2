"""Note facts: what a clinical text states, as a language-independent multi-hot vector.

A sentence embedding blurs the details that tell one case from another: mean-pooled MiniLM
puts "grade 2" and "grade 3", or "KRAS G12D" and "KRAS G12V", almost on top of each other
(a linear probe reads the grade back from the teacher's text embedding for 59% of notes).
Retrieval of the same case's slide and genomic profile needs exactly those details. The
facts of a text are the lexicon concepts it names (type, subtype, grade, genes, variant
kinds, biomarkers, sites, ...) and the variant names it writes ("V600E", "R213*",
"E746_A750del", "EML4::ALK"). Concept ids are shared by every language of the lexicon and
variant names are written the same way in all of them, so the facts of a note and of its
translation coincide: the teacher reads English facts, a student the same facts from its
own language.

Each fact is hashed (CRC-32) into one of `buckets` slots of a 0/1 vector; with ~400 distinct
facts in the cohort and 1,024 slots, collisions are rare and harmless (two facts share an
embedding row). `FactEmbedding` adds a learned vector per present fact to a text feature;
it starts at zero, so a text branch starts exactly as it was without facts.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from core.data.lexicon import EntityMatch, Lexicon

# Protein changes as notes and reports write them (missense, nonsense, frameshift, in-frame
# deletion, splice site), promoter hotspots (C228T reads as a missense) and fusions.
VARIANT_NAME = re.compile(
    r"(?<![A-Za-z0-9])"
    r"([A-Z]\d+(?:[A-Z]|\*|fs|_[A-Z]\d+del|_splice)|[A-Z0-9]{2,}::[A-Z0-9]{2,})"
    r"(?![A-Za-z0-9])"
)


def fact_keys(text: str, matches: Iterable[EntityMatch]) -> frozenset[str]:
    """The facts of `text` given its lexicon `matches`: concept ids and "VAR:<name>" keys."""
    keys = {m.concept_id for m in matches}
    keys.update(f"VAR:{name}" for name in VARIANT_NAME.findall(text))
    return frozenset(keys)


def fact_slot(key: str, buckets: int) -> int:
    """The slot of one fact: stable across processes and Python versions (unlike hash())."""
    return zlib.crc32(key.encode("utf-8")) % buckets


def fact_vectors(key_sets: Sequence[Iterable[str]], buckets: int) -> Tensor:
    """(N, buckets) float32 multi-hot vectors of N fact sets."""
    out = torch.zeros(len(key_sets), buckets)
    for i, keys in enumerate(key_sets):
        slots = [fact_slot(k, buckets) for k in keys]
        if slots:
            out[i, slots] = 1.0
    return out


def text_facts(
    texts: Sequence[str], langs: Sequence[str | None], lexicon: Lexicon, buckets: int
) -> Tensor:
    """(N, buckets) fact vectors of `texts`, each matched in its language (None: all)."""
    keys = [fact_keys(t, lexicon.match(t, lang)) for t, lang in zip(texts, langs, strict=True)]
    return fact_vectors(keys, buckets)


class FactEmbedding(nn.Module):
    """Fact vectors (B, buckets) -> (B, dim): the sum of a learned vector per present fact.

    Zero-initialised, so adding it to a text feature changes nothing until training does.
    """

    def __init__(self, buckets: int, dim: int) -> None:
        super().__init__()
        self.buckets = buckets
        self.weight = nn.Parameter(torch.zeros(buckets, dim))

    def forward(self, facts: Tensor) -> Tensor:
        if facts.shape[-1] != self.buckets:
            raise ValueError(
                f"expected (..., {self.buckets}) fact vectors, got {tuple(facts.shape)}"
            )
        return facts.to(self.weight.dtype) @ self.weight  # (B, dim)
