"""The multilingual student text encoder: a compact BERT initialised from MiniLM.

Architecture (post-LN BERT, as MiniLM, so that its weights copy over unchanged):
embeddings = LayerNorm(word + position + token_type[0] (+ entity)), then `n_layers` layers of
self-attention (F.scaled_dot_product_attention) and a GELU feed-forward block, then mean
pooling over real tokens. The encoder is written here rather than taken from `transformers`
so that the attention logits can carry the entity bias; its linear layers run on real tokens
only (padding is dropped between attention calls), which gives the same result for less work.

Initialisation (`StudentEncoder.from_minilm`), DistilBERT-style: embeddings and the layers
listed in `StudentConfig.init_layers` are copied from all-MiniLM-L6-v2; rows of pieces added
by the student tokenizer start as the mean of the MiniLM embeddings of the pieces MiniLM's
own tokenizer splits them into. With all six layers, no new pieces and entity attention off,
the student computes exactly MiniLM's mean-pooled output (tested).

Driver genes (`GeneHead`, optional): a multi-label head that scores each driver gene from the
last layer's token states at the gene's lexicon mentions (`StudentEncoder.token_states`).

Entity-aware attention. Given entity ids (B, T) per token (0 = none; lexicon matches mapped
onto tokens, see core.models.tokenizer.entity_ids_from_spans):
  (a) a learned entity embedding is added to the token embedding (starts at zero, so the
      pretrained start is undisturbed);
  (b) every layer adds, per head h, a learned bias to the attention logits
        logits[h, i, j] += w_h * [e_i == e_j != 0] + u_h * [e_j != 0]
      so the pieces of one entity attend to each other and entities draw attention
      (w_h, u_h start at `entity_bias_scale`).
With `entity_attention=False` neither exists (the ablation).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors
from torch import Tensor, nn

from core.errors import ConfigError, InputError
from core.models.text import mean_pool, minilm_dir
from core.models.tokenizer import StudentTokenizer, write_atomic

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MINILM_WEIGHTS = "model.safetensors"
INIT_STD = 0.02  # BERT's initializer_range, for weights not copied from MiniLM


@dataclass(frozen=True)
class StudentConfig:
    """Shape and initialisation of the student; defaults give the MiniLM-initialised student."""

    # MiniLM's width, heads and feed-forward size, so its weights copy without projection.
    hidden: int = 384
    n_heads: int = 12
    ffn: int = 1536
    # Half of MiniLM's depth: ~2x its throughput (benchmarks/encoders.py).
    n_layers: int = 3
    # MiniLM layers copied into the student's layers, in order. Keeping the last two layers
    # (the sentence-embedding fine-tuning shaped the top of the stack, where pooling reads)
    # and the first measured best of all 20 triples: before training, cosine to MiniLM's own
    # embeddings 0.73 on English vs 0.35 for DistilBERT's every-other (0, 2, 4); after 300
    # identical MSE distillation steps, sw->en retrieval 0.33 vs 0.01 and pt->en 0.54 vs 0.02.
    init_layers: tuple[int, ...] = (0, 4, 5)
    # Positions kept from MiniLM's 512; the teacher's text also stops at 128 tokens.
    max_length: int = 128
    layer_norm_eps: float = 1e-12  # MiniLM's
    # Lexicon concepts + 1: id 0 means "no entity". Set from the lexicon in use.
    n_entities: int = 1
    # Entity embeddings and attention bias on; False is the ablation without them.
    entity_attention: bool = True
    # Initial w_h and u_h: a nudge next to MiniLM's attention logits (which span several
    # units), so pretrained attention is not overridden before training.
    entity_bias_scale: float = 0.5
    # MiniLM's hidden and attention dropout during training.
    dropout: float = 0.1

    def __post_init__(self) -> None:
        problems = []
        if self.hidden <= 0 or self.n_heads <= 0 or self.hidden % self.n_heads:
            problems.append(f"hidden {self.hidden} must be a positive multiple of n_heads")
        if len(self.init_layers) != self.n_layers:
            problems.append(f"init_layers {self.init_layers} must name n_layers={self.n_layers}")
        if self.n_layers < 1 or self.ffn < 1:
            problems.append("n_layers and ffn must be >= 1")
        if self.max_length < 2:
            problems.append(f"max_length {self.max_length} must be >= 2")
        if self.n_entities < 1:
            problems.append(f"n_entities {self.n_entities} must be >= 1 (id 0 is 'none')")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout {self.dropout} must be in [0, 1)")
        if problems:
            raise ConfigError("StudentConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudentConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"StudentConfig: unknown keys {unknown}")
        d = dict(d)
        if "init_layers" in d:
            d["init_layers"] = tuple(d["init_layers"])  # JSON has lists
        try:
            return cls(**d)
        except TypeError as exc:
            raise ConfigError(f"StudentConfig: {exc}") from exc


class _Embeddings(nn.Module):
    def __init__(self, config: StudentConfig, vocab_size: int) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab_size, config.hidden)
        self.position = nn.Embedding(config.max_length, config.hidden)
        self.token_type = nn.Parameter(torch.zeros(config.hidden))  # type 0 only
        self.entity = (
            nn.Embedding(config.n_entities, config.hidden, padding_idx=0)
            if config.entity_attention
            else None
        )
        self.norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, entity_ids: torch.Tensor | None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)  # (T,)
        x = self.word(input_ids) + self.position(positions) + self.token_type  # (B, T, H)
        if self.entity is not None and entity_ids is not None:
            x = x + self.entity(entity_ids)  # (B, T, H)
        return self.dropout(self.norm(x))


class _Layer(nn.Module):
    """Post-LN transformer layer with an optional per-head entity bias on the logits."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.dropout_p = config.dropout
        self.qkv = nn.Linear(config.hidden, 3 * config.hidden)  # fused: one GEMM, not three
        self.out = nn.Linear(config.hidden, config.hidden)
        self.norm1 = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.ffn_in = nn.Linear(config.hidden, config.ffn)
        self.ffn_out = nn.Linear(config.ffn, config.hidden)
        self.norm2 = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        if config.entity_attention:
            self.entity_same = nn.Parameter(torch.full((config.n_heads,), config.entity_bias_scale))
            self.entity_key = nn.Parameter(torch.full((config.n_heads,), config.entity_bias_scale))

    def forward(
        self,
        x: torch.Tensor,
        index: torch.Tensor,
        key_mask: torch.Tensor,
        masks: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> torch.Tensor:
        """x (N, H): the real tokens of a (B, T) batch, at flat positions `index` (N,);
        key_mask (B, 1, 1, T) bool; masks: `entity_masks(...)` or None. Returns (N, H)."""
        b, t = key_mask.shape[0], key_mask.shape[-1]
        h = x.shape[1]
        qkv = self.qkv(x)  # (N, 3H)
        qkv = qkv.new_zeros(b * t, 3 * h).index_copy(0, index, qkv)  # (B*T, 3H), pads zero
        q, k, v = qkv.view(b, t, 3, self.n_heads, h // self.n_heads).permute(2, 0, 3, 1, 4)
        attn_mask = key_mask  # (B, 1, 1, T)
        if masks is not None:
            same, key_entity = masks
            bias = (
                self.entity_same.view(1, -1, 1, 1) * same
                + self.entity_key.view(1, -1, 1, 1) * key_entity
            )  # (B, nh, T, T)
            attn_mask = bias.masked_fill(~key_mask, torch.finfo(bias.dtype).min)
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout_p if self.training else 0.0
        )  # (B, nh, T, dh)
        a = a.transpose(1, 2).reshape(b * t, h)[index]  # (N, H)
        x = self.norm1(x + self.dropout(self.out(a)))  # (N, H)
        return self.norm2(x + self.dropout(self.ffn_out(F.gelu(self.ffn_in(x)))))  # (N, H)


class StudentEncoder(nn.Module):
    """Token ids (+ entity ids) -> mean-pooled sentence embedding (B, hidden)."""

    def __init__(self, config: StudentConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.embeddings = _Embeddings(config, vocab_size)
        self.layers = nn.ModuleList(_Layer(config) for _ in range(config.n_layers))
        self.apply(_init_weights)

    @classmethod
    def from_minilm(
        cls,
        config: StudentConfig,
        tokenizer: StudentTokenizer | None = None,
        model_dir: Path | None = None,
    ) -> StudentEncoder:
        """Copy MiniLM's embeddings and `config.init_layers`; see the module docstring.

        Without `tokenizer` the vocabulary is MiniLM's own (the teacher's tokenizer's ids).
        """
        model_dir = minilm_dir() if model_dir is None else Path(model_dir)
        hf = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        wanted = {
            "hidden": hf["hidden_size"],
            "n_heads": hf["num_attention_heads"],
            "ffn": hf["intermediate_size"],
        }
        wrong = {k: getattr(config, k) for k, v in wanted.items() if getattr(config, k) != v}
        if wrong:
            raise ConfigError(f"from_minilm needs MiniLM's shape {wanted}; got {wrong}")
        if not set(config.init_layers) <= set(range(hf["num_hidden_layers"])):
            raise ConfigError(
                f"init_layers {config.init_layers} must be MiniLM layers "
                f"0..{hf['num_hidden_layers'] - 1}"
            )
        weights = load_file(str(model_dir / MINILM_WEIGHTS))
        word = weights["embeddings.word_embeddings.weight"]  # (V_base, 384)
        if tokenizer is not None and tokenizer.base_vocab_size != word.shape[0]:
            raise InputError(
                f"tokenizer extends a {tokenizer.base_vocab_size}-piece vocabulary, "
                f"MiniLM has {word.shape[0]}"
            )
        vocab_size = word.shape[0] if tokenizer is None else tokenizer.vocab_size
        model = cls(config, vocab_size)
        state = model.state_dict()

        if tokenizer is not None and tokenizer.source_ids:
            fallback = word.mean(dim=0)  # for pieces MiniLM only knows as [UNK]
            new_rows = torch.stack(
                [word[list(ids)].mean(dim=0) if ids else fallback for ids in tokenizer.source_ids]
            )  # (V_new, 384)
            word = torch.cat([word, new_rows])  # (V, 384)
        state["embeddings.word.weight"] = word
        state["embeddings.position.weight"] = weights["embeddings.position_embeddings.weight"][
            : config.max_length
        ]
        state["embeddings.token_type"] = weights["embeddings.token_type_embeddings.weight"][0]
        for part in ("weight", "bias"):
            state[f"embeddings.norm.{part}"] = weights[f"embeddings.LayerNorm.{part}"]
            for i, src in enumerate(config.init_layers):
                pre = f"encoder.layer.{src}."
                state[f"layers.{i}.qkv.{part}"] = torch.cat(
                    [weights[f"{pre}attention.self.{n}.{part}"] for n in ("query", "key", "value")]
                )
                for ours, theirs in (
                    ("out", "attention.output.dense"),
                    ("norm1", "attention.output.LayerNorm"),
                    ("ffn_in", "intermediate.dense"),
                    ("ffn_out", "output.dense"),
                    ("norm2", "output.LayerNorm"),
                ):
                    state[f"layers.{i}.{ours}.{part}"] = weights[f"{pre}{theirs}.{part}"]
        model.load_state_dict(state)
        return model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        entity_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """input_ids, attention_mask, entity_ids (B, T) -> sentence embedding (B, hidden)."""
        return mean_pool(self.token_states(input_ids, attention_mask, entity_ids), attention_mask)

    def token_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        entity_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """input_ids, attention_mask, entity_ids (B, T) -> the last layer's token states
        (B, T, hidden), zero at padding."""
        if input_ids.shape[1] > self.config.max_length:
            raise InputError(
                f"{input_ids.shape[1]} tokens exceed the student's max_length "
                f"{self.config.max_length}"
            )
        use_entities = self.config.entity_attention and entity_ids is not None
        x = self.embeddings(input_ids, entity_ids if use_entities else None)  # (B, T, H)
        b, t, h = x.shape
        key_mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T)
        masks = entity_masks(entity_ids, x.dtype) if use_entities else None
        # Unpadding: the linear layers (nearly all the FLOPs) see real tokens only; each
        # layer scatters them into (B, T) for attention, where padded keys are masked out.
        index = attention_mask.flatten().nonzero().squeeze(1)  # (N,)
        x = x.reshape(b * t, h)[index]  # (N, H)
        for layer in self.layers:
            x = layer(x, index, key_mask, masks)  # (N, H)
        return x.new_zeros(b * t, h).index_copy(0, index, x).view(b, t, h)  # (B, T, H)


class GeneHead(nn.Module):
    """Optional multi-label driver-gene head reading the genes' mentions in the note.

    Notes name nearly every driver gene of their case, and name other genes too ("EGFR
    negative", "KRAS wild-type"), so the question per gene is whether the note names it and
    in what status. For gene g of a note:
        m_g   = mean of the encoder's token states x_t (B, T, H) over the tokens of the
                lexicon entity GENE:g (entity ids, as for entity-aware attention)
        s_g   = w^T GELU(W m_g + b) + c_g         when the note names g (one scorer for all
                genes, so what it learns of a status transfers between genes; c_g their
                prior)
        s_g   = a                                 when it does not (one learned logit)
    -> logits (B, G). Trained with core.losses.gene_bce.GeneBCELoss on notes whose recorded
    driver genes are known. Reading mentions, not the mean-pooled note: on the demo profile's
    validation notes an MLP on the pooled embedding reached micro-F1 0.70 in the student
    languages, this head 0.80 at the same loss weight. `gene_entities` (G,) holds each
    gene's entity id (0 when the lexicon has no such concept: never named).
    """

    def __init__(self, in_dim: int, gene_entities: Tensor, hidden: int) -> None:
        super().__init__()
        if in_dim < 1 or hidden < 1 or gene_entities.dim() != 1 or len(gene_entities) < 1:
            raise ConfigError(
                f"gene head needs in_dim and hidden >= 1 and entity ids (G,), got {in_dim}, "
                f"{hidden}, {tuple(gene_entities.shape)}"
            )
        self.register_buffer("gene_entities", gene_entities.long(), persistent=False)  # (G,)
        # Entity id -> gene index, -1 for every other id (the last slot catches larger ids).
        gene_of = torch.full((int(gene_entities.max()) + 2,), -1, dtype=torch.long)
        named = gene_entities != 0
        gene_of[gene_entities[named]] = torch.arange(len(gene_entities))[named]
        self.register_buffer("gene_of", gene_of, persistent=False)
        self.score = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, 1))
        self.prior = nn.Parameter(torch.zeros(len(gene_entities)))  # c_g
        # a: a gene the note does not name is almost never altered (under 0.2% in the cohort).
        self.absent = nn.Parameter(torch.tensor(-5.0))

    @property
    def in_dim(self) -> int:
        return self.score[0].in_features

    def forward(self, states: Tensor, entity_ids: Tensor) -> Tensor:
        """states (B, T, H), entity_ids (B, T) -> logits (B, G)."""
        b, _, h = states.shape
        n_genes = len(self.gene_entities)
        gene = self.gene_of[entity_ids.clamp(0, len(self.gene_of) - 1)]  # (B, T), -1 = none
        is_gene = gene >= 0
        # Sums over the few gene tokens only, then scores only the named (row, gene) pairs.
        slot = (torch.arange(b, device=gene.device)[:, None] * n_genes + gene)[is_gene]  # (M,)
        sums = states.new_zeros(b * n_genes, h).index_add(0, slot, states[is_gene])  # (B*G, H)
        count = torch.bincount(slot, minlength=b * n_genes)  # (B*G,)
        named = count > 0
        m = sums[named] / count[named].unsqueeze(-1).to(states.dtype)  # (K, H)
        scores = self.score(m).squeeze(-1) + self.prior.repeat(b)[named]  # (K,)
        absent = self.absent.to(scores.dtype).expand(b * n_genes)  # (B*G,)
        return absent.masked_scatter(named, scores).view(b, n_genes)  # (B, G)


