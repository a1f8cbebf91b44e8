"""Bad input to the ensemble trainer fails with ConfigError before any training starts."""

from __future__ import annotations

import numpy as np
import pytest

from bcpd_sim.ensemble import train
from bcpd_sim.errors import ConfigError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 4))
Y = RNG.integers(0, 3, 40)
P = RNG.dirichlet(np.ones(3), size=40)


def _bad_x():
    x = X.copy()
    x[3, 1] = np.nan
    return x


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"loss": "brier"}, "unknown loss 'brier'; valid: ce, mse, mse_logits, ls, soft, kd"),
        ({"optimizer": "rmsprop"}, "valid: sgd, adam, adamw"),
        ({"schedule": "linear"}, "valid: constant, cosine, multistep"),
        ({"select": "best"}, "valid: best_val_acc, best_val_loss, last"),
        ({"lr": 0.0}, "lr must be finite and > 0"),
        ({"lr": -1e-3}, "lr must be finite and > 0"),
        ({"members": [{"seed": 0, "lr": -1.0}]}, r"members\[0\].lr"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"members": [{"seed": 0, "epochs": 0}]}, r"members\[0\].epochs"),
        ({"members": [{"seed": 0, "n_train": 41}]}, "exceeds the 40 training points"),
        ({"members": [{"seed": 0, "depth": 3}]}, "unknown field"),
        ({"members": 0}, "members must be >= 1"),
        ({"members": [-1]}, "seed must be >= 0"),
        ({"batch_size": 0}, "batch_size"),
        ({"loss": "soft"}, "needs targets"),
        ({"loss": "soft", "targets": P[:, :2]}, "targets must have shape"),
        ({"loss": "soft", "targets": P[:30]}, "targets must have shape"),
        ({"loss": "soft", "targets": P * 1.1}, "must sum to 1"),
        ({"loss": "soft", "targets": np.stack([P] * 3)}, "targets must have shape"),
        ({"loss": "kd"}, "needs teacher_logits"),
        ({"loss": "ce", "targets": P}, "only used by loss 'soft'"),
        ({"x": _bad_x()}, "x must contain only finite values"),
        ({"y": Y[:-1]}, "y must have shape"),
        ({"y": Y + 5, "num_classes": 3}, "y must lie in"),
        ({"select": "best_val_acc"}, "needs x_val and y_val"),
        ({"x_val": X}, "given together"),
        ({"x_val": _bad_x(), "y_val": Y}, "x_val must contain only finite values"),
        ({"x_val": X[:, :3], "y_val": Y}, "x_val must have 4 columns"),
        (
            {"loss": "soft", "targets": P, "x_val": X, "y_val": Y, "select": "best_val_loss"},
            "needs the validation val_targets",
        ),
        ({"device": "tpu"}, "device"),
        ({"capture": "graph"}, "valid: auto, eager, cuda_graph"),
        ({"dtype": "float16"}, "dtype"),
        ({"capture": "cuda_graph", "device": "cpu"}, "needs a CUDA device"),
        ({"loss_options": {"temperature": 2.0}}, "unknown option 'temperature' for loss 'ce'"),
        ({"members": [2**63]}, r"members\[0\].seed must be <="),
        ({"members": 10**7, "width": (10**4,)}, "is too large: the run needs about"),
        ({"members": 10**6, "batch_size": 10**6}, "is too large: the run needs about"),
    ],
)
def test_bad_input_raises_config_error(kwargs, match):
    args = {"x": X, "y": Y, "members": 2, "epochs": 1}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        train(args.pop("x"), args.pop("y"), **args)


def test_per_member_soft_targets_accepted():
    ens = train(X, Y, members=2, loss="soft", targets=np.stack([P, P[::-1]]), epochs=1, width=(4,))
    assert ens.predict_proba(X).shape == (2, 40, 3)


def test_the_plan_is_validated_once_and_frozen():
    import dataclasses

    from bcpd_sim.ensemble import make_plan, run_plan

    plan = make_plan(X, Y, members=[0, {"seed": 1, "width": (3,)}], epochs=1, width=(4,))
    assert plan.select == "last" and plan.num_classes == 3 and plan.loss.name == "ce"
    assert [m.width for m in plan.members] == [(4,), (3,)]
    assert plan.groups() == {(4,): [0], (3,): [1]}
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.batch_size = 3  # type: ignore[misc]
    ens = run_plan(plan)
    assert ens.config["members"][1]["width"] == (3,) and len(ens.history) == 2
