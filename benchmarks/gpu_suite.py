"""Every GPU measurement the project needs, in one short, time-boxed run (two stages).

Stage 0 (correctness, at most ~90 s): every GPU code path at tiny size -- the CUDA-only tests
(graph-captured ensemble step against eager, distillation on CUDA against CPU), ``figure1 --preset
smoke``, a CNN teacher epoch with the ``fast`` recipe (bf16 + channels_last + compile on CUDA), a KD
and a DKD epoch, a two-run sweep, and the CPU-vs-device agreement of a seeded tiny ensemble run.

Stage 1 (speed, at most ~4 minutes): 1,024 toy teacher/student pairs of the paper recipe against
the one-model loop; CIFAR resnet56 (standard and fast recipes) and resnet32x4 (fast) images/s with
the input pipeline; one KD epoch resnet32x4 -> resnet8x4 projected to a full 240-epoch run.

Each step runs in its own process with its own time limit and appends one JSON line to
``$OUT/gpu_results.jsonl`` the moment it finishes (GPU name, stage, exit code, seconds, the
step's own ``RESULT {...}`` metrics), so a run cut short still reports what it did. Nothing is
installed: the steps run from this tree (``PYTHONPATH``), and missing imports are named up front.

    bash benchmarks/gpu_suite.sh              # on the GPU machine, repository root
    bash benchmarks/gpu_suite.sh --dry-run    # the same steps at the smallest sizes, on CPU
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = ["numpy", "scipy", "torch", "pandas", "pyarrow", "matplotlib", "seaborn", "sklearn"]
REQUIRED += ["tqdm", "pytest"]


@dataclass(frozen=True)
class Step:
    """One measurement: a command for the real run and one for the dry run, with time limits."""

    stage: int
    name: str
    full: list[str]
    dry: list[str]
    limit_s: int
    dry_limit_s: int = 150  # generous: CI machines may be shared; the dry run checks paths
    env: dict[str, str] = field(default_factory=dict)


def missing_imports() -> list[str]:
    """Top-level modules the suite needs that this interpreter cannot import."""
    return [m for m in REQUIRED if importlib.util.find_spec(m) is None]


def device_name() -> str:
    """The accelerator's name (``cpu`` where there is none)."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bcpd_sim", *args]


def _bench(script: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / script), *args]


def _synthetic(limit: int, test: int, val: int, batch: int) -> list[str]:
    """Flags of a small run on the exact-BCPD synthetic images (10 classes)."""
    return [
        "--data", "synthetic", "--num-classes", "10", "--train-limit", str(limit),
        "--test-limit", str(test), "--val-size", str(val), "--batch-size", str(batch),
    ]  # fmt: skip


def steps(out: Path) -> list[Step]:
    """The suite, in order; ``out`` holds the run directories the steps create."""
    runs = out / "runs"
    teacher = runs / "teacher"
    ckpt = str(teacher / "checkpoints" / "best.pt")
    full_data, dry_data = _synthetic(4096, 1024, 512, 256), _synthetic(256, 128, 64, 32)

    def teacher_cmd(data: list[str]) -> list[str]:
        return _cli(
            "cifar100", "teacher", "--arch", "resnet8", "--recipe", "fast", "--epochs", "1",
            "--out", str(teacher), *data,
        )  # fmt: skip

    def distill_cmd(method: str, data: list[str]) -> list[str]:
        return _cli(
            "cifar100", "distill", "--teacher", ckpt, "--student", "resnet8", "--method", method,
            "--recipe", "fast", "--epochs", "1", "--out", str(runs / method), *data,
        )  # fmt: skip

    def sweep_cmd(limit: str) -> list[str]:
        return _cli(
            "cifar100", "sweep", "--out", str(runs / "sweep"), "--pair", "resnet8:resnet8",
            "--teacher-losses", "ce", "--seeds", "0", "1", "--recipe", "tiny", "--epochs", "1",
            "--teacher-epochs", "1", "--data", "synthetic", "--num-classes", "10",
            "--train-limit", limit, "--test-limit", "64", "--val-size", "32",
        )  # fmt: skip

    pytest_cuda = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda"]
    pytest_cuda += ["tests/"]
    agree = _bench("gpu_agreement.py")
    figure1 = _cli("figure1", "--preset", "smoke", "--out", str(runs / "figure1_smoke"))
    bench_cifar_dry = ["--images", "128", "--steps", "2", "--warmup", "1", "--batch-size", "16"]
    bench_cifar_dry += ["--workers", "0"]
    return [
        Step(0, "cuda_tests", pytest_cuda, pytest_cuda, 45),
        Step(0, "agreement_cpu_vs_device", agree, [*agree, "--epochs", "1"], 30),
        Step(0, "figure1_smoke", figure1, figure1, 45),
        Step(0, "cnn_teacher_epoch_fast", teacher_cmd(full_data), teacher_cmd(dry_data), 45),
        Step(0, "kd_epoch", distill_cmd("kd", full_data), distill_cmd("kd", dry_data), 30),
        Step(0, "dkd_epoch", distill_cmd("dkd", full_data), distill_cmd("dkd", dry_data), 30),
        Step(0, "sweep_two_runs", sweep_cmd("1024"), sweep_cmd("128"), 45),
        Step(
            1,
            "ensemble_1024_pairs",
            _bench("bench_ensemble.py", "--gpu-target"),
            _bench(
                "bench_ensemble.py",
                "--gpu-target",
                "--members",
                "4",
                "--epochs",
                "1",
                "--n-train",
                "256",
                "--n-val",
                "128",
                "--ref-members",
                "1",
            ),  # fmt: skip
            120,
        ),
        Step(
            1,
            "cifar_resnet56_standard",
            _bench("bench_cifar.py", "--arch", "resnet56", "--recipe", "standard"),
            _bench("bench_cifar.py", "--arch", "resnet8", "--recipe", "standard", *bench_cifar_dry),
            40,
        ),
        Step(
            1,
            "cifar_resnet56_fast",
            _bench("bench_cifar.py", "--arch", "resnet56", "--recipe", "fast"),
            _bench("bench_cifar.py", "--arch", "resnet8", "--recipe", "fast", *bench_cifar_dry),
            40,
        ),
        Step(
            1,
            "cifar_resnet32x4_fast",
            _bench("bench_cifar.py", "--arch", "resnet32x4", "--recipe", "fast"),
            _bench("bench_cifar.py", "--arch", "resnet8", "--recipe", "fast", *bench_cifar_dry),
            40,
        ),
        Step(
            1,
            "kd_epoch_resnet32x4_resnet8x4",
            _bench("bench_distill.py", "--recipes", "fast", "--pairs", "resnet32x4:resnet8x4"),
            _bench(
                "bench_distill.py",
                "--tiny",
                "--recipes",
                "fast",
                "--pairs",
                "resnet8:resnet8",
                "--no-reference",
                "--workers",
                "0",
            ),  # fmt: skip
            90,
        ),
    ]


