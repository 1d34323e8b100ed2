"""The facts a patient summary is written from, and how they are derived from a case.

`SummaryFacts` holds what the summary may say: cancer type and subtype, stage, grade, key
biomarkers, driver genes, treatment options by guideline category, next steps and questions
for the care team, plus two free-text fields only a clinician fills in (a note, and anything
about prognosis: the generator never writes survival or prognosis numbers itself).

Every derived item carries the ids of the facts it came from (`basis`), and `facts` maps every
id to a clinician-readable description, so each rendered sentence can show its trace.

Treatment options are categories, not prescriptions. The stage rules below are a simplified
reading of the NCCN and ESMO patient guidelines (which categories are commonly part of care
for a tumour type at a stage); targeted options come only from CIViC evidence of level A
(validated association) that supports sensitivity for the tumour type, or for every solid
tumour, so a level-B trial result is never offered to a patient as an option.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from core.data.schema import BIOMARKERS, CANCER_TYPES, STAGES, SUBTYPES, Case
from core.errors import InputError
from core.knowledge.tables import PAN_CANCER_DISEASES, Evidence, KnowledgeBase

TREATMENT_CATEGORIES: tuple[str, ...] = (
    "surgery", "radiotherapy", "chemotherapy", "hormone_therapy", "targeted_therapy",
    "immunotherapy", "clinical_trial",
)  # fmt: skip

# The two statuses each biomarker can have (schema.BIOMARKER_STATUSES, per biomarker).
BIOMARKER_STATUS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "ER": ("positive", "negative"), "PR": ("positive", "negative"),
    "HER2": ("positive", "negative"), "PDL1": ("high", "low"), "MSI": ("high", "stable"),
    "MGMT": ("methylated", "unmethylated"), "HPV": ("positive", "negative"),
    "KI67": ("high", "low"), "TMB": ("high", "low"),
})  # fmt: skip

# Driver changes that are not a protein change, as `Driver.change` names them.
CHANGE_KINDS: tuple[str, ...] = ("amplification", "fusion", "deletion", "promoter")
# VCF consequence of a driver record -> its change kind (protein changes use HGVS p.).
_CONSEQUENCE_KIND: Mapping[str, str] = MappingProxyType(
    {
        "transcript_amplification": "amplification",
        "gene_fusion": "fusion",
        "transcript_ablation": "deletion",
        "upstream_gene_variant": "promoter",
    }
)
# CIViC variant names to try for a change kind, after the protein change itself; "Mutation"
# (any change of the gene) is tried last for every kind but promoter and amplification.
_CIVIC_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "amplification": ("Amplification",),
        "fusion": ("Fusion", "Rearrangement"),
        "deletion": ("Deletion", "Loss", "Mutation"),
        "truncating": ("Loss-of-function", "Truncating Mutation", "Mutation"),
        "splice": ("Exon 14 Skipping Mutation", "Mutation"),
        "inframe_deletion": ("Exon 19 Deletion", "Mutation"),
        "protein": ("Mutation",),
    }
)
_GENE_RE = re.compile(r"[A-Z][A-Z0-9-]{0,15}")
_CHANGE_RE = re.compile(r"[A-Za-z0-9_*.>:+-]{0,40}")
MAX_FREE_TEXT = 2000  # characters per clinician field; a summary is one page, not a letter
MAX_DRUG_EXAMPLES = 3  # drug names quoted per targeted option
FERTILITY_AGE = 45  # below this age the summary suggests asking about fertility

# Genes named by the protein patients and reports know them by.
GENE_DISPLAY: Mapping[str, str] = MappingProxyType({"ERBB2": "HER2"})

S = STAGES  # ("I", "II", "III", "IV")
EARLY, LOCAL, ADVANCED, ALL = S[:2], S[:3], S[2:], S
UNSTAGED = ("",)  # GBM: brain tumours are not TNM-staged

# Category -> stages at which it is commonly part of care, per cancer type. Chemotherapy for
# breast cancer, hormone therapy for breast cancer, targeted therapy and immunotherapy also
# depend on subtype and biomarkers (see `_options`); "" is the unstaged GBM.
STAGE_RULES: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "BRCA": {"surgery": LOCAL, "radiotherapy": LOCAL},
    "LUAD": {"surgery": LOCAL, "radiotherapy": ("III",), "chemotherapy": S[1:],
             "immunotherapy": ADVANCED},
    "LUSC": {"surgery": LOCAL, "radiotherapy": ("III",), "chemotherapy": S[1:],
             "immunotherapy": ADVANCED},
    "COAD": {"surgery": LOCAL, "chemotherapy": ADVANCED},
    "PAAD": {"surgery": EARLY, "chemotherapy": ALL},
    "SKCM": {"surgery": LOCAL, "immunotherapy": ADVANCED},
    "GBM": {"surgery": UNSTAGED, "radiotherapy": UNSTAGED, "chemotherapy": UNSTAGED},
    "PRAD": {"surgery": LOCAL, "radiotherapy": LOCAL, "hormone_therapy": S[1:],
             "chemotherapy": ("IV",)},
    "THCA": {"surgery": ALL, "radiotherapy": S[1:], "hormone_therapy": ALL,
             "targeted_therapy": ("IV",)},
    "KIRC": {"surgery": LOCAL, "targeted_therapy": ("IV",), "immunotherapy": ("IV",)},
    "OV": {"surgery": ALL, "chemotherapy": ALL, "targeted_therapy": ADVANCED},
    "CESC": {"surgery": ("I",), "radiotherapy": S[1:], "chemotherapy": S[1:],
             "immunotherapy": ("IV",)},
    "HNSC": {"surgery": LOCAL, "radiotherapy": ALL, "chemotherapy": ADVANCED,
             "immunotherapy": ("IV",)},
    "LIHC": {"surgery": EARLY, "targeted_therapy": ADVANCED, "immunotherapy": ADVANCED},
    "SARC": {"surgery": LOCAL, "radiotherapy": ("II", "III"), "chemotherapy": ADVANCED},
})  # fmt: skip
# Breast cancer chemotherapy by subtype (HER2-positive and triple-negative at every stage).
BRCA_CHEMO_STAGES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "BRCA_LUMA": ADVANCED,
        "BRCA_LUMB": S[1:],
        "BRCA_HER2": ALL,
        "BRCA_TNBC": ALL,
    }
)
# Immunotherapy that a biomarker opens, at these stages (PD-L1 for the types where it is
# tested, MSI-high and TMB-high for advanced disease of any type).
BIOMARKER_IMMUNOTHERAPY: Mapping[tuple[str, str], tuple[str, ...]] = MappingProxyType(
    {
        ("PDL1", "high"): ADVANCED,
        ("MSI", "high"): ("IV",),
        ("TMB", "high"): ("IV",),
    }
)
TNBC_IMMUNOTHERAPY = S[1:]  # pembrolizumab with chemotherapy, KEYNOTE-522 / -355
# Phrase variants where a category means something else for a type: radioactive iodine and
# thyroid hormone pills for thyroid cancer.
OPTION_VARIANTS: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("THCA", "radiotherapy"): "iodine",
        ("THCA", "hormone_therapy"): "thyroid",
    }
)
TRIAL_TYPES = ("PAAD", "GBM", "SARC")  # few standard options: trials are always worth asking
SYSTEMIC = ("chemotherapy", "hormone_therapy", "targeted_therapy", "immunotherapy")


@dataclass(frozen=True)
class Fact:
    """One fact a sentence can be traced to, described for the clinician (not the patient)."""

    fact_id: str  # e.g. "stage", "biomarker:HER2", "driver:BRAF", "civic:EID1409"
    description: str


@dataclass(frozen=True)
class Driver:
    """A gene with a driver event; `change` is a protein change ("V600E"), one of
    CHANGE_KINDS, or "" when only the gene is known."""

    gene: str
    change: str = ""


@dataclass(frozen=True)
class TreatmentOption:
    """A treatment category that may be part of care, with what suggested it."""

    category: str  # one of TREATMENT_CATEGORIES
    basis: tuple[str, ...]  # fact ids
    variant: str = ""  # phrase variant ("iodine", "thyroid"); "" for the usual wording
    gene: str = ""  # targeted therapy: the gene (as patients know it) the medicine acts on
    drugs: tuple[str, ...] = ()  # targeted therapy: example drugs as CIViC names them


@dataclass(frozen=True)
class Item:
    """A next step or a question: the phrase key it is rendered from and its basis."""

    key: str
    basis: tuple[str, ...]


@dataclass(frozen=True)
class FactsInput:
    """The structured facts of a case, from the cohort or entered by hand."""

    cancer_type: str
    subtype: str = ""  # one of SUBTYPES[cancer_type], or "" when unknown
    stage: str = ""  # one of STAGES, or "" (unstaged, or unknown)
    grade: int = 0  # 1-3; 0 when unknown or not graded this way
    age: int = 0  # years; 0 when unknown
    biomarkers: tuple[tuple[str, str], ...] = ()  # (BIOMARKERS id, status)
    drivers: tuple[Driver, ...] = ()
    case_id: str = ""  # cohort case id; "" for facts entered by hand

    def __post_init__(self) -> None:
        validate_input(self)


@dataclass(frozen=True)
class SummaryFacts:
    """Everything a summary may say, each item traceable to `facts`."""

    input: FactsInput
    options: tuple[TreatmentOption, ...]
    next_steps: tuple[Item, ...]
    questions: tuple[Item, ...]
    facts: tuple[Fact, ...]  # every fact id used in a basis, described
    clinician_note: str = ""  # free text a clinician adds, shown as written
    prognosis: str = ""  # only ever what a clinician writes; never generated

    @property
    def case_key(self) -> str:
        """The case id, or a stable key of hand-entered facts (for drafts and approvals)."""
        return self.input.case_id or manual_key(self.input)

    def fact_map(self) -> dict[str, str]:
        return {f.fact_id: f.description for f in self.facts}

    def with_free_text(self, clinician_note: str, prognosis: str) -> SummaryFacts:
        """These facts with the clinician's free-text fields replaced."""
        for name, text in (("clinician note", clinician_note), ("prognosis", prognosis)):
            if len(text) > MAX_FREE_TEXT:
                raise InputError(f"{name}: at most {MAX_FREE_TEXT} characters")
        return dataclasses.replace(
            self, clinician_note=clinician_note.strip(), prognosis=prognosis.strip()
        )


