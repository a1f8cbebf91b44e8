"""What produced a result: package versions, git commit, device, threads."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def git_commit(path: str | Path | None = None) -> str:
    """The git commit of the checkout holding this package (or ``path``), or "unknown"."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def environment() -> dict[str, str]:
    """Versions of Python and the main libraries, the torch device and thread count."""
    import numpy
    import pandas
    import scipy
    import torch

    from . import __version__

    info = {
        "bcpd_sim": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
        "torch": torch.__version__,
        "torch_threads": str(torch.get_num_threads()),
        "cuda_available": str(torch.cuda.is_available()),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "git_commit": git_commit(),
    }
    return info