def entity_masks(entity_ids: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Indicators of the entity bias for entity_ids (B, T), 0 = no entity:
    same[b, 0, i, j] = [e_i == e_j != 0] (B, 1, T, T) and key[b, 0, 0, j] = [e_j != 0] (B, 1, 1, T).
    """
    has = entity_ids != 0  # (B, T)
    same = (entity_ids[:, :, None] == entity_ids[:, None, :]) & has[:, :, None]  # (B, T, T)
    return same.unsqueeze(1).to(dtype), has[:, None, None, :].to(dtype)


def _init_weights(module: nn.Module) -> None:
    """BERT's initialisation for a student trained from scratch (tiny test configs)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=INIT_STD)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=INIT_STD)
    elif isinstance(module, _Embeddings) and module.entity is not None:
        nn.init.zeros_(module.entity.weight)  # entities start as a no-op; see module docstring


def save_student(directory: Path, model: StudentEncoder, config: StudentConfig) -> None:
    """Write model.safetensors and config.json into `directory`, each atomically."""
    if config != model.config:
        raise ConfigError(f"config {config} is not the model's {model.config}")
    directory = Path(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomic(directory / WEIGHTS_FILE, save_safetensors(state))
    write_atomic(directory / CONFIG_FILE, json.dumps(config.to_dict(), indent=2).encode())


def load_student(directory: Path) -> StudentEncoder:
    """The student saved by `save_student`, on the CPU, in eval mode."""
    directory = Path(directory)
    try:
        config_dict = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
        state = load_safetensors((directory / WEIGHTS_FILE).read_bytes())
    except (OSError, UnicodeDecodeError, ValueError, SafetensorError) as exc:
        raise InputError(f"{directory}: cannot read the student checkpoint: {exc}") from exc
    if not isinstance(config_dict, dict) or "embeddings.word.weight" not in state:
        raise InputError(f"{directory}: not a student checkpoint")
    config = StudentConfig.from_dict(config_dict)
    model = StudentEncoder(config, state["embeddings.word.weight"].shape[0])
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{directory}: weights do not match config.json: {exc}") from exc
    return model.eval()
