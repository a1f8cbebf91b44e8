"""Bad input across the CLI and the API, as a table: every case ends cleanly and names the problem.

CLI cases call :func:`bcpd_sim.cli.main` in-process and assert the exit code, exactly one line on
stderr, no traceback, and that the line names the key or path (each ``names`` entry is a regular
expression; ``{tmp}`` stands for the case's temporary folder). API cases assert the exception type
and that its message names the key or path. Training must never start: the data loaders of the
CIFAR commands are replaced by a function that fails the test if called.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bcpd_sim import io, metrics
from bcpd_sim.cli import main
from bcpd_sim.errors import ConfigError
from bcpd_sim.rundir import RunDirBusy, open_run_dir

BIG = "1000000000000"  # 10**12


@dataclass
class Cli:
    argv: list[str]
    code: int
    names: list[str]
    setup: Callable[[Path, Any], None] | None = None  # (tmp, monkeypatch)
    check: Callable[[Path], None] | None = None  # after the command
    hold_lock: str | None = None  # a run directory (relative to tmp) locked while the case runs


@dataclass
class Api:
    call: Callable[[Path], Any]
    exc: type[BaseException]
    names: list[str] = field(default_factory=list)
    setup: Callable[[Path, Any], None] | None = None


# --------------------------------------------------------------------------- helpers for setups
def _fig(*sets: str, out: str = "{tmp}/run", extra: tuple[str, ...] = ()) -> list[str]:
    argv = ["figure1", "--preset", "smoke", *extra]
    for s in sets:
        argv += ["--set", s]
    return [*argv, "--out", out]


def _print_config(*sets: str) -> list[str]:
    return _fig(*sets, extra=("--print-config",))


def _teacher(*args: str, out: str = "{tmp}/t") -> list[str]:
    base = "cifar100 teacher --arch resnet8 --recipe tiny --data synthetic --device cpu".split()
    return [*base, *args, "--out", out]


def _distill(*args: str, out: str = "{tmp}/d") -> list[str]:
    base = "cifar100 distill --teacher {tmp}/teacher.pt --student resnet8 --recipe tiny".split()
    return [*base, "--device", "cpu", *args, "--out", out]


def _fake_teacher(tmp: Path, mp) -> None:
    (tmp / "teacher.pt").write_bytes(b"not loaded by a case that is refused first")


def _write(rel: str, data: bytes | str) -> Callable[[Path, Any], None]:
    def setup(tmp: Path, mp) -> None:
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())

    return setup


def _both(*setups) -> Callable[[Path, Any], None]:
    def setup(tmp: Path, mp) -> None:
        for s in setups:
            s(tmp, mp)

    return setup


def _os_error(code: int, text: str, target: str = "bcpd_sim.io.tempfile.mkstemp"):
    def setup(tmp: Path, mp) -> None:
        def fail(*args, dir=None, **kwargs):
            raise OSError(code, text, str(Path(dir or tmp) / "x.tmp"))

        mp.setattr(target, fail)

    return setup


def _mkdir_denied(tmp: Path, mp) -> None:
    original = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if "denied" in str(self):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    mp.setattr(Path, "mkdir", mkdir)


def _unreadable(name: str) -> Callable[[Path, Any], None]:
    def setup(tmp: Path, mp) -> None:
        (tmp / name).write_text("[data]\n")
        original = Path.read_bytes

        def read_bytes(self):
            if self.name == name:
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return original(self)

        mp.setattr(Path, "read_bytes", read_bytes)

    return setup


DEBRIS = [".config.toml.a1b2c3d4.tmp", "cells/.trained-ce.parquet.zz_9y8x7.tmp"]


def _debris_and_other_config(tmp: Path, mp) -> None:
    run = tmp / "run"
    (run / "cells").mkdir(parents=True)
    (run / "config.toml").write_text('preset = "other"\n')
    for name in DEBRIS:
        (run / name).write_bytes(b"")
    (run / "notes.tmp").write_text("the user's own file")


def _debris_swept(tmp: Path) -> None:
    assert not any((tmp / "run" / name).exists() for name in DEBRIS)
    assert (tmp / "run" / "notes.tmp").exists()  # not ours: kept


def _config_unchanged(tmp: Path) -> None:
    assert (tmp / "run" / "config.toml").read_text() == 'preset = "other"\n'


def _plot_dir(config_text: str | None) -> Callable[[Path, Any], None]:
    def setup(tmp: Path, mp) -> None:
        import pandas as pd

        (tmp / "run").mkdir()
        pd.DataFrame({"a": [1]}).to_parquet(tmp / "run" / "results.parquet")
        if config_text is not None:
            (tmp / "run" / "config.toml").write_text(config_text)

    return setup


# --------------------------------------------------------------------------- the CLI table
CLI_CASES = {
    # 1. run directories: one writer, one config
    "figure1-locked-run-dir": Cli(
        _fig(), 75, ["{tmp}/run", r"pid \d+", "holder-cmd"], hold_lock="run"
    ),
    "teacher-locked-run-dir": Cli(_teacher(), 75, ["{tmp}/t", r"pid \d+"], hold_lock="t"),
    "distill-locked-run-dir": Cli(
        _distill(), 75, ["{tmp}/d", r"pid \d+"], _fake_teacher, hold_lock="d"
    ),
    "theorem1-locked-run-dir": Cli(
        ["theorem1", "--n", "100", "--out", "{tmp}/t1"],
        75,
        ["{tmp}/t1", r"pid \d+"],
        hold_lock="t1",
    ),
    **{
        f"{study}-locked-run-dir": Cli(
            [study, "--out", "{tmp}/x"], 75, ["{tmp}/x", r"pid \d+"], hold_lock="x"
        )
        for study in ("binary", "bound", "regimes", "semisup")
    },
    "sweep-locked-run-dir": Cli(
        "cifar100 sweep --pair resnet8:resnet8 --recipe tiny --data synthetic --device cpu --out {tmp}/s".split(),
        75,
        ["{tmp}/s", r"pid \d+"],
        hold_lock="s",
    ),
    "figure1-other-config-in-run-dir": Cli(
        _fig(),
        2,
        ["{tmp}/run/config.toml", "different config"],
        _debris_and_other_config,
        _config_unchanged,
    ),
    "figure1-out-is-a-file": Cli(_fig(), 2, ["{tmp}/run", "not a directory"], _write("run", "x")),
    "teacher-out-is-a-file": Cli(_teacher(), 2, ["{tmp}/t", "not a directory"], _write("t", "x")),
    # 2. operating-system errors
    "figure1-out-below-a-file": Cli(
        _fig(out="{tmp}/f/run"), 2, ["{tmp}/f", "Not a directory"], _write("f", "x")
    ),
    "teacher-out-below-a-file": Cli(_teacher(out="{tmp}/f/t"), 2, ["{tmp}/f"], _write("f", "x")),
    "figure1-out-permission-denied": Cli(
        _fig(out="{tmp}/denied/run"), 1, ["{tmp}/denied", "Permission denied"], _mkdir_denied
    ),
    "figure1-disk-full": Cli(
        _fig(),
        1,
        ["{tmp}/run/", "No space left on device", "rerun"],
        _os_error(errno.ENOSPC, "No space left on device"),
    ),
    "figure1-read-only-fs": Cli(
        _fig(),
        1,
        ["{tmp}/run/", "Read-only file system"],
        _os_error(errno.EROFS, "Read-only file system"),
    ),
    "teacher-disk-full": Cli(
        _teacher(),
        1,
        ["{tmp}/t/", "No space left"],
        _os_error(errno.ENOSPC, "No space left on device"),
    ),
    "figure1-config-unreadable": Cli(
        _fig(extra=("--config", "{tmp}/u.toml")),
        2,
        ["{tmp}/u.toml", "permission denied"],
        _unreadable("u.toml"),
    ),
    "theorem1-out-below-a-file": Cli(
        ["theorem1", "--n", "100", "--out", "{tmp}/f/t1"],
        2,
        ["{tmp}/f", "Not a directory"],
        _write("f", "x"),
    ),
    "theorem1-out-permission-denied": Cli(
        ["theorem1", "--n", "100", "--out", "{tmp}/denied/t1"],
        1,
        ["{tmp}/denied", "Permission denied"],
        _mkdir_denied,
    ),
    "distill-disk-full": Cli(
        _distill(),
        1,
        ["{tmp}/d/", "No space left"],
        _both(_fake_teacher, _os_error(errno.ENOSPC, "No space left on device")),
    ),
    "figure1-config-is-a-directory": Cli(_fig(extra=("--config", "{tmp}")), 2, ["{tmp}"]),
    "figure1-config-missing": Cli(
        _fig(extra=("--config", "{tmp}/none.toml")), 2, ["{tmp}/none.toml"]
    ),
    "figure1-config-dev-null": Cli(_fig(extra=("--config", "/dev/null")), 2, ["/dev/null"]),
    "figure1-config-binary": Cli(
        _fig(extra=("--config", "{tmp}/b.toml")),
        2,
        ["{tmp}/b.toml"],
        _write("b.toml", b"\xff\xfe\x00\x81"),
    ),
    "figure1-config-malformed": Cli(
        _fig(extra=("--config", "{tmp}/m.toml")),
        2,
        ["{tmp}/m.toml"],
        _write("m.toml", "[data\nn_train = 3"),
    ),
    # 3. upper bounds, refused before any work (--print-config refuses what the run refuses)
    **{
        f"figure1-huge-{key}": Cli(_print_config(f"{key}={value}"), 2, [re.escape(key)])
        for key, value in [
            ("data.n_train", BIG),
            ("data.n_test", BIG),
            ("train.batch_size", BIG),
            ("train.epochs", BIG),
            ("train.width", f"[{BIG}]"),
            ("simulated.eta_uniform", BIG),
            ("trained.seeds", BIG),
            ("bootstrap", BIG),
        ]
    },
    "theorem1-huge-n": Cli(["theorem1", "--n", BIG, "--out", "{tmp}/t1"], 2, ["--n", "GiB"]),
    "theorem1-huge-train-n": Cli(
        ["theorem1", "--train-n", BIG, "--out", "{tmp}/t1"], 2, ["train_n", "GiB"]
    ),
    "teacher-huge-num-classes": Cli(_teacher("--num-classes", "1000000"), 2, [r"num[-_]classes"]),
    "teacher-huge-train-limit": Cli(_teacher("--train-limit", BIG), 2, [r"train[-_]limit"]),
    # 4. bad values found at the boundary, not after work
    "figure1-widths-not-a-list-of-lists": Cli(
        _print_config("trained.widths=[32]"), 2, ["trained.widths"]
    ),
    "figure1-sample-seed-overflows": Cli(
        _print_config("data.sample_seed=" + "1" + "0" * 30), 2, ["data.sample_seed"]
    ),
    "figure1-negative-lr": Cli(_print_config("train.lr=-0.1"), 2, ["train.lr"]),
    "figure1-nan-lr": Cli(_print_config("train.lr=nan"), 2, ["train.lr"]),
    "figure1-unknown-key": Cli(_print_config("data.nope=1"), 2, ["data.nope"]),
    "figure1-unknown-mixture": Cli(
        _print_config('data.mixture="nope"'), 2, ["data.mixture", "nope"]
    ),
    "figure1-set-without-value": Cli(_print_config("data.n_train"), 2, ["--set", "data.n_train"]),
    "figure1-unknown-preset": Cli(["figure1", "--preset", "nope"], 2, ["--preset", "nope"]),
    "teacher-zero-train-limit": Cli(_teacher("--train-limit", "0"), 2, [r"train[-_]limit"]),
    "teacher-negative-train-limit": Cli(_teacher("--train-limit", "-5"), 2, [r"train[-_]limit"]),
    "teacher-one-class": Cli(_teacher("--num-classes", "1"), 2, [r"num[-_]classes"]),
    "teacher-zero-epochs": Cli(_teacher("--epochs", "0"), 2, ["epochs"]),
    "teacher-zero-batch-size": Cli(_teacher("--batch-size", "0"), 2, [r"batch[-_]size"]),
    "teacher-negative-lr": Cli(_teacher("--lr", "-1"), 2, ["lr"]),
    "teacher-unknown-arch": Cli(_teacher("--arch", "resnet9000"), 2, ["arch", "resnet9000"]),
    "distill-zero-temperature": Cli(
        _distill("--option", "temperature=0"), 2, ["temperature"], _fake_teacher
    ),
    "distill-missing-teacher": Cli(_distill(), 2, ["{tmp}/teacher.pt"]),
    # 6. (p* precision has no CLI input; see the API table)
    # 7. debris: swept at start, only ours, even when the run is then refused
    "figure1-debris-swept-then-refused": Cli(
        _fig(), 2, ["{tmp}/run"], _debris_and_other_config, _debris_swept
    ),
    # 8. messages that name the key, the value and what is allowed
    "theorem1-negative-seed": Cli(
        ["theorem1", "--seed", "-1", "--out", "{tmp}/t1"], 2, ["--seed", "-1", ">= 0"]
    ),
    "theorem1-seed-too-large": Cli(
        ["theorem1", "--seed", "4294967296", "--out", "{tmp}/t1"], 2, ["--seed", "4294967295"]
    ),
    "theorem1-negative-mixture-seed": Cli(
        ["theorem1", "--mixture-seed", "-1", "--out", "{tmp}/t1"], 2, ["--mixture-seed", "-1"]
    ),
    "theorem1-huge-mixture-seed": Cli(
        ["theorem1", "--mixture-seed", "1" + "0" * 30, "--out", "{tmp}/t1"], 2, ["--mixture-seed"]
    ),
    "theorem1-n-one": Cli(["theorem1", "--n", "1", "--out", "{tmp}/t1"], 2, ["--n", ">= 2"]),
    "theorem1-train-n-zero": Cli(
        ["theorem1", "--train-n", "0", "--out", "{tmp}/t1"], 2, ["--train-n"]
    ),
    "theorem1-unknown-mixture": Cli(["theorem1", "--mixture", "nope"], 2, ["--mixture", "nope"]),
    "theorem1-n-not-a-number": Cli(["theorem1", "--n", "ten"], 2, ["--n", "ten"]),
    "figure1-negative-mixture-seed": Cli(
        _print_config("data.mixture_seed=-1"), 2, ["data.mixture_seed", "-1"]
    ),
    "figure1-negative-trained-seed": Cli(
        _print_config("trained.seed=-1"), 2, [r"trained\.seed", "-1"]
    ),
    "figure1-negative-simulated-seed": Cli(
        _print_config("simulated.seed=-1"), 2, [r"simulated\.seed", "-1"]
    ),
    "plot-missing-run-dir": Cli(["plot", "{tmp}/none"], 2, ["{tmp}/none"]),
    "plot-malformed-config": Cli(
        ["plot", "{tmp}/run"], 2, ["{tmp}/run/config.toml"], _plot_dir('preset = "x\n[data\n')
    ),
    "plot-bad-value-in-config": Cli(
        ["plot", "{tmp}/run"],
        2,
        ["{tmp}/run/config.toml", "data.n_train"],
        _plot_dir('[data]\nn_train = "abc"\n'),
    ),
    "plot-config-missing": Cli(
        ["plot", "{tmp}/run"], 2, ["{tmp}/run/config.toml"], _plot_dir(None)
    ),
    "plot-run-dir-is-a-file": Cli(["plot", "{tmp}/f"], 2, ["{tmp}/f"], _write("f", "x")),
    "unknown-command": Cli(["nope"], 2, ["nope"]),
}


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a CIFAR command gets as far as loading data."""

    def refuse(*args, **kwargs):
        raise AssertionError("work started before the input was validated")

    monkeypatch.setattr("bcpd_sim.vision.bundle.load_data", refuse)  # under load_for_recipe too
    monkeypatch.setattr("bcpd_sim.vision.train.load_data", refuse)
    monkeypatch.setattr("bcpd_sim.vision.sweep.run_sweep", refuse)
    monkeypatch.setattr("bcpd_sim.figure1.study.prepare_data", refuse)
    monkeypatch.setattr("bcpd_sim.theory.report.verify_theorem1", refuse)
    for runner in (
        "bcpd_sim.studies.binary.mlp.run_binary",
        "bcpd_sim.studies.bound.study.run_bound",
        "bcpd_sim.regimes.study.run_regimes",
        "bcpd_sim.studies.semisup.run_semisup",
    ):
        monkeypatch.setattr(runner, refuse)