def validate_input(f: FactsInput) -> None:
    """InputError naming the first invalid field of hand-entered (or imported) facts."""
    if f.cancer_type not in CANCER_TYPES:
        raise InputError(
            f"cancer type {f.cancer_type!r}: expected one of {', '.join(CANCER_TYPES)}"
        )
    if f.subtype and f.subtype not in SUBTYPES[f.cancer_type]:
        raise InputError(
            f"subtype {f.subtype!r} is not a {f.cancer_type} subtype: "
            + ", ".join(SUBTYPES[f.cancer_type])
        )
    if f.stage not in ("", *STAGES):
        raise InputError(f"stage {f.stage!r}: expected one of {', '.join(STAGES)} or empty")
    if not 0 <= f.grade <= 3:
        raise InputError(f"grade {f.grade}: expected 1-3, or 0 when unknown")
    if not 0 <= f.age <= 120:
        raise InputError(f"age {f.age}: expected 0-120 (0 when unknown)")
    seen: set[str] = set()
    for name, status in f.biomarkers:
        if name not in BIOMARKER_STATUS:
            raise InputError(f"biomarker {name!r}: expected one of {', '.join(BIOMARKERS)}")
        if status not in BIOMARKER_STATUS[name]:
            raise InputError(
                f"{name} status {status!r}: expected {' or '.join(BIOMARKER_STATUS[name])}"
            )
        if name in seen:
            raise InputError(f"biomarker {name} given twice")
        seen.add(name)
    for d in f.drivers:
        if not _GENE_RE.fullmatch(d.gene):
            raise InputError(f"gene {d.gene!r}: expected an HGNC symbol such as BRAF")
        if not _CHANGE_RE.fullmatch(d.change):
            raise InputError(f"{d.gene} change {d.change!r}: expected e.g. V600E or amplification")


