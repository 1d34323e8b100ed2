"""The trained models behind the interpreter's two hooks (core/genomics/interpret.py).

- `GenomicScorer` (`variant_scorer`): the teacher's genomic encoder reads one variant alone
  (its gene, consequence, VAF-bucket and allele-kind tokens), the teacher's genomic
  projection head puts it in the shared space, and a logistic probe trained on the cohort's
  train-split drivers against passengers turns that into p(oncogenic). The k-mers of the
  sequence context are left unknown: a user's VCF comes without the reference FASTA, and on
  the synthetic cohort the context lowered the probe's test AUC (0.88 against 0.96).
- `StudentReader` (`annotation_reader`): the lexicon finds the entities of a free-text
  annotation (genes, variant kinds, oncogenicity words such as "pathogen" or "benigne") and
  the distilled student gives its cancer-type reading, each language's texts in one batch.
- `load_models` loads whatever the workspace has and says why anything is missing;
  `train_variant_probe` fits and saves the probe (safetensors + config.json).

Scores and readings are cached by what determines them (token rows; text and language), so a
file with many similar variants runs the networks on few rows. Importing this module loads
no model; torch is imported here, never by interpret.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from core.data.cohort_io import load_cases
from core.data.lexicon import Lexicon, default_lexicon
from core.data.schema import CANCER_TYPES, Variant
from core.errors import InputError
from core.genomics import classes as C
from core.genomics.interpret import (
    NOT_AVAILABLE,
    AnnotationReading,
    InterpretConfig,
    Interpreter,
    one_letter_protein,
    primary_annotation,
)
from core.genomics.records import FreeText, VariantRecord
from core.io import atomic_directory, write_atomic
from core.knowledge.tables import KnowledgeBase
from core.models.genomic import GenomicFeaturizer
from core.models.teacher import Teacher
from core.train.common import load_tensors, new_version_id, save_tensors, utc_now_iso
from core.train.distill import DistilledStudent, load_distilled
from core.train.teacher import load_teacher

PROBE_KIND = "variant_probe"
PROBE_FILE = "probe.safetensors"
CONFIG_FILE = "config.json"
CACHE_SIZE = 100_000  # cached scores / readings; cleared when full so memory stays bounded
# Lexicon concepts whose words support a class (in any language the lexicon has).
PATHOGENIC_CUES = frozenset({"FINDING:PATHOGENIC", "VARKIND:HOTSPOT"})
BENIGN_CUES = frozenset({"FINDING:BENIGN_VARIANT"})
UNCERTAIN_CUES = frozenset({"FINDING:VUS"})

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class ProbeConfig:
    """The logistic probe on the genomic embedding; defaults fit the demo cohort in seconds."""

    l2: float = 1e-3  # ridge penalty on the weights of the standardised features
    max_iter: int = 200  # L-BFGS iterations (full batch)
    batch_size: int = 4096  # variants embedded per forward pass


def _cached(cache: dict[K, V], keys: Sequence[K], compute: Callable[[list[K]], list[V]]) -> list[V]:
    """Values of `keys` (repeats allowed), computing the missing distinct ones in one call."""
    found = {k: cache[k] for k in dict.fromkeys(keys) if k in cache}
    missing = [k for k in dict.fromkeys(keys) if k not in found]
    if missing:
        found.update(zip(missing, compute(missing), strict=True))
        if len(cache) + len(missing) > CACHE_SIZE:
            cache.clear()
        cache.update((k, found[k]) for k in missing)
    return [found[k] for k in keys]


# ------------------------------------------------------------------------ genomic scorer


def record_variant(record: VariantRecord) -> Variant:
    """What the genomic featuriser reads of a VCF allele, as a cohort Variant (role unknown)."""
    ann = primary_annotation(record.annotations)
    terms = C.so_terms(ann.consequence) if ann else ()
    protein = one_letter_protein(ann.hgvsp) if ann and ann.hgvsp else ""
    return Variant(
        chrom=record.chrom, pos=record.pos, ref=record.ref, alt=record.alt,
        gene=ann.gene.strip().upper() if ann else "", consequence=terms[0] if terms else "",
        hgvsp=f"p.{protein}" if protein else "", role="", vaf=record.vaf or 0.0,
        depth=record.depth or 0,
    )  # fmt: skip


@torch.inference_mode()
def _embed(teacher: Teacher, tokens: Tensor, batch_size: int) -> Tensor:
    """Token rows (N, L) of single variants -> their genomic embeddings (N, D), unit vectors.
    A one-variant case pools to that variant's [CLS] features, so the encoder is used as is."""
    out = []
    for s in range(0, len(tokens), batch_size):
        rows = tokens[s : s + batch_size].unsqueeze(1)  # (B, 1, L)
        present = torch.ones(rows.shape[:2], dtype=torch.bool)  # (B, 1)
        out.append(teacher.embed_genomic(rows, present))  # (B, D)
    return torch.cat(out) if out else torch.empty(0, teacher.config.embed_dim)