def _expand(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp))


@pytest.mark.parametrize("case", CLI_CASES.values(), ids=CLI_CASES.keys())
def test_cli_bad_input(case: Cli, tmp_path, capsys, monkeypatch, no_training):
    monkeypatch.delenv("BCPD_SIM_CIFAR100", raising=False)
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    argv = [_expand(a, tmp_path) for a in case.argv]
    if case.hold_lock is not None:
        with open_run_dir(tmp_path / case.hold_lock, command="holder-cmd"):
            code = _run(argv)
    else:
        code = _run(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert code == case.code, err
    for name in case.names:
        expanded = _expand(name, tmp_path)
        assert expanded in lines[0] or re.search(expanded, lines[0]), (
            f"{name!r} not named in: {lines[0]}"
        )
    if case.check is not None:
        case.check(tmp_path)


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code)


# --------------------------------------------------------------------------- the API table
RNG = np.random.default_rng(0)
Q = RNG.dirichlet(np.ones(3), size=(2, 20))
P = RNG.dirichlet(np.ones(3), size=20)
Y = RNG.integers(0, 3, 20)


def _q(kind: str) -> np.ndarray:
    q = Q.copy()
    q[0, 5] = {
        "half": q[0, 5] / 2,
        "triple": q[0, 5] * 3,
        "negative": [1.5, -0.5, 0.0],
        "nan": [np.nan, 0.5, 0.5],
        "inf": [np.inf, 0.0, 0.0],
    }[kind]
    return q


