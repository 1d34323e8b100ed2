"""Distillation training throughput (samples/s) on CUDA vs CPU, side by side in one run.

    .venv/bin/python benchmarks/gpu_distill.py [--batch-size 32] [--length 96] [--json]

Both devices run the same training step as `core.train.distill` with its default config
(student encoder of the default size -> projection head -> classifier, DistillationLoss,
AdamW; bf16 autocast on CUDA, and on a CPU with native bf16) on the same stream of synthetic
batches: random token and entity ids, random teacher targets. Without CUDA the CPU figure
is printed and the GPU is reported as not measured.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
import torch.nn.functional as F

from core.data.schema import CANCER_TYPES
from core.losses.combined import DistillationLoss
from core.models.heads import ClassifierHead, ProjectionHead
from core.models.student import StudentConfig, StudentEncoder
from core.train import common
from core.train.distill import (
    DistillConfig,
    StudentModel,
    cpu_bf16_enabled,
    make_optimizer,
    train_step,
)

VOCAB = 30522 + 8000  # MiniLM's pieces + the default extra_vocab
N_ENTITIES = 431  # the shipped lexicon's concepts + 1
SHARED_DIM = 256  # the demo teacher's embed_dim


def synthetic_batches(n: int, batch_size: int, length: int, seed: int) -> list[dict]:
    """`n` batches shaped like `core.train.distill`'s: notes first, a quarter parallel rows."""
    g = torch.Generator().manual_seed(seed)
    n_par = batch_size // 4
    n_note = batch_size - n_par
    out = []

    def unit(rows: int) -> torch.Tensor:
        return F.normalize(torch.randn(rows, SHARED_DIM, generator=g), dim=-1)

    for _ in range(n):
        ids = torch.randint(1000, VOCAB, (batch_size, length), generator=g)
        lengths = torch.randint(length // 2, length + 1, (batch_size,), generator=g)
        mask = (torch.arange(length) < lengths.unsqueeze(1)).long()  # (B, T)
        entities = torch.randint(0, N_ENTITIES, (batch_size, length), generator=g)
        entities = entities * (torch.rand(batch_size, length, generator=g) < 0.2)  # sparse
        out.append(
            {
                "input_ids": ids * mask,
                "attention_mask": mask,
                "entity_ids": entities * mask,
                "teacher_emb": unit(batch_size),
                "teacher_logits": torch.randn(n_note, len(CANCER_TYPES), generator=g),
                "teacher_variance": torch.rand(n_note, generator=g) * 0.1,
                "labels": torch.randint(0, len(CANCER_TYPES), (n_note,), generator=g),
                "anchor_slide": unit(n_note),
                "anchor_genomic": unit(n_note),
                "present_slide": torch.rand(n_note, generator=g) < 0.95,
                "present_genomic": torch.rand(n_note, generator=g) < 0.95,
            }
        )
    return out


def measure(device: torch.device, batches: list[dict], warmup: int) -> dict[str, Any]:
    """Samples/s of training steps on `device` after `warmup` untimed steps."""
    cfg = DistillConfig()
    torch.manual_seed(0)
    student_cfg = StudentConfig(n_entities=N_ENTITIES)
    encoder = StudentEncoder(student_cfg, VOCAB)
    model = StudentModel(
        encoder,
        ProjectionHead(student_cfg.hidden, SHARED_DIM),
        ClassifierHead(SHARED_DIM, len(CANCER_TYPES)),
    ).to(device)
    optimizer = make_optimizer(model, cfg)
    loss_fn = DistillationLoss(cfg.loss)
    pin = device.type == "cuda"
    staged = [{k: v.pin_memory() if pin else v for k, v in b.items()} for b in batches]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for b in staged[:warmup]:
        train_step(model, b, loss_fn, optimizer, cfg, device)
    sync()
    start = time.perf_counter()
    for b in staged[warmup:]:
        train_step(model, b, loss_fn, optimizer, cfg, device)
    sync()
    seconds = time.perf_counter() - start
    samples = sum(len(b["input_ids"]) for b in staged[warmup:])
    return {"steps": len(staged) - warmup, "seconds": round(seconds, 3),
            "samples_per_s": round(samples / seconds, 2)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--length", type=int, default=96, help="tokens per text (default max_length)")
    p.add_argument("--cpu-steps", type=int, default=4, help="timed CPU steps")
    p.add_argument("--gpu-steps", type=int, default=50, help="timed CUDA steps")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="CPU threads; 0 = one per core")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with common.torch_threads(args.threads):
        result = run(args)
    if args.json:
        print(json.dumps(result))
        return
    cpu = result["cpu"]
    print(f"batch {args.batch_size} x {args.length} tokens, default-size student")
    precision = "bf16 autocast" if result["cpu_bf16"] else "fp32"
    print(f"CPU ({result['cpu_threads']} threads, {precision}): {cpu['samples_per_s']} samples/s")
    if result["cuda"] is not None:
        print(f"CUDA ({result['gpu_name']}, bf16 autocast): {result['cuda']['samples_per_s']} "
              f"samples/s")  # fmt: skip
        print(f"CUDA / CPU: {result['cuda_over_cpu']}x")
    else:
        print("CUDA: not available on this machine; the GPU was NOT measured.")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure CPU, then CUDA when present, on the same batches."""
    has_cuda = torch.cuda.is_available()
    n = args.warmup + max(args.cpu_steps, args.gpu_steps if has_cuda else 0)
    batches = synthetic_batches(n, args.batch_size, args.length, seed=0)

    result: dict[str, Any] = {
        "batch_size": args.batch_size,
        "length": args.length,
        "cpu_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_bf16_enabled(DistillConfig().cpu_bf16),
        "cpu": measure(torch.device("cpu"), batches[: args.warmup + args.cpu_steps], args.warmup),
    }
    if has_cuda:
        cuda = torch.device("cuda")
        result["gpu_name"] = torch.cuda.get_device_name(cuda)
        result["cuda"] = measure(cuda, batches[: args.warmup + args.gpu_steps], args.warmup)
        ratio = result["cuda"]["samples_per_s"] / result["cpu"]["samples_per_s"]
        result["cuda_over_cpu"] = round(ratio, 1)
    else:
        result["gpu_name"] = None
        result["cuda"] = None
        result["cuda_over_cpu"] = None
        result["note"] = "no CUDA device here: the GPU was not measured"
    return result


if __name__ == "__main__":
    main()