def parse_results(stdout: str) -> dict:
    """Merge every ``RESULT {json}`` line a step printed (later keys win)."""
    merged: dict = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            try:
                merged.update(json.loads(line[len("RESULT ") :]))
            except json.JSONDecodeError:
                merged.setdefault("unparsed", []).append(line)
    return merged


def run_step(step: Step, dry: bool, out: Path, gpu: str, budget_s: float = float("inf")) -> dict:
    """Run one step under its time limit (and the suite's remaining budget); return its record."""
    cmd, limit = (step.dry, step.dry_limit_s) if dry else (step.full, step.limit_s)
    limit = max(1, int(min(limit, budget_s)))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.update({"PYTHONUNBUFFERED": "1", "BCPD_SIM_PROGRESS": "0", "MPLBACKEND": "Agg"})
    if dry:
        env["CUDA_VISIBLE_DEVICES"] = ""  # the dry run exercises the CPU paths only
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit, check=False
        )
        rc, stdout, stderr, timed_out = proc.returncode, proc.stdout, proc.stderr, False
    except subprocess.TimeoutExpired as exc:
        rc, timed_out = 124, True
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    seconds = time.perf_counter() - t0
    (out / f"{step.name}.log").write_text(f"$ {' '.join(cmd)}\n{stdout}\n--- stderr ---\n{stderr}")
    tail = (stdout + stderr).strip().splitlines()[-4:]
    return {
        "stage": step.stage,
        "step": step.name,
        "gpu": gpu,
        "dry_run": dry,
        "rc": rc,
        "ok": rc == 0,
        "timed_out": timed_out,
        "seconds": round(seconds, 2),
        "limit_s": limit,
        "result": parse_results(stdout),
        "tail": tail,
        "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="smallest sizes, CPU only")
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu-results"))
    parser.add_argument("--only", nargs="*", default=None, help="run only these step names")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="wall-clock cap of the whole suite in seconds (420; 900 for a dry run)",
    )
    args = parser.parse_args(argv)
    missing = missing_imports()
    if missing:
        print(f"gpu_suite: cannot import {', '.join(missing)}; install them first", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    gpu = "cpu (dry run)" if args.dry_run else device_name()
    results = out / "gpu_results.jsonl"
    print(f"gpu_suite: {gpu}; results -> {results}", flush=True)
    budget = args.budget_s if args.budget_s is not None else (900.0 if args.dry_run else 420.0)
    failed, start = 0, time.perf_counter()
    for step in steps(out):
        if args.only is not None and step.name not in args.only:
            continue
        left = budget - (time.perf_counter() - start)
        if left < 5:
            print(f"[stage {step.stage}] {step.name}: skipped, suite budget spent", flush=True)
            failed += 1
            continue
        record = run_step(step, args.dry_run, out, gpu, left)
        with results.open("a") as fh:  # one line per finished step, appended at once
            fh.write(json.dumps(record) + "\n")
        failed += not record["ok"]
        status = "ok" if record["ok"] else ("TIMEOUT" if record["timed_out"] else "FAILED")
        print(f"[stage {step.stage}] {step.name}: {status} in {record['seconds']:.1f} s "
              f"{json.dumps(record['result']) if record['result'] else ''}", flush=True)  # fmt: skip
    print(f"gpu_suite: {failed} step(s) failed; logs and {results.name} in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
