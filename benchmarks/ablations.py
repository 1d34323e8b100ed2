"""Temperature grid, alpha sweep and ablations of the distillation, trained and evaluated
side by side on one cohort and one teacher.

    .venv/bin/python benchmarks/ablations.py train    [--workspace /tmp/wsfull] [--out /tmp/eval]
    .venv/bin/python benchmarks/ablations.py evaluate [--workspace ...] [--out ...] [--limit N]
    .venv/bin/python benchmarks/ablations.py report   [--out ...] [--docs-img docs/img]

Every variant is one DistillConfig override of the same base profile: the same seed and the
same number of optimisation steps (`STEPS`), with a wall-clock budget large enough never to
cut a run short on a loaded machine. Runs go to <out>/<variant>/; a variant whose folder
already holds a student (train) or an eval.json (evaluate) is skipped, so an interrupted
sweep resumes where it stopped. `report` prints the tables as Markdown and draws the
ablation plot.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.eval.evaluate import EvalConfig, evaluate
from core.eval.metrics import CLASSIFY_ABSTENTION
from core.io import write_atomic
from core.train.distill import CONFIG_FILE, DistillConfig, distill

EVAL_FILE = "eval.json"
STEPS = 100  # optimisation steps per variant (the demo student runs 200)
NOTE_ROWS_PER_STEP = 24  # batch_size 32 minus 8 parallel rows (parallel_share 0.25)
# Uncertainty weighting runs at DistillLossConfig's default: the threshold is the 0.9 quantile
# of the teacher's variance over the training notes (the demo teacher's variances lie in
# [0, 0.0095], where a fixed 0.05 never triggers), so the least certain ~10% are down-weighted.

BASE: dict[str, Any] = {
    "epochs": 1,
    "notes_per_epoch": STEPS * NOTE_ROWS_PER_STEP,
    "max_minutes": 600.0,  # never the limit: every variant runs all STEPS steps
    "show_progress_bar": False,
}

# name -> (group, what it changes against `base`, override)
VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "base": ("reference", "T=4, alpha=0.7, beta=0.1, unsure: top 10% variance", {}),
    "untrained": ("reference", "no distillation: MiniLM layers + teacher heads, 0 steps",
                  {"max_minutes": 0.001}),
    "T2": ("temperature", "T=2", {"loss": {"temperature": 2.0}}),
    "T8": ("temperature", "T=8", {"loss": {"temperature": 8.0}}),
    "alpha0.3": ("alpha", "alpha=0.3", {"loss": {"alpha": 0.3}}),
    "alpha0.5": ("alpha", "alpha=0.5", {"loss": {"alpha": 0.5}}),
    "alpha0.9": ("alpha", "alpha=0.9", {"loss": {"alpha": 0.9}}),
    "no_align": ("ablation", "alpha=0: KD + CE only", {"loss": {"alpha": 0.0}}),
    "no_kd": ("ablation", "alpha=1: alignment + CE only", {"loss": {"alpha": 1.0}}),
    "no_entity": ("ablation", "entity-aware attention off", {"use_entity_attention": False}),
    "no_facts": ("ablation", "no note-fact vector (the teacher still reads facts)",
                 {"use_facts": False}),
    "no_uncertainty": ("ablation", "uncertainty weighting off",
                       {"loss": {"uncertainty_mode": "off"}}),
    "no_genes": ("ablation", "no driver-gene head (gene_weight 0)", {"gene_weight": 0.0}),
    # Without parallel rows a batch holds 32 note rows: as many notes per epoch as steps.
    "no_parallel": ("ablation", "no human-translated parallel text (cohort notes only)",
                    {"use_parallel": False, "notes_per_epoch": STEPS * 32}),
    # PennyLane's simulator has no bf16 complex ops: the quantum head fails under the CPU
    # bf16 autocast that cpu_bf16="auto" turns on where the CPU has native bf16.
    "quantum": ("head", "4-qubit quantum projection head (float32)",
                {"head": "quantum", "cpu_bf16": "off"}),
    # Hindi: 62% of its tokens are pieces added to MiniLM's vocabulary (pt 42%, de 36%),
    # whose embeddings start as a mean of MiniLM pieces; they need more updates or more text.
    "lr2e-4": ("hindi", "encoder lr 2e-4 (the earlier default: new pieces learn slower)",
               {"lr": 2e-4}),
}  # fmt: skip


def variant_config(name: str) -> DistillConfig:
    """BASE updated by the variant's override (the `loss` table merged key by key)."""
    override = VARIANTS[name][2]
    d = DistillConfig().to_dict()
    for layer in (BASE, override):
        for key, value in layer.items():
            d[key] = {**d[key], **value} if isinstance(value, dict) else value
    return DistillConfig.from_dict(d)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> None:
    ws = Path(args.workspace)
    for name in args.variants or VARIANTS:
        run = Path(args.out) / name
        if (run / CONFIG_FILE).is_file():
            _log(f"{name}: present, skipped")
            continue
        _log(f"{name}: training ({VARIANTS[name][1]})")
        t0 = time.perf_counter()
        distill(ws / "cohort", ws / "models" / "teacher", run, variant_config(name))
        steps = json.loads((run / CONFIG_FILE).read_text())["steps"]
        _log(f"{name}: {steps} steps in {time.perf_counter() - t0:.0f} s")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Evaluate every trained variant not evaluated yet, in the order they become ready;
    with --wait, poll until the training sweep has written each of them."""
    ws = Path(args.workspace)
    cfg = EvalConfig(CLASSIFY_ABSTENTION, limit=args.limit)
    pending = [
        n for n in args.variants or VARIANTS if not (Path(args.out) / n / EVAL_FILE).is_file()
    ]
    while pending:
        ready = [n for n in pending if (Path(args.out) / n / CONFIG_FILE).is_file()]
        if not ready:
            if not args.wait:
                _log(f"not trained, skipped: {', '.join(pending)}")
                return
            time.sleep(20)
            continue
        name = ready[0]
        pending.remove(name)
        run = Path(args.out) / name
        t0 = time.perf_counter()
        report = evaluate(
            ws / "cohort", ws / "models" / "teacher", run, cfg,
            cache_dir=Path(args.out) / ".cache-eval",
            progress=lambda msg, name=name: _log(f"{name}: {msg}"),
        )  # fmt: skip
        write_atomic(run / EVAL_FILE, (json.dumps(report, indent=1) + "\n").encode())
        _log(f"{name}: evaluated in {time.perf_counter() - t0:.0f} s")


def summary(out: Path, name: str) -> dict[str, Any] | None:
    """Means over the student languages of one variant's eval.json, with its run facts."""
    path = out / name / EVAL_FILE
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    config = json.loads((out / name / CONFIG_FILE).read_text())
    langs = report["languages"]
    row: dict[str, Any] = {
        key: float(np.mean([m[key] for m in langs.values()]))
        for key in ("zero_shot_accuracy", "recall_at_10", "alteration_f1", "alignment_accuracy",
                    "own_note_recall_at_10", "ece", "abstention_rate")
    }  # fmt: skip
    sarc = [(m["sarc_accuracy"], m["sarc_notes"]) for m in langs.values() if m["sarc_notes"]]
    row["sarc_accuracy"] = sum(a * n for a, n in sarc) / sum(n for _, n in sarc) if sarc else None
    row["by_language"] = {lang: m["zero_shot_accuracy"] for lang, m in langs.items()}
    row["steps"] = config["steps"]
    row["train_s"] = config["timings_s"].get("train", 0.0)
    row["n_notes"] = report["n_notes_per_language"]
    return row


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