def manual_key(f: FactsInput) -> str:
    """A short stable key of hand-entered facts: same facts, same key."""
    blob = json.dumps(dataclasses.asdict(f), sort_keys=True).encode()
    return "manual-" + hashlib.sha256(blob).hexdigest()[:12]


def parse_change(text: str) -> str:
    """A driver change as typed by hand ("p.V600E", "AMP", "Fusion") in `Driver` form."""
    s = text.strip()
    low = s.lower()
    aliases = {"amp": "amplification", "loss": "deletion", "homdel": "deletion"}
    if low in CHANGE_KINDS or low in aliases:
        return aliases.get(low, low)
    return s[2:] if s[:2] in ("p.", "P.") else s


def input_from_case(case: Case) -> FactsInput:
    """The structured facts of a cohort case; drivers come from its driver variants."""
    changes: dict[str, str] = {}
    for v in case.variants:
        if v.role != "driver" or v.gene not in case.drivers or v.gene in changes:
            continue
        kind = _CONSEQUENCE_KIND.get(v.consequence)
        changes[v.gene] = kind or parse_change(v.hgvsp)
    drivers = tuple(Driver(g, changes.get(g, "")) for g in case.drivers)
    return FactsInput(
        cancer_type=case.cancer_type,
        subtype=case.subtype,
        stage=case.stage,
        grade=case.grade,
        age=case.age,
        biomarkers=tuple((b, s) for b, s in case.biomarkers if b in BIOMARKER_STATUS),
        drivers=drivers,
        case_id=case.case_id,
    )


