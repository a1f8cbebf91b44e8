"""Time per epoch of KD training (teacher forward + student step): ours against the peers' way.

Pairs resnet32x4 -> resnet8x4 and wrn_40_2 -> wrn_16_2, recipes ``standard`` (batch 64) and
``fast`` (batch 512, bf16, channels_last, torch.compile on CUDA).

Ours: :class:`bcpd_sim.vision.pipeline.DeviceLoader` batches and the distillation criterion of
:mod:`bcpd_sim.vision.distill.trainer` (teacher frozen, forward under no_grad with bf16 autocast
on CUDA; student with the recipe's precision, memory format and compilation).
Reference: a per-sample ``Dataset`` + ``DataLoader`` (numpy crop/flip/normalise per image, worker
processes, pinned memory on CUDA) feeding an fp32 eager loop with the classic
``F.kl_div(log_softmax(s/T), softmax(t/T)) * T^2`` loss, as in the RepDistiller-style repos.

Both run on the same random uint8 images in one process; the script prints images/s, the time
per 50,000-image epoch, the whole run (240 or 120 epochs) and the ratio.

    python benchmarks/bench_distill.py                 # GPU: full configuration
    python benchmarks/bench_distill.py --tiny          # CPU: tiny configuration (default on CPU)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cifar import (  # noqa: E402
    ReferenceDataset,
    add_timing_arguments,
    apply_timing_arguments,
    time_steps,
    training_loader,
)

from bcpd_sim.provenance import environment  # noqa: E402
from bcpd_sim.vision.data import ImageDataset  # noqa: E402
from bcpd_sim.vision.distill import create_distiller  # noqa: E402
from bcpd_sim.vision.distill.trainer import distill_criterion, freeze  # noqa: E402
from bcpd_sim.vision.models import create_model  # noqa: E402
from bcpd_sim.vision.recipes import get_recipe, make_optimizer  # noqa: E402
from bcpd_sim.vision.train import maybe_compile  # noqa: E402

PAIRS = [("resnet32x4", "resnet8x4"), ("wrn_40_2", "wrn_16_2")]
EPOCH_IMAGES = 50_000


def ours_rate(t_arch, s_arch, recipe, dataset, device, args) -> tuple[float, str]:
    cuda = device.type == "cuda"
    channels_last = recipe.channels_last and cuda
    torch.manual_seed(0)
    teacher = freeze(create_model(t_arch, 100).to(device))
    student = create_model(s_arch, 100).to(device)
    if channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
        student = student.to(memory_format=torch.channels_last)
    want = recipe.compile and not args.no_compile
    t_fwd, _ = maybe_compile(teacher, want, device, recipe.compile_mode)
    s_fwd, compiled = maybe_compile(student, want, device, recipe.compile_mode)
    criterion = distill_criterion(
        t_fwd, create_distiller("kd", teacher, student), device, recipe.bf16
    )
    opt = make_optimizer(student.parameters(), recipe, s_arch)
    bf16 = recipe.bf16 and cuda
    loader = training_loader(dataset, recipe, device, channels_last)

    def step(x, y):
        if compiled:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = criterion(s_fwd, x, y, None, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    rate = time_steps(step, lambda: iter(loader), device, args.warmup, args.steps)
    return rate, f"bf16={bf16}, channels_last={channels_last}, compiled={compiled}"


def reference_rate(t_arch, s_arch, recipe, images, labels, device, args) -> float:
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    teacher = create_model(t_arch, 100).to(device).eval()
    student = create_model(s_arch, 100).to(device)
    opt = make_optimizer(student.parameters(), recipe, s_arch)
    workers = args.workers if args.workers is not None else (8 if cuda else 2)
    dl = torch.utils.data.DataLoader(
        ReferenceDataset(images, labels),
        batch_size=recipe.batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=cuda,
        drop_last=True,
        persistent_workers=workers > 0,
    )
    T = 4.0

    def step(x, y):
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        with torch.no_grad():
            t_logits = teacher(x)
        s_logits = student(x)
        kd = F.kl_div(
            F.log_softmax(s_logits / T, 1), F.softmax(t_logits / T, 1), reduction="batchmean"
        )
        loss = 0.1 * F.cross_entropy(s_logits, y) + 0.9 * kd * T * T
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return time_steps(step, lambda: iter(dl), device, args.warmup, args.steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["standard", "fast"])
    parser.add_argument("--pairs", nargs="+", default=[f"{t}:{s}" for t, s in PAIRS])
    parser.add_argument("--tiny", action="store_true", help="CPU-sized run (default off CUDA)")
    add_timing_arguments(parser)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args(argv)
    device = apply_timing_arguments(args)
    tiny = args.tiny or device.type != "cuda"
    args.images = args.images or (256 if tiny else EPOCH_IMAGES)
    args.steps = args.steps or (3 if tiny else 50)
    args.warmup = args.warmup if args.warmup is not None else (1 if tiny else 15)
    batch = args.batch_size or (16 if tiny else None)

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 100, size=args.images)
    dataset = ImageDataset(images, labels, 100)
    env = environment()
    print(f"device: {env['device']}; torch {env['torch']}; threads {env['torch_threads']}")
    print(
        f"{'tiny ' if tiny else ''}config: {args.images} random images, {args.steps} timed steps after {args.warmup} warm-up"
    )
    for recipe_name in args.recipes:
        recipe = get_recipe(recipe_name, batch_size=batch)
        for pair in args.pairs:
            t_arch, s_arch = pair.split(":")
            ours, settings = ours_rate(t_arch, s_arch, recipe, dataset, device, args)
            epoch = EPOCH_IMAGES / ours
            line = (
                f"KD {t_arch} -> {s_arch}, {recipe.name} recipe (batch {recipe.batch_size}): ours "
                f"{ours:9.1f} img/s = {epoch:8.1f} s/epoch, {recipe.epochs} epochs "
                f"{recipe.epochs * epoch / 60:7.1f} min [{settings}]"
            )
            if not args.no_reference:
                ref = reference_rate(t_arch, s_arch, recipe, images, labels, device, args)
                line += f"; reference {ref:9.1f} img/s = {EPOCH_IMAGES / ref:8.1f} s/epoch; ratio {ours / ref:.2f}x"
            print(line, flush=True)
            result = {"pair": pair, "recipe": recipe.name, "images_per_s": round(ours, 1)}
            result["projected_240_epochs_min"] = round(240 * epoch / 60, 2)
            print("RESULT " + json.dumps({f"{pair}/{recipe.name}": result}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