HEADLINE_ROWS: tuple[tuple[str, str, str | None], ...] = (
    # (metric, label, the article's figure as printed)
    ("zero_shot_accuracy", "zero-shot accuracy (student)", "0.72"),
    ("baseline_accuracy", "baseline accuracy (teacher's English pipeline, no distillation)",
     "0.35"),
    ("baseline_accuracy_without_facts", "  baseline without its fact read (MiniLM + head)", None),
    ("recall_at_10", "recall@10 note -> own case's slide/genomic (mean of the two)", "0.81"),
    ("recall_at_10_slide", "  recall@10 to slides", None),
    ("recall_at_10_genomic", "  recall@10 to genomic profiles", None),
    ("alteration_f1", "driver-gene micro-F1 (gene head; the probe without one)", "0.68"),
    ("alteration_f1_lexicon", "  driver-gene micro-F1, lexicon gene mentions (rule reference)",
     None),
    ("sarc_accuracy", "SARC (rare class) accuracy", None),
    ("ece", "ECE, 15 bins (calibrated probabilities)", None),
    ("abstention_rate", "abstention rate (classify's rule)", None),
    ("accuracy_non_abstained", "accuracy on the non-abstained", None),
    ("alignment_accuracy", "alignment: top-1 own English note (teacher space)", None),
    ("own_note_recall_at_10", "  own English note in the top 10", None),
)  # fmt: skip