def _iso(**kw):
    from bcpd_sim.mixtures import IsotropicGaussianMixture

    args = {"means": [[0.0, 0.0], [1.0, 0.0]], "noise_var": 1.0} | kw
    return IsotropicGaussianMixture(**args)


def _far(dist):
    return lambda tmp: dist().bcpd(np.array([[1e160] + [0.0] * (dist().dim - 1)]))


def _full():
    from bcpd_sim.mixtures import GaussianMixture

    return GaussianMixture([[0.0, 0.0], [1.0, 0.0]], np.stack([np.eye(2)] * 2))


def _multi():
    from bcpd_sim.mixtures import MultiModalGaussianMixture

    return MultiModalGaussianMixture(np.zeros((2, 2, 2)) + [[[0, 0]], [[1, 0]]], 1.0)


def _warped():
    from bcpd_sim.mixtures import CouplingWarp, WarpedMixture

    return WarpedMixture(_iso(), CouplingWarp(2, num_layers=1, seed=0))


def _noisy():
    from bcpd_sim.mixtures import LabelNoiseMixture

    return LabelNoiseMixture.symmetric(_iso(), 0.1)


def _enospc(tmp: Path, mp) -> None:
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    mp.setattr(Path, "write_bytes", full)


def _theorem1(**kw):
    from bcpd_sim.theory.report import run_theorem1

    return lambda tmp: run_theorem1(tmp / "t1", **kw)


