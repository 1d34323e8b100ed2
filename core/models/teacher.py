"""The multimodal English teacher: slide, genomic and text encoders in one shared space.

    tiles (B, N, 3, H, W) -- SlideEncoder (timm ViT, mean over tiles) --> head --+
    variants (B, V, L)    -- GenomicEncoder (k-mer transformer, pooled) --> head --+--> fuse
    MiniLM (B, K, 384)    -- (frozen, cached upstream) --> + facts --> head, mean --+     |
                                                                          classifier <--+

The text branch adds a learned vector per note fact (lexicon concepts and variant names the
note states, core/models/facts.py) to MiniLM's sentence embedding before its head: the
details that tell one case's slide and variants from another's are exactly what mean pooling
blurs.

Every modality lands as a unit vector in the shared D-dim space, where a symmetric InfoNCE
loss aligns every pair (core/train/teacher.py). Fusion copes with missing modalities: a
presence mask (B, 3) says which embeddings exist, and the fused embedding is an attention- or
plain-mean over the present ones only, L2-normalised; a case with no modality gets zeros.
The classifier reads the fused unit vector, so a single modality (e.g. a note alone) is
classified by the same head.

Uncertainty (`predict_with_uncertainty`): MC dropout (Gal & Ghahramani 2016) over the
projection heads and the classifier's input dropout; the backbones run once in eval mode
(last-layers MC dropout), which keeps 20 samples over a whole cohort cheap. The variance is
that of the predicted class's probability across the samples (in [0, 0.25]), the unit
core/losses/combined.py's `uncertainty_threshold` expects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.data.lexicon import default_lexicon
from core.data.schema import CANCER_TYPES, NOTE_KINDS, TEACHER_LANGUAGE
from core.errors import ConfigError, InputError
from core.models.facts import FactEmbedding, text_facts
from core.models.genomic import GenomicEncoder, GenomicFeaturizer
from core.models.heads import ClassifierHead, ProjectionHead
from core.models.text import MINILM_DIM
from core.models.vision import SlideEncoder
from core.train.common import config_from_dict, load_tensors, save_tensors

TEACHER_MODALITIES: tuple[str, ...] = ("slide", "genomic", "text")
FUSIONS: tuple[str, ...] = ("attention", "mean")
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class TeacherConfig:
    """Shape of the teacher. Defaults: the CPU demo teacher (trains in ~2 minutes on 2 cores)."""

    embed_dim: int = 256  # D of the shared space (students project into it too)
    dropout: float = 0.1  # in every projection head and before the classifier; MC dropout
    mc_samples: int = 20  # MC-dropout passes behind each reported variance
    fusion: str = "attention"  # "attention" (learned score per present modality) or "mean"
    head_hidden: int = 512  # hidden width of the two-layer projection heads
    # Vision: tiles are downsampled to tile_size for CPU speed.
    tile_size: int = 64  # tile edge fed to the ViT (the cohort's 128 px are downsampled)
    max_tiles: int = 4  # tiles per case used (the demo cohort renders 4)
    patch_size: int = 16  # ViT patch edge: 16 patches per tile (8 would be 4.3x slower)
    vit_dim: int = 64  # ViT width (64 x 2 learnt as well per step as 96 x 3, at half the cost)
    vit_depth: int = 2  # ViT blocks
    vit_heads: int = 4  # ViT attention heads
    vit_drop_path: float = 0.05  # stochastic depth, regularises a ViT trained from scratch
    vit_conv_stem: bool = True  # convolutional patch embedding (learns far faster, see vision.py)
    # Eval-mode slide features averaged over each tile's 8 dihedral views (vision.py).
    dihedral_tta: bool = True
    # Genomics: see core/models/genomic.py for the tokens.
    kmer: int = 4  # DNABERT-style k (3..6)
    flank: int = 8  # reference bases each side of a variant
    max_allele: int = 4  # ALT bases kept (the cohort's alleles are 1-3 bases)
    max_variants: int = 24  # variants per case, highest VAF first (keeps >99% of drivers)
    vaf_buckets: int = 10  # VAF tokens over [0, 1]
    gene_buckets: int = 32  # hashed tokens for genes outside DRIVER_GENES
    # A token per known driver protein change (genomic.py). Teacher test recall@10
    # text-genomic 0.703 -> 0.780 (docs/evaluation.md "Results (session 8)").
    hotspot_tokens: bool = True
    genomic_dim: int = 32  # variant transformer width
    genomic_depth: int = 2  # variant transformer layers
    genomic_heads: int = 4  # variant transformer heads
    # Text: the frozen all-MiniLM-L6-v2 sentence embedding.
    text_dim: int = MINILM_DIM  # MiniLM's output width
    # Slots of the hashed note-fact vector added to MiniLM's embedding (0: no fact channel).
    # Teacher test recall@10 text-slide / text-genomic 0.301 / 0.683 without, 0.312 / 0.730
    # with (docs/evaluation.md "Where recall@10 stops").
    text_fact_buckets: int = 1024
    note_kinds: tuple[str, ...] = NOTE_KINDS  # English note kinds embedded per case
    n_classes: int = len(CANCER_TYPES)  # classifier outputs, in CANCER_TYPES order

    def __post_init__(self) -> None:
        problems = []
        positive = ("embed_dim", "mc_samples", "head_hidden", "tile_size", "max_tiles",
                    "patch_size", "vit_dim", "vit_depth", "vit_heads", "genomic_dim",
                    "genomic_depth", "genomic_heads", "text_dim")  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        for name in ("dropout", "vit_drop_path"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.fusion not in FUSIONS:
            problems.append(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if not problems and self.tile_size % self.patch_size:
            problems.append(f"tile_size {self.tile_size} must be a multiple of patch_size")
        if self.vit_conv_stem and self.patch_size % 4:
            problems.append(f"vit_conv_stem needs patch_size divisible by 4, got {self.patch_size}")
        if not problems and (
            self.vit_dim % self.vit_heads or self.genomic_dim % self.genomic_heads
        ):
            problems.append("vit_dim and genomic_dim must be multiples of their head counts")
        if not self.note_kinds or len(set(self.note_kinds)) != len(self.note_kinds):
            problems.append(f"note_kinds must be distinct and non-empty, got {self.note_kinds}")
        if self.n_classes < 2:
            problems.append(f"n_classes must be >= 2, got {self.n_classes}")
        if (
            isinstance(self.text_fact_buckets, bool)
            or not isinstance(self.text_fact_buckets, int)
            or self.text_fact_buckets < 0
        ):
            problems.append(
                f"text_fact_buckets must be an integer >= 0, got {self.text_fact_buckets!r}"
            )
        try:
            self.featurizer()
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ConfigError("TeacherConfig: " + "; ".join(problems))

    def featurizer(self) -> GenomicFeaturizer:
        """The variant featuriser whose token ids this teacher's genomic encoder reads."""
        return GenomicFeaturizer(
            kmer=self.kmer,
            flank=self.flank,
            max_allele=self.max_allele,
            max_variants=self.max_variants,
            vaf_buckets=self.vaf_buckets,
            gene_buckets=self.gene_buckets,
            hotspot_tokens=self.hotspot_tokens,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TeacherConfig:
        return config_from_dict(cls, d)


@dataclass(frozen=True)
class TeacherInputs:
    """One batch of B cases; a modality the batch lacks entirely may be None.

    tiles (B, N, 3, H, W) uint8 with tile_mask (B, N) bool; variant_tokens (B, V, L) int with
    variant_mask (B, V) bool; minilm (B, K, 384) float with note_mask (B, K) bool, K over
    `TeacherConfig.note_kinds`, and the notes' fact vectors note_facts (B, K, F) when the
    teacher has a fact channel. A case lacks a modality when its mask row is all false.
    """

    tiles: Tensor | None = None
    tile_mask: Tensor | None = None
    variant_tokens: Tensor | None = None
    variant_mask: Tensor | None = None
    minilm: Tensor | None = None
    note_mask: Tensor | None = None
    note_facts: Tensor | None = None

    def __post_init__(self) -> None:
        for data, mask in (("tiles", "tile_mask"), ("variant_tokens", "variant_mask"),
                           ("minilm", "note_mask")):  # fmt: skip
            if (getattr(self, data) is None) != (getattr(self, mask) is None):
                raise ValueError(f"{data} and {mask} must be given together")
        if self.batch_size is None:
            raise ValueError("TeacherInputs needs at least one modality")

    @property
    def batch_size(self) -> int | None:
        for mask in (self.tile_mask, self.variant_mask, self.note_mask):
            if mask is not None:
                return int(mask.shape[0])
        return None

    def to(self, device: torch.device) -> TeacherInputs:
        return TeacherInputs(
            **{
                f.name: None if (t := getattr(self, f.name)) is None else t.to(device)
                for f in dataclasses.fields(self)
            }
        )

    def present(self) -> Tensor:
        """(B, 3) bool: which of TEACHER_MODALITIES each case has."""
        masks = (self.tile_mask, self.variant_mask, self.note_mask)
        given = next(m for m in masks if m is not None)
        absent = torch.zeros(given.shape[0], dtype=torch.bool, device=given.device)
        return torch.stack([absent if m is None else m.any(1) for m in masks], dim=1)


@dataclass(frozen=True)
class TeacherOutput:
    """embeddings: modality -> (B, D) unit vectors (zeros where absent); present (B, 3) bool
    in TEACHER_MODALITIES order; notes (B, K, D) per-note-kind text embeddings; fused (B, D);
    logits (B, n_classes) of the fused embedding."""

    embeddings: dict[str, Tensor]
    present: Tensor
    notes: Tensor | None
    fused: Tensor
    logits: Tensor


class Teacher(nn.Module):
    """Slide, genomic and text encoders into one shared space, fused, and a classifier."""

    def __init__(self, config: TeacherConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        featurizer = c.featurizer()
        self.slide_encoder = SlideEncoder(
            c.tile_size, c.patch_size, c.vit_dim, c.vit_depth, c.vit_heads,
            drop_path=c.vit_drop_path, use_conv_stem=c.vit_conv_stem, dihedral_tta=c.dihedral_tta,
        )  # fmt: skip
        self.genomic_encoder = GenomicEncoder(
            featurizer.vocab_size, featurizer.seq_len, c.genomic_dim, c.genomic_depth,
            c.genomic_heads,
        )  # fmt: skip
        self.heads = nn.ModuleDict(
            {
                "slide": ProjectionHead(c.vit_dim, c.embed_dim, c.head_hidden, c.dropout),
                "genomic": ProjectionHead(c.genomic_dim, c.embed_dim, c.head_hidden, c.dropout),
                "text": ProjectionHead(c.text_dim, c.embed_dim, c.head_hidden, c.dropout),
            }
        )
        self.text_facts = (
            FactEmbedding(c.text_fact_buckets, c.text_dim) if c.text_fact_buckets else None
        )
        # Attention fusion: score_m = <w, e_m> + b_m over the present modalities.
        self.fusion_score = nn.Linear(c.embed_dim, 1) if c.fusion == "attention" else None
        self.fusion_bias = nn.Parameter(torch.zeros(len(TEACHER_MODALITIES)))
        self.classifier_dropout = nn.Dropout(c.dropout)
        self.classifier = ClassifierHead(c.embed_dim, c.n_classes)

    # -- per-modality embeddings in the shared space -----------------------------------

    def embed_slide(self, tiles: Tensor, tile_mask: Tensor) -> Tensor:
        """tiles (B, N, 3, H, W) uint8, tile_mask (B, N) -> (B, D) unit vectors (zeros for
        cases without tiles)."""
        return self._project("slide", self.slide_encoder(tiles, tile_mask), tile_mask.any(1))

    def embed_genomic(self, variant_tokens: Tensor, variant_mask: Tensor) -> Tensor:
        """variant_tokens (B, V, L), variant_mask (B, V) -> (B, D) unit vectors (zeros for
        cases without variants)."""
        feats = self.genomic_encoder(variant_tokens, variant_mask)  # (B, genomic_dim)
        return self._project("genomic", feats, variant_mask.any(1))

    def _project(self, modality: str, feats: Tensor, present: Tensor) -> Tensor:
        """Backbone features (B, F) -> shared space (B, D), zeroed where `present` (B,) is false
        (the head would otherwise turn an absent case's zero features into a unit vector)."""
        return self.heads[modality](feats) * present.unsqueeze(-1)

    def read_facts(self, texts: list[str]) -> Tensor | None:
        """The fact vectors (N, F) of English `texts` this teacher's text branch reads (None
        without a fact channel): what `embed_text` takes beside MiniLM's embeddings."""
        if self.text_facts is None:
            return None
        lexicon = default_lexicon()
        return text_facts(texts, [TEACHER_LANGUAGE] * len(texts), lexicon, self.text_facts.buckets)

    def embed_english(self, minilm_encoder: nn.Module, texts: list[str]) -> Tensor:
        """English `texts` -> (N, D) unit vectors: `minilm_encoder` (a TeacherTextEncoder)
        and the texts' facts into the text branch. For callers without cached embeddings."""
        return self.embed_text(minilm_encoder.encode(texts), self.read_facts(texts))

    def embed_text(self, minilm: Tensor, facts: Tensor | None = None) -> Tensor:
        """MiniLM sentence embeddings (B, 384) and, with a fact channel, the texts' fact
        vectors (B, F) from `read_facts` -> (B, D) unit vectors."""
        x = minilm.float()  # (B, 384)
        if self.text_facts is not None:
            if facts is None:
                raise ValueError(
                    "this teacher's text branch reads note facts: pass read_facts(texts)"
                )
            x = x + self.text_facts(facts)  # (B, 384)
        return self.heads["text"](x)

    def embed_notes(
        self, minilm: Tensor, note_mask: Tensor, note_facts: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """minilm (B, K, 384), note_mask (B, K), note_facts (B, K, F) or None -> per-note
        (B, K, D) and the case's text embedding (B, D): the normalised mean over its notes
        (zeros without notes)."""
        b, k, _ = minilm.shape
        facts = None if note_facts is None else note_facts.reshape(b * k, -1)  # (B*K, F)
        per_note = self.embed_text(minilm.reshape(b * k, -1), facts).reshape(b, k, -1)  # (B, K, D)
        per_note = per_note * note_mask.unsqueeze(-1)  # absent notes -> 0
        return per_note, F.normalize(per_note.sum(1), dim=-1)  # (B, K, D), (B, D)

    # -- fusion and classification ------------------------------------------------------

    def fuse(self, embeddings: dict[str, Tensor], present: Tensor) -> Tensor:
        """Modality embeddings (B, D) each + present (B, 3) -> fused (B, D) unit vectors
        (zeros for a case with no modality)."""
        # float32: under bf16 autocast the absent modalities' zeros and the embeddings differ.
        stacked = torch.stack(
            [embeddings[m].float() for m in TEACHER_MODALITIES], dim=1
        )  # (B, 3, D)
        if self.fusion_score is None:
            weights = present.to(stacked.dtype)  # (B, 3)
        else:
            scores = self.fusion_score(stacked).squeeze(-1) + self.fusion_bias  # (B, 3)
            scores = scores.masked_fill(~present, float("-inf"))
            # All-absent rows would softmax to NaN; give them zero weights instead.
            scores = torch.where(present.any(1, keepdim=True), scores, torch.zeros_like(scores))
            weights = scores.float().softmax(dim=1) * present  # (B, 3)
        return F.normalize((weights.unsqueeze(-1) * stacked).sum(1), dim=-1)  # (B, D)

    def classify(self, fused: Tensor) -> Tensor:
        """Fused (or single-modality) unit vectors (B, D) -> logits (B, n_classes)."""
        return self.classifier(self.classifier_dropout(fused))

    def forward(self, inputs: TeacherInputs) -> TeacherOutput:
        present = inputs.present()  # (B, 3)
        embeddings, notes = self._embed(inputs, self._features(inputs), present)
        fused = self.fuse(embeddings, present)
        return TeacherOutput(embeddings, present, notes, fused, self.classify(fused))

    def _features(self, inputs: TeacherInputs) -> dict[str, Tensor]:
        """Backbone features of the image and variant inputs: modality -> (B, F)."""
        feats: dict[str, Tensor] = {}
        if inputs.tiles is not None:
            feats["slide"] = self.slide_encoder(inputs.tiles, inputs.tile_mask)
        if inputs.variant_tokens is not None:
            feats["genomic"] = self.genomic_encoder(inputs.variant_tokens, inputs.variant_mask)
        return feats

    def _embed(
        self, inputs: TeacherInputs, feats: dict[str, Tensor], present: Tensor
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        """The heads on backbone features: modality -> (B, D), and per-note (B, K, D) or None."""
        zeros = torch.zeros(present.shape[0], self.config.embed_dim, device=present.device)
        embeddings = dict.fromkeys(TEACHER_MODALITIES, zeros)
        for m, f in feats.items():
            embeddings[m] = self._project(m, f, present[:, TEACHER_MODALITIES.index(m)])
        notes = None
        if inputs.minilm is not None:
            notes, embeddings["text"] = self.embed_notes(
                inputs.minilm, inputs.note_mask, inputs.note_facts
            )
        return embeddings, notes

    # -- uncertainty ----------------------------------------------------------------------

    def predict_with_uncertainty(
        self, inputs: TeacherInputs, mc_samples: int | None = None, seed: int = 0
    ) -> tuple[Tensor, Tensor]:
        """MC-dropout prediction of the fused classifier: mean probabilities (B, n_classes)
        and variance (B,); see `mc_dropout`."""
        pred = self.mc_dropout(inputs, mc_samples, seed)
        return pred.probs, pred.variance

    @torch.no_grad()
    def mc_dropout(
        self, inputs: TeacherInputs, mc_samples: int | None = None, seed: int = 0
    ) -> MCPrediction:
        """MC-dropout predictions of the fused embedding and, with notes, of each note alone.

        Each variance is Var_s[p_s(c*)] over `mc_samples` passes (default: the config's), c*
        the class of the mean prediction. Backbones run once in eval mode; the heads' and the
        classifier's dropout are active, and one pass's dropout masks serve the fused and the
        per-note predictions. The passes run under a forked RNG seeded with `seed`, so the
        result is reproducible and the caller's RNG state is left untouched. The module's
        train/eval mode is restored afterwards.
        """
        samples = mc_samples or self.config.mc_samples
        was_training = self.training
        self.eval()
        try:
            feats = self._features(inputs)
            present = inputs.present()
            devices = [present.device] if present.device.type == "cuda" else []
            fused, notes = [], []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                self.heads.train()
                self.classifier_dropout.train()
                for _ in range(samples):
                    embeddings, per_note = self._embed(inputs, feats, present)
                    fused.append(self.classify(self.fuse(embeddings, present)).float().softmax(-1))
                    if per_note is not None:
                        notes.append(self.classify(per_note).float().softmax(-1))  # (B, K, C)
        finally:
            self.train(was_training)
        probs, variance = _top_class_variance(torch.stack(fused))  # (B, C), (B,)
        if not notes:
            return MCPrediction(probs, variance)
        return MCPrediction(probs, variance, *_top_class_variance(torch.stack(notes)))


@dataclass(frozen=True)
class MCPrediction:
    """MC-dropout output: fused probs (B, C) and variance (B,); per note (B, K, C) and
    (B, K) when the inputs had notes (absent notes get meaningless values: mask them)."""

    probs: Tensor
    variance: Tensor
    note_probs: Tensor | None = None
    note_variance: Tensor | None = None


def _top_class_variance(probs: Tensor) -> tuple[Tensor, Tensor]:
    """probs (S, ..., C) over S passes -> mean (..., C) and Var_s of the mean's top class (...)."""
    mean = probs.mean(0)  # (..., C)
    top = mean.argmax(-1, keepdim=True).unsqueeze(0).expand(probs.shape[0], *mean.shape[:-1], 1)
    return mean, probs.gather(-1, top).squeeze(-1).var(0, unbiased=False)


def save_teacher_weights(path: Path, model: Teacher) -> None:
    """The teacher's weights as one safetensors file (atomic; never a pickle)."""
    save_tensors(path, model.state_dict())


def teacher_from_weights(path: Path, config: TeacherConfig) -> Teacher:
    """A Teacher built from `config` with the weights at `path`, on the CPU, in eval mode."""
    model = Teacher(config)
    state, _ = load_tensors(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{path}: weights do not match the teacher config: {exc}") from exc
    return model.eval()
