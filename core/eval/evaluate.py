"""The evaluation of a distilled student against its teacher, on held-out data only.

Test data: test-split cases (never seen in training) and, of their notes, only those written
from test templates (never seen in training either), the same (case, note kind) pairs in
every language so that languages compare like with like. The evaluation refuses to run when
a test template id occurs in the student's training data (`check_held_out`).

Per student language (and English, as a reference), on those notes:

- zero_shot_accuracy: the student's cancer type against the true type. Zero-shot: the
  student saw recorded labels in English only (DistillConfig.ce_languages);
- baseline_accuracy: the teacher's English text pipeline (frozen MiniLM and the English
  lexicon's note facts, the teacher's text projection head and classifier) applied to the
  target-language text as is, no distillation; baseline_accuracy_without_facts: its neural
  part alone (the facts the English lexicon finds in foreign text, genes and variant names
  above all, carry much of the type);
- recall_at_10_slide / recall_at_10_genomic: the note's student embedding as a query against
  the teacher's slide (genomic) embeddings of every test case that has one; a hit when the
  note's own case is among the 10 nearest. recall_at_10 is their mean (the issue's "same
  case's slide and genomic embeddings", one number);
- alteration_f1: micro-F1 over DRIVER_GENES of the genes predicted altered from the note,
  against the case's recorded driver genes (core.train.distill.driver_labels). The predictor
  (alteration_source) is the student's own driver-gene head when it has one ("gene_head":
  trained on English notes only, decision threshold chosen on English validation notes, so
  zero-shot in the student languages), else the probe;
  alteration_f1_probe: the same F1 of `core.eval.probe` on the note's embedding (trained on
  English teacher embeddings of training cases; no target-language labels);
  alteration_f1_lexicon: the same F1 when every driver gene the lexicon finds in the text is
  predicted altered (a rule reference: negations such as "EGFR negative" count as altered);
  driver_genes_named: the share of the cases' driver genes the lexicon finds named in the
  note at all, the recall ceiling of any predictor that reads only the text;
- sarc_accuracy (and sarc_notes): accuracy on the rare class alone;
- ece: expected calibration error (15 equal-width bins) of the probabilities users see: the
  student's softmax of logits / T, T the temperature fitted on English validation notes by
  `distill` (core.eval.calibration; T = 1 for older students); ece_uncalibrated: the same of
  the plain softmax (reliability and reliability_uncalibrated: their non-empty bins);
- abstention_rate: share of notes on which `cmkd classify` would abstain (the student's
  calibrated threshold, abstention_threshold, recorded with it; for older students the rule
  passed in as an AbstentionRule), and accuracy_non_abstained on the others;
  abstention_rate_uncalibrated / accuracy_non_abstained_uncalibrated: the passed-in rule on
  the plain softmax (what classify did before calibration), side by side;
- alignment_accuracy: top-1 retrieval of the note's own English note among the teacher's
  embeddings of every English test note (own_note_recall_at_10: within the top 10): how
  exactly the student lands on the teacher's embedding of the same content.

`baseline` repeats the embedding metrics for the baseline pipeline. quantum_retention (top
level) is the quantum-head student's mean alignment_accuracy over the student languages
divided by the classical student's (the issue's "share of alignment accuracy it keeps"),
when a quantum-head student is given; None otherwise.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from core.data.cohort import load_cases
from core.data.lexicon import Lexicon, default_lexicon
from core.data.schema import (
    CANCER_TYPES,
    DRIVER_GENES,
    RARE_CANCER_TYPE,
    STUDENT_LANGUAGES,
    TEACHER_LANGUAGE,
    Case,
)
from core.errors import CohortError, InputError
from core.eval import metrics
from core.eval.calibration import abstention_rule
from core.eval.metrics import AbstentionRule
from core.eval.probe import GeneProbe, ProbeConfig, fit_gene_probe
from core.models.quantum_encoding import QuantumEncoding
from core.train import common
from core.train.distill import (
    DistilledStudent,
    driver_labels,
    load_distilled,
    reserved_template_ids,
)
from core.train.teacher import MINILM_DIST, load_embeddings, load_teacher

Progress = Callable[[str], None]
ANCHOR_MODALITIES: tuple[str, ...] = ("slide", "genomic")


@dataclass(frozen=True)
class EvalConfig:
    """What the evaluation measures and on how much of the test split."""

    abstention: AbstentionRule  # `cmkd classify`'s rule: metrics.CLASSIFY_ABSTENTION
    k: int = 10  # recall@k
    ece_bins: int = 15  # equal-width confidence bins of the ECE
    limit: int = 0  # test cases whose notes are queries, a seeded sample; 0 = all
    batch_size: int = 64  # texts per inference batch
    probe: ProbeConfig = field(default_factory=ProbeConfig)  # the driver-gene probe
    seed: int = 0  # seeds the sample of `limit` cases

    def __post_init__(self) -> None:
        if self.k < 1 or self.ece_bins < 1 or self.batch_size < 1 or self.limit < 0:
            raise InputError("k, ece_bins and batch_size must be >= 1 and limit >= 0")


@dataclass(frozen=True)
class TestNotes:
    """The evaluated notes: the same (case, kind) pairs in every language."""

    texts: dict[str, list[str]]  # language -> texts, aligned across languages
    rows: Tensor  # (N,) teacher row of each note's case
    kinds: Tensor  # (N,) note-kind index (teacher's note_kinds)
    truth: Tensor  # (N,) true cancer type index
    drivers: Tensor  # (N, len(DRIVER_GENES)) bool, the case's driver genes
    own_note: Tensor  # (N,) row of the note's English teacher embedding in `note_gallery`
    note_gallery: Tensor  # (M, D) teacher embeddings of every English test note
    n_cases: int


@dataclass(frozen=True)
class TeacherSide:
    """What the evaluation reads from the teacher run."""

    tensors: dict[str, Tensor]
    case_index: dict[str, int]
    note_kinds: tuple[str, ...]
    modalities: tuple[str, ...]
    text_max_length: int


@dataclass(frozen=True)
class _Shared:
    """What every language's report reads."""

    teacher: TeacherSide
    galleries: dict[str, Tensor]  # modality -> teacher rows of the test cases that have it
    probe: GeneProbe
    lexicon: Lexicon


