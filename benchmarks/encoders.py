"""Side by side on this CPU: MiniLM (the teacher's text encoder) vs the default student.

    .venv/bin/python benchmarks/encoders.py [--texts 320] [--queries 70] [--lang en]
        [--threads 2] [--tokenizer DIR] [--data DIR] [--json]

Throughput: texts/s encoding ~25-token sentences of the parallel data in batches of 32,
tokenisation included, best of the rounds (other load on a shared machine only ever slows a
round down) and median; ratios of both. Single-query latency: p50/p95 ms of one text at a
time. Both run with torch.set_num_threads(2) (--threads), interleaved round by
round so that machine noise hits both alike.
The student (default StudentConfig, extended tokenizer built from the parallel data) runs
without and with entity ids (every fifth token inside an entity), since entity-aware
attention replaces the padding mask by a per-head bias. Target: student >= 2x MiniLM.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from core.data.parallel import heldout_parallel, load_parallel
from core.data.schema import STUDENT_LANGUAGES
from core.models.student import StudentConfig, StudentEncoder
from core.models.text import TeacherTextEncoder
from core.models.tokenizer import StudentTokenizer, build_student_tokenizer

BATCH = 32
TOKENS = (20, 30)  # MiniLM pieces per sentence (specials included): "~25-token sentences"
ROUNDS = 7


def _student_encoder(
    model: StudentEncoder, tok: StudentTokenizer, with_entities: bool
) -> Callable[[list[str]], torch.Tensor]:
    def encode(texts: list[str]) -> torch.Tensor:
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), BATCH):
                ids, mask, _ = tok.encode_batch(texts[i : i + BATCH], model.config.max_length)
                entity_ids = None
                if with_entities:  # stand-in for lexicon matches mapped onto tokens
                    positions = torch.arange(ids.shape[1])
                    entity_ids = ((positions % 5 == 1) * (1 + positions % 3)).expand_as(ids) * mask
                out.append(model(ids, mask, entity_ids))
        return torch.cat(out)

    return encode


def _seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="parallel text folder (default: assets/parallel)")
    p.add_argument("--texts", type=int, default=320, help="sentences per throughput round")
    p.add_argument("--queries", type=int, default=70, help="single queries, all rounds")
    p.add_argument("--lang", default="en", help="column the student reads (teacher: en)")
    p.add_argument("--tokenizer", type=Path, help="a saved student tokenizer (default: build)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for both models")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    teacher = TeacherTextEncoder()
    train = load_parallel(directory=args.data)
    # Timed sentences: held-out rows first; the tokenizer is extended on the training split.
    pool = [r for r in (*heldout_parallel(directory=args.data), *train) if args.lang in r.texts]
    lengths = [len(teacher.tokenizer(r.en)["input_ids"]) for r in pool]
    chosen = [r for r, n in zip(pool, lengths, strict=True) if TOKENS[0] <= n <= TOKENS[1]]
    chosen = chosen[: args.texts]
    if len(chosen) < args.texts:
        raise SystemExit(f"only {len(chosen)} sentences of {TOKENS} MiniLM tokens")
    with tempfile.TemporaryDirectory() as tmp:
        tok = (
            StudentTokenizer.load(args.tokenizer)
            if args.tokenizer
            else build_student_tokenizer(
                (r.texts[lang] for r in train for lang in STUDENT_LANGUAGES if lang in r.texts),
                Path(tmp),
            )
        )
    student = StudentEncoder.from_minilm(StudentConfig(n_entities=4), tok).eval()

    en = [r.en for r in chosen]
    texts = {"teacher": en, "student": [r.texts[args.lang] for r in chosen]}
    texts["student_entities"] = texts["student"]
    encoders: dict[str, Callable[[list[str]], torch.Tensor]] = {
        "teacher": lambda xs: teacher.encode(xs, batch_size=BATCH),
        "student": _student_encoder(student, tok, with_entities=False),
        "student_entities": _student_encoder(student, tok, with_entities=True),
    }
    for name, encode in encoders.items():  # warm-up: allocator, kernels, lazy inits
        encode(texts[name][:BATCH])
    per_round: dict[str, list[float]] = {name: [] for name in encoders}
    latencies: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(ROUNDS):
        for name, encode in encoders.items():
            xs = texts[name]
            per_round[name].append(len(xs) / _seconds(lambda e=encode, xs=xs: e(xs)))
            latencies[name] += [
                1000 * _seconds(lambda e=encode, x=x: e([x])) for x in xs[: args.queries // ROUNDS]
            ]

    def q(values: list[float], pct: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]

    result: dict[str, object] = {
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "batch": BATCH,
        "texts": len(en),
        "student_lang": args.lang,
        "teacher_layers": 6,
        "student_layers": list(StudentConfig().init_layers),
        "tokens_per_text": {
            "teacher": round(sum(len(teacher.tokenizer(x)["input_ids"]) for x in en) / len(en), 1),
            "student": round(
                float(tok.encode_batch(texts["student"])[1].sum()) / len(texts["student"]), 1
            ),
        },
    }
    for name in encoders:
        result[name] = {
            "texts_per_s": round(max(per_round[name]), 1),
            "texts_per_s_median": round(statistics.median(per_round[name]), 1),
            "latency_p50_ms": round(q(latencies[name], 50), 2),
            "latency_p95_ms": round(q(latencies[name], 95), 2),
        }
    teacher_res = result["teacher"]
    for name in ("student", "student_entities"):
        res = result[name]
        res["throughput_ratio"] = round(res["texts_per_s"] / teacher_res["texts_per_s"], 2)
        res["throughput_ratio_median"] = round(
            res["texts_per_s_median"] / teacher_res["texts_per_s_median"], 2
        )
        res["latency_p50_ratio"] = round(teacher_res["latency_p50_ms"] / res["latency_p50_ms"], 2)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['texts']} texts, batch {BATCH}, {result['threads']} threads, CPU")
        print(f"tokens per text: {result['tokens_per_text']}")
        for name in encoders:
            print(f"{name:>17}: {result[name]}")


if __name__ == "__main__":
    main()
