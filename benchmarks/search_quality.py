"""Search quality: precision@10 of cancer type per language and modality, on queries written
from held-out templates, with and without the entity evidence in the ranking.

    .venv/bin/python benchmarks/search_quality.py --workspace DIR [--per-language 150]
                                                  [--seed 0] [--json]

Queries: notes of test-split cases written from templates reserved for the test split
(core.train.distill.reserved_template_ids), so neither the student nor the teacher saw the
template; up to --per-language per language, drawn with --seed. Each query searches with its
language given, k = 10 per modality, its own case excluded (else the English version of the
same note would be an easy hit). A hit is relevant when its case's recorded cancer type is
the query case's. Also the query classifier's accuracy. Searches are audited in the
workspace's store but not queued for review: use a workspace you may write to.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from core.data.schema import LANGUAGES, MODALITIES
from core.train.distill import reserved_template_ids
from workbench.roles import User
from workbench.search_service import SearchService
from workbench.workspace import Workspace

K = 10
USER = User("benchmark", "admin")


def queries(service: SearchService, per_language: int, seed: int) -> dict[str, list]:
    """lang -> [(text, case_id, cancer_type)] from held-out templates of test-split cases."""
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {}
    for lang in LANGUAGES:
        reserved = reserved_template_ids([lang])
        pool = [(n.text, c.case_id, c.cancer_type) for c in service.cases.values()
                if c.split == "test" for n in c.notes
                if n.lang == lang and n.template_id in reserved]  # fmt: skip
        take = rng.choice(len(pool), min(per_language, len(pool)), replace=False)
        out[lang] = [pool[i] for i in sorted(take)]
    return out


def evaluate(service: SearchService, qs: dict[str, list]) -> dict[str, dict]:
    report: dict[str, dict] = {}
    for lang, items in qs.items():
        hits = {m: [] for m in MODALITIES}
        correct, seconds = [], []
        for text, case_id, truth in items:
            t = time.perf_counter()
            r = service.search(USER, text, lang, k=K, record=False, exclude_cases=(case_id,))
            seconds.append(time.perf_counter() - t)
            correct.append(r.predicted_type == truth)
            for m, group in r.groups.items():
                hits[m].append(np.mean([h.recorded_type == truth for h in group]))
        report[lang] = {
            "queries": len(items),
            **{f"p@10_{m}": round(float(np.mean(v)), 3) for m, v in hits.items()},
            "p@10_all": round(float(np.mean([x for v in hits.values() for x in v])), 3),
            "query_type_accuracy": round(float(np.mean(correct)), 3),
            "ms_p50": round(1000 * float(np.median(seconds)), 1),
        }
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", required=True, help="built workspace (writable store)")
    p.add_argument("--per-language", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    service = SearchService(Workspace(Path(args.workspace).resolve()))
    qs = queries(service, args.per_language, args.seed)
    results = {}
    for weight in (service.cfg.entity_weight, 0.0):
        service.cfg = dataclasses.replace(service.cfg, entity_weight=weight)
        results[f"entity_weight={weight}"] = evaluate(service, qs)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    cols = [*(f"p@10_{m}" for m in MODALITIES), "p@10_all", "query_type_accuracy", "ms_p50"]
    for name, report in results.items():
        print(f"\n{name}\n| lang | queries | " + " | ".join(cols) + " |")
        print("|---" * (len(cols) + 2) + "|")
        for lang, row in report.items():
            print(f"| {lang} | {row['queries']} | " + " | ".join(str(row[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
