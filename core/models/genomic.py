"""The teacher's genomic branch: a variant featuriser and a small nucleotide/variant transformer.

Featurisation (`GenomicFeaturizer`), one row of `seq_len` token ids per variant:

    [CLS] gene consequence vaf-bucket allele-kind [hotspot] kmer_1 ... kmer_n [PAD]...

- the k-mers are DNABERT-style (Ji et al. 2021): overlapping k-mers, stride 1, of the reference
  context around the variant (`flank` bases each side, from the FASTA) with the ALT applied, so
  a substitution changes k of them and an indel shifts the rest; alleles longer than
  `max_allele` bases keep their first and last bases;
- symbolic alleles (<DEL>, <DUP>, ...) and breakends (BND, e.g. "G[chr2:123[") have no bases
  to apply: their kind token says what they are and the k-mers show the unaltered context;
- genes outside `schema.DRIVER_GENES` share `gene_buckets` hashed tokens (crc32, stable
  across runs), unknown SO terms one token, and VAF is bucketed uniformly over [0, 1];
- with `hotspot_tokens`, one token per known driver protein change of the oncology tables
  (`KNOWN_PROTEIN_CHANGES`, e.g. "BRAF:V600E"), and one shared "HOT:none" for every other
  variant: the hotspot annotation a clinical pipeline adds against a knowledge base. A closed
  vocabulary, because hashing every gene:protein change (session 7) put each hotspot in a
  bucket with hundreds of passengers and lowered text-genomic recall (0.703 -> 0.639).
A case keeps at most `max_variants` variants: the ones with the highest VAF, ties broken by
file order. The featuriser reads only chrom, pos, ref, alt, gene, consequence, hgvsp and vaf: never
`role` (the answer) nor the free-text `annotation` (present only on drivers).

Encoding (`GenomicEncoder`): a pre-LN transformer over each variant's tokens gives the [CLS]
vector per variant; attention pooling with a padding mask (a learned score per variant,
softmax over the case's variants) gives the case features.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor, nn

from core.data.oncology import all_driver_events
from core.data.schema import DRIVER_GENES, Case, Variant

PAD, CLS, UNK = "[PAD]", "[CLS]", "[UNK]"
PAD_ID = 0
BASES = "ACGT"
# Allele kinds: plain-sequence changes by their shape, symbolic ones by their VCF ID.
SEQUENCE_KINDS: tuple[str, ...] = ("SNV", "MNV", "DEL", "INS", "DELINS")
SYMBOLIC_KINDS: tuple[str, ...] = ("DEL", "DUP", "INV", "INS", "CNV", "AMP", "FUSION")
# Sequence Ontology terms with their own token; others share "CSQ:other".
CONSEQUENCES: tuple[str, ...] = (
    "missense_variant", "synonymous_variant", "stop_gained", "stop_lost", "start_lost",
    "frameshift_variant", "inframe_deletion", "inframe_insertion", "splice_donor_variant",
    "splice_acceptor_variant", "splice_region_variant", "upstream_gene_variant",
    "downstream_gene_variant", "5_prime_UTR_variant", "3_prime_UTR_variant", "intron_variant",
    "intergenic_variant", "non_coding_transcript_exon_variant", "transcript_amplification",
    "transcript_ablation", "gene_fusion",
)  # fmt: skip
_SYMBOLIC = re.compile(r"^<([A-Z]+)[:>]")
N_PREFIX = 5  # [CLS], gene, consequence, vaf, kind (+ hotspot with hotspot_tokens)
# "GENE:change" of every driver event with a protein change, in the tables' stable order.
KNOWN_PROTEIN_CHANGES: tuple[str, ...] = tuple(
    f"{e.gene}:{e.protein_change}" for e in all_driver_events() if e.protein_change
)


@dataclass(frozen=True)
class GenomicFeaturizer:
    """Variants -> fixed-size token tensors. Pure: the same case gives the same tensors."""

    kmer: int = 4  # k of the DNABERT-style k-mers (3..6)
    flank: int = 8  # reference bases on each side of the variant
    max_allele: int = 4  # ALT bases kept in the window
    max_variants: int = 24  # variants kept per case (highest VAF first)
    vaf_buckets: int = 10  # VAF tokens, uniform over [0, 1]
    gene_buckets: int = 32  # hashed tokens for genes outside DRIVER_GENES
    hotspot_tokens: bool = False  # a token per known driver protein change (module docstring)

    def __post_init__(self) -> None:
        if not 3 <= self.kmer <= 6:
            raise ValueError(f"kmer must be in 3..6, got {self.kmer}")
        if self.flank < self.kmer or self.max_allele < 1 or self.max_variants < 1:
            raise ValueError("need flank >= kmer, max_allele >= 1 and max_variants >= 1")
        if self.vaf_buckets < 1 or self.gene_buckets < 1:
            raise ValueError("vaf_buckets and gene_buckets must be >= 1")

    @cached_property
    def vocab(self) -> Mapping[str, int]:
        """Token -> id; deterministic from the config and schema.DRIVER_GENES."""
        tokens = [PAD, CLS, UNK]
        tokens += [f"KIND:{k}" for k in SEQUENCE_KINDS]
        tokens += [f"KIND:<{k}>" for k in SYMBOLIC_KINDS] + ["KIND:<other>", "KIND:BND"]
        tokens += [f"GENE:{g}" for g in DRIVER_GENES]
        tokens += [f"GENE:#{i}" for i in range(self.gene_buckets)]
        tokens += [f"CSQ:{c}" for c in CONSEQUENCES] + ["CSQ:other"]
        tokens += [f"VAF:{i}" for i in range(self.vaf_buckets)]
        if self.hotspot_tokens:
            tokens += [f"HOT:{c}" for c in KNOWN_PROTEIN_CHANGES] + ["HOT:none"]
        tokens += ["".join(p) for p in itertools.product(BASES, repeat=self.kmer)]
        return {t: i for i, t in enumerate(tokens)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def seq_len(self) -> int:
        """Tokens per variant: the prefix plus the k-mers of the longest window."""
        prefix = N_PREFIX + int(self.hotspot_tokens)
        return prefix + 2 * self.flank + self.max_allele - self.kmer + 1

    def _gene(self, gene: str) -> int:
        if f"GENE:{gene}" in self.vocab:
            return self.vocab[f"GENE:{gene}"]
        return self.vocab[f"GENE:#{zlib.crc32(gene.encode()) % self.gene_buckets}"]

    def _hotspot(self, v: Variant) -> int:
        change = v.hgvsp.strip().removeprefix("p.")
        return self.vocab.get(f"HOT:{v.gene.upper()}:{change}", self.vocab["HOT:none"])

    def _kind_and_allele(self, v: Variant) -> tuple[str, str | None]:
        """(kind token, ALT bases to apply or None when the allele is not a sequence)."""
        alt = v.alt.upper()
        if "[" in alt or "]" in alt:
            return "KIND:BND", None
        symbolic = _SYMBOLIC.match(alt)
        if symbolic or alt.startswith("<"):
            name = symbolic.group(1) if symbolic else ""
            return (f"KIND:<{name}>" if name in SYMBOLIC_KINDS else "KIND:<other>"), None
        ref = v.ref.upper()
        if len(ref) == len(alt):
            kind = "SNV" if len(ref) == 1 else "MNV"
        elif len(alt) == 1 and ref.startswith(alt):
            kind = "DEL"
        elif len(ref) == 1 and alt.startswith(ref):
            kind = "INS"
        else:
            kind = "DELINS"
        return f"KIND:{kind}", alt

    def _window(self, v: Variant, allele: str | None, sequences: Mapping[str, str]) -> str:
        """The context with the ALT applied; 'N' where the reference has no bases."""
        seq = sequences.get(v.chrom, "")
        start = v.pos - 1  # 0-based first REF base

        def bases(lo: int, hi: int) -> str:  # 0-based [lo, hi), N-padded off the contig
            got = ("N" * max(0, -lo) + seq[max(lo, 0) : max(hi, 0)])[: hi - lo]
            return (got + "N" * (hi - lo - len(got))).upper()

        left = bases(start - self.flank, start)
        if allele is None:  # symbolic: show the unaltered context around POS
            return left + bases(start, start + self.flank + 1)
        if len(allele) > self.max_allele:
            half = self.max_allele // 2
            allele = allele[:half] + allele[len(allele) - (self.max_allele - half) :]
        end = start + len(v.ref)
        return left + allele + bases(end, end + self.flank)

    def variant_tokens(self, v: Variant, sequences: Mapping[str, str]) -> list[int]:
        """One variant's token ids, padded to `seq_len`."""
        kind, allele = self._kind_and_allele(v)
        consequence = f"CSQ:{v.consequence}"
        vaf = min(max(v.vaf, 0.0), 1.0)
        ids = [
            self.vocab[CLS],
            self._gene(v.gene),
            self.vocab.get(consequence, self.vocab["CSQ:other"]),
            self.vocab[f"VAF:{min(int(vaf * self.vaf_buckets), self.vaf_buckets - 1)}"],
            self.vocab[kind],
        ]
        if self.hotspot_tokens:
            ids.append(self._hotspot(v))
        window = self._window(v, allele, sequences)
        unk = self.vocab[UNK]
        ids += [
            self.vocab.get(window[i : i + self.kmer], unk)
            for i in range(len(window) - self.kmer + 1)
        ]
        return ids + [PAD_ID] * (self.seq_len - len(ids))

    def kept(self, variants: Sequence[Variant]) -> list[Variant]:
        """At most `max_variants`, highest VAF first (stable), returned in file order."""
        if len(variants) <= self.max_variants:
            return list(variants)
        order = sorted(range(len(variants)), key=lambda i: -variants[i].vaf)
        return [variants[i] for i in sorted(order[: self.max_variants])]

    def featurize(
        self, cases: Sequence[Case], sequences: Mapping[str, str] | None = None
    ) -> tuple[Tensor, Tensor]:
        """Token ids (C, max_variants, seq_len) int32 and mask (C, max_variants) bool.

        `sequences` maps contig -> bases (core.data.genomics.Reference.sequences); without
        it, or for a contig it lacks, the k-mers are [UNK] and only the symbolic tokens speak.
        """
        sequences = sequences or {}
        tokens = np.zeros((len(cases), self.max_variants, self.seq_len), dtype=np.int32)
        mask = np.zeros((len(cases), self.max_variants), dtype=bool)
        for i, case in enumerate(cases):
            for j, v in enumerate(self.kept(case.variants)):
                tokens[i, j] = self.variant_tokens(v, sequences)
                mask[i, j] = True
        return torch.from_numpy(tokens), torch.from_numpy(mask)


