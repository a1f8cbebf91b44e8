"""Figure-1 config validation at the boundary: types, ranges, seeds, memory and work bounds.

Every case here is refused by ``load_config`` (and so by ``--print-config``) before any work,
with one line naming the key.
"""

from __future__ import annotations

import pytest

from bcpd_sim.cli import main
from bcpd_sim.errors import ConfigError
from bcpd_sim.figure1.config import PRESETS, load_config
from bcpd_sim.figure1.targets import TARGET_KINDS

BIG = 10**12


@pytest.mark.parametrize(
    "override, fragment",
    [
        (f"data.n_train={BIG}", "data.n_train must be <="),
        (f"data.n_test={10**8}", "simulated.eta_uniform x data.n_test is too large"),
        (f"train.batch_size={BIG}", "train.batch_size="),
        (f"train.epochs={BIG}", "train.epochs must be <="),
        (f"train.width=[{BIG}]", "train.width is too large"),
        ("train.width=[100000, 100000]", "train.width is too large"),
        (f"simulated.eta_uniform={BIG}", "simulated.eta_uniform"),
        (f"trained.seeds={BIG}", "trained.seeds"),
        (f"bootstrap={BIG}", "bootstrap must be <="),
        (f"data.sample_seed={10**30}", "data.sample_seed must be a seed in numpy's range"),
        ("data.mixture_seed=-1", "data.mixture_seed must be a seed"),
        ("trained.seed=-1", "trained.seed must be a seed"),
        ("simulated.seed=-3", "simulated.seed must be a seed"),
        ("trained.widths=[32]", "trained.widths[0] must be a list of integers, got 32"),
        ("trained.widths=[[]]", "trained.widths[0] must not be empty"),
        ("trained.losses=['ce', 'ce']", "trained.losses must not repeat"),
        ("train.momentum=1.0", "train.momentum must lie in [0.0, 1.0)"),
        ("train.optimizer='lbfgs'", "valid: sgd, adam, adamw"),
        ("simulated.dirichlet=[0]", "simulated.dirichlet[0] must lie in (0.0, 1.0]"),
        ("simulated.temperatures=[0]", "simulated.temperatures[0] must be finite and > 0"),
        ("trained.n_train=[6000]", "data.n_train"),
        ("preset='nope'", "unknown preset 'nope'"),
        ("train.device='tpu'", "train.device: device must be 'auto', 'cpu' or 'cuda[:N]'"),
    ],
)
def test_bad_values_are_refused_before_work_naming_the_key(override, fragment, capsys):
    with pytest.raises(ConfigError) as err:
        load_config("paper", overrides=[override])
    assert fragment in str(err.value)
    # the CLI's --print-config refuses it the same way: exit 2, one line, no traceback
    assert main(["figure1", "--preset", "paper", "--print-config", "--set", override]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and fragment in printed.err
    assert len(printed.err.strip().splitlines()) == 1


def test_memory_estimate_is_named_and_limit_is_configurable(monkeypatch):
    load_config("paper")  # fits
    monkeypatch.setenv("BCPD_SIM_MEMORY_LIMIT", str(10**6))
    with pytest.raises(ConfigError, match=r"the run needs about .* more than the 1 MB available"):
        load_config("paper")


def test_every_kind_of_target_has_a_config_key():
    from bcpd_sim.figure1.config import SimulatedConfig

    fields = set(SimulatedConfig.__dataclass_fields__)
    for name, kind in TARGET_KINDS.items():
        assert kind.name == name and kind.key in fields and kind.label
    # the study's cells keep their historical order (a kind's position seeds its cell)
    assert list(TARGET_KINDS)[:7] == [
        "eta_uniform",
        "eta_low",
        "etas",
        "tempered",
        "dirichlet",
        "gaussian",
        "label_smoothing",
    ]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_pass_their_budget(preset):
    load_config(preset)


@pytest.mark.parametrize("content", [b"[data\n", b"\xff\xfe", b""])
def test_plot_names_a_bad_config_file(tmp_path, capsys, content):
    import pandas as pd

    pd.DataFrame({"study": ["simulated"]}).to_parquet(tmp_path / "results.parquet")
    (tmp_path / "config.toml").write_bytes(content)
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "config.toml") in err and len(err.strip().splitlines()) == 1