def _locked(tmp: Path):
    with open_run_dir(tmp / "r"), open_run_dir(tmp / "r"):
        pass


def _other_config(tmp: Path):
    with open_run_dir(tmp / "r", "a = 1\n"):
        pass
    with open_run_dir(tmp / "r", "a = 2\n"):
        pass


def _members_seed(tmp: Path):
    from bcpd_sim.ensemble import train

    x = RNG.normal(size=(20, 2))
    return train(x, Y, members=[-1], num_classes=3, epochs=1)


API_CASES = {
    # 5. metrics refuse impossible probabilities
    "mse_to_bcpd-rows-sum-to-half": Api(
        lambda t: metrics.mse_to_bcpd(_q("half"), P), ConfigError, [r"q\[0, 5\]", "sums to"]
    ),
    "kl_to_bcpd-rows-sum-to-3": Api(
        lambda t: metrics.kl_to_bcpd(_q("triple"), P), ConfigError, [r"q\[0, 5\]", "sums to"]
    ),
    "nll-negative-entry": Api(
        lambda t: metrics.nll(_q("negative"), Y), ConfigError, [r"q\[0, 5\]", "negative"]
    ),
    "brier-nan-entry": Api(
        lambda t: metrics.brier(_q("nan"), Y), ConfigError, [r"q\[0, 5\]", "NaN"]
    ),
    "ece-inf-entry": Api(lambda t: metrics.ece(_q("inf"), Y), ConfigError, [r"q\[0, 5\]"]),
    "accuracy-rows-sum-to-half": Api(
        lambda t: metrics.accuracy(_q("half"), Y), ConfigError, [r"q\[0, 5\]"]
    ),
    "ce_to_bcpd-bad-p-star": Api(
        lambda t: metrics.ce_to_bcpd(Q, P * 2), ConfigError, [r"p_star\[0\]", "sums to 2"]
    ),
    "frobenius-negative-p-star": Api(
        lambda t: metrics.frobenius_to_bcpd(Q, P - 0.5), ConfigError, [r"p_star\[\d+\]", "negative"]
    ),
    "evaluate-bad-q": Api(
        lambda t: metrics.evaluate(_q("triple"), y=Y, p_star=P), ConfigError, [r"q\[0, 5\]"]
    ),
    "evaluate-unknown-metric": Api(
        lambda t: metrics.evaluate(Q, y=Y, metrics=["auc"]), ConfigError, ["metric", "auc"]
    ),
    # 6. p* far from the origin: overflow is an error, never NaN; bad distribution parameters
    "isotropic-overflow": Api(_far(_iso), ConfigError, ["x", "overflow"]),
    "full-covariance-overflow": Api(_far(_full), ConfigError, ["x", "overflow"]),
    "multimodal-overflow": Api(_far(_multi), ConfigError, ["x", "overflow"]),
    "warped-overflow": Api(_far(_warped), ConfigError, ["x", "overflow"]),
    "label-noise-overflow": Api(_far(_noisy), ConfigError, ["x", "overflow"]),
    "bcpd-nan-input": Api(lambda t: _iso().bcpd([[np.nan, 0.0]]), ConfigError, ["x", "finite"]),
    "bcpd-wrong-shape": Api(
        lambda t: _iso().bcpd(np.zeros((3, 5))), ConfigError, ["x", r"\(n, 2\)"]
    ),
    "means-with-nan": Api(
        lambda t: _iso(means=[[np.nan, 0.0], [1.0, 0.0]]), ConfigError, ["means"]
    ),
    "zero-noise-var": Api(lambda t: _iso(noise_var=0.0), ConfigError, ["noise_var", "> 0"]),
    "negative-noise-var": Api(lambda t: _iso(noise_var=-1.0), ConfigError, ["noise_var"]),
    "priors-sum-to-half": Api(
        lambda t: _iso(priors=[0.25, 0.25]), ConfigError, ["priors", "sum to 1"]
    ),
    "covariance-not-spd": Api(
        lambda t: __import__("bcpd_sim.mixtures", fromlist=["x"]).GaussianMixture(
            np.zeros((2, 2)), np.stack([np.eye(2), -np.eye(2)])
        ),
        ConfigError,
        [r"covariances\[1\]", "positive definite"],
    ),
    "noise-rate-above-1": Api(
        lambda t: __import__("bcpd_sim.mixtures", fromlist=["x"]).symmetric_transition(3, 1.5),
        ConfigError,
        ["rate", "1.5"],
    ),
    "transition-not-stochastic": Api(
        lambda t: __import__("bcpd_sim.mixtures", fromlist=["x"]).LabelNoiseMixture(
            _iso(), np.ones((2, 2))
        ),
        ConfigError,
        ["transition"],
    ),
    "unknown-mixture": Api(
        lambda t: __import__("bcpd_sim.mixtures", fromlist=["x"]).make_mixture("nope"),
        ConfigError,
        ["mixture", "nope"],
    ),
    "sample-zero-points": Api(lambda t: _iso().sample(0), ConfigError, ["n", ">= 1"]),
    # 2. operating-system errors through the API name the file asked for
    "write-json-below-a-file": Api(
        lambda t: io.write_json(t / "f" / "a.json", {}),
        NotADirectoryError,
        ["{tmp}/f"],
        _write("f", "x"),
    ),
    "save-torch-disk-full": Api(
        lambda t: io.save_torch(t / "c.pt", {"a": 1}), OSError, ["{tmp}/c.pt"], _enospc
    ),
    "write-table-bad-suffix": Api(
        lambda t: io.write_table(t / "a.txt", None), ValueError, ["{tmp}/a.txt"]
    ),
    # 1. run directories
    "run-dir-locked": Api(_locked, RunDirBusy, ["{tmp}/r", r"pid \d+"]),
    "run-dir-other-config": Api(_other_config, ConfigError, ["{tmp}/r/config.toml"]),
    "run-dir-is-a-file": Api(
        lambda t: open_run_dir(t / "f").__enter__(), ConfigError, ["{tmp}/f"], _write("f", "x")
    ),
    # 3. / 8. theorem1 and the ensemble trainer
    "theorem1-huge-n": Api(_theorem1(n=10**12), ConfigError, ["n", "GiB"]),
    "theorem1-negative-seed": Api(_theorem1(seed=-1), ConfigError, ["seed", "-1"]),
    "theorem1-unknown-mixture": Api(_theorem1(mixture="nope"), ConfigError, ["mixture", "nope"]),
    "ensemble-negative-member-seed": Api(_members_seed, ConfigError, [r"members\[0\]\.seed", "-1"]),
}


@pytest.mark.parametrize("case", API_CASES.values(), ids=API_CASES.keys())
def test_api_bad_input(case: Api, tmp_path, capsys, monkeypatch):
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    with pytest.raises(case.exc) as info:
        case.call(tmp_path)
    message = str(info.value)
    assert "\n" not in message.strip()
    for name in case.names:
        expanded = _expand(name, tmp_path)
        assert expanded in message or re.search(expanded, message), f"{name!r} not in: {message}"
    assert "Traceback" not in capsys.readouterr().err


def test_the_table_is_large_enough():
    assert len(CLI_CASES) + len(API_CASES) >= 80
