"""Note facts: what a text states, the same in every language, as hashed multi-hot vectors."""

from __future__ import annotations

import pytest
import torch

from core.data.lexicon import default_lexicon
from core.models.facts import (
    VARIANT_NAME,
    FactEmbedding,
    fact_keys,
    fact_slot,
    fact_vectors,
    text_facts,
)

EN = "Lung adenocarcinoma, grade 3. EGFR L858R and p.T790M; EML4::ALK fusion negative."
PT = "Adenocarcinoma de pulmão, grau 3. EGFR L858R e p.T790M; fusão EML4::ALK negativa."


def test_variant_names_as_reports_write_them_and_nothing_else():
    text = (
        "BRAF p.V600E, TP53 R213*, APC R209fs, EGFR E746_A750del, MET X1010_splice, "
        "EML4::ALK, TERT C228T; not grade G2, pT2N0, HER2, Ki67 or COVID19."
    )
    assert VARIANT_NAME.findall(text) == [
        "V600E", "R213*", "R209fs", "E746_A750del", "X1010_splice", "EML4::ALK", "C228T",
    ]  # fmt: skip


def test_a_note_and_its_translation_state_the_same_facts():
    lexicon = default_lexicon()
    en = fact_keys(EN, lexicon.match(EN, "en"))
    assert {"TYPE:LUAD", "GRADE:3", "GENE:EGFR", "VAR:L858R", "VAR:T790M", "VAR:EML4::ALK"} <= en
    assert fact_keys(PT, lexicon.match(PT, "pt")) == en
    # The English pipeline on Portuguese finds only what is spelt alike (genes, variants).
    english_reading = fact_keys(PT, lexicon.match(PT, "en"))
    assert {"GENE:EGFR", "VAR:L858R"} <= english_reading
    assert not {"TYPE:LUAD", "GRADE:3"} & english_reading


def test_slots_are_stable_and_vectors_multi_hot():
    assert fact_slot("GENE:EGFR", 1024) == 36  # zlib.crc32(b"GENE:EGFR") % 1024
    v = fact_vectors([{"GENE:EGFR", "VAR:L858R"}, set()], 1024)
    assert v.shape == (2, 1024) and v[0].sum() == 2 and v[1].sum() == 0
    assert v[0, 36] == 1
    lexicon = default_lexicon()
    batch = text_facts([EN, PT], ["en", "pt"], lexicon, 64)
    torch.testing.assert_close(batch[0], batch[1])


def test_fact_embedding_starts_at_zero_sums_present_facts_and_checks_width():
    emb = FactEmbedding(8, 3)
    facts = torch.tensor([[1.0, 0, 1, 0, 0, 0, 0, 0]])
    assert emb(facts).abs().sum() == 0  # neutral before training
    with torch.no_grad():
        emb.weight.copy_(torch.arange(24.0).view(8, 3))
    torch.testing.assert_close(emb(facts), torch.tensor([[6.0, 8.0, 10.0]]))  # rows 0 + 2
    with pytest.raises(ValueError, match="fact vectors"):
        emb(torch.zeros(1, 7))
