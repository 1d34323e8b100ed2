"""Note templates and the note renderer: coverage, parallelism, held-out templates, noise."""

from __future__ import annotations

import json
import re
import time
from itertools import cycle

import numpy as np
import pytest

from core.data import notes, oncology
from core.data.lexicon import CATEGORY_PREFIXES, Lexicon, default_lexicon, default_path
from core.data.notes import (
    DRIVER_KINDS,
    NoiseConfig,
    NoteFacts,
    NoteTemplate,
    anatomy,
    list_templates,
    render_case_notes,
    render_note,
    sex_form_slots,
    template_facts,
    treatment_plan,
)
from core.data.schema import (
    BIOMARKERS,
    CANCER_TYPES,
    DRIVER_GENES,
    LANGUAGES,
    NECROSIS_LEVELS,
    NOTE_KINDS,
    STAGES,
    SUBTYPES,
    TIL_LEVELS,
)
from core.errors import ConfigError, InputError

NON_ENGLISH = tuple(lang for lang in LANGUAGES if lang != "en")
QUIET = NoiseConfig(abbreviation_rate=0.0, typo_rate=0.0, missing_rate=0.0)
# English function words that must not leak into notes in other languages.
ENGLISH_WORDS = ("the", "with", "and", "of", "is", "was", "for", "from", "were", "has", "to")
FALSE_FRIENDS = {"de": {"was"}}  # German "was" (what)
# Words that mark a gene as tested negative, per language (lower case).
NEGATION_CUES = {
    "en": ("neg", "-ve", "no ", "wild-type", "wt", "not ", "unaltered", "absent", "excluded",
           "without"),
    "pt": ("neg", "sem ", "selvagem", "não ", "nenhuma", "ausente", "excluíd", "inalterad"),
    "es": ("neg", "sin ", "nativ", "no ", "ninguna", "ausente", "excluid", "inalterad"),
    "sw": ("hasi", "-ve", "hakuna", "haina", "hazina", "bila ", "wild-type", "wt",
           "hazikugunduliwa", "zisizo na", "zisizobadilika", "yasiyokuwepo", "yaliyoondolewa"),
    "hi": ("नेगेटिव", "neg", "-ve", "नहीं", "wild-type", "wt", "बिना", "अनुपस्थित", "अपरिवर्तित",
           "बाहर किए"),
    "de": ("neg", "kein", "wildtyp", "ohne", "nicht ", "unverändert", "ausgeschlossen", " wt",
           "fehlend"),
    "fr": ("nég", "neg", "pas de", "sauvage", "aucune", "sans ", "absen", "non ", "exclu",
           "inaltér"),
}  # fmt: skip


def _fake_term(concept_id: str, lang: str) -> str:
    prefix, code = concept_id.split(":")
    return f"{prefix.lower()}{code.lower().replace('_', '')} {lang}"


def _fake_lexicon() -> Lexicon:
    """Every concept the renderer may ask for, with two made-up terms per language."""
    ids = {f"TYPE:{t}" for t in CANCER_TYPES}
    ids |= {f"SUBTYPE:{s}" for subs in SUBTYPES.values() for s in subs}
    for t in CANCER_TYPES:
        for s in ("", *SUBTYPES[t]):
            anat = anatomy(t, s)
            ids |= {cid for cid, _ in anat.sites + anat.morphs}
    ids |= {f"SITE:{s}" for s in notes.SITES}
    ids |= {f"STAGE:{s}" for s in STAGES} | {f"GRADE:{g}" for g in (1, 2, 3)}
    ids |= {f"VARKIND:{k}" for k in DRIVER_KINDS if k not in notes.KINDS_WITHOUT_TERM}
    ids |= {f"BIOMARKER:{b}" for b in BIOMARKERS}
    ids |= {"TX:SURGERY", "TX:CHEMOTHERAPY", "TX:RADIOTHERAPY", "TX:IMMUNOTHERAPY",
            "TX:TEMOZOLOMIDE", "TX:CHEMORADIOTHERAPY", "TX:ADJUVANT_THERAPY",
            "TX:TAMOXIFEN", "TX:LETROZOLE"}  # fmt: skip
    ids |= {tx for plan in notes.TARGETED_THERAPY.values() for tx in plan}
    ids |= {*TIL_LEVELS, *NECROSIS_LEVELS}
    categories = {prefix: category for category, prefix in CATEGORY_PREFIXES.items()}
    rows = ["\t".join(("concept_id", "category", "ncit", *LANGUAGES))]
    for cid in sorted(ids):
        terms = [f"{_fake_term(cid, lang)}|{_fake_term(cid, lang)} alt" for lang in LANGUAGES]
        rows.append("\t".join((cid, categories[cid.split(":")[0]], "", *terms)))
    return Lexicon.parse("\n".join(rows) + "\n")


