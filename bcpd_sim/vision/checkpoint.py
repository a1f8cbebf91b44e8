"""Checkpoints anyone can open: plain tensors and plain Python types only.

Every checkpoint the toolkit writes loads with PyTorch's safe default,
``torch.load(path, weights_only=True)``, and ``torch.load(path)["model"]`` is the model's
``state_dict`` (as for RepDistiller and mdistiller teachers)::

    import torch
    from bcpd_sim.vision.models import create_model
    ckpt = torch.load("run/checkpoints/best.pt")          # weights_only=True by default
    model = create_model(ckpt["arch"], ckpt["num_classes"]); model.load_state_dict(ckpt["model"])

Layout (``format`` = :data:`CHECKPOINT_FORMAT`): ``model`` (state dict), ``arch``,
``num_classes``, ``loss`` (the teacher loss, or the distillation method's run), ``recipe``
(dict), ``epoch``, ``seed``, ``config`` (the run's options), ``kind`` ("full", "best",
"imported"), and for resuming ``optimizer``, ``scheduler``, ``extra`` (distillation connectors),
``rng`` (Python, numpy and torch generator states as tensors and ints), ``history`` and ``best``.

Checkpoints of the first format (``checkpoint-1``, which pickled numpy's RNG state) need
``weights_only=False``; :func:`upgrade_checkpoint` rewrites one in this format.
"""

from __future__ import annotations

import pickle
import random
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..io import save_torch

CHECKPOINT_FORMAT = "bcpd_sim.vision/checkpoint-2"
#: The first format (numpy RNG state pickled as an array; needs ``weights_only=False``).
LEGACY_FORMATS = ("bcpd_sim.vision/checkpoint-1",)

_SCALARS = (bool, int, float, str, type(None))


def to_plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` with numpy arrays as tensors, numpy scalars and paths as Python values.

    Containers (dict, OrderedDict, list, tuple) are rebuilt; anything else that
    ``torch.load(weights_only=True)`` would refuse raises ``TypeError`` naming where it is.
    """
    if isinstance(obj, np.generic):  # before the scalars: np.float64 is a float subclass
        return obj.item()
    if isinstance(obj, torch.Tensor) or isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Size):
        return obj
    if isinstance(obj, OrderedDict):
        out = OrderedDict((k, to_plain(v, f"{where}[{k!r}]")) for k, v in obj.items())
        if hasattr(obj, "_metadata"):  # a state dict's module versions (e.g. BatchNorm's)
            out._metadata = to_plain(obj._metadata, where)  # type: ignore[attr-defined]
        return out
    if isinstance(obj, dict):
        return {k: to_plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(f"{where} holds a {type(obj).__name__}, which weights_only loading refuses")


# ----------------------------------------------------------------------------------- RNG state


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU (and CUDA when present) generator states as plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the generators from :func:`capture_rng_state` (or a first-format checkpoint's state)."""
    random.setstate(_python_state(state["python"]))
    numpy_state = state["numpy"]
    if isinstance(numpy_state, dict):
        keys = numpy_state["keys"]
        keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
        numpy_state = (
            numpy_state["name"],
            keys.astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state(state: Any) -> tuple:
    """``random.setstate`` wants tuples; a loaded state may hold lists."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


# ------------------------------------------------------------------------------- save and load


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically with the format tag, after :func:`to_plain`.

    ``state`` needs at least ``model`` (a state dict), ``arch`` and ``num_classes``.
    """
    missing = [k for k in ("model", "arch", "num_classes") if k not in state]
    if missing:
        raise ValueError(f"a checkpoint needs {', '.join(missing)}")
    return save_torch(path, to_plain({**state, "format": CHECKPOINT_FORMAT}))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by the toolkit with ``weights_only=True``.

    Raises ``FileNotFoundError`` when missing and ``ConfigError`` (one line) when unreadable,
    foreign, or of the first format (with the command that upgrades it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # not a pickle of Python objects we refuse
            reason = str(exc).strip().splitlines()[-1][:200]
            raise ConfigError(f"checkpoint {path} is unreadable ({reason})") from None
        raise ConfigError(
            f"checkpoint {path} does not load with weights_only=True: if an older bcpd-sim wrote "
            "it, upgrade it once with python -m bcpd_sim.vision.checkpoint upgrade "
            f"{path}; for a RepDistiller/mdistiller file use bcpd-sim cifar100 import"
        ) from None
    except Exception as exc:
        raise ConfigError(f"checkpoint {path} is unreadable ({exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(
            f"{path} is not a bcpd-sim vision checkpoint (foreign teachers: bcpd-sim cifar100 "
            "import)"
        )
    return ckpt


def load_model(
    path: str | Path, device: str | torch.device = "cpu", *, num_classes: int | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved in ``path``; returns ``(model in eval mode on device, checkpoint)``.

    ``num_classes``, when given, must match the checkpoint (ConfigError otherwise).
    """
    from .models import create_model

    ckpt = load_checkpoint(path, device)
    if num_classes is not None and ckpt["num_classes"] != num_classes:
        raise ConfigError(
            f"checkpoint {path} has {ckpt['num_classes']} classes, expected {num_classes}"
        )
    model = create_model(ckpt["arch"], num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def upgrade_checkpoint(path: str | Path, out: str | Path | None = None) -> Path:
    """Rewrite a first-format checkpoint (trusted: it is unpickled) in the current format.

    Writes to ``out`` (default: in place) and returns the path. Current-format files are copied.
    """
    path = Path(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    if fmt not in (CHECKPOINT_FORMAT, *LEGACY_FORMATS):
        raise ConfigError(f"{path} is not a bcpd-sim vision checkpoint")
    if ckpt.get("loss") is None:
        ckpt["loss"] = (ckpt.get("config") or {}).get("loss")
    rng = ckpt.get("rng")
    if isinstance(rng, dict) and isinstance(rng.get("numpy"), tuple):
        name, keys, pos, has_gauss, cached = rng["numpy"]
        rng["numpy"] = {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
    return save_checkpoint(out or path, ckpt)


def main(argv: list[str] | None = None) -> int:
    """``python -m bcpd_sim.vision.checkpoint upgrade PATH...``: upgrade first-format files."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "upgrade":
        print("usage: python -m bcpd_sim.vision.checkpoint upgrade CHECKPOINT...", file=sys.stderr)
        return 2
    for p in args[1:]:
        print(f"upgraded {upgrade_checkpoint(p)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