def training_template_ids(config: dict[str, Any], cases: Sequence[Case]) -> frozenset[str]:
    """Template ids of the student's training notes: recorded in its config.json by `distill`
    (train_template_ids), or, for students written before that, every template of a
    train-split note of `cases` in the student's languages (what `training_notes` reads)."""
    recorded = config.get("train_template_ids")
    if recorded is not None:
        return frozenset(recorded)
    langs = set(config.get("languages", ()))
    return frozenset(
        n.template_id for c in cases if c.split == "train" for n in c.notes if n.lang in langs
    )


def check_held_out(trained: frozenset[str], held_out: frozenset[str]) -> None:
    """CohortError when a held-out (test) template id is among the trained ones."""
    leaked = sorted(trained & held_out)
    if leaked:
        shown = ", ".join(leaked[:5]) + (f" and {len(leaked) - 5} more" if len(leaked) > 5 else "")
        raise CohortError(
            f"evaluation refused: the student trained on {len(leaked)} test template(s) "
            f"({shown}); its scores would measure memory, not generalisation. Retrain it on a "
            "cohort whose training notes use training templates only"
        )


def _load_teacher_side(teacher_dir: Path) -> TeacherSide:
    tensors, meta = load_embeddings(teacher_dir)
    needed = {"notes", "note_present", "present", "slide", "genomic", "note_logits"}
    if not needed <= set(tensors) or "case_ids" not in meta:
        raise InputError(f"{teacher_dir}: teacher embeddings lack {sorted(needed - set(tensors))}")
    config = json.loads((teacher_dir / "config.json").read_text(encoding="utf-8"))
    return TeacherSide(
        tensors={k: v.float() if k not in ("present", "note_present") else v.bool()
                 for k, v in tensors.items()},
        case_index={cid: i for i, cid in enumerate(meta["case_ids"])},
        note_kinds=tuple(meta["note_kinds"]),
        modalities=tuple(meta["modalities"]),
        text_max_length=int(config.get("train", {}).get("text_max_length", 128)),
    )  # fmt: skip