FAKE = _fake_lexicon()


def _real_lexicon() -> Lexicon:
    if not default_path().exists():
        pytest.skip("assets/lexicon/concepts.tsv is not there yet")
    return default_lexicon()


def _facts(cancer_type: str, k: int = 0, rich: bool = True) -> NoteFacts:
    """Facts of one case; `rich` gives every optional fact, else the bare minimum."""
    subtypes = SUBTYPES[cancer_type]
    genes = [g for g in DRIVER_GENES if g not in ("EGFR", "KRAS")]
    if not rich:
        return NoteFacts(cancer_type, "", "", 0, 61, "M")
    kinds = cycle(DRIVER_KINDS[k % len(DRIVER_KINDS) :] + DRIVER_KINDS)
    proteins = {"MISSENSE": "p.R175H", "NONSENSE": "p.R213*", "FRAMESHIFT": "p.E1286fs",
                "INFRAME_DELETION": "p.E746_A750del", "SPLICE": "c.3028+1G>A",
                "HOTSPOT": "V600E", "FUSION": "EML4::ALK",
                "PROMOTER": "C228T"}  # fmt: skip
    drivers = tuple((genes[(k + i) % len(genes)], kind, proteins.get(kind, ""))
                    for i, kind in zip(range(2), kinds, strict=False))  # fmt: skip
    return NoteFacts(
        cancer_type=cancer_type,
        subtype=subtypes[k % len(subtypes)],
        stage="IV",
        grade=1 + k % 3,
        age=40 + k,
        sex="FM"[k % 2],
        drivers=drivers,
        negative_genes=("EGFR", "KRAS")[: 1 + k % 2],
        biomarkers=(("ER", "positive"), ("MSI", "high"), ("MGMT", "unmethylated")),
        distractor_type="SKCM" if cancer_type != "SKCM" else "BRCA",
        metastatic_sites=("SITE:LIVER", "BONE"),
        histology=(TIL_LEVELS[k % 3], NECROSIS_LEVELS[(k + 1) % 3]),
    )


# A letter, Devanagari vowel signs included (Python's \w leaves combining marks out).
WORD = r"(?:[^\W\d_]|[\u0900-\u097F])"


def _skeletons(text: str) -> set[str]:
    """Sentences of a template with slots and group brackets normalised away."""
    out = set()
    for line in text.split("\n"):
        line = re.sub(r"\{\w+\}", "{}", line.replace("[", "").replace("]", "")).lower()
        for sentence in re.split(r"[.;!?।](?:\s+|$)", line):
            skeleton = " ".join(re.findall(rf"\{{\}}|{WORD}+", sentence))
            if re.search(WORD, skeleton.replace("{}", "")):
                out.add(skeleton)
    return out


# --------------------------------------------------------------------- templates


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_kind_has_enough_train_and_test_templates(lang: str) -> None:
    for kind in NOTE_KINDS:
        all_ = list_templates(lang, kind)
        test = list_templates(lang, kind, "test")
        assert len(all_) >= 12 and len(test) >= 4
        assert 0.25 <= len(test) / len(all_) <= 0.4
        assert len({t.text for t in all_}) == len(all_)
        assert all(t.template_id == f"{lang}/{kind}/{t.local_id}" for t in all_)


@pytest.mark.parametrize("lang", NON_ENGLISH)
def test_templates_are_parallel_to_english(lang: str) -> None:
    for kind in NOTE_KINDS:
        english = {t.local_id: t for t in list_templates("en", kind)}
        ours = {t.local_id: t for t in list_templates(lang, kind)}
        assert set(ours) == set(english)
        for local_id, t in ours.items():
            assert t.split == english[local_id].split
            assert template_facts(t, sex_form_slots(lang)) == template_facts(
                english[local_id], sex_form_slots("en")
            ), t.template_id