class GenomicScorer:
    """The `variant_scorer` hook: records -> p(oncogenic), from the teacher and the probe."""

    def __init__(self, teacher: Teacher, probe: dict[str, Tensor], description: str) -> None:
        self.teacher = teacher
        self.featurizer: GenomicFeaturizer = teacher.config.featurizer()
        self.probe = probe  # weight (D,), bias (1,), mean (D,), std (D,)
        self.description = description
        self._cache: dict[tuple[int, ...], float] = {}

    def __call__(self, records: Sequence[VariantRecord]) -> list[float]:
        tokens = self.featurizer.variant_tokens
        rows = [tuple(tokens(record_variant(r), {})) for r in records]
        return _cached(self._cache, rows, self._probabilities)

    def _probabilities(self, rows: list[tuple[int, ...]]) -> list[float]:
        emb = _embed(self.teacher, torch.tensor(rows, dtype=torch.int32), len(rows))
        return probe_probabilities(self.probe, emb).tolist()


def probe_probabilities(probe: dict[str, Tensor], emb: Tensor) -> Tensor:
    """Embeddings (N, D) -> p(oncogenic) (N,)."""
    z = ((emb - probe["mean"]) / probe["std"]) @ probe["weight"] + probe["bias"]  # (N,)
    return torch.sigmoid(z)


