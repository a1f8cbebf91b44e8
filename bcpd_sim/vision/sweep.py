"""A grid of distillation runs: teacher -> student pairs x methods x teacher losses x seeds.

The sweep first trains every teacher it needs (one per teacher architecture, teacher loss and
teacher seed; student seed ``s`` uses teacher seed ``s % teacher_seeds``), then every distillation
run. Runs live under the sweep folder with names derived from their settings::

    OUT/teachers/<arch>-<loss>-t<teacher seed>/          (a teacher run; done: summary.json)
    OUT/runs/<teacher>-<loss>-t<tseed>__<student>__<method>__s<seed>/   (done: result.json)

so a rerun skips finished runs and resumes interrupted ones (from their ``last.pt``). By default
the runs execute one after the other in this process. With ``ray_address`` the same jobs run as
Ray tasks on an existing cluster (``"auto"``, ``"ray://host:10001"``, or a local instance already
started with ``ray.init``), one GPU per run when the cluster has GPUs; a distillation task waits
for its teacher's task. Workers must be able to import ``bcpd_sim`` (install the package there)
and see the sweep folder (a shared file system) and the data.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..validation import check_choice
from .configs import (
    MAX_SEED,
    DataOptions,
    RecipeOptions,
    RunOptions,
    check_fields,
    fields_of,
    method_names,
    model_names,
    option,
)
from .losses import list_losses

TEACHER_DONE = "summary.json"


@dataclass(frozen=True, kw_only=True)
class SweepSpec(RunOptions, RecipeOptions, DataOptions):
    """What a sweep runs; the recipe overrides and run options apply to teachers and students
    alike (``teacher_epochs``, when set, replaces ``epochs`` for the teachers)."""

    out: str = option("", "sweep folder (teachers/, runs/, table.md)")
    pairs: list[tuple[str, str]] = option(
        [], "teacher:student architecture pairs (--pair T:S)", flag=False
    )
    methods: list[str] = option(
        ["kd"], "distillation methods", choices=method_names, label="distillation method"
    )
    teacher_losses: list[str] = option(
        ["ce", "mse"], "teacher losses", choices=list_losses, label="teacher loss"
    )
    seeds: list[int] = option([0, 1, 2], "student seeds", range=(0, MAX_SEED))
    teacher_seeds: int = option(
        1,
        "distinct teachers per (arch, loss); student seed s uses teacher seed s % N",
        range=(1, 10_000),
    )
    teacher_epochs: int | None = option(
        None, "teachers' epochs (default: epochs)", range=(1, 100_000)
    )
    method_options: dict[str, dict[str, Any]] = option(
        {}, "per-method hyper-parameters (--method-options JSON)", flag=False
    )

    def validate(self) -> SweepSpec:
        if not self.out:
            raise ConfigError("out must name the sweep folder (--out DIR)")
        if not self.pairs:
            raise ConfigError("pairs must name at least one teacher:student pair")
        for teacher, student in self.pairs:
            check_choice("teacher architecture", teacher, model_names())
            check_choice("student architecture", student, model_names())
        if not self.methods:
            raise ConfigError("methods must name at least one distillation method")
        if not self.seeds:
            raise ConfigError("seeds must list at least one seed")
        check_fields(self)
        unknown = set(self.method_options) - set(self.methods)
        if unknown:
            raise ConfigError(f"method_options for methods not in the sweep: {sorted(unknown)}")
        from .distill import method_class

        for method, options in self.method_options.items():
            method_class(method).check_options(options)
        self.make_recipe()
        return self


@dataclass
class Job:
    """One run of the sweep: a teacher or a distillation, with its config and run folder."""

    kind: str  # "teacher" or "distill"
    name: str
    run_dir: Path
    config: Any
    depends_on: str | None = None

    @property
    def done(self) -> bool:
        """Finished, by this job's config (a run made by another config is never reused)."""
        marker = TEACHER_DONE if self.kind == "teacher" else "result.json"
        if not (self.run_dir / marker).is_file():
            return False
        return self.made_by_this_config()

    def made_by_this_config(self) -> bool:
        """Whether ``config.json`` records this job's settings (fields fit() ignores aside)."""
        from .train import RESUME_IGNORED

        try:
            saved = json.loads((self.run_dir / "config.json").read_text())["config"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        wanted = {k: v for k, v in asdict(self.config).items() if k not in RESUME_IGNORED}
        return all(saved.get(k) == v for k, v in wanted.items())


def _common(spec: SweepSpec) -> dict[str, Any]:
    """What every job of the sweep shares: the recipe overrides and the run options."""
    return {**fields_of(spec, RecipeOptions), **fields_of(spec, RunOptions)}


def plan(spec: SweepSpec) -> tuple[list[Job], list[Job]]:
    """The teacher jobs and the distillation jobs of ``spec`` (finished or not)."""
    from .distill.trainer import DistillConfig
    from .train import TeacherConfig

    spec.validate()
    out = Path(spec.out)
    teachers: dict[str, Job] = {}
    runs: list[Job] = []
    for t_arch, s_arch in spec.pairs:
        for loss in spec.teacher_losses:
            for seed in spec.seeds:
                t_seed = seed % spec.teacher_seeds
                t_name = f"{t_arch}-{loss}-t{t_seed}"
                if t_name not in teachers:
                    teachers[t_name] = Job(
                        "teacher",
                        t_name,
                        out / "teachers" / t_name,
                        TeacherConfig(
                            out=str(out / "teachers" / t_name),
                            arch=t_arch,
                            loss=loss,
                            seed=t_seed,
                            **fields_of(spec, DataOptions),
                            **{**_common(spec), "epochs": spec.teacher_epochs or spec.epochs},
                        ),
                    )
                for method in spec.methods:
                    name = f"{t_name}__{s_arch}__{method}__s{seed}"
                    runs.append(
                        Job(
                            "distill",
                            name,
                            out / "runs" / name,
                            DistillConfig(
                                out=str(out / "runs" / name),
                                teacher=str(teachers[t_name].run_dir / "checkpoints" / "last.pt"),
                                student=s_arch,
                                method=method,
                                method_options=dict(spec.method_options.get(method, {})),
                                data_dir=spec.data_dir,
                                download=spec.download,
                                seed=seed,
                                **_common(spec),
                            ),
                            depends_on=t_name,
                        )
                    )
    return list(teachers.values()), runs


def execute(job: Job) -> dict[str, Any]:
    """Run one job in this process (resuming it if interrupted); return its summary/result."""
    if job.kind == "teacher":
        from .train import train_teacher

        return train_teacher(replace(job.config))
    from .distill.trainer import distill

    return distill(replace(job.config))


@dataclass
class SweepReport:
    """What a sweep did: job names skipped (already finished), run, and failed (with errors)."""

    skipped: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_sweep(
    spec: SweepSpec,
    *,
    ray_address: str | None = None,
    log: Callable[[str], None] = print,
) -> SweepReport:
    """Run every unfinished job of ``spec``, locally or on Ray; failures are collected, not
    raised, so one bad run does not stop the others (a run whose teacher failed is not started)."""
    teachers, runs = plan(spec)
    if ray_address is not None:
        return _run_on_ray(teachers, runs, ray_address, log)
    report = SweepReport()
    failed_teachers: set[str] = set()
    for job in [*teachers, *runs]:
        if job.done:
            report.skipped.append(job.name)
            continue
        if job.depends_on in failed_teachers:
            report.failed[job.name] = f"teacher {job.depends_on} failed"
            continue
        log(f"[sweep] {job.kind} {job.name}")
        try:
            execute(job)
        except Exception as exc:  # report and go on with the other runs
            report.failed[job.name] = f"{type(exc).__name__}: {exc}"
            log(f"[sweep] FAILED {job.name}: {type(exc).__name__}: {exc}")
            if job.kind == "teacher":
                failed_teachers.add(job.name)
            continue
        report.ran.append(job.name)
    return report


def _ray_execute(job: Job, *teacher_results: Any) -> dict[str, Any]:
    """The body of a Ray task: run the job and return its result (errors as a dict)."""
    for dep in teacher_results:
        if isinstance(dep, dict) and dep.get("__error__"):
            return {"__error__": f"teacher failed: {dep['__error__']}"}
    try:
        return execute(job)
    except Exception as exc:
        return {"__error__": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def _run_on_ray(teachers: list[Job], runs: list[Job], address: str, log) -> SweepReport:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--ray-address needs Ray: pip install 'bcpd-sim[ray]' (or pip install ray)"
        ) from None
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0)
    resources = {"num_gpus": 1} if gpus > 0 else {"num_cpus": 1}
    task = ray.remote(max_retries=0, **resources)(_ray_execute)
    report = SweepReport()
    refs: dict[str, Any] = {}
    for job in teachers:
        if job.done:
            report.skipped.append(job.name)
            refs[job.name] = {}
        else:
            log(f"[sweep/ray] submit teacher {job.name}")
            refs[job.name] = task.remote(job)
    pending = {}
    for job in runs:
        if job.done:
            report.skipped.append(job.name)
            continue
        log(f"[sweep/ray] submit distill {job.name}")
        pending[job.name] = task.remote(job, refs[job.depends_on])
    pending.update({name: ref for name, ref in refs.items() if not isinstance(ref, dict)})
    for name, ref in pending.items():
        try:
            result = ray.get(ref)
        except Exception as exc:  # a worker crash, not a run error
            report.failed[name] = f"{type(exc).__name__}: {exc}"
            continue
        if isinstance(result, dict) and result.get("__error__"):
            report.failed[name] = result["__error__"]
            log(f"[sweep/ray] FAILED {name}: {result['__error__']}")
        else:
            report.ran.append(name)
    return report