# ------------------------------------------------------------------------------- deriving


def _civic_names(d: Driver) -> tuple[str, ...]:
    """CIViC variant names that describe a driver change, most specific first."""
    if d.change in ("amplification", "fusion", "deletion"):
        return _CIVIC_NAMES[d.change]
    if d.change in ("promoter", ""):
        return ()
    if d.change.endswith(("*", "fs")):
        kind = "truncating"
    elif d.change.endswith("_splice"):
        return _CIVIC_NAMES["splice"]
    elif d.change.endswith("del"):
        kind = "inframe_deletion"
    else:
        kind = "protein"
    return (d.change, *_CIVIC_NAMES[kind])


def _level_a(
    kb: KnowledgeBase, gene: str, names: Iterable[str], cancer_type: str
) -> list[Evidence]:
    """Level-A CIViC evidence that supports sensitivity, for the type or every solid tumour."""
    found: dict[int, Evidence] = {}
    for name in names:
        for e in kb.evidence_for(gene, name, cancer_type):
            if (
                e.evidence_type == "Predictive"
                and e.evidence_direction == "Supports"
                and e.significance == "Sensitivity/Response"
                and e.evidence_level == "A"
                and e.variant_origin != "Common Germline"
            ):
                found.setdefault(e.evidence_id, e)
    return list(found.values())


def _drug_examples(evidence: list[Evidence]) -> tuple[str, ...]:
    """Up to MAX_DRUG_EXAMPLES single drug names: those in most evidence items for the tumour
    type itself first, then in most items overall, then by the best curator rating.

    Multi-word CIViC therapy names are drug classes ("MTOR Inhibitor"): English prose, not
    names, so they are left out.
    """
    score: dict[str, tuple[int, int, int]] = {}  # drug -> (own-type items, items, best rating)
    for e in evidence:
        own = e.disease not in PAN_CANCER_DISEASES
        for therapy in e.therapies:
            if " " in therapy.strip():
                continue
            drug = therapy.strip().lower()
            mine, total, rating = score.get(drug, (0, 0, 0))
            score[drug] = (mine + own, total + 1, max(rating, e.rating))
    ranked = sorted(score, key=lambda d: (-score[d][0], -score[d][1], -score[d][2], d))
    return tuple(ranked[:MAX_DRUG_EXAMPLES])


def _targeted(f: FactsInput, kb: KnowledgeBase, facts: dict[str, str]) -> list[TreatmentOption]:
    """Targeted options backed by level-A CIViC evidence, one per gene."""
    queries: dict[str, tuple[list[str], list[str]]] = {}  # gene -> (names, basis)
    for d in f.drivers:
        names, basis = queries.setdefault(d.gene, ([], []))
        names.extend(_civic_names(d))
        basis.append(f"driver:{d.gene}")
    if ("HER2", "positive") in f.biomarkers:
        names, basis = queries.setdefault("ERBB2", ([], []))
        names.append("Amplification")
        basis.append("biomarker:HER2")
    options = []
    for gene, (names, basis) in queries.items():
        evidence = _level_a(kb, gene, dict.fromkeys(names), f.cancer_type)
        drugs = _drug_examples(evidence)
        if not drugs:
            continue
        ids = []
        for e in sorted(evidence, key=lambda e: e.evidence_id):
            fid = f"civic:EID{e.evidence_id}"
            facts[fid] = (
                f"CIViC EID{e.evidence_id}: {e.molecular_profile}, {e.disease}, level "
                f"{e.evidence_level}, {e.significance} to {' + '.join(e.therapies)}"
            )
            ids.append(fid)
        options.append(
            TreatmentOption(
                "targeted_therapy",
                basis=(*dict.fromkeys(basis), *ids),
                gene=GENE_DISPLAY.get(gene, gene),
                drugs=drugs,
            )
        )
    return options