def auc(scores: Tensor, labels: Tensor) -> float | None:
    """Area under the ROC curve from average ranks (Mann-Whitney U, ties counted half); None
    without both classes."""
    y = labels.bool()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return None
    _, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    ranks = (ends - (counts.double() - 1) / 2)[inverse]  # 1-based average rank per score
    return ((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


def _split_data(
    teacher: Teacher, cases: Sequence[Any], split: str, batch_size: int
) -> tuple[Tensor, Tensor]:
    """Genomic embeddings (N, D) of a split's driver and passenger variants, and labels (N,)."""
    featurizer = teacher.config.featurizer()
    variants = [v for c in cases if c.split == split for v in c.variants
                if v.role in ("driver", "passenger")]  # fmt: skip
    rows = [featurizer.variant_tokens(v, {}) for v in variants]
    tokens = torch.tensor(rows, dtype=torch.int32).reshape(-1, featurizer.seq_len)  # (N, L)
    labels = torch.tensor([v.role == "driver" for v in variants], dtype=torch.float32)
    return _embed(teacher, tokens, batch_size), labels


def _fit(x: Tensor, y: Tensor, cfg: ProbeConfig) -> dict[str, Tensor]:
    """L2-regularised logistic regression on standardised features (full-batch L-BFGS)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    xs = (x - mean) / std
    weight = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=cfg.max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(xs @ weight + bias, y)
        loss = loss + cfg.l2 * weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return {"weight": weight.detach(), "bias": bias.detach(), "mean": mean, "std": std}


def _teacher_version(teacher_dir: Path) -> str:
    try:
        return json.loads((Path(teacher_dir) / CONFIG_FILE).read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{teacher_dir}: no readable teacher config.json ({exc})") from exc


def train_variant_probe(
    cohort_dir: Path, teacher_dir: Path, out_dir: Path, config: ProbeConfig | None = None
) -> dict[str, Any]:
    """Fit the probe on the train split's drivers vs passengers, measure it on every split,
    and write `out_dir` (probe.safetensors + config.json) atomically. Returns the config."""
    cfg = config or ProbeConfig()
    teacher, _ = load_teacher(teacher_dir)
    cases = load_cases(cohort_dir)
    data = {s: _split_data(teacher, cases, s, cfg.batch_size) for s in ("train", "val", "test")}
    x, y = data["train"]
    if not (y.any() and (1 - y).any()):
        raise InputError(f"{cohort_dir}: the train split needs both driver and passenger variants")
    probe = _fit(x, y, cfg)
    ic = InterpretConfig()
    metrics: dict[str, Any] = {}
    for split, (xs, ys) in data.items():
        p = probe_probabilities(probe, xs)
        op1, sbp1 = p >= ic.scorer_oncogenic, p <= ic.scorer_benign
        metrics[split] = {
            "n": len(ys), "drivers": int(ys.sum()), "auc": _round(auc(p, ys)),
            "op1_share": _round(op1.float().mean().item()) if len(ys) else None,
            "op1_driver_share": _round(ys[op1].mean().item()) if op1.any() else None,
            "sbp1_share": _round(sbp1.float().mean().item()) if len(ys) else None,
            "sbp1_driver_share": _round(ys[sbp1].mean().item()) if sbp1.any() else None,
        }  # fmt: skip
    version = new_version_id(PROBE_KIND)
    record = {
        "kind": PROBE_KIND, "version": version, "created_at": utc_now_iso(),
        "teacher_dir": str(Path(teacher_dir).resolve()),
        "teacher_version": _teacher_version(teacher_dir),
        "cohort_dir": str(Path(cohort_dir).resolve()),
        "features": "teacher genomic embedding of the variant alone, no sequence context",
        "target": "driver (1) vs passenger (0), train split", "config": asdict(cfg),
        "metrics": metrics,
    }  # fmt: skip
    with atomic_directory(Path(out_dir)) as tmp:
        save_tensors(tmp / PROBE_FILE, probe, metadata={"version": version})
        write_atomic(tmp / CONFIG_FILE, (json.dumps(record, indent=2) + "\n").encode())
    return record


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def load_variant_scorer(teacher_dir: Path, probe_dir: Path) -> GenomicScorer:
    """The scorer from a teacher run and a probe trained on it; InputError when either is
    missing or broken, or the probe belongs to another teacher."""
    try:
        record = json.loads((Path(probe_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{probe_dir}: no readable variant probe config.json ({exc})") from exc
    if not isinstance(record, dict) or record.get("kind") != PROBE_KIND:
        raise InputError(f"{probe_dir}: config.json does not describe a variant probe")
    teacher_version = _teacher_version(teacher_dir)
    if record.get("teacher_version") != teacher_version:
        raise InputError(
            f"the probe in {probe_dir} was trained on {record.get('teacher_version')}, not on "
            f"{teacher_version}: rebuild it with `cmkd vcf-probe`"
        )
    teacher, _ = load_teacher(teacher_dir)
    probe, _ = load_tensors(Path(probe_dir) / PROBE_FILE)
    if set(probe) != {"weight", "bias", "mean", "std"}:
        raise InputError(f"{probe_dir / PROBE_FILE}: not a variant probe")
    test_auc = record.get("metrics", {}).get("test", {}).get("auc")
    shown = "n/a" if test_auc is None else f"{test_auc:.3f}"
    return GenomicScorer(
        teacher, probe, f"{teacher_version} genomic encoder + {record['version']} "
        f"(test AUC driver vs passenger {shown})",
    )  # fmt: skip


# ------------------------------------------------------------------- annotation reader


def _reading(
    text: str, lang: str | None, probs: list[float], lexicon: Lexicon
) -> AnnotationReading:
    matches = lexicon.match(text, lang)
    cues = {
        kind: [m.text for m in matches if m.concept_id in ids]
        for kind, ids in ((C.PATHOGENIC, PATHOGENIC_CUES), (C.BENIGN, BENIGN_CUES),
                          (C.VUS, UNCERTAIN_CUES))
    }  # fmt: skip
    said = [k for k, words in cues.items() if words]
    implies = said[0] if len(said) == 1 else C.VUS  # none, or conflicting words: uncertain
    best = max(range(len(probs)), key=probs.__getitem__)
    return AnnotationReading(
        implies=implies,
        cues=tuple(w for k in said for w in cues[k]),
        genes=tuple(
            dict.fromkeys(m.concept_id[5:] for m in matches if m.concept_id.startswith("GENE:"))
        ),  # fmt: skip
        entities=tuple(f"{m.concept_id}={m.text}" for m in matches),
        cancer_type=CANCER_TYPES[best],
        cancer_type_p=round(probs[best], 4),
    )


class StudentReader:
    """The `annotation_reader` hook: lexicon entities and the student's cancer-type reading
    of each free text. A language the lexicon lacks (e.g. "zh") is read with every
    language's terms."""

    def __init__(self, student: DistilledStudent, lexicon: Lexicon, description: str) -> None:
        self.student = student
        self.lexicon = lexicon
        self.description = description
        self._cache: dict[tuple[str, str], AnnotationReading] = {}

    def __call__(self, texts: Sequence[FreeText]) -> list[AnnotationReading]:
        return _cached(self._cache, [(t.text, t.lang) for t in texts], self._read)

    def _read(self, keys: list[tuple[str, str]]) -> list[AnnotationReading]:
        by_lang: dict[str | None, list[int]] = {}
        for i, (_, lang) in enumerate(keys):
            by_lang.setdefault(lang if lang in self.lexicon.languages else None, []).append(i)
        out: list[AnnotationReading | None] = [None] * len(keys)
        for lang, idx in by_lang.items():
            texts = [keys[i][0] for i in idx]
            _, logits = self.student.predict(texts, lang)
            for i, text, probs in zip(idx, texts, logits.softmax(-1).tolist(), strict=True):
                out[i] = _reading(text, lang, probs, self.lexicon)
        return [r for r in out if r is not None]


def load_annotation_reader(student_dir: Path) -> StudentReader:
    """The reader over a distilled student; InputError when it is missing or broken."""
    student = load_distilled(student_dir)
    langs = ", ".join(student.config.get("languages", ()))
    return StudentReader(
        student, default_lexicon(), f"{student.config.get('version')} ({langs}) + lexicon"
    )


# ---------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class GenomicModels:
    """The hooks a workspace can offer, and for each what it is or why it is absent."""

    variant_scorer: GenomicScorer | None
    annotation_reader: StudentReader | None
    scorer_status: str
    reader_status: str

    def interpreter(self, kb: KnowledgeBase, config: InterpretConfig | None = None) -> Interpreter:
        return Interpreter(
            kb, config, variant_scorer=self.variant_scorer,
            annotation_reader=self.annotation_reader, scorer_status=self.scorer_status,
            reader_status=self.reader_status,
        )  # fmt: skip


T = TypeVar("T", GenomicScorer, StudentReader)


def _attempt(required: Sequence[tuple[Path, str]], load: Callable[[], T]) -> tuple[T | None, str]:
    """(hook, "available: ...") or (None, "not available: why")."""
    for path, what in required:
        if not (path / CONFIG_FILE).exists():
            return None, f"{NOT_AVAILABLE}: no {what} in {path}"
    try:
        hook = load()
    except InputError as exc:
        return None, f"{NOT_AVAILABLE}: {exc}"
    return hook, f"available: {hook.description}"


def load_models(teacher_dir: Path, student_dir: Path, probe_dir: Path) -> GenomicModels:
    """Whatever of the teacher + probe (scorer) and the student (reader) is present; a
    missing or broken one is reported, never an error."""
    teacher_dir, student_dir, probe_dir = Path(teacher_dir), Path(student_dir), Path(probe_dir)
    scorer, scorer_status = _attempt(
        ((teacher_dir, "teacher"), (probe_dir, "variant probe (build it with `cmkd vcf-probe`)")),
        lambda: load_variant_scorer(teacher_dir, probe_dir),
    )
    reader, reader_status = _attempt(
        ((student_dir, "student"),), lambda: load_annotation_reader(student_dir)
    )
    return GenomicModels(scorer, reader, scorer_status, reader_status)
