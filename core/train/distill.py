"""Cross-lingual distillation: the frozen English teacher -> one multilingual student.

Training rows (one student input each):
  (a) a training case's note in a student language. Targets come from the teacher's run for
      the ENGLISH note of the same case and kind: its shared-space embedding (alignment), the
      teacher's logits and MC-dropout variance (KD, uncertainty weights), the case's slide
      and genomic embeddings with presence masks (anchors), and, for languages listed in
      `ce_languages`, the case's recorded label (CE);
  (b) the English note itself, with the same targets (the student must work in English too);
  (c) with `use_parallel`, human-translated sentences (assets/parallel): the English sentence
      or one of its translations -> the teacher's text-branch embedding of the English
      sentence (frozen MiniLM, then the teacher's text projection head), as in Reimers &
      Gurevych 2020. They have no labels, logits or anchors, so only alignment applies.
      A language pack (core/data/language_packs.py; `language_packs`) adds its training
      phrases here, even without `use_parallel`: they are all a pack language has. Its
      held-out phrases are validated by phrase -> English retrieval (top-1, teacher space);
  (d) with `hard_negatives` (a JSONL file from ReviewService.export_hard_negatives), the
      query texts of search matches staff judged wrong, `hard_negatives_per_batch` of them
      added to each batch: the teacher's embedding of the rejected case in the modality shown
      is their negative, that of a case judged relevant to the same query (same modality),
      where there is one, their positive (core/losses/hard_negative.py).

Objective per batch of n note rows (a, b), m parallel rows (c) and h review rows (d):

    loss = (n * DistillationLoss(note rows) + m * alpha * InfoNCE(parallel rows)) / (n + m)
           + gene_weight * GeneBCELoss(note rows in gene_languages)   (when gene_weight > 0)
           + gamma * HardNegativeLoss(review rows)          (only when the run has review rows)
           + quantum_fidelity_weight * FidelityLoss(the quantum head's state on note and
             parallel rows, the teacher embedding's state)  (quantum head only)

with DistillationLoss = alpha * align + (1 - alpha) * KD + beta * CE (core/losses/combined.py).
GeneBCELoss (core/losses/gene_bce.py) trains the optional driver-gene head
(core.models.student.GeneHead) on the case's recorded driver genes, by default on English
notes only, so its predictions in the student languages are zero-shot like the classifier's.
A batch never holds two rows of one case or of one parallel sentence, so InfoNCE never counts
a row's own target (or its case's anchors) among the negatives.

Zero-shot: by default CE uses recorded labels of English notes only (`ce_languages`), so the
student's accuracy in a student language comes from distillation, not from labels in that
language. Test-split cases (written from held-out templates) never enter training, and the
run refuses to start when a training note was written from a test template.

Output folder (a temporary sibling renamed at the end, so it is always complete):
student.safetensors (encoder), head.safetensors (projection into the teacher's shared
space), classifier.safetensors (cancer type from the projected embedding),
genes.safetensors (the driver-gene head, when gene_weight > 0; its genes, input and the
decision threshold chosen on the English validation notes are config.json's "gene_head"),
quantum_encoding.safetensors (quantum head: the fidelity term's fixed teacher-state encoding,
core/models/quantum_encoding.py; config.json's "quantum_encoding" describes it),
tokenizer/, config.json and metrics.jsonl (one JSON line per epoch), and languages/<code>/
with a copy of each language pack, so the checkpoint is self-contained. Never pickles.
config.json's "calibration" holds the temperature T fitted after training on the English
notes of validation cases (core.eval.calibration; zero-shot in the other languages) and the
abstention threshold on the calibrated probabilities; `DistilledStudent.predict` returns
logits / T, so every softmax a user sees is calibrated (T = 1 for students without it).

Multi-process: `main` runs under torchrun (`python -m torch.distributed.run --standalone
--nproc_per_node N -m core.train.distill --config cfg.json ...`); `launch_distill` starts it.
Rank 0 builds the tokenizer and the parallel targets and broadcasts them; every rank draws the
same epoch plan and a DistributedSampler deals its batches out; DistributedDataParallel keeps
the weights equal; only rank 0 validates and writes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from core.data.cohort import load_cases
from core.data.language_packs import (
    LanguagePack,
    is_pack_code,
    load_pack,
    merged_lexicon,
    save_pack,
)
from core.data.lexicon import EntityMatch, Lexicon, default_lexicon
from core.data.notes import list_templates
from core.data.parallel import ParallelRow, load_parallel
from core.data.schema import (
    CANCER_TYPES,
    DRIVER_GENES,
    MODALITIES,
    NOTE_KINDS,
    STUDENT_LANGUAGES,
    TEACHER_LANGUAGE,
    Case,
)
from core.errors import CmkdError, CohortError, ConfigError, InputError
from core.eval.calibration import calibrate, temperature_of
from core.eval.metrics import micro_f1
from core.eval.probe import THRESHOLDS
from core.losses.combined import (
    DistillationLoss,
    DistillLossConfig,
    resolve_uncertainty_threshold,
)
from core.losses.fidelity import FidelityLoss
from core.losses.gene_bce import GeneBCELoss
from core.models.facts import FactEmbedding, fact_keys, fact_vectors
from core.models.heads import ClassifierHead, Head, ProjectionHead
from core.models.quantum_encoding import ENCODING_FILE, QuantumEncoding
from core.models.student import GeneHead, StudentConfig, StudentEncoder
from core.models.teacher import Teacher, TeacherConfig
from core.models.text import TeacherTextEncoder, mean_pool
from core.models.tokenizer import (
    EXTENSION_FILE,
    TOKENIZER_FILE,
    StudentTokenizer,
    build_student_tokenizer,
    entity_ids_from_spans,
    write_atomic,
)
from core.train import common
from core.train.common import ProgressCallback
from core.train.teacher import MINILM_DIST, load_embeddings, load_teacher

STUDENT_FILE = "student.safetensors"
HEAD_FILE = "head.safetensors"
CLASSIFIER_FILE = "classifier.safetensors"
GENES_FILE = "genes.safetensors"  # the driver-gene head; absent when the run trained none
FACTS_FILE = "facts.safetensors"  # the fact embedding; absent when the student reads no facts
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
TOKENIZER_DIR = "tokenizer"
HEADS: tuple[str, ...] = ("classical", "quantum")
KD_SOURCES: tuple[str, ...] = ("note", "fused")
CPU_BF16: tuple[str, ...] = ("auto", "on", "off")
IGNORE_LABEL = -100  # LabelCrossEntropy's "no label"
RECALL_K = 10
# Review verdicts (workbench/review_service.py) that make a match a hard negative; "relevant"
# ones serve as positives.
NEGATIVE_VERDICTS: tuple[str, ...] = ("not_relevant", "wrong_modality")
POSITIVE_VERDICT = "relevant"
SAVE_RESERVE_S = 5.0  # seconds kept for writing the checkpoint under the time budget
# The batch entries StudentModel.forward reads (TextBatcher's output).
MODEL_INPUTS: tuple[str, ...] = ("input_ids", "attention_mask", "entity_ids", "note_facts")
PACKS_DIR = "languages"  # in the output folder: a copy of every language pack it learnt


@dataclass(frozen=True)
class DistillConfig:
    """One distillation run. Defaults: the demo student, at most 4.5 minutes on 2 CPU cores."""

    # Student languages distilled; English notes always join (rows (b)). Codes outside
    # STUDENT_LANGUAGES are pack languages: each needs its folder in `language_packs`.
    languages: tuple[str, ...] = STUDENT_LANGUAGES
    # Encoder shape; entity_attention and n_entities are set from this config and the lexicon.
    student: StudentConfig = field(default_factory=StudentConfig)
    # Copy embeddings and layers from MiniLM (needs MiniLM's width); False trains from scratch.
    init_from_minilm: bool = True
    # Start the projection head (classical) and the classifier as copies of the teacher's
    # text head and classifier, so the student starts near the teacher's text branch (needs
    # student.hidden == the teacher's text width, 384).
    init_from_teacher: bool = True
    loss: DistillLossConfig = field(default_factory=DistillLossConfig)  # article's weights
    # KD/uncertainty targets: the teacher on the English note alone ("note"; what a text can
    # tell) or on the whole case, all modalities fused ("fused").
    kd_source: str = "note"
    # Languages whose notes carry the recorded label in CE. English only keeps the student's
    # accuracy in the student languages zero-shot (no target-language labels).
    ce_languages: tuple[str, ...] = (TEACHER_LANGUAGE,)
    # Weight of the driver-gene head's BCE (core/losses/gene_bce.py) added to the loss of
    # note rows; 0 = no gene head (the checkpoint then has none). Chosen on 256 validation
    # notes per language (demo profile, 200 steps): mean driver-gene F1 of the six student
    # languages 0.80 / 0.84 / 0.88 / 0.87 at 1 / 3 / 5 / 10; 10 cost recall@10 (0.73 -> 0.71)
    # and accuracy (0.98 -> 0.97), 5 stays within noise of no head on both.
    gene_weight: float = 5.0
    # Languages whose notes carry the case's driver genes as labels of the gene head. English
    # only, like ce_languages: the head predicts genes in the student languages zero-shot.
    gene_languages: tuple[str, ...] = (TEACHER_LANGUAGE,)
    epochs: int = 2  # passes of `notes_per_epoch` rows (the time budget may stop earlier)
    # Note rows drawn per epoch over all processes (there are ~44k triples case x kind x
    # language in the demo cohort, too many for the CPU budget); 0 = every triple once.
    notes_per_epoch: int = 2400
    batch_size: int = 32  # rows per step and process, parallel rows included
    # AdamW peak lr of the pretrained encoder: 5e-4 beat 2e-4 at 200 steps (held-out Hindi
    # 0.83 -> 0.92; the added vocabulary pieces need it, docs/evaluation.md "Hindi").
    lr: float = 5e-4
    head_lr: float = 1e-3  # peak learning rate of the projection head and the classifier
    weight_decay: float = 0.01  # AdamW decoupled weight decay (not on biases and norms)
    warmup: float = 0.1  # share of the run spent warming the learning rate up
    grad_clip: float = 1.0  # max global gradient norm
    max_length: int = 96  # student tokens per text (notes are truncated)
    use_parallel: bool = True  # also distil on the human-translated parallel sentences
    parallel_share: float = 0.25  # share of each batch taken from parallel sentences
    # Training parallel rows used, a seeded sample (their teacher targets need MiniLM, ~60
    # sentences/s on 2 cores); 0 = all of them (the 300 held-out rows are never used).
    parallel_rows: int = 1024
    use_entity_attention: bool = True  # lexicon entities bias the attention (ablation: off)
    # Add the note's facts (core/models/facts.py: lexicon concepts and variant names, read in
    # the note's own language) to the pooled sentence vector, as the teacher's text branch
    # does in English; needs a teacher with a fact channel (otherwise ignored). Ablation: off.
    use_facts: bool = True
    # Share of training rows shown without their facts, so that the encoder alone still
    # reaches the teacher's space where the lexicon knows no term of a note. At 0 the trained
    # student leaned on the facts entirely: with them hidden at inference, accuracy fell to
    # 0.08-0.16 (docs/evaluation.md "Ablations with note facts").
    fact_dropout: float = 0.5
    head: str = "classical"  # projection head: "classical" or "quantum" (4-qubit circuit)
    # Quantum head only: weight of FidelityLoss between the state the head prepares and the
    # teacher embedding's state under a fixed PCA amplitude encoding (core/models/
    # quantum_encoding.py), on note and parallel rows; 0 = no fidelity term.
    quantum_fidelity_weight: float = 1.0
    # Quantum head only: start its readout as the encoding's decoder (state -> teacher space).
    quantum_readout_init: bool = True
    # Quantum head only: keep that decoder fixed, so the output is the state's PCA decoding and
    # what the fidelity term teaches reaches the teacher space unchanged (a trained readout
    # drifted: 0.73 of the classical alignment accuracy against 1.00 in the state space).
    quantum_readout_frozen: bool = True
    extra_vocab: int = 8000  # pieces the student tokenizer adds to MiniLM's vocabulary
    val_per_language: int = 64  # validation notes per language (same cases in every one)
    eval_batch_size: int = 64  # texts per inference batch in validation
    seed: int = 0  # seeds torch, numpy and random, and the sampling of rows
    device: str = "auto"  # "auto" (CUDA if present), "cpu" or "cuda"
    threads: int = 0  # torch CPU threads per process; 0 = the cores shared out among processes
    # bf16 autocast on the CPU: "auto" = when the CPU computes bf16 natively (AVX512-BF16 or
    # AMX; there a training step ran 1.7-2x faster with the same losses), "on" or "off".
    # CUDA always runs under bf16 autocast.
    cpu_bf16: str = "auto"
    # Hard wall-clock cap of the whole run, saving included (the demo's share of its 10 min).
    max_minutes: float = 4.5
    cache_dir: str = ""  # MiniLM embedding cache shared with the teacher; "" = <out>/../.cache
    show_progress_bar: bool = True  # tqdm bars on stderr
    # Reviewers' verdicts on search matches as hard negatives (rows (d)): the JSONL written by
    # ReviewService.export_hard_negatives; "" = none (the run is then exactly as without it).
    hard_negatives: str = ""
    hard_negatives_per_batch: int = 4  # review rows added to each step's batch
    # Language-pack folders (core/data/language_packs.py), one per pack language in
    # `languages`: their training phrases join rows (c) even without `use_parallel` (the
    # cohort has no notes in them) and their lexicon column joins the entity matcher.
    language_packs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        langs = self.languages
        packs = self.pack_languages
        if not langs or len(set(langs)) != len(langs) or not all(map(is_pack_code, packs)):
            problems.append(
                f"languages must be distinct, non-empty, from {STUDENT_LANGUAGES} or the "
                "ISO 639-1 codes of language packs"
            )
        if len(packs) != len(self.language_packs):
            problems.append("language_packs must hold one folder per pack language in languages")
        for name in ("ce_languages", "gene_languages"):
            if not set(getattr(self, name)) <= {TEACHER_LANGUAGE, *langs}:
                problems.append(f"{name} must be English or among languages")
        if self.gene_weight < 0:
            problems.append("gene_weight must be >= 0")
        if self.kd_source not in KD_SOURCES:
            problems.append(f"kd_source must be one of {KD_SOURCES}")
        if self.head not in HEADS:
            problems.append(f"head must be one of {HEADS}")
        if not 0 <= self.quantum_fidelity_weight < math.inf:
            problems.append("quantum_fidelity_weight must be finite and >= 0")
        if self.head == "quantum" and self.quantum_readout_frozen and not self.quantum_readout_init:
            problems.append(
                "quantum_readout_frozen needs quantum_readout_init (a frozen random "
                "readout would never learn)"
            )
        if self.device not in common.DEVICES:
            problems.append(f"device must be one of {common.DEVICES}")
        if self.cpu_bf16 not in CPU_BF16:
            problems.append(f"cpu_bf16 must be one of {CPU_BF16}")
        for name in ("epochs", "eval_batch_size", "val_per_language", "hard_negatives_per_batch"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        for name in ("notes_per_epoch", "parallel_rows", "threads", "extra_vocab"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if self.lr <= 0 or self.head_lr <= 0 or self.weight_decay < 0 or self.grad_clip <= 0:
            problems.append("lr, head_lr and grad_clip must be > 0, weight_decay >= 0")
        if self.max_minutes <= 0:
            problems.append("max_minutes must be > 0")
        if not 0.0 <= self.warmup < 1.0 or not 0.0 <= self.parallel_share < 1.0:
            problems.append("warmup and parallel_share must be in [0, 1)")
        if not 0.0 <= self.fact_dropout <= 1.0:
            problems.append("fact_dropout must be in [0, 1]")
        if not 2 <= self.max_length <= self.student.max_length:
            problems.append(
                f"max_length must be in [2, student.max_length={self.student.max_length}]"
            )
        n_par = self.parallel_rows_per_batch
        if self.batch_size - n_par < 2 or (self.use_parallel and 0 < n_par < 2):
            problems.append("batch_size must leave >= 2 note rows and 0 or >= 2 parallel rows")
        if problems:
            raise ConfigError("DistillConfig: " + "; ".join(problems))

    @property
    def pack_languages(self) -> tuple[str, ...]:
        """`languages` brought by language packs (the cohort has no notes in them)."""
        return tuple(lang for lang in self.languages if lang not in STUDENT_LANGUAGES)

    @property
    def cohort_languages(self) -> tuple[str, ...]:
        """`languages` with cohort notes and shipped parallel sentences."""
        return tuple(lang for lang in self.languages if lang in STUDENT_LANGUAGES)

    @property
    def parallel_rows_per_batch(self) -> int:
        uses_rows = self.use_parallel or self.language_packs
        return round(self.batch_size * self.parallel_share) if uses_rows else 0

    def to_dict(self) -> dict[str, Any]:
        return common.config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DistillConfig:
        """From parsed JSON; unknown keys (nested ones too) raise ConfigError."""
        if not isinstance(d, dict):
            raise ConfigError(f"DistillConfig: expected a JSON object, got {type(d).__name__}")
        d = dict(d)
        if isinstance(d.get("student"), dict):
            d["student"] = StudentConfig.from_dict(d["student"])
        if isinstance(d.get("loss"), dict):
            try:
                d["loss"] = DistillLossConfig.from_dict(d["loss"])
            except TypeError as exc:
                raise ConfigError(f"DistillLossConfig: {exc}") from exc
        return common.config_from_dict(cls, d)

    @classmethod
    def load(cls, path: Path) -> DistillConfig:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the distillation config: {exc}") from exc
        return cls.from_dict(data)


# --------------------------------------------------------------------------- the model


class StudentModel(nn.Module):
    """StudentEncoder -> (+ note facts) -> projection head (teacher's shared space, D) ->
    classifier, and optionally a driver-gene head reading the encoder's token states at gene
    mentions.

    forward: input_ids, attention_mask, entity_ids (B, T) and, with a fact channel, the
    texts' fact vectors note_facts (B, F) -> embeddings (B, D) unit vectors,
    cancer-type logits (B, len(CANCER_TYPES)), the classifier reading the projection, and
    driver-gene logits (B, G), None without a gene head. With `with_state` (quantum head
    only) a fourth output: the statevectors (B, 2^n) the head prepared, from the same circuit
    run. `encoding` (quantum head): the fixed teacher-space -> state map of the fidelity term.
    """

    def __init__(
        self,
        encoder: StudentEncoder,
        head: Head,
        classifier: ClassifierHead,
        genes: GeneHead | None = None,
        encoding: QuantumEncoding | None = None,
        facts: FactEmbedding | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.classifier = classifier
        self.genes = genes
        self.encoding = encoding
        self.facts = facts

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        entity_ids: Tensor | None = None,
        note_facts: Tensor | None = None,
        *,
        with_state: bool = False,
    ) -> tuple[Tensor, ...] | tuple[Tensor, Tensor, Tensor | None]:
        states = self.encoder.token_states(input_ids, attention_mask, entity_ids)  # (B, T, H)
        # Normalised before the head, as the teacher's text branch feeds MiniLM's output.
        h = F.normalize(mean_pool(states, attention_mask), dim=-1)  # (B, H)
        if self.facts is not None:
            if note_facts is None:
                raise ValueError("this student reads note facts: batch texts with TextBatcher")
            h = h + self.facts(note_facts)  # (B, H)
        psi = None
        if with_state:
            z, psi = self.head.embed_with_state(h)  # (B, D), (B, 2^n) complex
        else:
            z = self.head(h)  # (B, D)
        g = None
        if self.genes is not None:  # the batcher gives entity ids whenever there is a head
            ents = torch.zeros_like(input_ids) if entity_ids is None else entity_ids
            g = self.genes(states, ents)  # (B, G)
        if psi is not None:
            return z, self.classifier(z), g, psi
        return z, self.classifier(z), g  # (B, D), (B, C), (B, G) or None


def _make_head(kind: str, in_dim: int, out_dim: int, hidden: int) -> Head:
    """The projection head; `hidden` 0 = one Linear (classical only)."""
    if kind == "quantum":
        from core.models.quantum import QuantumProjectionHead  # PennyLane only when asked

        return QuantumProjectionHead(in_dim, out_dim)
    return ProjectionHead(in_dim, out_dim, hidden or None)


def _build_model(
    cfg: DistillConfig,
    student_cfg: StudentConfig,
    tokenizer: StudentTokenizer,
    teacher: Teacher,
    concept_ids: Sequence[str],
    encoding: QuantumEncoding | None = None,
) -> StudentModel:
    """Encoder (from MiniLM or fresh), head, classifier and fact embedding (from the teacher
    or fresh), and the gene head when cfg.gene_weight > 0, for entity ids numbered after
    `concept_ids`.
    A quantum head keeps `encoding` (and with quantum_readout_init reads out by its decoder,
    a fixed one with quantum_readout_frozen)."""
    if cfg.init_from_minilm:
        encoder = StudentEncoder.from_minilm(student_cfg, tokenizer)
    else:
        encoder = StudentEncoder(student_cfg, tokenizer.vocab_size)
    tcfg = teacher.config
    copy_head = cfg.init_from_teacher and cfg.head == "classical"
    if copy_head and student_cfg.hidden != tcfg.text_dim:
        raise ConfigError(
            f"init_from_teacher needs student.hidden == the teacher's text width "
            f"{tcfg.text_dim}, got {student_cfg.hidden}"
        )
    head = _make_head(cfg.head, student_cfg.hidden, tcfg.embed_dim, _head_hidden(cfg, tcfg))
    classifier = ClassifierHead(tcfg.embed_dim, len(CANCER_TYPES))
    if copy_head:
        head.load_state_dict(teacher.heads["text"].state_dict())
    if cfg.init_from_teacher:
        classifier.load_state_dict(teacher.classifier.state_dict())
    genes = None
    if cfg.gene_weight > 0:
        genes = make_gene_head(student_cfg.hidden, concept_ids)
    if cfg.head != "quantum":
        encoding = None
    elif encoding is not None and cfg.quantum_readout_init:
        head.init_readout(encoding, trainable=not cfg.quantum_readout_frozen)  # type: ignore[attr-defined]
    facts = None
    if cfg.use_facts and teacher.text_facts is not None:
        facts = FactEmbedding(teacher.text_facts.buckets, student_cfg.hidden)
        if cfg.init_from_teacher and student_cfg.hidden == tcfg.text_dim:
            facts.load_state_dict(teacher.text_facts.state_dict())
    return StudentModel(encoder, head, classifier, genes, encoding, facts)


def make_gene_head(hidden: int, concept_ids: Sequence[str]) -> GeneHead:
    """A gene head over DRIVER_GENES for entity ids numbered as TextBatcher numbers
    `concept_ids` (1..N; a gene without a GENE:<symbol> concept is never found named)."""
    index = {cid: i + 1 for i, cid in enumerate(concept_ids)}
    entities = torch.tensor([index.get(f"GENE:{g}", 0) for g in DRIVER_GENES])
    return GeneHead(hidden, entities, hidden)


def driver_labels(case: Case) -> list[bool]:
    """Whether each gene of DRIVER_GENES carries a driver event in `case` (the gene head's
    labels and the evaluation's truth)."""
    return [g in case.drivers for g in DRIVER_GENES]


def fit_quantum_encoding(targets: TeacherTargets, notes: Sequence[NoteRow]) -> QuantumEncoding:
    """The fidelity term's fixed encoding, fitted on the teacher's embeddings of the run's
    English training notes (each (case, kind) once, however many languages it has)."""
    rows = sorted({(r.teacher_row, r.kind) for r in notes})
    if len(rows) < 2:
        raise CohortError("the quantum encoding needs at least two training notes")
    index = torch.tensor(rows, dtype=torch.long)  # (N, 2)
    return QuantumEncoding.fit(targets.notes[index[:, 0], index[:, 1]])  # (N, D) -> 4 qubits


def fact_buckets(model: StudentModel) -> int:
    """Width of the fact vectors `model` reads (0: it reads none)."""
    return 0 if model.facts is None else model.facts.buckets


def _head_hidden(cfg: DistillConfig, tcfg: TeacherConfig) -> int:
    return tcfg.head_hidden if cfg.init_from_teacher and cfg.head == "classical" else 0


class TextBatcher:
    """Texts -> student inputs: token ids, attention mask and lexicon entity ids (B, T), and
    with `fact_buckets` > 0 the texts' fact vectors note_facts (B, fact_buckets).

    Entity ids number the lexicon's concepts 1..N in `concept_ids` order (0 = none); the
    order is saved with the checkpoint so that a changed lexicon cannot shift them.
    """

    def __init__(
        self,
        tokenizer: StudentTokenizer,
        concept_ids: Sequence[str],
        max_length: int,
        entities: bool,
        lexicon: Lexicon | None = None,
        fact_buckets: int = 0,
    ) -> None:
        self.tokenizer = tokenizer
        self.concept_ids = tuple(concept_ids)
        self.entity_index = {cid: i + 1 for i, cid in enumerate(self.concept_ids)}
        self.max_length = max_length
        self.entities = entities
        self.lexicon = lexicon if lexicon is not None else default_lexicon()
        self.fact_buckets = fact_buckets

    def spans(self, matches: Sequence[EntityMatch]) -> list[tuple[int, int, int]]:
        return [
            (m.start, m.end, self.entity_index[m.concept_id])
            for m in matches
            if m.concept_id in self.entity_index
        ]

    def __call__(self, texts: Sequence[str], langs: Sequence[str | None]) -> dict[str, Tensor]:
        ids, mask, offsets = self.tokenizer.encode_batch(texts, self.max_length)
        batch = {"input_ids": ids, "attention_mask": mask}
        if self.entities or self.fact_buckets:
            matches = [self.lexicon.match(t, lang) for t, lang in zip(texts, langs, strict=True)]
        if self.entities:
            batch["entity_ids"] = entity_ids_from_spans(offsets, [self.spans(m) for m in matches])
        if self.fact_buckets:
            keys = [fact_keys(t, m) for t, m in zip(texts, matches, strict=True)]
            batch["note_facts"] = fact_vectors(keys, self.fact_buckets)
        return batch


# --------------------------------------------------------------------- training data


@dataclass(frozen=True)
class NoteRow:
    """One training note and where its teacher targets are (row of the teacher's arrays)."""

    teacher_row: int
    kind: int  # index into the teacher's note kinds
    lang: str
    text: str
    label: int  # class index for CE, IGNORE_LABEL when unused
    template_id: str = ""  # the note's template (recorded so the evaluation can check leaks)
    # The case's driver genes (driver_labels) for the gene head; None when unused.
    drivers: tuple[bool, ...] | None = None


ParallelItem = tuple[str, str, int]  # (language, text, index of the sentence's target)


@dataclass(frozen=True)
class TeacherTargets:
    """The teacher's outputs that distillation reads, in the teacher's case order."""

    case_index: dict[str, int]  # case id -> row
    note_kinds: tuple[str, ...]
    notes: Tensor  # (C, K, D) shared-space embedding of each English note
    note_present: Tensor  # (C, K) bool
    logits: Tensor  # (C, K, n_classes) KD targets per note (kd_source)
    variance: Tensor  # (C, K) teacher variance per note (kd_source)
    anchors: dict[str, Tensor]  # "slide", "genomic" -> (C, D)
    anchor_present: dict[str, Tensor]  # "slide", "genomic" -> (C,) bool

    @property
    def dim(self) -> int:
        return int(self.notes.shape[-1])


def load_targets(teacher_dir: Path, kd_source: str) -> TeacherTargets:
    """Read the teacher's embeddings.safetensors into distillation targets."""
    t, meta = load_embeddings(teacher_dir)
    needed = {"notes", "note_present", "present", "slide", "genomic", "logits", "variance",
              "note_logits", "note_variance"}  # fmt: skip
    missing = sorted(needed - set(t)) + sorted({"case_ids", "note_kinds", "modalities"} - set(meta))
    if missing:
        raise InputError(f"{teacher_dir}: teacher embeddings lack {missing}; retrain the teacher")
    if list(meta.get("classes", [])) != list(CANCER_TYPES):
        raise InputError(f"{teacher_dir}: teacher classes differ from {CANCER_TYPES}")
    kinds = tuple(meta["note_kinds"])
    modalities = list(meta["modalities"])
    k = len(kinds)
    if kd_source == "note":
        logits, variance = t["note_logits"], t["note_variance"]
    else:  # the case's fused prediction, the same for each of its notes
        logits = t["logits"].unsqueeze(1).expand(-1, k, -1)
        variance = t["variance"].unsqueeze(1).expand(-1, k)
    present = t["present"].bool()
    return TeacherTargets(
        case_index={cid: i for i, cid in enumerate(meta["case_ids"])},
        note_kinds=kinds,
        notes=t["notes"].float(),
        note_present=t["note_present"].bool(),
        logits=logits.float(),
        variance=variance.float().clamp_min(0.0),
        anchors={m: t[m].float() for m in ("slide", "genomic")},
        anchor_present={m: present[:, modalities.index(m)] for m in ("slide", "genomic")},
    )


def reserved_template_ids(languages: Sequence[str]) -> frozenset[str]:
    """Template ids reserved for the test split, in `languages`."""
    return frozenset(
        t.template_id
        for lang in languages
        for kind in NOTE_KINDS
        for t in list_templates(lang, kind, "test")
    )


def training_notes(
    cases: Sequence[Case], targets: TeacherTargets, cfg: DistillConfig
) -> list[NoteRow]:
    """Rows (a) and (b): every note of a train-split case in English and `cfg.languages`
    whose English counterpart the teacher embedded. Raises CohortError when a training note
    comes from a test template (the evaluation would then measure memory)."""
    langs = (TEACHER_LANGUAGE, *cfg.cohort_languages)
    reserved = reserved_template_ids(langs)
    label_index = {t: i for i, t in enumerate(CANCER_TYPES)}
    rows: list[NoteRow] = []
    for case in cases:
        if case.split != "train":
            continue
        row = targets.case_index.get(case.case_id)
        if row is None:
            raise CohortError(
                f"training case {case.case_id} is unknown to the teacher: retrain the teacher "
                "on this cohort"
            )
        for k, kind in enumerate(targets.note_kinds):
            if not targets.note_present[row, k]:
                continue
            for lang in langs:
                note = case.note(lang, kind)
                if note is None or not note.text.strip():
                    continue
                if note.template_id in reserved:
                    raise CohortError(
                        f"{case.case_id}: training note {note.template_id} comes from a test "
                        "template; refusing to train on it (the test split would leak)"
                    )
                label = IGNORE_LABEL
                if lang in cfg.ce_languages:
                    label = label_index.get(case.label, IGNORE_LABEL)
                drivers = tuple(driver_labels(case)) if lang in cfg.gene_languages else None
                rows.append(NoteRow(row, k, lang, note.text, label, note.template_id, drivers))
    if not rows:
        raise CohortError("no training notes: the cohort has no train-split case with notes")
    return rows


@dataclass(frozen=True)
class ReviewRows:
    """Rows (d): query texts of matches staff judged wrong, with the teacher's targets."""

    texts: list[str]
    langs: list[str]
    negative: Tensor  # (H, D) teacher embedding of the rejected case in the modality shown
    positive: Tensor  # (H, D) of a case judged relevant to the same query; zeros when none
    has_positive: Tensor  # (H,) bool
    stats: dict[str, Any]  # what the file held and what was used (recorded in config.json)

    def __len__(self) -> int:
        return len(self.texts)


def _case_vector(targets: TeacherTargets, row: int, modality: str) -> Tensor | None:
    """The teacher's embedding of case `row` in `modality` (the mean of its English notes for
    "note"), unit length; None when the case lacks that modality."""
    if modality == "note":
        present = targets.note_present[row]  # (K,)
        if not bool(present.any()):
            return None
        return F.normalize(targets.notes[row][present].mean(0), dim=-1)  # (D,)
    if not bool(targets.anchor_present[modality][row]):
        return None
    return F.normalize(targets.anchors[modality][row], dim=-1)  # (D,)


def _review_lines(path: Path) -> list[dict[str, str]]:
    """The verdicts of a hard-negatives JSONL file; InputError naming the line when one is
    malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the hard negatives: {exc}") from exc
    verdicts = (*NEGATIVE_VERDICTS, POSITIVE_VERDICT)
    lines = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}: line {lineno}: not JSON ({exc})") from exc
        fields = ("text", "lang", "case_id", "modality", "verdict")
        if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in fields):
            raise InputError(f"{path}: line {lineno}: needs string fields {', '.join(fields)}")
        if not item["text"].strip():
            raise InputError(f"{path}: line {lineno}: empty text")
        if item["modality"] not in MODALITIES or item["verdict"] not in verdicts:
            raise InputError(
                f"{path}: line {lineno}: modality must be one of {MODALITIES} and verdict one "
                f"of {verdicts}"
            )
        lines.append(item)
    return lines


def load_review_rows(path: Path, targets: TeacherTargets, cfg: DistillConfig) -> ReviewRows:
    """Rows (d) from `path`. Verdicts whose case the teacher did not embed (or embedded without
    that modality), and queries in a language the run does not distil, are skipped and
    counted in `stats`."""
    path = Path(path)
    lines = _review_lines(path)
    langs = {TEACHER_LANGUAGE, *cfg.languages}
    skipped: Counter[str] = Counter()
    usable: list[tuple[dict[str, str], Tensor]] = []
    for item in lines:
        row = targets.case_index.get(item["case_id"])
        vector = None if row is None else _case_vector(targets, row, item["modality"])
        if row is None:
            skipped["unknown_case"] += 1
        elif vector is None:
            skipped["missing_modality"] += 1
        elif item["lang"] not in langs:
            skipped["other_language"] += 1
        else:
            usable.append((item, vector))
    # The first relevant case of each (query, modality) is the positive of its negatives.
    positives: dict[tuple[str, str, str], Tensor] = {}
    for item, vector in usable:
        if item["verdict"] == POSITIVE_VERDICT:
            positives.setdefault((item["text"], item["lang"], item["modality"]), vector)
    negatives = [(i, v) for i, v in usable if i["verdict"] != POSITIVE_VERDICT]
    paired = [positives.get((i["text"], i["lang"], i["modality"])) for i, _ in negatives]
    zero = torch.zeros(targets.dim)
    return ReviewRows(
        texts=[i["text"] for i, _ in negatives],
        langs=[i["lang"] for i, _ in negatives],
        negative=_stack([v for _, v in negatives], targets.dim),
        positive=_stack([zero if p is None else p for p in paired], targets.dim),
        has_positive=torch.tensor([p is not None for p in paired], dtype=torch.bool),
        stats={
            "path": str(path.resolve()),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "verdicts": len(lines),
            "negatives": len(negatives),
            "with_positive": sum(p is not None for p in paired),
            "skipped": {k: skipped[k] for k in ("unknown_case", "missing_modality",
                                                 "other_language")},
        },
    )  # fmt: skip


def _stack(vectors: list[Tensor], dim: int) -> Tensor:
    return torch.stack(vectors) if vectors else torch.zeros(0, dim)


def cycled_batches(
    n_items: int, n_batches: int, size: int, rng: np.random.Generator
) -> list[list[int]]:
    """`n_batches` lists of min(size, n_items) indices of `n_items` >= 1 items, taken from
    shuffled passes over them, so every item comes round before any comes again."""
    order: list[int] = []
    out = []
    for _ in range(n_batches):
        batch: list[int] = []
        while len(batch) < min(size, n_items):
            if not order:
                order = [int(i) for i in rng.permutation(n_items)]
            batch.append(order.pop())
        out.append(batch)
    return out


class RoundRobin:
    """Rounds of one item per group: each group cycles through its items in a shuffled order,
    so a round never repeats a group (a case, a sentence) and later rounds bring new items."""

    def __init__(self, groups: Sequence[Sequence[int]], rng: np.random.Generator) -> None:
        self.groups = [[int(i) for i in rng.permutation(g)] for g in groups if len(g)]
        self.rng = rng
        self.round = 0

    def batches(self, n_batches: int, size: int) -> list[list[int]]:
        """`n_batches` lists of at most `size` items (>= 2), none repeating a group."""
        out: list[list[int]] = []
        while len(out) < n_batches:
            items = [g[self.round % len(g)] for g in self.groups]
            self.round += 1
            order = self.rng.permutation(len(items))
            chunks = [[items[j] for j in order[s : s + size]] for s in range(0, len(items), size)]
            out.extend(c for c in chunks if len(c) >= 2)
        return out[:n_batches]


class _Batches(Dataset):
    """One epoch's batches; item i is the whole batch i, tokenised and with its targets.

    Rows: notes, then parallel sentences, then review rows (`review_plan[i]` of `review`,
    whose targets go under review_*; absent without review rows)."""

    def __init__(
        self,
        plan: list[tuple[list[int], list[int]]],
        notes: list[NoteRow],
        parallel: list[ParallelItem],
        parallel_targets: Tensor,
        targets: TeacherTargets,
        batcher: TextBatcher,
        review: ReviewRows | None = None,
        review_plan: Sequence[list[int]] = (),
    ) -> None:
        self.plan = plan
        self.notes = notes
        self.parallel = parallel  # (lang, text, index into parallel_targets)
        self.parallel_targets = parallel_targets
        self.targets = targets
        self.batcher = batcher
        self.review = review
        self.review_plan = review_plan

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        note_idx, par_idx = self.plan[i]
        notes = [self.notes[j] for j in note_idx]
        par = [self.parallel[j] for j in par_idx]
        texts = [r.text for r in notes] + [text for _, text, _ in par]
        langs = [r.lang for r in notes] + [lang for lang, _, _ in par]
        review = self.review
        if review is not None:
            texts += [review.texts[j] for j in self.review_plan[i]]
            langs += [review.langs[j] for j in self.review_plan[i]]
        batch = self.batcher(texts, langs)
        t = self.targets
        rows = torch.tensor([r.teacher_row for r in notes], dtype=torch.long)
        kinds = torch.tensor([r.kind for r in notes], dtype=torch.long)
        par_rows = torch.tensor([p for _, _, p in par], dtype=torch.long)
        batch["teacher_emb"] = torch.cat([t.notes[rows, kinds], self.parallel_targets[par_rows]])
        batch["teacher_logits"] = t.logits[rows, kinds]
        batch["teacher_variance"] = t.variance[rows, kinds]
        batch["labels"] = torch.tensor([r.label for r in notes], dtype=torch.long)
        no_genes = (False,) * len(DRIVER_GENES)
        batch["gene_labels"] = torch.tensor(
            [r.drivers or no_genes for r in notes], dtype=torch.bool
        ).view(len(notes), len(DRIVER_GENES))  # (n, G)
        batch["gene_labelled"] = torch.tensor([r.drivers is not None for r in notes])  # (n,)
        for m in t.anchors:
            batch[f"anchor_{m}"] = t.anchors[m][rows]
            batch[f"present_{m}"] = t.anchor_present[m][rows]
        if review is not None:
            idx = torch.tensor(self.review_plan[i], dtype=torch.long)
            batch["review_negative"] = review.negative[idx]
            batch["review_positive"] = review.positive[idx]
            batch["review_has_positive"] = review.has_positive[idx]
        return batch


def _sample_parallel(cfg: DistillConfig) -> list[ParallelRow]:
    rows = list(load_parallel(cfg.cohort_languages))
    if cfg.parallel_rows and cfg.parallel_rows < len(rows):
        keep = np.random.default_rng([cfg.seed, 3]).choice(len(rows), cfg.parallel_rows, False)
        rows = [rows[i] for i in sorted(keep)]
    return rows


def _parallel_items(
    rows: Sequence[ParallelRow],
) -> tuple[list[ParallelItem], list[list[int]]]:
    """Rows (c): (lang, text, sentence index) for English and every translation, grouped
    by sentence."""
    items: list[ParallelItem] = []
    groups: list[list[int]] = []
    for i, row in enumerate(rows):
        groups.append([])
        for lang, text in row.texts.items():
            groups[-1].append(len(items))
            items.append((lang, text, i))
    return items, groups


def _tokenizer_texts(
    notes: Sequence[NoteRow],
    parallel: Sequence[ParallelRow],
    langs: Sequence[str],
    lexicon: Lexicon | None = None,
) -> Iterator[str]:
    """What the student trains on (notes, parallel sentences) and the terms of `lexicon`
    (default: the shipped one)."""
    yield from (r.text for r in notes)
    for row in parallel:
        yield from row.texts.values()
    for concept in (lexicon or default_lexicon()).concepts.values():
        for lang in langs:
            yield from concept.terms.get(lang, ())


# ------------------------------------------------------------------- distributed bits


@dataclass(frozen=True)
class _World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    launcher_pid: int = 0  # torchrun's agent, the parent of every rank (0: not distributed)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def current(cls) -> _World:
        if dist.is_available() and dist.is_initialized():
            local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
            return cls(dist.get_rank(), dist.get_world_size(), local, os.getppid())
        return cls()

    def check_launcher(self) -> None:
        """Stop when torchrun's agent is gone: ranks run in sessions of their own, so a
        SIGKILL of the job's process group leaves them orphaned, and an orphan that trained on
        would later save over a run the job's owner already saw fail."""
        if self.launcher_pid and os.getppid() != self.launcher_pid:
            raise CmkdError(f"rank {self.rank}: the torchrun launcher died; abandoning the run")


def _broadcast_bytes(data: bytes | None, world: _World, device: torch.device) -> bytes:
    """Rank 0's `data` on every rank."""
    if world.size == 1:
        assert data is not None
        return data
    size = torch.tensor([len(data) if data is not None else 0], dtype=torch.long, device=device)
    dist.broadcast(size, 0)
    buf = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if world.is_main:
        buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buf, 0)
    return bytes(buf.cpu().numpy())


def _broadcast_tensor(t: Tensor, world: _World, device: torch.device) -> Tensor:
    """Rank 0's `t` on every rank (all ranks pass a tensor of the same shape and dtype)."""
    if world.size == 1:
        return t
    buf = t.to(device).contiguous()
    dist.broadcast(buf, 0)
    return buf.cpu()


def _state_hash(model: nn.Module) -> str:
    """SHA-256 over the state dict's names and bytes (equal weights <=> equal hash)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


# ------------------------------------------------------------------------ validation


@dataclass(frozen=True)
class _ValSet:
    """The same validation (case, kind) pairs in every language, queried against the
    teacher's embeddings of every English validation note (the gallery)."""

    texts: dict[str, list[str]]  # language -> note texts, aligned across languages
    truth: Tensor  # (N,) true cancer type index
    drivers: Tensor  # (N, G) bool, the case's driver genes (driver_labels)
    gallery: Tensor  # (G, D) teacher embeddings of every English validation note
    target: Tensor  # (N,) each query's own note in the gallery


def _validation_set(
    cases: Sequence[Case], targets: TeacherTargets, cfg: DistillConfig
) -> _ValSet | None:
    langs = (TEACHER_LANGUAGE, *cfg.cohort_languages)
    candidates = []
    for case in sorted((c for c in cases if c.split == "val"), key=lambda c: c.case_id):
        row = targets.case_index.get(case.case_id)
        if row is None:
            continue
        for k, kind in enumerate(targets.note_kinds):
            notes = [case.note(lang, kind) for lang in langs]
            if targets.note_present[row, k] and all(n is not None for n in notes):
                candidates.append((case, row, k, notes))
    if not candidates:
        return None
    rng = np.random.default_rng([cfg.seed, 4])
    n = min(cfg.val_per_language, len(candidates))
    picked = sorted(rng.choice(len(candidates), n, replace=False))
    return _ValSet(
        texts={lang: [candidates[i][3][j].text for i in picked] for j, lang in enumerate(langs)},
        truth=torch.tensor([CANCER_TYPES.index(candidates[i][0].cancer_type) for i in picked]),
        drivers=torch.tensor([driver_labels(candidates[i][0]) for i in picked], dtype=torch.bool),
        gallery=torch.stack([targets.notes[row, k] for _, row, k, _ in candidates]),
        target=torch.tensor(picked, dtype=torch.long),
    )


def cpu_bf16_enabled(cpu_bf16: str) -> bool:
    """Whether the CPU runs under bf16 autocast for a config's `cpu_bf16`. "auto" needs native
    bf16 (AVX512-BF16 or AMX): elsewhere torch emulates bf16 and it would slow training."""
    if cpu_bf16 != "auto":
        return cpu_bf16 == "on"
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast_for(device: torch.device, cpu_bf16: str) -> contextlib.AbstractContextManager:
    """common.autocast (bf16 on CUDA), and bf16 on the CPU as `cpu_bf16` asks."""
    if device.type == "cpu" and cpu_bf16_enabled(cpu_bf16):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return common.autocast(device)


@torch.no_grad()
def embed_texts(
    model: StudentModel,
    batcher: TextBatcher,
    texts: Sequence[str],
    lang: str | None,
    device: torch.device,
    batch_size: int = 64,
    cpu_bf16: str = "off",
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Student embeddings (N, D), logits (N, C) and driver-gene probabilities (N, G; None
    without a gene head) of `texts`, on the CPU, in eval mode. `lang` None matches lexicon
    entities of every language."""
    was_training = model.training
    model.eval()
    embs, logits, genes = [], [], []
    try:
        for s in range(0, len(texts), batch_size):
            chunk = list(texts[s : s + batch_size])
            batch = {k: v.to(device) for k, v in batcher(chunk, [lang] * len(chunk)).items()}
            with autocast_for(device, cpu_bf16):
                z, y, g = model(**batch)
            embs.append(z.float().cpu())
            logits.append(y.float().cpu())
            if g is not None:
                genes.append(torch.sigmoid(g.float()).cpu())
    finally:
        model.train(was_training)
    dim = model.classifier.linear.in_features
    n_genes = len(DRIVER_GENES) if model.genes is not None else 0
    if not embs:
        empty_genes = torch.empty(0, n_genes) if n_genes else None
        return torch.empty(0, dim), torch.empty(0, len(CANCER_TYPES)), empty_genes
    return torch.cat(embs), torch.cat(logits), torch.cat(genes) if genes else None


def _validate(
    model: StudentModel,
    batcher: TextBatcher,
    val: _ValSet,
    cfg: DistillConfig,
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """Per language: accuracy against the true type and recall@10 of the note's own
    English-teacher embedding among the teacher's embeddings of all validation notes; with a
    gene head also alteration_f1, the micro-F1 of its driver genes at the threshold that is
    best on the English notes (returned too; None without a gene head)."""
    out, genes = {}, {}
    k = min(RECALL_K, len(val.gallery))
    for lang, texts in val.texts.items():
        z, y, g = embed_texts(
            model, batcher, texts, lang, device, cfg.eval_batch_size, cfg.cpu_bf16
        )
        top = (z @ val.gallery.T).topk(k, dim=1).indices  # (N, k)
        hits = (top == val.target.unsqueeze(1)).any(1)
        out[lang] = {
            "accuracy": round(float((y.argmax(1) == val.truth).float().mean()), 4),
            "recall_at_10": round(float(hits.float().mean()), 4),
        }
        if g is not None:
            genes[lang] = g
    if not genes:
        return out, None
    threshold = gene_threshold(genes[TEACHER_LANGUAGE], val.drivers)
    for lang, g in genes.items():
        out[lang]["alteration_f1"] = round(micro_f1(g >= threshold, val.drivers), 4)
    return out, threshold


def gene_threshold(probs: Tensor, truth: Tensor) -> float:
    """The decision threshold (of core.eval.probe.THRESHOLDS) with the best micro-F1 of gene
    probabilities probs (N, G) against truth (N, G) bool: one for all genes, as the probe's."""
    return max(THRESHOLDS, key=lambda t: micro_f1(probs >= t, truth))


CALIBRATION_NOTES = 2000  # at most this many English validation notes fit T (seeded sample)


def calibration_record(
    model: StudentModel,
    batcher: TextBatcher,
    cases: Sequence[Case],
    cfg: DistillConfig,
    device: torch.device,
) -> dict[str, Any] | None:
    """config.json's "calibration": temperature T and abstention threshold (core.eval.
    calibration.calibrate) on the English notes of validation-split cases, test templates
    excluded; None when there are none (the student then loads with T = 1)."""
    reserved = reserved_template_ids((TEACHER_LANGUAGE,))
    rows = [
        (n.text, CANCER_TYPES.index(c.cancer_type))
        for c in sorted((c for c in cases if c.split == "val"), key=lambda c: c.case_id)
        for n in c.notes
        if n.lang == TEACHER_LANGUAGE and n.text.strip() and n.template_id not in reserved
    ]
    if not rows:
        return None
    if len(rows) > CALIBRATION_NOTES:
        keep = np.random.default_rng([cfg.seed, 7]).choice(len(rows), CALIBRATION_NOTES, False)
        rows = [rows[i] for i in sorted(keep)]
    _, logits, _ = embed_texts(  # in fp32 on the CPU, as DistilledStudent.predict runs
        model, batcher, [t for t, _ in rows], TEACHER_LANGUAGE, device, cfg.eval_batch_size
    )
    truth = torch.tensor([y for _, y in rows])
    fitted_on = f"{TEACHER_LANGUAGE} notes of validation cases ({len(rows)} notes)"
    return calibrate(logits, truth, fitted_on).to_dict()


@dataclass(frozen=True)
class _PackVal:
    """A pack language's held-out phrases: the translations and, aligned with them, the
    teacher's embeddings of their English sides (the retrieval gallery)."""

    texts: list[str]
    gallery: Tensor  # (H, D)
    unk_rate: float  # share of [UNK] pieces of the student tokenizer in `texts`


def load_packs(cfg: DistillConfig) -> tuple[LanguagePack, ...]:
    """The packs of `cfg.language_packs`, in `cfg.pack_languages` order; ConfigError when a
    folder holds a language that is not one of them."""
    packs: dict[str, LanguagePack] = {}
    for folder in cfg.language_packs:
        pack = load_pack(Path(folder))
        if pack.code not in cfg.pack_languages or pack.code in packs:
            raise ConfigError(
                f"{folder}: its language {pack.code!r} is not one (once) of the pack languages "
                f"{cfg.pack_languages} in languages"
            )
        packs[pack.code] = pack
    return tuple(packs[code] for code in cfg.pack_languages)


def _pack_validation(
    packs: Sequence[LanguagePack], targets: Tensor, tokenizer: StudentTokenizer
) -> dict[str, _PackVal]:
    """Per pack: its held-out phrases with `targets`, the rows of every pack's held-out
    phrases in `packs` order."""
    out, start = {}, 0
    for pack in packs:
        texts = [tr for _, tr in pack.split("heldout")]
        gallery = targets[start : start + len(texts)]
        out[pack.code] = _PackVal(texts, gallery, tokenizer.unk_rate(texts))
        start += len(texts)
    return out


def _validate_packs(
    model: StudentModel,
    batcher: TextBatcher,
    pack_val: dict[str, _PackVal],
    cfg: DistillConfig,
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """Per pack language: top-1 accuracy of retrieving each held-out phrase's English side
    (teacher space) among all its held-out English sides, and the tokenizer's [UNK] rate."""
    out = {}
    for lang, v in pack_val.items():
        z, _, _ = embed_texts(model, batcher, v.texts, lang, device, cfg.eval_batch_size,
                              cfg.cpu_bf16)  # fmt: skip
        hits = (z @ v.gallery.T).argmax(1) == torch.arange(len(v.texts))
        out[lang] = {
            "heldout_top1": round(float(hits.float().mean()), 4),
            "unk_rate": round(v.unk_rate, 4),
            "heldout_phrases": len(v.texts),
        }
    return out


def _pack_records(
    packs: Sequence[LanguagePack], pack_val: dict[str, _PackVal], last: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """config.json's record of each pack: what it is, how much it held, how it scored."""
    return {
        p.code: {
            "name": p.name, "script": p.script, "train_phrases": len(p.split("train")),
            "heldout_phrases": len(pack_val[p.code].texts), "lexicon_concepts": len(p.terms),
            "unk_rate": round(pack_val[p.code].unk_rate, 4),
            "heldout_top1": last.get("val_packs", {}).get(p.code, {}).get("heldout_top1"),
        }
        for p in packs
    }  # fmt: skip


# ------------------------------------------------------------------------- the loop


def _parallel_targets(
    rows: Sequence[ParallelRow],
    teacher: Teacher,
    max_length: int,
    cache_dir: Path,
    world: _World,
    device: torch.device,
) -> Tensor:
    """(S, D) teacher text-branch embeddings of the English sentences: MiniLM (cached on
    disk by text, on rank 0, then broadcast) and their facts, then the teacher's text head."""
    minilm = torch.zeros(len(rows), teacher.config.text_dim)
    if world.is_main and rows:
        version = importlib.metadata.version(MINILM_DIST)
        minilm = common.embed_texts_cached(
            [r.en for r in rows],
            cache_dir / f"minilm-{version}-len{max_length}.safetensors",
            lambda: TeacherTextEncoder().to(device),
            max_length=max_length,
        )
    minilm = _broadcast_tensor(minilm, world, device)
    with torch.no_grad():
        facts = teacher.read_facts([r.en for r in rows])
        return teacher.embed_text(minilm, facts).float()  # (S, D); eval mode: no dropout


def _resolve_threads(cfg: DistillConfig, world: _World) -> int:
    if cfg.threads:
        return cfg.threads
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world.size))
    return max(1, (os.cpu_count() or 1) // max(1, local))


def distill(
    cohort_dir: Path,
    teacher_dir: Path,
    out_dir: Path,
    cfg: DistillConfig = DistillConfig(),
    progress: ProgressCallback | None = None,
    *,
    state_hash_dir: Path | None = None,
) -> Path:
    """Distil the teacher at `teacher_dir` into a student written to `out_dir` (replaced
    atomically; see the module docstring). Returns `out_dir`.

    Inside an initialised torch.distributed process group every rank trains its shard and
    only rank 0 writes. `state_hash_dir` (tests): every rank writes rank<r>.sha256, a hash of
    its final weights.
    """
    world = _World.current()
    with common.torch_threads(_resolve_threads(cfg, world)):
        return _distill(
            Path(cohort_dir), Path(teacher_dir), Path(out_dir), cfg, progress, world,
            state_hash_dir,
        )  # fmt: skip


def _distill(
    cohort_dir: Path,
    teacher_dir: Path,
    out_dir: Path,
    cfg: DistillConfig,
    progress: ProgressCallback | None,
    world: _World,
    state_hash_dir: Path | None,
) -> Path:
    watch = common.Stopwatch()
    common.seed_everything(cfg.seed)
    device = common.resolve_device(cfg.device)
    if device.type == "cuda" and world.size > 1:
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else out_dir.resolve().parent / ".cache"
    show_bar = cfg.show_progress_bar and world.is_main
    callback = progress if world.is_main else None

    with watch.stage("load"):
        cases = load_cases(cohort_dir)
        targets = load_targets(teacher_dir, cfg.kd_source)
        notes = training_notes(cases, targets, cfg)
        loss_cfg, uncertainty_record = _resolved_loss(cfg, targets, notes)
        review = (
            load_review_rows(Path(cfg.hard_negatives), targets, cfg) if cfg.hard_negatives else None
        )
        val = _validation_set(cases, targets, cfg)
        packs = load_packs(cfg)
        parallel_rows = _sample_parallel(cfg) if cfg.use_parallel else []
        parallel_rows += [row for pack in packs for row in pack.parallel_rows("train")]
        heldout_rows = [row for pack in packs for row in pack.parallel_rows("heldout")]
        lexicon = merged_lexicon(packs)
        concept_ids = tuple(lexicon.concepts)
        teacher, _ = load_teacher(teacher_dir)
        encoding = fit_quantum_encoding(targets, notes) if cfg.head == "quantum" else None
        teacher_meta = json.loads((teacher_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        text_max_length = int(teacher_meta.get("train", {}).get("text_max_length", 128))
        if teacher.config.embed_dim != targets.dim:
            raise InputError(f"{teacher_dir}: embeddings do not match the teacher's embed_dim")

    run_dir = common.atomic_directory(out_dir) if world.is_main else contextlib.nullcontext()
    with run_dir as tmp:
        with watch.stage("tokenizer"):
            spec = extension = None
            if world.is_main:
                langs = (TEACHER_LANGUAGE, *cfg.languages)
                build_student_tokenizer(
                    _tokenizer_texts(notes, parallel_rows, langs, lexicon),
                    tmp / TOKENIZER_DIR,
                    extra_vocab=cfg.extra_vocab,
                )
                spec = (tmp / TOKENIZER_DIR / TOKENIZER_FILE).read_bytes()
                extension = (tmp / TOKENIZER_DIR / EXTENSION_FILE).read_bytes()
            tokenizer = _tokenizer_from_bytes(
                _broadcast_bytes(spec, world, device), _broadcast_bytes(extension, world, device)
            )
        with watch.stage("parallel_targets"):
            parallel_targets = _parallel_targets(
                parallel_rows + heldout_rows, teacher, text_max_length, cache_dir, world, device
            )
            heldout_targets = parallel_targets[len(parallel_rows) :]
            parallel_targets = parallel_targets[: len(parallel_rows)]

        student_cfg = dataclasses.replace(
            cfg.student,
            entity_attention=cfg.use_entity_attention,
            n_entities=len(concept_ids) + 1,
        )
        torch.manual_seed(cfg.seed)  # same initial weights on every rank, whatever ran before
        model = _build_model(cfg, student_cfg, tokenizer, teacher, concept_ids, encoding)
        model = model.to(device)
        batcher = TextBatcher(
            tokenizer, concept_ids, cfg.max_length,
            cfg.use_entity_attention or model.genes is not None,
            lexicon, fact_buckets(model),
        )  # fmt: skip
        pack_val = _pack_validation(packs, heldout_targets, tokenizer)
        result = _train(
            dataclasses.replace(cfg, loss=loss_cfg), model, batcher, notes, parallel_rows,
            parallel_targets, targets, val, world,
            device, watch, callback, show_bar, tmp,
            review if review else None,  # every verdict skipped: train exactly as without
            pack_val,
        )  # fmt: skip

        if state_hash_dir is not None:
            state_hash_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(state_hash_dir / f"rank{world.rank}.sha256", _state_hash(model).encode())
        if world.is_main:
            with watch.stage("calibrate"):
                calibration = calibration_record(model, batcher, cases, cfg, device)
            with watch.stage("write"):
                last = result["history"][-1] if result["history"] else {}
                config = {
                    "kind": "student",
                    "version": common.new_version_id("student"),
                    "created_at": common.utc_now_iso(),
                    "cohort_dir": str(cohort_dir.resolve()),
                    "teacher_dir": str(teacher_dir.resolve()),
                    "teacher_version": teacher_meta.get("version", ""),
                    "classes": list(CANCER_TYPES),
                    # Languages with cohort notes; pack languages are under language_packs.
                    "languages": [TEACHER_LANGUAGE, *cfg.cohort_languages],
                    "head": cfg.head,
                    "head_hidden": _head_hidden(cfg, teacher.config),
                    "fact_buckets": fact_buckets(model),
                    **({"quantum_encoding": encoding.record()} if encoding is not None else {}),
                    "shared_dim": teacher.config.embed_dim,
                    "max_length": cfg.max_length,
                    "student": student_cfg.to_dict(),
                    "entity_concepts": list(concept_ids),
                    "distill": cfg.to_dict(),
                    "training_notes": len(notes),
                    # What `cmkd evaluate` checks against the held-out (test) templates.
                    "train_template_ids": sorted({r.template_id for r in notes}),
                    "parallel_sentences": len(parallel_rows),
                    "uncertainty": uncertainty_record,
                    **({"hard_negatives": review.stats} if review is not None else {}),
                    **({"language_packs": _pack_records(packs, pack_val, last)} if packs else {}),
                    **({"gene_head": _gene_head_record(cfg, last)} if cfg.gene_weight else {}),
                    **({"calibration": calibration} if calibration else {}),
                    "steps": result["steps"],
                    "stopped_early": result["stopped_early"],
                    "metrics": last.get("val", {}),
                    "timings_s": dict(watch.seconds),
                }
                _write_checkpoint(tmp, model, config)
                for pack in packs:  # the checkpoint carries its languages' lexicon columns
                    save_pack(pack, tmp / PACKS_DIR / pack.code)
    if world.size > 1:
        dist.barrier()
    return out_dir


def _resolved_loss(
    cfg: DistillConfig, targets: TeacherTargets, notes: Sequence[NoteRow]
) -> tuple[DistillLossConfig, dict[str, float]]:
    """The loss config with the uncertainty threshold made absolute from the teacher's variance
    over the run's English training notes (each counted once, not once per language)."""
    rows = sorted({(r.teacher_row, r.kind) for r in notes})
    index = torch.tensor(rows, dtype=torch.long)  # (N, 2)
    return resolve_uncertainty_threshold(cfg.loss, targets.variance[index[:, 0], index[:, 1]])


def _gene_head_record(cfg: DistillConfig, last: dict[str, Any]) -> dict[str, Any]:
    """config.json's record of the gene head: its genes in output order, what it reads, and
    the decision threshold chosen on the English validation notes (0.5 without any)."""
    return {
        "genes": list(DRIVER_GENES),
        "label_languages": list(cfg.gene_languages),
        "threshold": last.get("val_gene_threshold", 0.5),
    }


def _tokenizer_from_bytes(spec: bytes, extension: bytes) -> StudentTokenizer:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / TOKENIZER_FILE).write_bytes(spec)
        (Path(d) / EXTENSION_FILE).write_bytes(extension)
        return StudentTokenizer.load(Path(d))


def make_optimizer(model: StudentModel, cfg: DistillConfig) -> torch.optim.Optimizer:
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:  # e.g. a frozen quantum readout
            continue
        lr = cfg.lr if name.startswith("encoder.") else cfg.head_lr
        decay = cfg.weight_decay if p.ndim >= 2 and "norm" not in name else 0.0
        groups.setdefault((lr, decay), []).append(p)
    return torch.optim.AdamW(
        [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
    )


class _Budget:
    """The run's wall-clock budget, agreed on by every rank: whether to stop before the next
    step, and the share of the training time used (for the learning-rate schedule).

    Time is kept back for the last validation and the saving: the validation is estimated
    from the training speed (inference measured at under a quarter of a training row) until
    one has been timed.
    """

    def __init__(
        self,
        watch: common.Stopwatch,
        minutes: float,
        n_val_texts: int,
        world: _World,
        device: torch.device,
    ) -> None:
        self.watch = watch
        self.budget = minutes * 60
        self.n_val_texts = n_val_texts
        self.world = world
        self.device = device
        self.start = watch.elapsed()
        self.sec_per_row = 0.0
        self.val_seconds: float | None = None

    def observe_step(self, seconds: float, rows: int) -> None:
        rate = seconds / max(1, rows)
        self.sec_per_row = rate if not self.sec_per_row else 0.9 * self.sec_per_row + 0.1 * rate

    def check(self) -> tuple[float, bool]:
        """(share of the training time used, whether to stop now)."""
        val = (
            self.n_val_texts * self.sec_per_row / 4
            if self.val_seconds is None
            else self.val_seconds
        )
        reserve = SAVE_RESERVE_S + val
        elapsed = self.watch.elapsed()
        share = (elapsed - self.start) / max(1.0, self.budget - reserve - self.start)
        clock = torch.tensor([share, float(elapsed + reserve >= self.budget)])
        if self.world.size > 1:  # one decision and one learning rate on every rank
            clock = clock.to(self.device)
            dist.all_reduce(clock, op=dist.ReduceOp.MAX)
            clock = clock.cpu()
        return float(clock[0]), bool(clock[1] > 0)


def _train(
    cfg: DistillConfig,
    model: StudentModel,
    batcher: TextBatcher,
    notes: list[NoteRow],
    parallel_rows: list[ParallelRow],
    parallel_targets: Tensor,
    targets: TeacherTargets,
    val: _ValSet | None,
    world: _World,
    device: torch.device,
    watch: common.Stopwatch,
    callback: ProgressCallback | None,
    show_bar: bool,
    run_dir: Path | None,
    review: ReviewRows | None = None,
    pack_val: dict[str, _PackVal] | None = None,
) -> dict[str, Any]:
    """The epochs; returns steps, whether the budget stopped them, and the epoch records.
    `review`: rows (d), non-empty, or None. `pack_val`: held-out phrases per pack language."""
    n_par = cfg.parallel_rows_per_batch if parallel_rows else 0
    n_note = cfg.batch_size - n_par
    par_items, par_groups = _parallel_items(parallel_rows)
    by_case: dict[int, list[int]] = {}
    for i, r in enumerate(notes):
        by_case.setdefault(r.teacher_row, []).append(i)
    rng = np.random.default_rng([cfg.seed, 5])  # the same plan on every rank
    note_rr = RoundRobin(list(by_case.values()), rng)
    par_rr = RoundRobin(par_groups, rng)
    review_rng = np.random.default_rng([cfg.seed, 6])  # own stream: the rest plans as without
    batches_per_epoch = max(world.size, math.ceil((cfg.notes_per_epoch or len(notes)) / n_note))
    total_steps = cfg.epochs * math.ceil(batches_per_epoch / world.size)

    ddp: nn.Module = model
    if world.size > 1:
        ddp = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            # Without KD and CE (an ablation) the classifier gets no gradient at all.
            find_unused_parameters=cfg.loss.alpha >= 1 and cfg.loss.beta == 0,
        )
    optimizer = make_optimizer(model, cfg)
    loss_fn = DistillationLoss(cfg.loss)
    n_val_texts = 0 if val is None else sum(len(t) for t in val.texts.values())
    budget = _Budget(watch, cfg.max_minutes, n_val_texts, world, device)
    history: list[dict[str, Any]] = []
    step, stopped = 0, False

    with common.Progress("distill", total_steps, callback, show_bar) as bar:
        for epoch in range(cfg.epochs):
            par_batches = (
                par_rr.batches(batches_per_epoch, n_par) if n_par else [[]] * batches_per_epoch
            )
            plan = list(zip(note_rr.batches(batches_per_epoch, n_note), par_batches, strict=True))
            review_plan = []
            if review is not None:
                review_plan = cycled_batches(
                    len(review), batches_per_epoch, cfg.hard_negatives_per_batch, review_rng
                )
            data = _Batches(
                plan, notes, par_items, parallel_targets, targets, batcher, review, review_plan
            )
            sampler = DistributedSampler(
                data, num_replicas=world.size, rank=world.rank, shuffle=True, seed=cfg.seed
            )
            sampler.set_epoch(epoch)
            loader = DataLoader(
                data, batch_size=None, sampler=sampler, pin_memory=device.type == "cuda"
            )
            sums: dict[str, float] = {}
            epoch_steps = 0
            ddp.train()
            with watch.stage("train"):
                for batch in loader:
                    world.check_launcher()
                    used, stopped = budget.check()
                    if stopped:
                        break
                    share = max(step / total_steps, used)  # anneal by steps or time, the further
                    common.set_lr(optimizer, common.lr_factor(share, cfg.warmup))
                    t0 = time.perf_counter()
                    parts = train_step(ddp, batch, loss_fn, optimizer, cfg, device)
                    budget.observe_step(time.perf_counter() - t0, len(batch["teacher_emb"]))
                    step += 1
                    epoch_steps += 1
                    for key, value in parts.items():
                        sums[key] = sums.get(key, 0.0) + value
                    bar.update(1, epoch=epoch, **parts)
            record = _epoch_record(epoch, step, sums, epoch_steps, watch.elapsed(), stopped)
            if world.is_main and val is not None:
                t0 = time.perf_counter()
                with watch.stage("validate"):
                    record["val"], threshold = _validate(model, batcher, val, cfg, device)
                if threshold is not None:
                    record["val_gene_threshold"] = threshold
                record["val_gallery"] = len(val.gallery)
                budget.val_seconds = time.perf_counter() - t0
            if world.is_main and pack_val:
                with watch.stage("validate"):
                    record["val_packs"] = _validate_packs(model, batcher, pack_val, cfg, device)
            if run_dir is not None:
                _append_line(run_dir / METRICS_FILE, record)
            history.append(record)
            bar.emit(epoch=epoch, metrics=record)
            if stopped:
                break
    return {"steps": step, "stopped_early": stopped, "history": history}


def _epoch_record(
    epoch: int, step: int, sums: dict[str, float], n: int, elapsed: float, stopped: bool
) -> dict[str, Any]:
    n = max(1, n)
    return {
        "epoch": epoch,
        "step": step,
        "elapsed_s": round(elapsed, 1),
        "stopped_early": stopped,
        "train": {k: round(v / n, 5) for k, v in sums.items()},
    }


def _append_line(path: Path, record: dict[str, Any]) -> None:
    # The whole run folder is renamed into place at the end; appending inside it is safe.
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def train_step(
    model: nn.Module,
    batch: dict[str, Tensor],
    loss_fn: DistillationLoss,
    optimizer: torch.optim.Optimizer,
    cfg: DistillConfig,
    device: torch.device,
) -> dict[str, float]:
    """One optimisation step on a batch of `_Batches` (note rows first); returns the loss
    parts as floats. A model with a gene head adds gene_weight * GeneBCELoss on the note
    rows that carry driver labels (batches without gene_labels add nothing). A quantum head
    with an encoding adds quantum_fidelity_weight * FidelityLoss(prepared state, encoded
    teacher embedding) on the note and parallel rows (parts["fidelity"]). A share
    cfg.fact_dropout of the rows is shown without its facts."""
    b = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    inputs = {k: b[k] for k in MODEL_INPUTS if k in b}
    if "note_facts" in inputs and cfg.fact_dropout > 0:
        facts = inputs["note_facts"]  # (B, F)
        shown = torch.rand(len(facts), 1, device=facts.device) >= cfg.fact_dropout  # (B, 1)
        inputs["note_facts"] = facts * shown
    encoding = getattr(model, "module", model).encoding  # DistributedDataParallel wraps it
    fidelity_on = encoding is not None and cfg.quantum_fidelity_weight > 0
    with autocast_for(device, cfg.cpu_bf16):
        z, y, g, *state = model(**inputs, with_state=fidelity_on)
    z, y = z.float(), y.float()
    n = len(b["labels"])  # note rows come first, parallel rows after them, review rows last
    end = len(z) - len(b["review_negative"]) if "review_negative" in b else len(z)
    anchors = {m: b[f"anchor_{m}"] for m in ("slide", "genomic")}
    present = {m: b[f"present_{m}"] for m in ("slide", "genomic")}
    loss, parts = loss_fn(
        z[:n], b["teacher_emb"][:n], y[:n], b["teacher_logits"], b["labels"],
        b["teacher_variance"], anchors, present,
    )  # fmt: skip
    m = end - n
    parts["parallel_align"] = 0.0
    if m >= 2 and cfg.loss.alpha > 0:
        par = loss_fn.align(z[n:end], b["teacher_emb"][n:])
        parts["parallel_align"] = float(par.detach())
        loss = (n * loss + m * cfg.loss.alpha * par) / (n + m)
    if g is not None and "gene_labels" in b:
        genes = GeneBCELoss()(g[:n].float(), b["gene_labels"], b["gene_labelled"])
        parts["genes"] = float(genes.detach())
        loss = loss + cfg.gene_weight * genes
    if fidelity_on:  # state: [(B, 2^n) complex]; teacher_emb covers note and parallel rows
        phi = encoding.encode(b["teacher_emb"])  # (n + m, 2^n)
        fidelity = FidelityLoss()(state[0][:end], phi)
        parts["fidelity"] = float(fidelity.detach())
        loss = loss + cfg.quantum_fidelity_weight * fidelity
    if "review_negative" in b:
        loss = loss_fn.add_hard_negatives(
            loss, parts, z[end:], b["review_negative"], b["review_positive"],
            b["review_has_positive"],
        )  # fmt: skip
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    parts["loss"] = float(loss.detach())
    return parts


def _write_checkpoint(tmp: Path, model: StudentModel, config: dict[str, Any]) -> None:
    common.save_tensors(tmp / STUDENT_FILE, model.encoder.state_dict())
    common.save_tensors(tmp / HEAD_FILE, model.head.state_dict())
    common.save_tensors(tmp / CLASSIFIER_FILE, model.classifier.state_dict())
    if model.genes is not None:
        common.save_tensors(tmp / GENES_FILE, model.genes.state_dict())
    if model.encoding is not None:
        model.encoding.save(tmp / ENCODING_FILE)
    if model.facts is not None:
        common.save_tensors(tmp / FACTS_FILE, model.facts.state_dict())
    write_atomic(tmp / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())


# ---------------------------------------------------------------------------- loading


@dataclass
class DistilledStudent:
    """A checkpoint written by `distill`: the model (CPU, eval mode) and how to feed it."""

    model: StudentModel
    batcher: TextBatcher
    config: dict[str, Any]

    def predict(
        self,
        texts: Sequence[str],
        lang: str | None = None,
        batch_size: int = 64,
        *,
        calibrated: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """Shared-space embeddings (N, D) and cancer-type logits (N, C) in CANCER_TYPES order,
        divided by `temperature` unless `calibrated` is False, so that their softmax is the
        calibrated probability (the argmax, and the embeddings, do not change)."""
        z, y, _ = self.predict_with_genes(texts, lang, batch_size, calibrated=calibrated)
        return z, y

    def predict_with_genes(
        self,
        texts: Sequence[str],
        lang: str | None = None,
        batch_size: int = 64,
        *,
        calibrated: bool = True,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """`predict`'s outputs and the probability (N, G) that each gene of DRIVER_GENES is
        altered, None when the checkpoint has no gene head."""
        device = next(self.model.parameters()).device
        z, y, g = embed_texts(self.model, self.batcher, texts, lang, device, batch_size)
        return z, y / self.temperature if calibrated else y, g

    @property
    def temperature(self) -> float:
        """T of temperature scaling (config.json's "calibration", fitted on English validation
        notes); 1.0 for students distilled before calibration."""
        return temperature_of(self.config)

    def probabilities(self, logits: Tensor, *, calibrated: bool = True) -> Tensor:
        """Cancer-type probabilities (N, C) of uncalibrated logits (N, C) (`predict(...,
        calibrated=False)`): softmax(logits / T), or softmax(logits) when not `calibrated`."""
        return torch.softmax(logits.float() / (self.temperature if calibrated else 1.0), dim=-1)

    @property
    def gene_threshold(self) -> float | None:
        """The gene head's decision threshold (chosen on English validation notes); None
        without a gene head."""
        record = self.config.get("gene_head")
        return float(record["threshold"]) if record else None

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language it was trained in: English, cohort languages, pack languages."""
        return (*self.config["languages"], *self.config.get("language_packs", {}))

    @property
    def lexicon(self) -> Lexicon:
        """The entity matcher it reads with (the shipped lexicon plus its packs' columns)."""
        return self.batcher.lexicon


def load_distilled(directory: Path) -> DistilledStudent:
    """The student checkpoint at `directory`; InputError when it is missing or broken."""
    directory = Path(directory)
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{directory}: no readable student config.json ({exc})") from exc
    if not isinstance(config, dict) or config.get("kind") != "student":
        raise InputError(f"{directory}: config.json does not describe a distilled student")
    try:  # a broken calibration record fails here, not at the first prediction
        temperature_of(config)
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{directory}: config.json's calibration: {exc}") from exc
    student_cfg = StudentConfig.from_dict(config["student"])
    tokenizer = StudentTokenizer.load(directory / TOKENIZER_DIR)
    encoder = StudentEncoder(student_cfg, tokenizer.vocab_size)
    head = _make_head(
        config["head"], student_cfg.hidden, config["shared_dim"], config.get("head_hidden", 0)
    )
    genes = None
    if "gene_head" in config:  # students distilled without one (or before heads) have none
        if list(config["gene_head"].get("genes", ())) != list(DRIVER_GENES):
            raise InputError(f"{directory}: the gene head's genes differ from DRIVER_GENES")
        genes = make_gene_head(student_cfg.hidden, config["entity_concepts"])
    classifier = ClassifierHead(config["shared_dim"], len(CANCER_TYPES))
    encoding = None
    if "quantum_encoding" in config:  # quantum students distilled before the fidelity term lack it
        encoding = QuantumEncoding.load(directory / ENCODING_FILE)
    facts = None
    if config.get("fact_buckets"):  # students distilled before the fact channel have none
        facts = FactEmbedding(int(config["fact_buckets"]), student_cfg.hidden)
    model = StudentModel(encoder, head, classifier, genes, encoding, facts)
    parts: list[tuple[nn.Module, str]] = [
        (encoder, STUDENT_FILE), (head, HEAD_FILE), (classifier, CLASSIFIER_FILE),
    ]  # fmt: skip
    if genes is not None:
        parts.append((genes, GENES_FILE))
    if facts is not None:
        parts.append((facts, FACTS_FILE))
    for part, name in parts:
        state, _ = common.load_tensors(directory / name)
        try:
            part.load_state_dict(state)
        except RuntimeError as exc:
            raise InputError(
                f"{directory / name}: weights do not match config.json: {exc}"
            ) from exc
    packs = [load_pack(directory / PACKS_DIR / code) for code in config.get("language_packs", {})]
    batcher = TextBatcher(
        tokenizer, config["entity_concepts"], config["max_length"],
        student_cfg.entity_attention or genes is not None, merged_lexicon(packs),
        fact_buckets(model),
    )  # fmt: skip
    return DistilledStudent(model.eval(), batcher, config)


# ------------------------------------------------------------------ torchrun and launch


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for torchrun (and a plain single-process run)."""
    parser = argparse.ArgumentParser(prog="python -m core.train.distill")
    parser.add_argument("--cohort", required=True, type=Path)
    parser.add_argument("--teacher", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--config", type=Path, help="DistillConfig as JSON")
    parser.add_argument(
        "--progress-json", action="store_true", help="rank 0 prints progress as JSON lines"
    )
    parser.add_argument("--state-hash-dir", type=Path, help="tests: write each rank's weight hash")
    args = parser.parse_args(argv)
    cfg = DistillConfig.load(args.config) if args.config else DistillConfig()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1:
        backend = "nccl" if common.resolve_device(cfg.device).type == "cuda" else "gloo"
        dist.init_process_group(backend)
    try:
        callback = _print_event if args.progress_json else None
        distill(args.cohort, args.teacher, args.out, cfg, callback,
                state_hash_dir=args.state_hash_dir)  # fmt: skip
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


def _print_event(event: dict[str, Any]) -> None:
    print(json.dumps({"progress": event}), flush=True)


def launch_distill(
    cohort_dir: Path,
    teacher_dir: Path,
    out_dir: Path,
    cfg: DistillConfig = DistillConfig(),
    nproc: int = 1,
    progress: ProgressCallback | None = None,
    *,
    state_hash_dir: Path | None = None,
) -> Path:
    """`distill` in this process (nproc 1) or in `nproc` torchrun processes (gloo on CPU,
    nccl on CUDA), relaying rank 0's progress events to `progress`; returns out_dir.
    Raises CmkdError when a process fails (its traceback goes to stderr)."""
    if nproc < 1:
        raise ConfigError(f"nproc must be >= 1, got {nproc}")
    if nproc == 1:
        return distill(
            cohort_dir, teacher_dir, out_dir, cfg, progress, state_hash_dir=state_hash_dir
        )
    # Bad inputs fail here with their own message, not as a torchrun exit code.
    targets = load_targets(Path(teacher_dir), cfg.kd_source)
    training_notes(load_cases(cohort_dir), targets, cfg)
    if cfg.hard_negatives:
        load_review_rows(Path(cfg.hard_negatives), targets, cfg)
    repo_root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as d:
        cfg_path = Path(d) / "distill.json"
        cfg_path.write_text(json.dumps(cfg.to_dict()), encoding="utf-8")
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", "-m", "core.train.distill",
            "--cohort", str(Path(cohort_dir).resolve()),
            "--teacher", str(Path(teacher_dir).resolve()),
            "--out", str(Path(out_dir).resolve()),
            "--config", str(cfg_path), "--progress-json",
        ]  # fmt: skip
        if state_hash_dir is not None:
            cmd += ["--state-hash-dir", str(Path(state_hash_dir).resolve())]
        with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                event = _parse_event(line)
                if event is None:
                    sys.stderr.write(line)
                elif progress is not None:
                    progress(event)
        if proc.returncode != 0:
            raise CmkdError(f"distributed distillation failed (torchrun exit {proc.returncode})")
    return Path(out_dir)


def _parse_event(line: str) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data.get("progress") if isinstance(data, dict) else None


if __name__ == "__main__":
    sys.exit(main())