def _rule(facts: dict[str, str], category: str, why: str) -> str:
    fid = f"rule:{category}"
    facts[fid] = f"{category.replace('_', ' ')}: {why} (guideline category, simplified)"
    return fid


def _options(f: FactsInput, kb: KnowledgeBase, facts: dict[str, str]) -> list[TreatmentOption]:
    t, stage = f.cancer_type, f.stage
    markers = dict(f.biomarkers)
    stage_facts = ("stage",) if stage else ("cancer_type",)
    stage_txt = f"stage {stage}" if stage else "unstaged"
    chosen: dict[str, tuple[str, ...]] = {}  # category -> basis

    def add(category: str, basis: tuple[str, ...], why: str) -> None:
        if category not in chosen:
            rule = _rule(facts, category, why)
            chosen[category] = tuple(dict.fromkeys(("cancer_type", *basis, rule)))

    for category, stages in STAGE_RULES[t].items():
        if stage in stages:
            add(category, stage_facts, f"commonly part of care for {t}, {stage_txt}")
    if t == "BRCA":
        if stage in BRCA_CHEMO_STAGES.get(f.subtype, ()):
            add("chemotherapy", ("subtype", "stage"), f"{f.subtype} at {stage_txt}")
        hormone = [b for b in ("ER", "PR") if markers.get(b) == "positive"]
        if hormone:
            why = " or ".join(f"{b}-positive" for b in hormone)
            add("hormone_therapy", tuple(f"biomarker:{b}" for b in hormone), why)
        if f.subtype == "BRCA_TNBC" and stage in TNBC_IMMUNOTHERAPY:
            add("immunotherapy", ("subtype", "stage"), f"triple-negative, {stage_txt}")
    for (marker, status), stages in BIOMARKER_IMMUNOTHERAPY.items():
        if markers.get(marker) == status and stage in stages:
            add(
                "immunotherapy", (f"biomarker:{marker}", "stage"), f"{marker} {status}, {stage_txt}"
            )

    options = [
        TreatmentOption(c, basis=chosen[c], variant=OPTION_VARIANTS.get((t, c), ""))
        for c in TREATMENT_CATEGORIES
        if c in chosen and c != "targeted_therapy"
    ]
    targeted = _targeted(f, kb, facts)
    if targeted:
        options.extend(targeted)
    elif "targeted_therapy" in chosen:  # type-level (e.g. anti-angiogenic drugs for kidney)
        options.append(TreatmentOption("targeted_therapy", basis=chosen["targeted_therapy"]))
    if stage in ("III", "IV", "") or t in TRIAL_TYPES:
        rule = _rule(facts, "clinical_trial", f"{t}, {stage_txt}: worth asking about trials")
        basis = tuple(dict.fromkeys(("cancer_type", *stage_facts, rule)))
        options.append(TreatmentOption("clinical_trial", basis))
    order = {c: i for i, c in enumerate(TREATMENT_CATEGORIES)}
    return sorted(options, key=lambda o: order[o.category])


def _next_steps(options: tuple[TreatmentOption, ...]) -> tuple[Item, ...]:
    by_cat = {o.category: f"option:{o.category}" for o in options}
    steps = [Item("next.team_meeting", ("cancer_type",)), Item("next.more_tests", ("cancer_type",))]
    if "surgery" in by_cat:
        steps.append(Item("next.surgeon", (by_cat["surgery"],)))
    if "radiotherapy" in by_cat:
        steps.append(Item("next.radiotherapy", (by_cat["radiotherapy"],)))
    systemic = tuple(by_cat[c] for c in SYSTEMIC if c in by_cat)
    if systemic:
        steps.append(Item("next.oncologist", systemic))
    steps += [
        Item(k, ("cancer_type",))
        for k in ("next.bring_someone", "next.write_questions", "next.call")
    ]
    return tuple(steps)