@pytest.mark.parametrize("lang", LANGUAGES)
def test_test_templates_share_no_sentence_skeleton_with_train(lang: str) -> None:
    train = set().union(*(_skeletons(t.text) for k in NOTE_KINDS
                          for t in list_templates(lang, k, "train")))  # fmt: skip
    for kind in NOTE_KINDS:
        for t in list_templates(lang, kind, "test"):
            shared = _skeletons(t.text) & train
            assert not shared, f"{t.template_id} repeats train skeletons {shared}"


def test_skeletons_ignore_slots_and_brackets() -> None:
    assert _skeletons("Dx: {dx}[; {Negatives}].\nStage: {stage_v}") == {"dx {}", "stage {}"}
    assert _skeletons("[{Negatives}.]") == set()


def _en_phrases() -> dict:
    return json.loads((notes.notes_dir() / "en.json").read_text(encoding="utf-8"))["phrases"]


def test_bad_template_files_are_rejected() -> None:
    good = notes._language("en")
    raw = {"lang": "en", "phrases": _en_phrases(), "templates": {k: [] for k in NOTE_KINDS}}
    assert notes._parse_language("en", raw, "x.json").templates["clinic_note"] == ()
    entry = {"id": "01", "split": "train", "text": ["Dx: {dx}", "Mol: {drivers}"]}
    for bad_text, reason in (
        (["Dx: {dx}", "Neg: {neg_genes}", "Mol: {drivers}"], r"need a \[group\]"),
        (["Dx: {dx} [Mol: {drivers}]"], "outside any group"),
        (["Dx: {dx}", "Mol: {drivers} {unknown}"], "unknown slots"),
        (["Dx: {dx} [[{grade}]]", "Mol: {drivers}"], "nested"),
        (["Dx: {dx} {grade", "Mol: {drivers}"], "malformed"),
    ):
        templates = {k: [] for k in NOTE_KINDS} | {"clinic_note": [entry | {"text": bad_text}]}
        with pytest.raises(ConfigError, match=reason):
            notes._parse_language("en", raw | {"templates": templates}, "x.json")
    with pytest.raises(ConfigError, match="duplicate id"):
        notes._parse_language("en", raw | {"templates": {k: [entry] * 2 for k in NOTE_KINDS}}, "x")
    phrases = _en_phrases()
    del phrases["driver"]["FUSION"]
    with pytest.raises(ConfigError, match="driver"):
        notes._parse_language("en", raw | {"phrases": phrases}, "x.json")
    for edit, reason in (
        (lambda ph: ph["dx"].update(site_morph=["{morph}"]), "exactly"),
        (lambda ph: ph["driver"]["PROMOTER"].append("{gene} {kind}"), "no lexicon term"),
        (lambda ph: ph["biomarker"].append("{marker} {gene}"), "only"),
    ):
        phrases = _en_phrases()
        edit(phrases)
        with pytest.raises(ConfigError, match=reason):
            notes._parse_language("en", raw | {"phrases": phrases}, "x.json")
    with pytest.raises(ConfigError, match="characters"):
        notes._parse_language("en", raw | {"abbreviations": {"w": ["w/"]}}, "x.json")
    assert good.by_id[("clinic_note", "01")].split == "train"
    with pytest.raises(ConfigError, match="no note templates"):
        list_templates("xx", "clinic_note")
    with pytest.raises(ConfigError, match="split"):
        list_templates("en", "clinic_note", "val")


# ---------------------------------------------------------------------- rendering


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_template_renders_for_every_type_without_leftovers(lang: str) -> None:
    rng = np.random.default_rng(0)
    noisy = NoiseConfig(missing_rate=0.5, abbreviation_rate=0.5, typo_rate=0.05)
    for kind in NOTE_KINDS:
        for t in list_templates(lang, kind):
            for k, cancer_type in enumerate(CANCER_TYPES):
                facts = _facts(cancer_type, k, rich=k % 4 != 3)
                text = render_note(facts, t, rng, FAKE, noisy)
                assert text.strip() and not re.search(r"[{}\[\]]", text), (t.template_id, text)


@pytest.mark.parametrize("lang", NON_ENGLISH)
def test_no_english_function_words_leak_into_other_languages(lang: str) -> None:
    words = [w for w in ENGLISH_WORDS if w not in FALSE_FRIENDS.get(lang, ())]
    pattern = re.compile(rf"(?<!\w)({'|'.join(words)})(?!\w)", re.IGNORECASE)
    rng = np.random.default_rng(1)
    for kind in NOTE_KINDS:
        for t in list_templates(lang, kind):
            for k in range(4):
                text = render_note(_facts(CANCER_TYPES[k], k), t, rng, FAKE, QUIET)
                leaks = pattern.findall(text)
                assert not leaks, f"{t.template_id}: {leaks} in {text!r}"