def headline(path: Path, docs_img: Path) -> None:
    """The per-language table of a `cmkd evaluate --json` report, and its two figures."""
    from core.eval import plots

    report = json.loads(Path(path).read_text())
    langs = {**report["languages"], "en (ref.)": report["english_reference"]}
    print("| metric | " + " | ".join(langs) + " | article |")
    print("|---|" + "---:|" * (len(langs) + 1))
    for key, label, article in HEADLINE_ROWS:
        cells = [_cell(m.get(key)) for m in langs.values()]
        print(f"| {label} | " + " | ".join(cells) + f" | {article or ''} |")
    for key in ("recall_at_10", "alteration_f1", "alignment_accuracy"):
        cells = [_cell(m["baseline"][key]) for m in langs.values()]
        print(f"| baseline: {key} | " + " | ".join(cells) + " | |")
    print(f"\nSARC notes per language: {report['english_reference']['sarc_notes']}; "
          f"{report['n_test_cases']} test cases, {report['n_notes_per_language']} notes per "
          f"language; ceilings: {report['ceilings']}")  # fmt: skip
    plots.language_bars(report, docs_img / "evaluation_languages.png")
    plots.reliability_diagram(report, docs_img / "evaluation_reliability.png")


def cmd_report(args: argparse.Namespace) -> None:
    """Markdown tables of the sweep on stdout; the ablation plot into --docs-img."""
    from core.eval import plots

    if args.headline:
        headline(Path(args.headline), Path(args.docs_img))
    out = Path(args.out)
    rows = [(name, summary(out, name)) for name in VARIANTS]
    done = [(name, row) for name, row in rows if row is not None]
    if not done:
        raise SystemExit("no evaluated variant yet: run the evaluate phase first")
    langs = list(done[0][1]["by_language"])
    head = ["variant", "change", "steps", *langs, "mean acc", "R@10", "alt. F1", "align top-1",
            "own-note R@10", "ECE", "abstain", "SARC"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, row in done:
        cells = [name, VARIANTS[name][1], str(row["steps"])]
        cells += [_cell(row["by_language"][lang]) for lang in langs]
        cells += [_cell(row[k]) for k in ("zero_shot_accuracy", "recall_at_10", "alteration_f1",
                  "alignment_accuracy", "own_note_recall_at_10", "ece", "abstention_rate",
                  "sarc_accuracy")]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    by_name = dict(done)
    if "base" in by_name and "quantum" in by_name:
        base, quantum = by_name["base"], by_name["quantum"]
        print(
            f"\nquantum retention (alignment top-1, quantum / classical): "
            f"{quantum['alignment_accuracy'] / base['alignment_accuracy']:.3f}; "
            f"own-note R@10: "
            f"{quantum['own_note_recall_at_10'] / base['own_note_recall_at_10']:.3f}; "
            f"accuracy: {quantum['zero_shot_accuracy'] / base['zero_shot_accuracy']:.3f}"
        )
    n = {row["n_notes"] for _, row in done}
    print(f"\n{sorted(n)} test notes per language per variant")
    keys = ("zero_shot_accuracy", "alignment_accuracy", "alteration_f1", "recall_at_10")
    plots.ablation_bars(done, keys, Path(args.docs_img) / "ablations.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("phase", choices=("train", "evaluate", "report"))
    p.add_argument("--workspace", default="/tmp/wsfull", help="cohort + models/teacher")
    p.add_argument("--out", default="/tmp/eval", help="one folder per variant")
    p.add_argument("--variants", nargs="*", choices=sorted(VARIANTS), help="default: all")
    p.add_argument("--limit", type=int, default=60, help="evaluate: test cases per variant")
    p.add_argument("--wait", action="store_true", help="evaluate: wait for untrained variants")
    p.add_argument("--docs-img", default="docs/img", help="report: where the plots go")
    p.add_argument("--headline", help="report: also the tables of a `cmkd evaluate --json` file")
    args = p.parse_args(argv)
    {"train": cmd_train, "evaluate": cmd_evaluate, "report": cmd_report}[args.phase](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