def _questions(f: FactsInput, options: tuple[TreatmentOption, ...]) -> tuple[Item, ...]:
    by_cat = {o.category: f"option:{o.category}" for o in options}
    stage_basis = ("stage",) if f.stage else ("cancer_type",)
    qs = [Item("q.stage" if f.stage else "q.no_stage", stage_basis)]
    qs.append(Item("q.best_option", tuple(by_cat.values()) or ("cancer_type",)))
    qs.append(Item("q.side_effects", tuple(by_cat.values()) or ("cancer_type",)))
    for cat, key in (
        ("surgery", "q.surgery"), ("targeted_therapy", "q.targeted"),
        ("hormone_therapy", "q.hormone"), ("clinical_trial", "q.trial"),
    ):  # fmt: skip
        if cat in by_cat:
            qs.append(Item(key, (by_cat[cat],)))
    if 0 < f.age < FERTILITY_AGE and any(
        c in by_cat for c in ("surgery", "radiotherapy", *SYSTEMIC)
    ):
        qs.append(Item("q.fertility", ("age",)))
    qs += [Item(k, ("cancer_type",)) for k in ("q.daily_life", "q.cost", "q.who_to_call")]
    return tuple(qs)


def derive_facts(f: FactsInput, kb: KnowledgeBase) -> SummaryFacts:
    """Options, next steps and questions for structured facts, each with its trace."""
    src = f"case {f.case_id}" if f.case_id else "entered by hand"
    facts: dict[str, str] = {"cancer_type": f"cancer type {f.cancer_type} ({src})"}
    if f.subtype:
        facts["subtype"] = f"subtype {f.subtype}"
    if f.stage:
        facts["stage"] = f"stage {f.stage}"
    if f.grade:
        facts["grade"] = f"histological grade {f.grade}"
    if f.age:
        facts["age"] = f"age {f.age}"
    for name, status in f.biomarkers:
        facts[f"biomarker:{name}"] = f"{name} {status}"
    for d in f.drivers:
        facts[f"driver:{d.gene}"] = f"driver {d.gene} {d.change}".rstrip()
    options = tuple(_options(f, kb, facts))
    for o in options:
        fid = f"option:{o.category}"
        if fid not in facts:
            facts[fid] = f"treatment option: {o.category.replace('_', ' ')}"
    return SummaryFacts(
        input=f,
        options=options,
        next_steps=_next_steps(options),
        questions=_questions(f, options),
        facts=tuple(Fact(k, v) for k, v in facts.items()),
    )


def facts_from_case(case: Case, kb: KnowledgeBase) -> SummaryFacts:
    """Summary facts of a cohort case."""
    return derive_facts(input_from_case(case), kb)


# ------------------------------------------------------------------------ coverage inputs

_EVENT_CHANGE: Mapping[str, str] = MappingProxyType({
    "AMPLIFICATION": "amplification", "FUSION": "fusion", "DELETION": "deletion",
    "PROMOTER": "promoter",
})  # fmt: skip
COVERAGE_SEED = 2024  # fixed, so the readability report is reproducible


def coverage_inputs(seed: int = COVERAGE_SEED) -> tuple[FactsInput, ...]:
    """One set of facts per subtype x stage (GBM unstaged), for tests and the readability report.

    Biomarkers, drivers, grade and age come from a synthetic profile of that subtype, drawn
    with a fixed seed by the cohort generator's own sampler.
    """
    import numpy as np

    from core.data.oncology import sample_profile

    rng = np.random.default_rng(seed)
    out = []
    for t in CANCER_TYPES:
        for subtype in SUBTYPES[t]:
            profile = sample_profile(t, rng)
            while profile.subtype != subtype:
                profile = sample_profile(t, rng)
            drivers = tuple(
                Driver(d.gene, _EVENT_CHANGE.get(d.kind, d.protein_change)) for d in profile.drivers
            )
            for stage in stages_of(t):
                out.append(
                    FactsInput(
                        cancer_type=t,
                        subtype=subtype,
                        stage=stage,
                        grade=profile.grade,
                        age=profile.age,
                        biomarkers=profile.biomarkers,
                        drivers=tuple(dict.fromkeys(drivers)),
                    )
                )
    return tuple(out)


def stages_of(cancer_type: str) -> tuple[str, ...]:
    """The stages a type can have: GBM is unstaged."""
    return UNSTAGED if cancer_type == "GBM" else STAGES