def test_parallel_notes_share_template_genes_and_choices() -> None:
    rng = np.random.default_rng(2)
    for k, cancer_type in enumerate(CANCER_TYPES):
        facts = _facts(cancer_type, k)
        case_notes = render_case_notes(facts, "train", rng, FAKE)
        assert len(case_notes) == len(LANGUAGES) * len(NOTE_KINDS)
        fact_genes = {g for g, _, _ in facts.drivers} | set(facts.negative_genes)
        for kind in NOTE_KINDS:
            same_kind = [n for n in case_notes if n.kind == kind]
            assert {n.lang for n in same_kind} == set(LANGUAGES)
            assert len({n.template_id.split("/", 1)[1] for n in same_kind}) == 1
            genes = [{g for g in fact_genes if re.search(rf"\b{g}\b", n.text)} for n in same_kind]
            assert all(g == genes[0] for g in genes)
            assert {g for g, _, _ in facts.drivers} <= genes[0]
            # the same concepts are named in every language (variant kinds are wording)
            named = [{m.concept_id for m in FAKE.match(n.text)} for n in same_kind]
            named = [{c for c in ids if not c.startswith("VARKIND:")} for ids in named]
            assert all(x == named[0] for x in named), (kind, named)


def test_notes_state_the_slides_histology_at_the_configured_rates() -> None:
    """TILs and necrosis follow the diagnosis in every language, read back by the real
    lexicon as the levels the slide was rendered with; at rate 0 no note states them."""
    lexicon = _real_lexicon()
    always = NoiseConfig(abbreviation_rate=0.0, typo_rate=0.0, missing_rate=0.0,
                         histology_report_rate=1.0, histology_other_rate=1.0)  # fmt: skip
    never = NoiseConfig(histology_report_rate=0.0, histology_other_rate=0.0)
    findings = {*TIL_LEVELS, *NECROSIS_LEVELS}
    for k, cancer_type in enumerate(CANCER_TYPES):
        facts = _facts(cancer_type, k)
        rendered = render_case_notes(facts, "test", np.random.default_rng(k), lexicon, noise=always)
        for note in rendered:
            named = {m.concept_id for m in lexicon.match(note.text, note.lang)}
            assert named & findings == set(facts.histology), (note.lang, note.text)
        rendered = render_case_notes(facts, "train", np.random.default_rng(k), lexicon, noise=never)
        for note in rendered:
            assert not {m.concept_id for m in lexicon.match(note.text, note.lang)} & findings


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_negative_gene_comes_with_a_negation(lang: str) -> None:
    rng = np.random.default_rng(3)
    facts = NoteFacts("LUAD", "LUAD_ALK", "III", 2, 58, "F", (("ALK", "FUSION", ""),),
                      negative_genes=("EGFR",))  # fmt: skip
    checked = 0
    for kind in NOTE_KINDS:
        for t in list_templates(lang, kind):
            if "negatives" not in template_facts(t, sex_form_slots(lang)):
                continue
            text = render_note(facts, t, rng, FAKE, QUIET)
            at = text.index("EGFR")
            window = text[max(0, at - 45) : at + 45].lower()
            assert any(cue in window for cue in NEGATION_CUES[lang]), (t.template_id, window)
            checked += 1
    assert checked >= 30


def test_templates_come_only_from_the_requested_split() -> None:
    rng = np.random.default_rng(4)
    for split in ("train", "test"):
        ids = {t.template_id for lang in LANGUAGES for k in NOTE_KINDS
               for t in list_templates(lang, k, split)}  # fmt: skip
        used = {n.template_id for k in range(30)
                for n in render_case_notes(_facts("BRCA", k), split, rng, FAKE)}  # fmt: skip
        assert used <= ids
        assert len(used) > 0.6 * len(ids)
    with pytest.raises(ConfigError):
        render_case_notes(_facts("BRCA"), "val", rng, FAKE)


def test_rendering_is_deterministic_given_the_seed() -> None:
    facts = _facts("COAD", 3)

    def run(seed: int) -> tuple:
        return render_case_notes(facts, "train", np.random.default_rng(seed), FAKE)

    assert run(5) == run(5)
    assert run(5) != run(6)


