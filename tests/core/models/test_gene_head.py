"""The student's optional driver-gene head (core.models.student.GeneHead)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.errors import ConfigError
from core.models.student import GeneHead

H = 8
GENE_ENTITIES = torch.tensor([3, 5, 0])  # genes A, B, and C without a lexicon concept


def test_named_genes_are_scored_from_their_tokens_and_unnamed_ones_get_the_absent_logit() -> None:
    torch.manual_seed(0)
    head = GeneHead(H, GENE_ENTITIES, hidden=H)
    states = torch.randn(2, 4, H)
    entity_ids = torch.tensor([[0, 3, 3, 0], [5, 0, 0, 0]])  # row 0 names A (2 pieces), row 1 B
    logits = head(states, entity_ids)
    assert logits.shape == (2, 3) and head.in_dim == H
    with torch.no_grad():
        a = head.score(states[0, 1:3].mean(0)).squeeze(-1) + head.prior[0]
    torch.testing.assert_close(logits[0, 0], a)
    absent = head.absent.detach()
    assert logits[0, 1] == absent and logits[1, 0] == absent
    assert bool((logits[:, 2] == absent).all())  # entity id 0 is never a mention
    # Only a gene's own pieces matter: changing other tokens leaves its logit unchanged.
    other = states.clone()
    other[0, 0] += 5.0
    torch.testing.assert_close(head(other, entity_ids)[0, 0], logits[0, 0])


def test_learns_the_status_written_next_to_a_mention() -> None:
    torch.manual_seed(0)
    head = GeneHead(H, GENE_ENTITIES, hidden=H)
    # Token states at the mention carry +/- along one direction: altered vs "negative".
    status = torch.tensor([1.0, -1.0, 1.0, -1.0])
    states = 0.1 * torch.randn(4, 3, H)
    states[:, 0, 0] += status
    entity_ids = torch.tensor([[3, 0, 0]] * 4)
    target = (status > 0).float()
    opt = torch.optim.Adam(head.parameters(), lr=5e-2)
    for _ in range(100):
        loss = F.binary_cross_entropy_with_logits(head(states, entity_ids)[:, 0], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert bool(((head(states, entity_ids)[:, 0] > 0) == (status > 0)).all())


def test_rejects_bad_shapes() -> None:
    for args in ((0, GENE_ENTITIES, 4), (4, GENE_ENTITIES, 0), (4, torch.tensor([]), 4),
                 (4, torch.zeros(2, 2), 4)):  # fmt: skip
        with pytest.raises(ConfigError, match="gene head"):
            GeneHead(*args)
