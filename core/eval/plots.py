"""PNG figures of an evaluation report (matplotlib, Agg backend, imported only when drawing).

Each function takes the JSON-ready dicts that `core.eval.evaluate.evaluate` (and
benchmarks/ablations.py) produce and writes one PNG atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.io import atomic_path

# The source article's figures (one value for every language).
ARTICLE: dict[str, float] = {
    "zero_shot_accuracy": 0.72,
    "baseline_accuracy": 0.35,
    "recall_at_10": 0.81,
    "alteration_f1": 0.68,
    "quantum_retention": 0.89,
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path, mode=0o644) as tmp:  # figures ship in docs/: world-readable
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def language_bars(report: Mapping[str, Any], path: Path) -> Path:
    """Per student language: our student, the no-distillation baseline and the article, for
    zero-shot accuracy, recall@10 and alteration F1 (one panel each)."""
    plt = _pyplot()
    langs = list(report["languages"])
    panels = (  # metric, its baseline key (None: under "baseline"), title, the target
        ("zero_shot_accuracy", "baseline_accuracy", "cancer-type accuracy (zero-shot)", 0.85),
        ("recall_at_10", None, "recall@10 note -> slide/genomic", 0.90),
        ("alteration_f1", None, "driver-gene micro-F1 from the note", 0.80),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4), sharey=True)
    width = 0.27
    for ax, (key, base_key, title, target) in zip(axes, panels, strict=True):
        ours = [report["languages"][lang][key] or 0.0 for lang in langs]
        base = [
            report["languages"][lang][base_key]
            if base_key
            else report["languages"][lang]["baseline"][key] or 0.0
            for lang in langs
        ]
        xs = range(len(langs))
        ax.bar([x - width for x in xs], ours, width, label="student (ours)")
        ax.bar(list(xs), base, width, label="baseline: teacher's English pipeline")
        ax.bar([x + width for x in xs], [ARTICLE[key]] * len(langs), width, label="article",
               color="lightgray")  # fmt: skip
        ax.axhline(target, color="red", linestyle=":", linewidth=1, label="issue's target")
        ax.set_xticks(list(xs), langs)
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=10)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8,
               bbox_to_anchor=(0.5, -0.08))  # fmt: skip
    return _save(fig, path)


def reliability_diagram(report: Mapping[str, Any], path: Path) -> Path:
    """Accuracy against confidence per bin, one line per language, with the diagonal: the
    calibrated probabilities users see (softmax of logits / T) and, in a second panel when the
    report has them, the plain softmax before temperature scaling."""
    plt = _pyplot()
    rows = {**report["languages"], "en": report["english_reference"]}
    panels = [("reliability", "ece", "calibrated (what users see)")]
    if all("reliability_uncalibrated" in m for m in rows.values()):
        panels.insert(0, ("reliability_uncalibrated", "ece_uncalibrated", "uncalibrated"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5), squeeze=False)
    temperature = report.get("temperature")
    for ax, (bins_key, ece_key, title) in zip(axes[0], panels, strict=True):
        ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfect calibration")
        for lang, m in rows.items():
            bins = m[bins_key]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                    markersize=3, label=f"{lang} (ECE {m[ece_key]:.3f})")  # fmt: skip
        ax.set_xlabel("confidence (top softmax probability)")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
        if bins_key == "reliability" and temperature is not None and len(panels) > 1:
            title = f"{title}, T = {temperature:.2f}"
        ax.set_title(f"student reliability, 15 bins: {title}", fontsize=10)
    return _save(fig, path)


def ablation_bars(
    rows: Sequence[tuple[str, Mapping[str, float | None]]], keys: Sequence[str], path: Path
) -> Path:
    """Grouped bars: one group per variant (rows: name -> metric values), one bar per key."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.9), 4))
    width = 0.8 / len(keys)
    for j, key in enumerate(keys):
        xs = [i + (j - (len(keys) - 1) / 2) * width for i in range(len(rows))]
        ax.bar(xs, [m.get(key) or 0.0 for _, m in rows], width, label=key)
    ax.set_xticks(range(len(rows)), [name for name, _ in rows], rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, ncol=len(keys), loc="upper center", bbox_to_anchor=(0.5, -0.28))
    ax.set_title("distillation variants, mean over student languages (equal steps)", fontsize=10)
    return _save(fig, path)