def _type_clue(text: str, facts: NoteFacts, lexicon: Lexicon, lang: str) -> bool:
    found = {m.concept_id for m in lexicon.match(text, lang)}
    anat = anatomy(facts.cancer_type, facts.subtype)
    site_morph = any(s in found for s, _ in anat.sites) and any(m in found for m, _ in anat.morphs)
    subtype = any(f"SUBTYPE:{s}" in found for s in SUBTYPES[facts.cancer_type])
    return f"TYPE:{facts.cancer_type}" in found or subtype or site_morph


def _clue_share(lexicon: Lexicon, cases_per_type: int) -> tuple[float, list[str]]:
    rng = np.random.default_rng(8)
    noise = NoiseConfig(missing_rate=0.5, abbreviation_rate=0.5, typo_rate=0.05)
    hits, misses = 0, []
    for k in range(cases_per_type):
        for cancer_type in CANCER_TYPES:
            facts = _facts(cancer_type, k, rich=k % 3 != 2)
            for n in render_case_notes(facts, ("train", "test")[k % 2], rng, lexicon, noise=noise):
                if _type_clue(n.text, facts, lexicon, n.lang):
                    hits += 1
                else:
                    misses.append(f"{n.template_id} {cancer_type}: {n.text}")
    return hits / (hits + len(misses)), misses


def test_every_note_keeps_a_clue_to_the_type_even_with_fields_missing() -> None:
    share, misses = _clue_share(FAKE, cases_per_type=4)
    assert share == 1.0, misses[:3]


def test_real_lexicon_finds_the_type_clue_in_nearly_every_note() -> None:
    share, misses = _clue_share(_real_lexicon(), cases_per_type=4)
    assert share >= 0.95, misses[:5]


def test_real_lexicon_has_every_concept_the_renderer_uses() -> None:
    lexicon = _real_lexicon()
    fake_ids = set(FAKE.concepts)
    assert not fake_ids - set(lexicon.concepts)


def test_some_notes_name_the_type_and_some_do_not() -> None:
    rng = np.random.default_rng(9)
    named = []
    for k in range(40):
        facts = _facts("PAAD", k)
        for n in render_case_notes(facts, "train", rng, FAKE, languages=("en",)):
            named.append("TYPE:PAAD" in {m.concept_id for m in FAKE.match(n.text, "en")})
    assert 0.3 < sum(named) / len(named) < 0.6
    hidden = NoiseConfig(type_named_rate=0.0, subtype_named_rate=0.0)
    for n in render_case_notes(_facts("PAAD"), "test", rng, FAKE, noise=hidden):
        found = {m.concept_id for m in FAKE.match(n.text, n.lang)}
        assert "TYPE:PAAD" not in found and "SITE:PANCREAS" in found


def test_missing_fields_are_dropped_or_marked() -> None:
    t = next(t for t in list_templates("en", "pathology_report") if t.local_id == "10")
    facts = _facts("LUSC", 1)
    gone = NoiseConfig(missing_rate=1.0, placeholder_rate=0.0, type_named_rate=1.0,
                       subtype_named_rate=0.0)  # fmt: skip
    text = render_note(facts, t, np.random.default_rng(0), FAKE, gone)
    assert "IV" not in text.split("STAGE:")[1].split("\n")[0]
    assert "sitelung" not in text
    kept = NoiseConfig(missing_rate=0.0, type_named_rate=1.0, subtype_named_rate=0.0)
    text = render_note(facts, t, np.random.default_rng(0), FAKE, kept)
    assert "STAGE: IV" in text and "GRADE: 2" in text


def test_typos_and_abbreviations_spare_genes_and_protein_changes() -> None:
    facts = NoteFacts("SKCM", "SKCM_BRAF", "III", 2, 47, "F",
                      (("BRAF", "MISSENSE", "p.V600E"), ("TP53", "FRAMESHIFT", "p.E286fs")),
                      negative_genes=("NRAS",))  # fmt: skip
    messy = NoiseConfig(typo_rate=1.0, abbreviation_rate=1.0, protein_prefix_flip=0.0)
    rng = np.random.default_rng(10)
    for lang in LANGUAGES:
        for kind in NOTE_KINDS:
            for t in list_templates(lang, kind):
                text = render_note(facts, t, rng, FAKE, messy)
                assert "BRAF" in text and "TP53" in text and "NRAS" in text, text
                assert set(re.findall(r"p\.[\w*]+", text)) <= {"p.V600E", "p.E286fs"}, text
    t = next(t for t in list_templates("en", "clinic_note") if t.local_id == "02")
    text = render_note(facts, t, rng, FAKE, NoiseConfig(abbreviation_rate=1.0, typo_rate=0.0))
    assert " w/ " in text and " with " not in text
    clean = render_note(facts, t, rng, FAKE, QUIET)
    assert " with " in clean


