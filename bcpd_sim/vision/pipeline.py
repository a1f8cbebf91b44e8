"""Device-resident input pipeline: the whole dataset on the device, augmentation on whole batches.

The images live on the device once (uint8 for real CIFAR: 150 MB for the 50,000 training images;
float32 for the synthetic data, whose exact BCPD would not survive quantisation). Each batch is
cut from an on-device permutation, then random-cropped (padding 4, zero fill, as torchvision's
``RandomCrop(32, padding=4)``) and horizontally flipped with one gather, then converted to float
and normalised in one fused multiply-add. The randomness of epoch ``e`` comes from generators
seeded with ``(seed, e)``, so an epoch's batches do not depend on earlier epochs and a resumed run
sees the same batches as an uninterrupted one; the order is drawn on the CPU, so it is the same on
every device. The same code runs on CPU for the tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..validation import check_int
from .data import ImageDataset

CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)
PADDING = 4


def epoch_generator(seed: int, epoch: int, device: torch.device | str) -> torch.Generator:
    """A generator on ``device`` seeded from ``(seed, epoch)`` only."""
    device = torch.device(device)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0]))
    return gen


def random_crop_flip(
    images: torch.Tensor,
    generator: torch.Generator,
    *,
    padding: int = PADDING,
    flip: bool = True,
) -> torch.Tensor:
    """Random crop (zero padding ``padding``) and random horizontal flip of a whole batch.

    ``images`` is (B, C, H, W) of any dtype; the result has the same shape and dtype. Offsets and
    flips are drawn per image from ``generator`` (which must live on the images' device); crop and
    flip are applied together by a single gather.
    """
    b, c, h, w = images.shape
    dev = images.device
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    oy = torch.randint(0, 2 * padding + 1, (b,), device=dev, generator=generator)
    ox = torch.randint(0, 2 * padding + 1, (b,), device=dev, generator=generator)
    ar_h = torch.arange(h, device=dev)
    ar_w = torch.arange(w, device=dev)
    rows = oy[:, None] + ar_h  # (B, H)
    cols = ox[:, None] + ar_w  # (B, W)
    if flip:
        do_flip = torch.rand((b,), device=dev, generator=generator) < 0.5
        cols = torch.where(do_flip[:, None], ox[:, None] + (w - 1 - ar_w), cols)
    # Gather rows then columns: (B, C, H, W+2p) then (B, C, H, W).
    idx_rows = rows[:, None, :, None].expand(b, c, h, padded.shape[3])
    out = padded.gather(2, idx_rows)
    idx_cols = cols[:, None, None, :].expand(b, c, h, w)
    return out.gather(3, idx_cols)


class DeviceLoader:
    """Batches of a dataset held on ``device``: ``for x, y in loader`` (or ``x, y, idx``).

    Parameters: ``batch_size``; ``shuffle`` (on-device permutation per epoch); ``augment`` (random
    crop with padding 4 and horizontal flip); ``drop_last``; ``seed`` (with :meth:`set_epoch`,
    fixes the epoch's permutation and augmentation); ``channels_last`` (memory format of the
    batches); ``return_index`` (also yield the rows of the images in the dataset, e.g. for CRD's
    memory bank); ``mean``/``std`` (normalisation, applied after scaling uint8 by 1/255);
    ``rank``/``world_size`` (DDP: ``batch_size`` is the global batch; every rank cuts the same
    global batch, augments it with the same generator and keeps its contiguous slice, so W
    processes see exactly the batches of one; without shuffling, rank r takes rows r, r + W, ...).

    ``x`` is float32 (B, 3, 32, 32) normalised; ``y`` int64 (B,).
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        device: torch.device | str = "cpu",
        *,
        shuffle: bool = False,
        augment: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        channels_last: bool = False,
        return_index: bool = False,
        mean: tuple[float, float, float] = CIFAR100_MEAN,
        std: tuple[float, float, float] = CIFAR100_STD,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.world_size = check_int("world_size", world_size, minimum=1)
        self.rank = check_int("rank", rank, minimum=0)
        self.device = torch.device(device)
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self.seed = int(seed)
        self.channels_last = channels_last
        self.return_index = return_index
        self.epoch = 0
        self.dataset_size = len(dataset)
        # Images this rank sees per pass (its round-robin share when evaluating).
        self.num_images = len(range(self.rank, self.dataset_size, self.world_size))
        self.images = torch.from_numpy(np.ascontiguousarray(dataset.images)).to(self.device)
        self.labels = torch.from_numpy(dataset.labels).to(self.device)
        # x_norm = (x * unit - mean) / std = x * scale + shift, per channel.
        unit = 1.0 / 255.0 if dataset.images.dtype == np.uint8 else 1.0
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.scale = unit / std_t
        self.shift = -mean_t / std_t

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation and augmentation the next iteration uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if not self.shuffle:
            if self.drop_last:
                return self.num_images // self.batch_size
            return -(-self.num_images // self.batch_size)
        if self.drop_last:
            return self.dataset_size // self.batch_size
        full, rest = divmod(self.dataset_size, self.batch_size)
        return full + (rest >= self.world_size)  # no rank may get an empty slice

    def global_batch_len(self, i: int) -> int:
        """Images in global batch ``i`` of a shuffled pass (all ranks together)."""
        return min(self.batch_size, self.dataset_size - i * self.batch_size)

    def _slice(self, n: int) -> slice:
        """This rank's contiguous part of a global batch of ``n`` (as ``numpy.array_split``)."""
        q, r = divmod(n, self.world_size)
        start = self.rank * q + min(self.rank, r)
        return slice(start, start + q + (self.rank < r))

    @property
    def images_per_epoch(self) -> int:
        """Images one pass yields on this rank (fewer when ``drop_last`` drops a remainder)."""
        if not self.shuffle:
            return min(self.num_images, len(self) * self.batch_size)
        sizes = (self.global_batch_len(i) for i in range(len(self)))
        return sum(len(range(n)[self._slice(n)]) for n in sizes)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Stored pixels (uint8 or float) to normalised float32, one fused multiply-add."""
        return torch.addcmul(self.shift, images.to(torch.float32), self.scale)

    def order(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """This epoch's order of the images, on the device. Shuffled orders are drawn on a CPU
        generator (``generator``, or a fresh one seeded from (seed, epoch)) and moved, so the
        order is the same on every device and a run resumed on another device continues it."""
        if not self.shuffle:  # rank r takes rows r, r + W, ... (all rows with one process)
            return torch.arange(self.rank, self.dataset_size, self.world_size, device=self.device)
        gen = generator or epoch_generator(self.seed, self.epoch, "cpu")
        return torch.randperm(self.dataset_size, generator=gen).to(self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        # On CPU one generator draws the order and then the augmentation; on another device the
        # order comes from the CPU generator and the augmentation from one on the device.
        cpu_gen = epoch_generator(self.seed, self.epoch, "cpu")
        order = self.order(cpu_gen)
        gen = (
            cpu_gen
            if self.device.type == "cpu"
            else epoch_generator(self.seed, self.epoch, self.device)
        )
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            raw = self.images.index_select(0, idx)
            if self.augment:
                raw = random_crop_flip(raw, gen)
            if self.shuffle and self.world_size > 1:  # the whole global batch drew its randomness
                part = self._slice(len(idx))
                raw, idx = raw[part], idx[part]
            x = self.normalise(raw)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = self.labels.index_select(0, idx)
            yield (x, y, idx) if self.return_index else (x, y)