def select_test_notes(
    cases: Sequence[Case],
    teacher: TeacherSide,
    langs: Sequence[str],
    held_out: frozenset[str],
    limit: int,
    seed: int,
) -> TestNotes:
    """Notes of test-split cases from held-out templates, in every language of `langs` for
    the same (case, kind); the note gallery holds every English test note the teacher
    embedded. `limit` > 0 samples that many cases (seeded)."""
    test = sorted(
        (c for c in cases if c.split == "test" and c.case_id in teacher.case_index),
        key=lambda c: c.case_id,
    )
    notes, present = teacher.tensors["notes"], teacher.tensors["note_present"]
    gallery_pos: dict[tuple[int, int], int] = {}
    for case in test:
        row = teacher.case_index[case.case_id]
        for k in range(len(teacher.note_kinds)):
            if present[row, k]:
                gallery_pos[(row, k)] = len(gallery_pos)
    if limit:
        rng = np.random.default_rng([seed, 11])
        keep = sorted(rng.choice(len(test), min(limit, len(test)), replace=False))
        test = [test[i] for i in keep]
    picked: list[tuple[Case, int, int, list[str]]] = []
    for case in test:
        row = teacher.case_index[case.case_id]
        for k, kind in enumerate(teacher.note_kinds):
            found = [case.note(lang, kind) for lang in langs]
            texts = [n.text for n in found if n and n.text.strip() and n.template_id in held_out]
            if (row, k) in gallery_pos and len(texts) == len(langs):
                picked.append((case, row, k, texts))
    if not picked:
        raise CohortError(
            "no test notes to evaluate: the cohort has no test-split case with notes from "
            f"held-out templates in {', '.join(langs)}"
        )
    gallery_keys = list(gallery_pos)
    return TestNotes(
        texts={lang: [p[3][j] for p in picked] for j, lang in enumerate(langs)},
        rows=torch.tensor([p[1] for p in picked]),
        kinds=torch.tensor([p[2] for p in picked]),
        truth=torch.tensor([CANCER_TYPES.index(p[0].cancer_type) for p in picked]),
        drivers=torch.tensor([driver_labels(p[0]) for p in picked], dtype=torch.bool),
        own_note=torch.tensor([gallery_pos[(p[1], p[2])] for p in picked]),
        note_gallery=torch.stack([notes[r, k] for r, k in gallery_keys]),
        n_cases=len({p[0].case_id for p in picked}),
    )


def fit_probe(cases: Sequence[Case], teacher: TeacherSide, cfg: ProbeConfig) -> GeneProbe:
    """The driver-gene probe on English teacher note embeddings: train cases to fit, val
    cases to pick the threshold."""

    def split(name: str) -> tuple[Tensor, Tensor]:
        xs, ys = [], []
        present = teacher.tensors["note_present"]
        for case in cases:
            row = teacher.case_index.get(case.case_id)
            if case.split != name or row is None:
                continue
            for k in range(len(teacher.note_kinds)):
                if present[row, k]:
                    xs.append(teacher.tensors["notes"][row, k])
                    ys.append(driver_labels(case))
        dim = teacher.tensors["notes"].shape[-1]
        if not xs:
            return torch.empty(0, dim), torch.empty(0, len(DRIVER_GENES), dtype=torch.bool)
        return torch.stack(xs), torch.tensor(ys, dtype=torch.bool)

    train_x, train_y = split("train")
    if len(train_x) == 0:
        raise CohortError("no training-split notes the teacher embedded: cannot fit the probe")
    return fit_gene_probe(train_x, train_y, *split("val"), cfg)


def _anchor_galleries(teacher: TeacherSide, test_rows: Sequence[int]) -> dict[str, Tensor]:
    """Modality -> teacher rows (of `test_rows`) that have the modality."""
    present = teacher.tensors["present"]
    return {
        m: torch.tensor([r for r in test_rows if present[r, teacher.modalities.index(m)]])
        for m in ANCHOR_MODALITIES
    }


def embedding_metrics(
    emb: Tensor, notes: TestNotes, shared: _Shared, k: int
) -> dict[str, float | None]:
    """Retrieval, alteration and alignment metrics of note embeddings emb (N, D)."""
    out: dict[str, float | None] = {}
    for m, rows in shared.galleries.items():
        position = {int(r): i for i, r in enumerate(rows)}
        has = torch.tensor([int(r) in position for r in notes.rows], dtype=torch.bool)
        targets = torch.tensor([position[int(r)] for r in notes.rows[has]], dtype=torch.long)
        out[f"recall_at_{k}_{m}"] = (
            metrics.recall_at_k(emb[has], shared.teacher.tensors[m][rows], targets, k)
            if len(rows)
            else None
        )
    parts = [out[f"recall_at_{k}_{m}"] for m in shared.galleries]
    out[f"recall_at_{k}"] = None if None in parts else float(np.mean(parts))
    out["alteration_f1_probe"] = metrics.micro_f1(shared.probe.predict(emb), notes.drivers)
    out["alignment_accuracy"] = metrics.recall_at_k(emb, notes.note_gallery, notes.own_note, 1)
    out[f"own_note_recall_at_{k}"] = metrics.recall_at_k(emb, notes.note_gallery, notes.own_note, k)
    return out


