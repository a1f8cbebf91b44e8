"""A seeded tiny ensemble run on the CPU and on the accelerator agree within a stated tolerance.

Same members, same data, same seeds, float32 on both sides with TF32 off; the two runs differ only
in floating-point summation order, so after a few epochs their predicted probabilities on fresh
points differ by round-off grown through training: we require a maximum absolute difference
below ``--tol`` (default 1e-3) and identical argmax on at least 99.5% of points. Without an
accelerator (the dry run) both sides are the CPU and the difference must be exactly 0.

Prints one ``RESULT {json}`` line for ``benchmarks/gpu_suite.py``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from bcpd_sim.ensemble import train
from bcpd_sim.mixtures import IsotropicGaussianMixture


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--tol", type=float, default=1e-3)
    args = parser.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    mix = IsotropicGaussianMixture.lattice(num_classes=10, dim=30, delta=1.0, noise_var=6.0, seed=0)
    tr, va, te = mix.sample(1024, seed=1), mix.sample(256, seed=2), mix.sample(2048, seed=3)
    other = "cuda" if torch.cuda.is_available() else "cpu"
    probs = {}
    for device in ("cpu", other):
        model = train(
            tr.x, tr.y, members=args.members, loss="ce", epochs=args.epochs, lr=5e-3,
            batch_size=32, x_val=va.x, y_val=va.y, device=device, capture="eager",
        )  # fmt: skip
        probs[device] = np.asarray(model.predict_proba(te.x), dtype=np.float64)
    a, b = probs["cpu"], probs[other]
    max_diff = float(np.abs(a - b).max())
    argmax_agree = float((a.argmax(-1) == b.argmax(-1)).mean())
    tol = args.tol if other == "cuda" else 0.0
    ok = max_diff <= tol and argmax_agree >= (0.995 if other == "cuda" else 1.0)
    print(
        f"cpu vs {other}: max |dp| = {max_diff:.3g} (tol {tol:g}), argmax agree {argmax_agree:.4f}"
    )
    result = {"device": other, "max_abs_diff": max_diff, "tol": tol, "argmax_agree": argmax_agree}
    print("RESULT " + json.dumps({**result, "agree": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
