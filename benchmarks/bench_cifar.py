"""Training throughput (images/s) of a CIFAR model: the project's pipeline against the peers' way.

Project: :class:`bcpd_sim.vision.pipeline.DeviceLoader` (dataset resident on the device, crop/flip
on whole batches, fused normalisation) and the recipe's step settings (bf16 autocast,
channels_last, torch.compile on CUDA where the recipe asks for them).
Reference: a torch ``Dataset`` doing per-sample numpy random crop (padding 4) + flip +
normalisation, batched by a ``DataLoader`` (worker processes, pinned memory on CUDA), fp32 eager
model: what the RepDistiller-style peer repositories do.

Both use the same model, optimiser (SGD, the recipe's lr), batch size and random uint8 images,
and run in one process; the script prints both rates and their ratio.

    python benchmarks/bench_cifar.py --arch resnet8 --recipe standard --images 2048
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from bcpd_sim.device import resolve_device
from bcpd_sim.provenance import environment
from bcpd_sim.vision.data import ImageDataset
from bcpd_sim.vision.models import create_model
from bcpd_sim.vision.pipeline import CIFAR100_MEAN, CIFAR100_STD, DeviceLoader
from bcpd_sim.vision.recipes import get_recipe, make_optimizer
from bcpd_sim.vision.train import maybe_compile


class ReferenceDataset(torch.utils.data.Dataset):
    """Per-sample numpy augmentation, as in torchvision's RandomCrop(32, 4) + flip + Normalize."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, seed: int = 0):
        self.images = images.transpose(0, 2, 3, 1)  # HWC uint8, as PIL images would be
        self.labels = labels
        self.mean = np.array(CIFAR100_MEAN, dtype=np.float32)
        self.std = np.array(CIFAR100_STD, dtype=np.float32)
        self.seed = seed

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        rng = np.random.default_rng()
        img = np.pad(self.images[i], ((4, 4), (4, 4), (0, 0)))
        y0, x0 = rng.integers(0, 9, size=2)
        img = img[y0 : y0 + 32, x0 : x0 + 32]
        if rng.random() < 0.5:
            img = img[:, ::-1]
        img = (img.astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), int(self.labels[i])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step, batches, device: torch.device, warmup: int, steps: int) -> float:
    """Images/s over ``steps`` steps after ``warmup`` steps; ``batches`` is re-iterated as needed."""

    def stream():
        while True:
            yield from batches()

    it = stream()
    for _ in range(warmup):
        x, y = next(it)[:2]
        step(x, y)
    _sync(device)
    t0 = time.perf_counter()
    n = 0
    for _ in range(steps):
        x, y = next(it)[:2]
        step(x, y)
        n += len(y)
    _sync(device)
    return n / (time.perf_counter() - t0)


def make_step(model, optimizer, device, *, bf16: bool):
    def step(x, y):
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def training_loader(dataset, recipe, device, channels_last: bool) -> DeviceLoader:
    """Our pipeline as training uses it: shuffled, augmented, full batches on the device."""
    return DeviceLoader(
        dataset,
        recipe.batch_size,
        device,
        shuffle=True,
        augment=True,
        drop_last=True,
        channels_last=channels_last,
    )


def add_timing_arguments(parser, *, images=None, steps=None, warmup=None) -> None:
    """Options shared by the CIFAR benchmarks: data size, timed and untimed steps, batch size,
    reference workers, device, compilation and threads."""
    parser.add_argument("--images", type=int, default=images, help="random images in the dataset")
    parser.add_argument("--steps", type=int, default=steps, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps first")
    parser.add_argument("--workers", type=int, default=None, help="reference DataLoader workers")
    parser.add_argument("--batch-size", type=int, default=None, help="override the recipe's")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")


def apply_timing_arguments(args) -> torch.device:
    """Set the thread count if asked; return the device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return resolve_device(args.device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet56")
    parser.add_argument("--recipe", default="standard")
    add_timing_arguments(parser, images=50_000, steps=50, warmup=10)
    args = parser.parse_args(argv)
    device = apply_timing_arguments(args)
    cuda = device.type == "cuda"
    recipe = get_recipe(args.recipe, batch_size=args.batch_size)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 100, size=args.images)
    dataset = ImageDataset(images, labels, 100)
    workers = args.workers if args.workers is not None else (8 if cuda else 2)
    env = environment()
    print(f"device: {env['device']}; torch {env['torch']}; threads {env['torch_threads']}")
    print(
        f"arch {args.arch}, recipe {recipe.name}, batch {recipe.batch_size}, "
        f"{args.images} images, {args.steps} timed steps after {args.warmup} warm-up"
    )

    # Project pipeline.
    torch.manual_seed(0)
    model = create_model(args.arch, num_classes=100).to(device)
    channels_last = recipe.channels_last and cuda
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    fwd, compiled = maybe_compile(
        model, recipe.compile and not args.no_compile, device, recipe.compile_mode
    )
    loader = training_loader(dataset, recipe, device, channels_last)
    opt = make_optimizer(model.parameters(), recipe, args.arch)
    ours = time_steps(
        make_step(fwd, opt, device, bf16=recipe.bf16 and cuda),
        lambda: iter(loader),
        device,
        args.warmup,
        args.steps,
    )
    settings = f"bf16={recipe.bf16 and cuda}, channels_last={channels_last}, compiled={compiled}"
    print(f"project pipeline   ({settings}): {ours:10.1f} images/s")

    # Reference: per-sample DataLoader, fp32 eager.
    torch.manual_seed(0)
    model = create_model(args.arch, num_classes=100).to(device)
    dl = torch.utils.data.DataLoader(
        ReferenceDataset(images, labels),
        batch_size=recipe.batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=cuda,
        drop_last=True,
        persistent_workers=workers > 0,
    )
    opt = make_optimizer(model.parameters(), recipe, args.arch)
    ref = time_steps(
        make_step(model, opt, device, bf16=False), lambda: iter(dl), device, args.warmup, args.steps
    )
    print(f"reference pipeline (DataLoader, {workers} workers, fp32 eager): {ref:10.1f} images/s")
    print(f"ratio project / reference: {ours / ref:.2f}x")

    # The input pipelines alone (batches produced on the device, no model step).
    ours_in = time_steps(lambda x, y: None, lambda: iter(loader), device, args.warmup, args.steps)
    ref_in = time_steps(
        lambda x, y: x.to(device, non_blocking=True),
        lambda: iter(dl),
        device,
        args.warmup,
        args.steps,
    )
    print(
        f"input pipeline alone: project {ours_in:10.1f} images/s, reference {ref_in:10.1f} "
        f"images/s, ratio {ours_in / ref_in:.1f}x"
    )
    result = {"arch": args.arch, "recipe": recipe.name, "batch_size": recipe.batch_size}
    result.update(images_per_s=round(ours, 1), reference_images_per_s=round(ref, 1))
    result.update(ratio=round(ours / ref, 2), settings=settings)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