def classification_metrics(
    logits: Tensor,
    truth: Tensor,
    categories: Sequence[Sequence[str]],
    rule: AbstentionRule,
    ece_bins: int,
    temperature: float = 1.0,
    raw_rule: AbstentionRule | None = None,
) -> dict[str, Any]:
    """Accuracy, rare-class accuracy, ECE and abstention of uncalibrated logits (N, C):
    `rule` on softmax(logits / temperature), `raw_rule` (default `rule`) on softmax(logits);
    categories: the lexicon categories found in each note."""
    raw = torch.softmax(logits.float(), dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    pred = probs.argmax(1)
    rare = truth == CANCER_TYPES.index(RARE_CANCER_TYPE)

    def abstention(p: Tensor, r: AbstentionRule) -> tuple[float | None, float | None]:
        tops = p.max(1).values
        out = torch.tensor(
            [r.abstains(float(t), c) for t, c in zip(tops, categories, strict=True)],
            dtype=torch.bool,
        )
        rate = float(out.float().mean()) if len(truth) else None
        return rate, metrics.accuracy(pred[~out], truth[~out])

    def bins(p: Tensor) -> list[dict[str, Any]]:
        return [vars(b) for b in metrics.reliability_bins(p, truth, ece_bins) if b.count]

    rate, kept = abstention(probs, rule)
    raw_rate, raw_kept = abstention(raw, raw_rule or rule)
    return {
        "accuracy": metrics.accuracy(pred, truth),
        "sarc_accuracy": metrics.accuracy(pred[rare], truth[rare]),
        "sarc_notes": int(rare.sum()),
        "ece": metrics.expected_calibration_error(probs, truth, ece_bins),
        "ece_uncalibrated": metrics.expected_calibration_error(raw, truth, ece_bins),
        "abstention_threshold": rule.below,
        "abstention_rate": rate,
        "accuracy_non_abstained": kept,
        "abstention_rate_uncalibrated": raw_rate,
        "accuracy_non_abstained_uncalibrated": raw_kept,
        "reliability": bins(probs),
        "reliability_uncalibrated": bins(raw),
    }


def _lexicon_reads(
    texts: Sequence[str], lang: str, lexicon: Lexicon
) -> tuple[list[list[str]], Tensor]:
    """Per text: the categories of the entities found, and the driver genes named (N, G)."""
    gene_index = {f"GENE:{g}": i for i, g in enumerate(DRIVER_GENES)}
    categories, named = [], torch.zeros(len(texts), len(DRIVER_GENES), dtype=torch.bool)
    for i, text in enumerate(texts):
        found = lexicon.match(text, lang)
        categories.append([lexicon.concept(m.concept_id).category for m in found])
        for m in found:
            if m.concept_id in gene_index:
                named[i, gene_index[m.concept_id]] = True
    return categories, named


class BaselinePipeline:
    """The teacher's English text pipeline on any text: frozen MiniLM (embeddings cached by
    text under `cache_dir` when given) and English note facts, the teacher's text head and
    classifier."""

    def __init__(self, teacher_dir: Path, max_length: int, cache_dir: Path | None) -> None:
        self.teacher, _ = load_teacher(teacher_dir)
        self.max_length = max_length
        self.cache_dir = cache_dir
        self._minilm: torch.nn.Module | None = None

    def _encoder(self) -> torch.nn.Module:
        from core.models.text import TeacherTextEncoder

        if self._minilm is None:
            self._minilm = TeacherTextEncoder()
        return self._minilm

    def _minilm_embeddings(self, texts: Sequence[str], batch_size: int) -> Tensor:
        if self.cache_dir is None:
            return self._encoder().encode(list(texts), batch_size, self.max_length).float()
        version = importlib.metadata.version(MINILM_DIST)
        return common.embed_texts_cached(
            texts,
            self.cache_dir / f"minilm-{version}-len{self.max_length}.safetensors",
            self._encoder,
            batch_size,
            self.max_length,
        )

    @torch.no_grad()
    def predict(
        self, texts: Sequence[str], batch_size: int
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Shared-space embeddings (N, D), logits (N, C) and, for a teacher with a fact
        channel, the logits of its neural part alone (MiniLM and the head, no fact read;
        None otherwise). The English pipeline reads facts with the English lexicon whatever
        the text's language, and so finds in another language what is spelt alike (genes,
        variants, some cognates)."""
        self.teacher.eval()
        minilm = self._minilm_embeddings(texts, batch_size)
        facts = self.teacher.read_facts(list(texts))
        emb = self.teacher.embed_text(minilm, facts).float()
        neural = None
        if facts is not None:
            neural = self.teacher.classify(self.teacher.embed_text(minilm, torch.zeros_like(facts)))
        return emb, self.teacher.classify(emb).float(), neural


@dataclass(frozen=True)
class GenePredictions:
    """The student gene head's output on one language's notes."""

    probs: Tensor  # (N, len(DRIVER_GENES)) probability that each gene is altered
    threshold: float  # decision threshold, chosen on English validation notes by `distill`


def _language_report(
    lang: str,
    student: tuple[Tensor, Tensor],
    baseline: tuple[Tensor, Tensor],
    notes: TestNotes,
    shared: _Shared,
    cfg: EvalConfig,
    genes: GenePredictions | None = None,
    calibration: tuple[float, AbstentionRule | None] = (1.0, None),
) -> dict[str, Any]:
    """The metrics of one language; alteration_f1 from `genes` when given, else the probe.
    student: embeddings and uncalibrated logits; calibration: the student's temperature and
    abstention rule (default: T = 1 and cfg.abstention)."""
    categories, named = _lexicon_reads(notes.texts[lang], lang, shared.lexicon)
    temperature, rule = calibration[0], calibration[1] or cfg.abstention
    cls = classification_metrics(
        student[1], notes.truth, categories, rule, cfg.ece_bins, temperature, cfg.abstention
    )
    base_cls = classification_metrics(
        baseline[1], notes.truth, categories, cfg.abstention, cfg.ece_bins
    )
    emb = embedding_metrics(student[0], notes, shared, cfg.k)
    alteration = emb["alteration_f1_probe"]
    if genes is not None:
        alteration = metrics.micro_f1(genes.probs >= genes.threshold, notes.drivers)
    n_drivers = int(notes.drivers.sum())
    report: dict[str, Any] = {
        "n_notes": len(notes.truth),
        "zero_shot_accuracy": cls.pop("accuracy"),
        "baseline_accuracy": base_cls.pop("accuracy"),
        **emb,
        "alteration_f1": alteration,
        "alteration_source": "probe" if genes is None else "gene_head",
        "alteration_f1_lexicon": metrics.micro_f1(named, notes.drivers),
        "driver_genes_named": int((named & notes.drivers).sum()) / n_drivers if n_drivers else None,
        **cls,
    }
    for key in (
        "reliability",
        "reliability_uncalibrated",
        "ece_uncalibrated",
        "abstention_rate_uncalibrated",
        "accuracy_non_abstained_uncalibrated",
    ):
        base_cls.pop(key)  # the teacher's pipeline is not temperature-scaled: same numbers
    base_emb = embedding_metrics(baseline[0], notes, shared, cfg.k)
    report["baseline"] = {
        **base_emb,
        "alteration_f1": base_emb["alteration_f1_probe"],  # no gene head: the probe
        **base_cls,
    }
    return report


def evaluate(
    cohort_dir: Path,
    teacher_dir: Path,
    student_dir: Path,
    cfg: EvalConfig,
    *,
    quantum_dir: Path | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report described in the module docstring, as a JSON-ready dict.

    Raises InputError for a missing or broken model and CohortError when the test data
    leaked into the student's training data or there is none to evaluate."""
    say = progress or (lambda _msg: None)
    cohort_dir, teacher_dir, student_dir = Path(cohort_dir), Path(teacher_dir), Path(student_dir)
    say("loading the cohort, the teacher and the student")
    student = load_distilled(student_dir)
    # Language-pack languages have no cohort notes, so nothing of theirs can be scored here.
    langs = [lang for lang in student.config["languages"] if lang in STUDENT_LANGUAGES]
    all_langs = [*langs, TEACHER_LANGUAGE]
    cases = load_cases(cohort_dir)
    teacher = _load_teacher_side(teacher_dir)
    held_out = reserved_template_ids(all_langs)
    check_held_out(training_template_ids(student.config, cases), held_out)
    notes = select_test_notes(cases, teacher, all_langs, held_out, cfg.limit, cfg.seed)
    test_rows = sorted({teacher.case_index[c.case_id] for c in cases if c.split == "test"
                        and c.case_id in teacher.case_index})  # fmt: skip
    say(f"fitting the driver-gene probe; {len(notes.truth)} test notes per language")
    shared = _Shared(
        teacher,
        _anchor_galleries(teacher, test_rows),
        fit_probe(cases, teacher, cfg.probe),
        default_lexicon(),
    )
    baseline = BaselinePipeline(teacher_dir, teacher.text_max_length, cache_dir)
    reports: dict[str, dict[str, Any]] = {}
    threshold = student.gene_threshold
    calibration = (student.temperature, abstention_rule(student.config, cfg.abstention))
    for lang in all_langs:
        say(f"{lang}: student")
        z, logits, gene_probs = student.predict_with_genes(
            notes.texts[lang], lang, cfg.batch_size, calibrated=False
        )
        genes = None
        if gene_probs is not None and threshold is not None:
            genes = GenePredictions(gene_probs, threshold)
        if lang == TEACHER_LANGUAGE:  # the baseline on English is the teacher itself
            base = (teacher.tensors["notes"][notes.rows, notes.kinds],
                    teacher.tensors["note_logits"][notes.rows, notes.kinds])  # fmt: skip
            neural = None
        else:
            say(f"{lang}: baseline (the teacher's English text pipeline)")
            emb, base_logits, neural = baseline.predict(notes.texts[lang], cfg.batch_size)
            base = (emb, base_logits)
        reports[lang] = _language_report(
            lang, (z, logits), base, notes, shared, cfg, genes, calibration
        )
        if neural is not None:
            hits = (neural.argmax(1) == notes.truth).float()
            reports[lang]["baseline_accuracy_without_facts"] = float(hits.mean())
    quantum = _quantum_retention(quantum_dir, reports, notes, langs, cfg, say, student)
    return {
        "student": str(student_dir),
        "student_version": student.config.get("version", ""),
        "student_head": student.config.get("head", ""),
        "teacher": str(teacher_dir),
        "cohort": str(cohort_dir),
        "split": "test",
        "templates": "held-out (test) templates only",
        "n_test_cases": notes.n_cases,
        "n_notes_per_language": len(notes.truth),
        "k": cfg.k,
        "gene_head_threshold": threshold,
        "temperature": calibration[0],
        "abstention_threshold": calibration[1].below,
        "abstention_calibrated": calibration[1].calibrated,
        "calibration": student.config.get("calibration"),
        "languages": {lang: reports[lang] for lang in langs},
        "english_reference": reports[TEACHER_LANGUAGE],
        "ceilings": _ceilings(cases, teacher, notes, test_rows, shared.probe, cfg.k),
        "quantum_retention": quantum.pop("retention"),
        "quantum": quantum,
    }


def _quantum_retention(
    quantum_dir: Path | None,
    reports: dict[str, dict[str, Any]],
    notes: TestNotes,
    langs: Sequence[str],
    cfg: EvalConfig,
    say: Progress,
    student: DistilledStudent | None = None,
) -> dict[str, Any]:
    """retention (alignment top-1 in the teacher space, quantum / classical) and, when the
    quantum student carries its fidelity encoding (core/models/quantum_encoding.py), the
    4-qubit state-space figures (`_state_space`) against the classical `student`."""
    classical = float(np.mean([reports[lang]["alignment_accuracy"] for lang in langs]))
    out: dict[str, Any] = {"retention": None, "classical_alignment_accuracy": classical}
    if quantum_dir is None:
        out["note"] = "no quantum-head student given (--quantum-student)"
        return out
    say("quantum-head student")
    qstudent: DistilledStudent = load_distilled(quantum_dir)
    if qstudent.config.get("head") != "quantum":
        raise InputError(f"{quantum_dir}: not a quantum-head student (head is "
                         f"{qstudent.config.get('head')!r})")  # fmt: skip
    per_lang, states = {}, {}
    for lang in langs:
        emb, states[lang] = _embed_with_states(qstudent, notes.texts[lang], lang, cfg.batch_size)
        per_lang[lang] = metrics.recall_at_k(emb, notes.note_gallery, notes.own_note, 1)
    quantum = float(np.mean(list(per_lang.values())))
    out.update(
        retention=quantum / classical if classical > 0 else None,
        quantum_student=str(quantum_dir),
        quantum_alignment_accuracy=quantum,
        quantum_alignment_accuracy_by_language=per_lang,
        compression=f"{qstudent.model.head.in_dim} dimensions -> {qstudent.model.head.n_qubits} "
        "qubits",
        quantum_fidelity_weight=qstudent.config.get("distill", {}).get("quantum_fidelity_weight"),
    )
    encoding = qstudent.model.encoding
    if encoding is None:
        out["state_space"] = None
        out["state_space_note"] = "the quantum student has no fidelity encoding (older run)"
    elif student is not None:
        say("state space: the classical student through the same encoding")
        out["state_space"] = _state_space(encoding, states, student, notes, langs, cfg)
    return out


@torch.no_grad()
def _embed_with_states(
    student: DistilledStudent, texts: Sequence[str], lang: str, batch_size: int
) -> tuple[Tensor, Tensor]:
    """A quantum-head student's embeddings (N, D) and prepared states (N, 2^n), one circuit
    run per batch, on the CPU in eval mode."""
    student.model.eval()
    embs, states = [], []
    for s in range(0, len(texts), batch_size):
        chunk = list(texts[s : s + batch_size])
        z, _, _, psi = student.model(**student.batcher(chunk, [lang] * len(chunk)), with_state=True)
        embs.append(z.float())
        states.append(psi)
    return torch.cat(embs), torch.cat(states)


def _fidelity_retrieval(states: Tensor, gallery: Tensor, own: Tensor) -> tuple[float, float]:
    """Top-1 of each state's own gallery state by fidelity |<psi|phi>|^2, and the mean
    fidelity to it; states (N, 2^n), gallery (M, 2^n), complex unit vectors; own (N,)."""
    fid = (states.conj() @ gallery.T).abs().pow(2)  # (N, M)
    top1 = float((fid.argmax(1) == own).float().mean())
    return top1, float(fid.gather(1, own[:, None]).mean())


def _state_space(
    encoding: QuantumEncoding,
    states: dict[str, Tensor],
    student: DistilledStudent,
    notes: TestNotes,
    langs: Sequence[str],
    cfg: EvalConfig,
) -> dict[str, Any]:
    """The 4-qubit figures, means over `langs` (by_language: per language):
    quantum_state_alignment_accuracy: top-1 retrieval of the note's own English note by
    fidelity between the quantum student's prepared state and the encoded teacher embeddings
    of every English test note; classical_state_alignment_accuracy: the same with the
    classical student's embeddings pushed through the same encoding (the fair classical
    reference in 4-qubit space); state_retention: their ratio; *_mean_fidelity: mean fidelity
    to the own note's teacher state; classical_bottleneck_alignment_accuracy: the classical
    student's embeddings cut to the encoding's principal components (K = 30 real numbers, the
    state's degrees of freedom; the control that tells the bottleneck from the circuit),
    top-1 alignment in the teacher space, and teacher_bottleneck_alignment_accuracy: the same
    of the teacher's own English embeddings (what a perfect 30-number student could reach)."""
    gallery = encoding.encode(notes.note_gallery)  # (M, 2^n)
    by_language: dict[str, dict[str, float | None]] = {}
    for lang in langs:
        z, _ = student.predict(notes.texts[lang], lang, cfg.batch_size)
        q_top1, q_fid = _fidelity_retrieval(states[lang], gallery, notes.own_note)
        c_top1, c_fid = _fidelity_retrieval(encoding.encode(z), gallery, notes.own_note)
        by_language[lang] = {
            "quantum_state_alignment_accuracy": q_top1,
            "quantum_mean_fidelity": q_fid,
            "classical_state_alignment_accuracy": c_top1,
            "classical_mean_fidelity": c_fid,
            "classical_bottleneck_alignment_accuracy": metrics.recall_at_k(
                encoding.reconstruct(z), notes.note_gallery, notes.own_note, 1
            ),
        }
    out: dict[str, Any] = {
        key: float(np.mean([r[key] for r in by_language.values()]))
        for key in next(iter(by_language.values()))
    }
    classical = out["classical_state_alignment_accuracy"]
    own_teacher = notes.note_gallery[notes.own_note]  # (N, D) the teacher's own English notes
    out.update(
        state_retention=out["quantum_state_alignment_accuracy"] / classical if classical else None,
        teacher_bottleneck_alignment_accuracy=metrics.recall_at_k(
            encoding.reconstruct(own_teacher), notes.note_gallery, notes.own_note, 1
        ),
        encoding=encoding.record(),
        by_language=by_language,
    )
    return out


def slide_group(case: Case) -> Hashable:
    """What a case's tiles are rendered from: a perfect reader tells slides apart by no more."""
    return case.cancer_type, case.subtype, case.grade, case.histology


NoteReading = Callable[[Case, str, set[str]], Callable[[Case], bool]]


def slide_agrees_with_note(target: Case, text: str, stated: set[str]) -> Callable[[Case], bool]:
    """Whether a slide shows everything a note about `target` states of its slide, given the
    lexicon concepts `stated` the note mentions: the type always (every note names it), and
    subtype, grade, TIL and necrosis levels where the note states them."""
    concepts = {"subtype": f"SUBTYPE:{target.subtype}", "grade": f"GRADE:{target.grade}"}
    fields = [f for f, concept in concepts.items() if concept in stated]
    levels = [level for level in target.histology if level in stated]
    return lambda slide: (
        slide.cancer_type == target.cancer_type
        and all(getattr(slide, f) == getattr(target, f) for f in fields)
        and all(level in slide.histology for level in levels)
    )


def profile_agrees_with_note(target: Case, text: str, stated: set[str]) -> Callable[[Case], bool]:
    """Whether a genomic profile agrees with what a note about `target` states of it: each
    driver gene the note names (lexicon concept GENE:<symbol>) carries a driver in the
    profile, with the same protein change where the note writes it ("V600E"); each other
    gene the note names (a negative) carries none; the TMB class matches where stated."""
    own = _driver_changes(target)
    named = {g: {c for c in changes if c and c in text} for g, changes in own.items()
             if f"GENE:{g}" in stated}  # fmt: skip
    negative = {c.removeprefix("GENE:") for c in stated if c.startswith("GENE:")} - set(own)
    tmb = dict(target.biomarkers).get("TMB", "") if "BIOMARKER:TMB" in stated else ""

    def agrees(profile: Case) -> bool:
        theirs = _driver_changes(profile)
        return (
            all(g in theirs and changes <= theirs[g] for g, changes in named.items())
            and not negative & set(theirs)
            and (not tmb or dict(profile.biomarkers).get("TMB", "") == tmb)
        )

    return agrees


def _driver_changes(case: Case) -> dict[str, set[str]]:
    """Driver gene -> its protein changes ("V600E"; "" for events without one)."""
    out: dict[str, set[str]] = {}
    for v in case.variants:
        if v.role == "driver":
            out.setdefault(v.gene, set()).add(v.hgvsp.removeprefix("p."))
    return out


def statement_ceiling(
    targets: Sequence[Case],
    texts: Sequence[str],
    lang: str,
    gallery: Sequence[Case],
    reading: NoteReading,
    k: int,
) -> float | None:
    """Recall@k of a perfect reader of each note (texts[i] about targets[i]) and of the
    gallery: it ranks first the gallery cases that agree with all the note states
    (`reading`: slide_agrees_with_note or profile_agrees_with_note, from the lexicon's
    reading of the note), in random order. Lower than the group ceilings (`slide_group`,
    `genomic_group`), which assume a note states everything. None without notes."""
    if not targets:
        return None
    lexicon = default_lexicon()
    total = 0.0
    for target, text in zip(targets, texts, strict=True):
        agrees = reading(target, text, {m.concept_id for m in lexicon.match(text, lang)})
        total += min(1.0, k / sum(agrees(case) for case in gallery))
    return total / len(targets)


def genomic_group(case: Case) -> Hashable:
    """What both a note and a genomic profile tell of it: the driver variants and the TMB
    class (a note states it; the profile's passenger count shows it). Not the cancer type:
    the same drivers occur across types, and passenger counts differ by type only in their
    means, so a profile shows its type weakly at best. Grouping by type too (sessions 5-7)
    overstated the ceiling: 0.972 vs 0.899 over the session 7 cohort's test cases."""
    drivers = frozenset((v.gene, v.hgvsp or v.alt) for v in case.variants if v.role == "driver")
    return drivers, dict(case.biomarkers).get("TMB", "")


def _mean_or_none(by_modality: dict[str, float | None]) -> float | None:
    values = list(by_modality.values())
    return None if None in values else float(np.mean(values))


def _ceilings(
    cases: Sequence[Case],
    teacher: TeacherSide,
    notes: TestNotes,
    test_rows: Sequence[int],
    probe: GeneProbe,
    k: int,
) -> dict[str, float | None]:
    """What the data and the teacher allow: recall@k of a perfect model that can tell slides
    apart only by type, subtype, grade and histology (TILs, necrosis: what tiles are rendered
    from; cohorts before histology have none), and genomic profiles
    only by driver variants and TMB class (`genomic_group`), their mean (the ceiling of
    recall_at_k); the same for a reader of what each English test note states
    (`statement_ceiling`; the notes of every language state the same facts), lower because
    notes leave facts out; and the driver-gene probe on the teacher's own English test
    notes."""
    by_row = {teacher.case_index[c.case_id]: c for c in cases if c.case_id in teacher.case_index}
    readings = {
        "slide": (slide_group, slide_agrees_with_note),
        "genomic": (genomic_group, profile_agrees_with_note),
    }
    grouped: dict[str, float | None] = {}
    stated: dict[str, float | None] = {}
    for m, (group, reading) in readings.items():
        has = teacher.tensors["present"][:, teacher.modalities.index(m)]
        queries = [i for i, r in enumerate(notes.rows.tolist()) if has[r]]
        targets = [by_row[int(notes.rows[i])] for i in queries]
        gallery = [by_row[r] for r in test_rows if has[r]]
        grouped[m] = metrics.group_recall_ceiling(
            [group(c) for c in targets], [group(c) for c in gallery], k
        )
        texts = [notes.texts[TEACHER_LANGUAGE][i] for i in queries]
        stated[m] = statement_ceiling(targets, texts, TEACHER_LANGUAGE, gallery, reading, k)
    english = teacher.tensors["notes"][notes.rows, notes.kinds]
    return {
        f"slide_recall_at_{k}_type_subtype_grade_histology": grouped["slide"],
        f"genomic_recall_at_{k}_driver_variants_tmb": grouped["genomic"],
        f"recall_at_{k}": _mean_or_none(grouped),
        f"slide_recall_at_{k}_as_english_notes_state": stated["slide"],
        f"genomic_recall_at_{k}_as_english_notes_state": stated["genomic"],
        f"recall_at_{k}_as_english_notes_state": _mean_or_none(stated),
        "probe_alteration_f1_teacher_english": metrics.micro_f1(
            probe.predict(english), notes.drivers
        ),
        "probe_threshold": probe.threshold,
    }
