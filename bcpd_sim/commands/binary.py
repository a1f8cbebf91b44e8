"""``bcpd-sim binary``: CE vs MSE teachers for binary students on merged classes (paper Table 4)."""

from __future__ import annotations

import argparse

NAME = "binary"
HELP = "binary super-classes (paper Table 4): CE vs MSE teachers, KD/AT students, exact p*"
DESCRIPTION = (
    "Merges classes into two super-classes (first half vs second half: CIFAR-2x5 merges CIFAR-10's "
    "classes 0-4 and 5-9), trains CE and MSE teachers on the merged labels and distils students. "
    "Presets smoke/quick/large: toy MLPs on a mixture with exact p* (methods kd, soft). Presets "
    "cnn_smoke/cnn_tiny/cnn_gpu: CNNs on synthetic images with exact p* or, with --data cifar2x5, "
    "on CIFAR-10 (methods kd, at, ...). Writes results.parquet, summary.json, binary.png/.pdf."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..config import add_config_arguments
    from ..studies.binary.cnn import CNN_PRESETS
    from ..studies.binary.mlp import PRESETS

    presets = sorted(PRESETS) + sorted(CNN_PRESETS)
    add_config_arguments(parser, presets=presets, default_preset="quick")
    parser.add_argument(
        "--data", default=None, choices=["synthetic", "cifar2x5"],
        help="cnn presets: synthetic images (default) or CIFAR-2x5 from CIFAR-10",
    )  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 folder (or $BCPD_SIM_CIFAR10)")
    parser.add_argument("--out", default=None, help="run directory (default runs/binary-<preset>)")
    parser.add_argument(
        "--plot-only", action="store_true", help="redraw from an existing --out, no training"
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..rundir import open_run_dir
    from ..studies.binary.cnn import CNN_PRESETS, load_cnn_config, run_binary_cnn
    from ..studies.binary.mlp import load_config, run_binary, summarize
    from ..studies.binary.plot import format_table, render
    from ..studies.config import to_toml

    overrides = list(args.overrides)
    if args.preset in CNN_PRESETS:
        flags = {"data": args.data, "data_dir": args.data_dir}
        flags = {k: v for k, v in flags.items() if v is not None}
        cfg = load_cnn_config(args.preset, file=args.config, overrides=overrides, flags=flags)
        runner = run_binary_cnn
    else:
        if args.data or args.data_dir:
            raise ConfigError(
                f"--data / --data-dir apply to the cnn presets ({', '.join(CNN_PRESETS)}), "
                f"not to {args.preset!r}"
            )
        cfg = load_config(args.preset, file=args.config, overrides=overrides)
        runner = run_binary
    if args.print_config:
        print(to_toml(cfg))
        return 0
    out = args.out or f"runs/binary-{args.preset}"
    if not args.plot_only:
        with open_run_dir(out):  # one writer at a time
            runner(cfg, out)
    print(format_table(render(out, summarize)))
    print(f"wrote {out}/results.parquet, summary.json, binary.png, binary.pdf")
    return 0
