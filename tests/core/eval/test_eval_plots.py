"""core.eval.plots writes real PNG files from report dicts."""

from __future__ import annotations

from pathlib import Path

from core.eval import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _metrics(acc: float) -> dict:
    return {
        "zero_shot_accuracy": acc, "baseline_accuracy": acc / 2, "recall_at_10": 0.1,
        "alteration_f1": 0.5, "ece": 0.05, "baseline": {"recall_at_10": 0.05, "alteration_f1": 0.4},
        "reliability": [{"confidence": 0.6, "accuracy": 0.5},
                        {"confidence": 0.9, "accuracy": 0.95}],
    }  # fmt: skip


def test_figures_are_png(tmp_path: Path) -> None:
    report = {"languages": {"pt": _metrics(0.9), "hi": _metrics(0.8)},
              "english_reference": _metrics(0.95)}  # fmt: skip
    written = [
        plots.language_bars(report, tmp_path / "img/languages.png"),
        plots.reliability_diagram(report, tmp_path / "img/reliability.png"),
        plots.ablation_bars([("base", {"a": 0.5}), ("no_kd", {"a": None})], ["a"],
                            tmp_path / "img/ablations.png"),
    ]  # fmt: skip
    for path in written:
        assert path.read_bytes().startswith(PNG) and path.stat().st_size > 5000
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == [
        "ablations.png",
        "languages.png",
        "reliability.png",
    ]  # no temporary files left behind
