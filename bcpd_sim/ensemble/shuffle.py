"""Per-member data order: a counter-based hash of (seed, epoch, index), sorted on the device.

Member ``m`` visits its first ``n_m`` training points in the order ``argsort(key(seed_m, epoch,
i))``. The keys depend only on the member's own seed, so a member's order is the same whether it
trains alone or inside any ensemble, and all members' orders are built at once on the device.
The 32-bit mixing uses only products below 2**49, so int64 arithmetic never overflows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_M32 = 0xFFFFFFFF


def _mul32(a, c: int):
    """``(a * c) mod 2**32`` for ``a < 2**32`` without int64 overflow (ints or int64 tensors)."""
    lo, hi = c & 0xFFFF, c >> 16
    return (a * lo + (((a * hi) & 0xFFFF) << 16)) & _M32


def _fmix32(h):
    """MurmurHash3's 32-bit finaliser (a bijection on [0, 2**32))."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def seed_hash(seed: int) -> int:
    """A 32-bit digest of a non-negative integer seed."""
    seed = int(seed)
    h = _fmix32(seed & _M32)
    h = _fmix32(h ^ _fmix32(((seed >> 32) & _M32) ^ 0x5BD1E995))
    return h


def seed_hashes(seeds: Sequence[int], device=None) -> torch.Tensor:
    """:func:`seed_hash` of every seed, as an int64 tensor on ``device``."""
    return torch.tensor([seed_hash(s) for s in seeds], dtype=torch.int64, device=device)


def permutations(
    seeds: Sequence[int],
    epoch: int,
    n_train: Sequence[int],
    device=None,
    *,
    hashes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Orders ``(E, max n_train)`` of the training points for one (0-based) epoch.

    Row ``m`` starts with a permutation of ``range(n_train[m])``; padding positions (when members
    use fewer points than the longest row) hold the indices ``n_train[m], ...`` and are masked
    out by the caller. ``hashes`` (from :func:`seed_hashes`) skips re-hashing the seeds.
    """
    device = device or torch.device("cpu")
    n_max = int(max(n_train))
    if hashes is None:
        hashes = seed_hashes(seeds, device)
    h = hashes
    h = _fmix32(h ^ _fmix32((int(epoch) * 0x9E3779B9 + 0x7F4A7C15) & _M32))
    i = torch.arange(n_max, dtype=torch.int64, device=device)
    key = _fmix32((h[:, None] + _mul32(i + 1, 0x9E3779B9)) & _M32)
    key = _fmix32(key ^ _fmix32(h[:, None] ^ 0x27D4EB2F))
    n = torch.tensor([int(v) for v in n_train], dtype=torch.int64, device=device)
    key = torch.where(i[None, :] < n[:, None], key, (1 << 32) + i[None, :])
    return torch.argsort(key, dim=1, stable=True)