class GenomicEncoder(nn.Module):
    """Variant tokens (B, V, L) + mask (B, V) -> case features (B, dim).

    Only present variants go through the transformer; a case without variants gets zeros.
    """

    def __init__(
        self, vocab_size: int, seq_len: int, dim: int, depth: int, heads: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.dim = dim
        self.token = nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)
        self.position = nn.Parameter(torch.randn(seq_len, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Linear(dim, 1)  # attention-pooling score per variant

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        b, v, _ = tokens.shape
        present = tokens[mask].long()  # (M, L), M = present variants in the batch
        feats = self.position.new_zeros((b, v, self.dim), dtype=torch.float32)  # (B, V, dim)
        if present.shape[0]:
            # Common germline SNPs and hotspot drivers recur across cases: encode each distinct
            # token row once (about 40% fewer rows in a batch of the demo cohort).
            rows, inverse = torch.unique(present, dim=0, return_inverse=True)  # (U, L), (M,)
            h = self.token(rows) + self.position  # (U, L, dim)
            h = self.encoder(h, src_key_padding_mask=rows == PAD_ID)  # (U, L, dim)
            feats[mask] = self.norm(h[:, 0]).float()[inverse]  # [CLS] per variant -> (B, V, dim)
        scores = self.score(feats).squeeze(-1).float()  # (B, V)
        scores = scores.masked_fill(~mask, float("-inf"))
        has_any = mask.any(dim=1, keepdim=True)  # (B, 1)
        # A case without variants would softmax over all -inf (NaN); give it zero weights.
        weights = torch.where(has_any, scores, torch.zeros_like(scores)).softmax(dim=1)
        weights = weights * mask  # (B, V)
        return (weights.unsqueeze(-1) * feats).sum(dim=1)  # (B, dim)