def test_typo_changes_one_letter_and_keeps_the_first() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        word = notes._typo("carcinoma", rng)
        assert word[0] == "c" and abs(len(word) - len("carcinoma")) <= 1
        assert sorted(word) == sorted("carcinoma") or len(word) != len("carcinoma")


def test_facts_and_noise_are_validated() -> None:
    with pytest.raises(InputError, match="cancer type"):
        NoteFacts("XXXX", "", "I", 1, 50, "F")
    with pytest.raises(InputError, match="subtype"):
        NoteFacts("BRCA", "LUAD_EGFR", "I", 1, 50, "F")
    with pytest.raises(InputError, match="driver"):
        NoteFacts("BRCA", "", "I", 1, 50, "F", (("ERBB2", "AMP", ""),))
    with pytest.raises(InputError, match="biomarker"):
        NoteFacts("BRCA", "", "I", 1, 50, "F", biomarkers=(("ER", "weird"),))
    with pytest.raises(InputError, match="histology"):
        NoteFacts("BRCA", "", "I", 1, 50, "F", histology=(NECROSIS_LEVELS[0], TIL_LEVELS[0]))
    with pytest.raises(InputError, match="metastatic"):
        NoteFacts("BRCA", "", "IV", 1, 50, "F", metastatic_sites=("MOON",))
    assert NoteFacts("BRCA", "", "IV", 1, 50, "F", metastatic_sites=("BONE",)).metastatic_sites == (
        "SITE:BONE",
    )
    with pytest.raises(ConfigError, match="typo_rate"):
        NoiseConfig(typo_rate=1.5)
    with pytest.raises(ConfigError, match="exceeds"):
        NoiseConfig(type_named_rate=0.7, subtype_named_rate=0.5)


def test_every_driver_kind_of_the_cohort_can_be_written() -> None:
    assert set(oncology.DRIVER_KINDS) <= set(DRIVER_KINDS)


def test_treatment_plan_follows_stage_and_drivers() -> None:
    base = NoteFacts("BRCA", "BRCA_HER2", "IV", 2, 50, "F", (("ERBB2", "AMPLIFICATION", ""),))
    assert treatment_plan(base) == ("TX:TRASTUZUMAB",)
    early = NoteFacts("BRCA", "BRCA_LUMA", "I", 1, 50, "F")
    assert treatment_plan(early) == ("TX:SURGERY",)
    hnsc = NoteFacts("HNSC", "HNSC_HPVPOS", "III", 2, 50, "M")
    assert treatment_plan(hnsc) == ("TX:CHEMORADIOTHERAPY",)
    luminal = NoteFacts("BRCA", "BRCA_LUMA", "II", 1, 50, "F", biomarkers=(("ER", "positive"),))
    assert treatment_plan(luminal) == ("TX:SURGERY", "TX:LETROZOLE")
    gbm = NoteFacts("GBM", "GBM_MGMT_METH", "IV", 3, 50, "M", (("EGFR", "AMPLIFICATION", ""),))
    assert "TX:TEMOZOLOMIDE" in treatment_plan(gbm)


def test_rendering_is_fast_enough() -> None:
    """Budget: 0.25 ms per note on one core; the bound here is loose to stay stable on CI."""
    rng = np.random.default_rng(12)
    cases = [_facts(t, k) for k in range(4) for t in CANCER_TYPES]
    render_case_notes(cases[0], "train", rng, FAKE)  # warm the caches
    start = time.perf_counter()
    n = sum(len(render_case_notes(f, "train", rng, FAKE)) for f in cases)
    per_note_ms = (time.perf_counter() - start) * 1000 / n
    assert per_note_ms < 1.0, f"{per_note_ms:.3f} ms per note"


def test_note_template_local_id() -> None:
    t = NoteTemplate("pt/clinic_note/07", "pt", "clinic_note", "train", "x")
    assert t.local_id == "07"
