"""The student tokenizer: MiniLM's WordPiece vocabulary extended with pieces trained here.

MiniLM's uncased tokenizer strips accents (NFD, then drops combining marks), which deletes
Devanagari vowel signs and viramas, and it splits Hindi into single characters with ~4% [UNK].
Replacing the vocabulary would throw away MiniLM's trained embeddings, so the student keeps
all 30,522 base pieces at their ids and appends new ones:

- normalisation is NFC + lowercase, without accent stripping, so "ि" and "ã" survive;
- a WordPiece trained with `tokenizers` on our texts supplies new pieces (those not already in
  the base vocabulary, most frequent merges first);
- every (lowercase) character of the Devanagari, Latin-1 Supplement and Latin Extended-A
  blocks is a piece both at word start and as a "##" continuation, so a held-out word never
  becomes [UNK] for want of one character (WordPiece turns the whole word into [UNK] when a
  single character is missing).

For each new piece the ids that MiniLM's own tokenizer gives its text are recorded, so the
student can initialise the piece's embedding as their mean (`StudentTokenizer.source_ids`).
The saved folder is `tokenizer.json` (a `tokenizers.Tokenizer`, no `transformers` needed to
run it) plus `extension.json` (base vocabulary size and source ids of the new pieces).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Encoding, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer

from core.errors import InputError
from core.io import write_atomic
from core.models.text import minilm_dir

TOKENIZER_FILE = "tokenizer.json"
EXTENSION_FILE = "extension.json"
UNK, CLS, SEP, PAD = "[UNK]", "[CLS]", "[SEP]", "[PAD]"
CONTINUATION = "##"
# Code point blocks whose every letter is a piece: Devanagari (hi), Latin-1 Supplement and
# Latin Extended-A (accented letters of pt, es, de, fr, sw and names).
COVERED_BLOCKS: tuple[tuple[int, int], ...] = ((0x0900, 0x097F), (0x00C0, 0x017F))
# Same as MiniLM: longer "words" (URLs, sequences) become one [UNK].
MAX_WORD_CHARS = 100


def _normalizer() -> normalizers.Normalizer:
    # BertNormalizer still cleans control characters and spaces out CJK; strip_accents=False
    # is what keeps Devanagari combining marks and Latin accents.
    return normalizers.Sequence(
        [
            normalizers.NFC(),
            normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
            ),
        ]
    )


def _covered_pieces() -> list[str]:
    """Word-initial and continuation pieces for every lowercase letter/mark of COVERED_BLOCKS."""
    chars = [
        c
        for lo, hi in COVERED_BLOCKS
        for c in map(chr, range(lo, hi + 1))
        if unicodedata.category(c) != "Cn" and c.lower() == c
    ]
    return [p for c in chars for p in (c, CONTINUATION + c)]


def _source_ids(base: Tokenizer, piece: str) -> list[int]:
    """Ids MiniLM's tokenizer gives the text of `piece`, in the piece's position.

    A continuation piece "##xy" is tokenised as the word "xy" and its first base piece is
    swapped for the "##" form when the base vocabulary has it. [UNK] is left out (it carries
    no meaning of the piece); the list may come back empty.
    """
    is_cont = piece.startswith(CONTINUATION)
    text = piece[len(CONTINUATION) :] if is_cont else piece
    ids = base.encode(text, add_special_tokens=False).ids
    if is_cont and ids:
        cont_id = base.token_to_id(CONTINUATION + base.id_to_token(ids[0]))
        if cont_id is not None:
            ids[0] = cont_id
    unk = base.token_to_id(UNK)
    return [i for i in ids if i != unk]


def build_student_tokenizer(
    texts: Iterable[str],
    out_dir: Path,
    base_dir: Path | None = None,
    extra_vocab: int = 8000,
) -> StudentTokenizer:
    """Extend MiniLM's vocabulary (from `base_dir`, default `minilm_dir()`) with pieces
    trained on `texts`; add at most `extra_vocab` pieces; save to `out_dir` and return it.
    """
    if extra_vocab < 0:
        raise InputError(f"extra_vocab must be >= 0, got {extra_vocab}")
    base = Tokenizer.from_file(str((base_dir or minilm_dir()) / TOKENIZER_FILE))
    base.no_padding()  # MiniLM's tokenizer.json pads every text to 128
    base.no_truncation()
    base_vocab = base.get_vocab()

    trainer_tok = Tokenizer(WordPiece(unk_token=UNK, continuing_subword_prefix=CONTINUATION))
    trainer_tok.normalizer = _normalizer()
    trainer_tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # Most trained pieces of Latin-script languages are already in the base vocabulary, so
    # train a larger vocabulary than the budget and keep the first new pieces (the trainer
    # numbers them alphabet first, then merges by frequency). The trainer breaks ties between
    # equal counts arbitrarily, so two builds may differ in a few pieces near the cut; the
    # saved folder, not a rebuild, is what a student checkpoint is paired with.
    trainer = WordPieceTrainer(
        vocab_size=3 * extra_vocab,
        min_frequency=2,
        continuing_subword_prefix=CONTINUATION,
        show_progress=False,
    )
    trainer_tok.train_from_iterator(texts, trainer)
    trained = sorted(trainer_tok.get_vocab().items(), key=lambda kv: kv[1])

    candidates = dict.fromkeys([*_covered_pieces(), *(p for p, _ in trained)])  # ordered set
    new_pieces = [p for p in candidates if p not in base_vocab][:extra_vocab]

    vocab = dict(base_vocab)
    vocab.update({p: len(base_vocab) + i for i, p in enumerate(new_pieces)})
    tok = Tokenizer(
        WordPiece(
            vocab,
            unk_token=UNK,
            continuing_subword_prefix=CONTINUATION,
            max_input_chars_per_word=MAX_WORD_CHARS,
        )
    )
    tok.normalizer = _normalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # Registered as special (already in the vocabulary, so no new ids): decode skips them
    # and a literal "[CLS]" in a text is the token, as with MiniLM's tokenizer.
    tok.add_special_tokens([t for t in base.get_added_tokens_decoder().values() if t.special])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
    )
    tok.decoder = decoders.WordPiece(prefix=CONTINUATION)
    result = StudentTokenizer(
        tok,
        base_vocab_size=len(base_vocab),
        source_ids=tuple(tuple(_source_ids(base, p)) for p in new_pieces),
    )
    result.save(out_dir)
    return result


class StudentTokenizer:
    """MiniLM's vocabulary at its ids plus appended pieces; see the module docstring."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        base_vocab_size: int,
        source_ids: Sequence[Sequence[int]],
    ) -> None:
        if tokenizer.get_vocab_size() != base_vocab_size + len(source_ids):
            raise InputError(
                f"tokenizer has {tokenizer.get_vocab_size()} pieces, expected "
                f"{base_vocab_size} base + {len(source_ids)} new"
            )
        # Padding and truncation happen in encode_batch; a Tokenizer's own settings (MiniLM's
        # tokenizer.json pads every text to 128) would make padding look like real tokens.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.tokenizer = tokenizer
        self.base_vocab_size = base_vocab_size
        # source_ids[k]: MiniLM ids whose mean initialises piece base_vocab_size + k.
        self.source_ids: tuple[tuple[int, ...], ...] = tuple(tuple(s) for s in source_ids)
        self.pad_id: int = tokenizer.token_to_id(PAD)
        self.unk_id: int = tokenizer.token_to_id(UNK)
        self.sep_id: int = tokenizer.token_to_id(SEP)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def new_ids(self) -> range:
        """Ids of the pieces added to MiniLM's vocabulary."""
        return range(self.base_vocab_size, self.vocab_size)

    def save(self, out_dir: Path) -> None:
        out_dir = Path(out_dir)
        write_atomic(out_dir / TOKENIZER_FILE, self.tokenizer.to_str().encode("utf-8"))
        meta = {"base_vocab_size": self.base_vocab_size, "source_ids": self.source_ids}
        write_atomic(out_dir / EXTENSION_FILE, json.dumps(meta).encode("utf-8"))

    @classmethod
    def load(cls, directory: Path) -> StudentTokenizer:
        directory = Path(directory)
        try:
            spec = (directory / TOKENIZER_FILE).read_text(encoding="utf-8")
            meta = json.loads((directory / EXTENSION_FILE).read_text(encoding="utf-8"))
            base_vocab_size, source_ids = int(meta["base_vocab_size"]), meta["source_ids"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{directory}: not a student tokenizer: {exc}") from exc
        try:
            tok = Tokenizer.from_str(spec)
        except Exception as exc:  # `tokenizers` raises bare Exception for a bad spec
            raise InputError(f"{directory / TOKENIZER_FILE}: invalid tokenizer: {exc}") from exc
        return cls(tok, base_vocab_size, source_ids)

    def _encode(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[Encoding]:
        # Truncation is never switched on the Tokenizer per call: that is state shared by every
        # caller of this (cached, multi-threaded) object, so callers truncate the result.
        return self.tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)

    def encode_batch(
        self, texts: Sequence[str], max_length: int = 128
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids, attention mask and character offsets, padded to the longest text.

        Returns input_ids (B, T) long, attention_mask (B, T) long and offsets (B, T, 2) long:
        [start, end) of each token in the caller's original string; (0, 0) for [CLS], [SEP]
        and padding. Texts longer than `max_length` pieces (specials included) keep their
        first pieces and end with [SEP].
        """
        if max_length < 2:
            raise InputError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
        encs = self._encode(texts)
        t = min(max((len(e.ids) for e in encs), default=0), max_length)
        input_ids = torch.full((len(encs), t), self.pad_id, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((len(encs), t), dtype=torch.long)  # (B, T)
        offsets = torch.zeros((len(encs), t, 2), dtype=torch.long)  # (B, T, 2)
        for b, e in enumerate(encs):
            n = min(len(e.ids), max_length)
            input_ids[b, :n] = torch.tensor(e.ids[:n], dtype=torch.long)
            attention_mask[b, :n] = 1
            offsets[b, :n] = torch.tensor(e.offsets[:n], dtype=torch.long)
            if n < len(e.ids):  # truncated: the last kept slot becomes [SEP]
                input_ids[b, n - 1] = self.sep_id
                offsets[b, n - 1] = 0
        return input_ids, attention_mask, offsets

    def tokenize(self, text: str) -> list[str]:
        """The pieces of `text`, without [CLS]/[SEP] and without truncation."""
        return self._encode([text], add_special_tokens=False)[0].tokens

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def unk_rate(self, texts: Iterable[str]) -> float:
        """Share of [UNK] among all pieces of `texts` (no specials, no truncation)."""
        encs = self._encode(list(texts), add_special_tokens=False)
        total = sum(len(e.ids) for e in encs)
        unknown = sum(e.ids.count(self.unk_id) for e in encs)
        return unknown / total if total else 0.0


def entity_ids_from_spans(
    offsets: torch.Tensor, spans: Sequence[Sequence[tuple[int, int, int]]]
) -> torch.Tensor:
    """Entity id per token from character spans, e.g. lexicon matches.

    offsets: (B, T, 2) from `encode_batch`; spans[b]: (start, end, entity_id) with entity ids
    >= 1 (0 means "no entity"). A token takes the id of the span its characters overlap;
    special and padding tokens (empty offsets) stay 0. Returns (B, T) long.
    """
    starts, ends = offsets[..., 0], offsets[..., 1]  # (B, T)
    entity_ids = torch.zeros(starts.shape, dtype=torch.long)  # (B, T)
    for b, text_spans in enumerate(spans):
        for start, end, entity_id in text_spans:
            hit = (starts[b] < end) & (ends[b] > start) & (ends[b] > starts[b])  # (T,)
            entity_ids[b, hit] = entity_id
    return entity_ids
