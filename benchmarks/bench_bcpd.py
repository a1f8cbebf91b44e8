"""Time bcpd() on many points against a scipy.stats reference doing the same work.

    python benchmarks/bench_bcpd.py [--n 1000000] [--dim 30] [--classes 10] [--repeats 3]

Prints the project's time, the reference's time (scipy.stats.multivariate_normal.logpdf per
class + scipy.special.softmax), their ratio, and the largest difference between the two.
Target (issue 2): about a second for 1e6 points, d = 30, K = 10 on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats
from scipy.special import softmax

from bcpd_sim.mixtures import IsotropicGaussianMixture


def reference_bcpd(mix: IsotropicGaussianMixture, x: np.ndarray) -> np.ndarray:
    cov = mix.noise_var * np.eye(mix.dim)
    logs = np.stack([stats.multivariate_normal(m, cov).logpdf(x) for m in mix.means], axis=1)
    return softmax(logs + np.log(mix.priors), axis=1)


def best_time(fn, repeats: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=30)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    mix = IsotropicGaussianMixture.lattice(args.classes, args.dim, seed=0)
    x = mix.sample(args.n, seed=1).x
    ours, p = best_time(lambda: mix.bcpd(x), args.repeats)
    ref, q = best_time(lambda: reference_bcpd(mix, x), max(1, args.repeats - 2))
    print(f"bcpd() on n={args.n:,} points, d={args.dim}, K={args.classes} (best of {args.repeats})")
    print(f"  bcpd-sim         : {ours:8.3f} s  ({args.n / ours / 1e6:.2f} M points/s)")
    print(f"  scipy reference  : {ref:8.3f} s")
    print(f"  speed-up         : {ref / ours:8.1f}x")
    print(f"  max |difference| : {np.abs(p - q).max():.2e}")


if __name__ == "__main__":
    main()
