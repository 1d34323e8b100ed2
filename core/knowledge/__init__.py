"""Curated oncology knowledge (CIViC, OncoTree, 3D hotspots, CancerMine) as small tables.

`KnowledgeBase.load()` reads the tables shipped in `assets/knowledge/`; `python -m
core.knowledge.build` rebuilds them from the shared source data.
"""

from core.knowledge.tables import (
    Assertion,
    CivicVariant,
    Evidence,
    GeneRole,
    Hotspot,
    KnowledgeBase,
    OncoTreeType,
    normalize_protein_change,
)

__all__ = [
    "Assertion",
    "CivicVariant",
    "Evidence",
    "GeneRole",
    "Hotspot",
    "KnowledgeBase",
    "OncoTreeType",
    "normalize_protein_change",
]
