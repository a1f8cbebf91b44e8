"""Predictors q(x) to check Theorem 1 against: exact, degraded, random and trained.

Each is a function of x alone (never of the label it is scored on), except the explicit control
``peek_at_label``, for which the theorem's cross term does not vanish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from ..mixtures import ClassConditionalDistribution
from ..simplex import label_smoothing, onehot, tempered


@dataclass(frozen=True)
class Predictor:
    """A named q(x). ``fn(x, y)`` returns (n, K) probabilities; only controls may read y."""

    name: str
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    kind: str  # "exact", "degraded", "random", "trained" or "control"
    peeks_at_label: bool = False


def random_mlp(dim: int, num_classes: int, seed: int, width: int = 64, scale: float = 2.0):
    """A random one-hidden-layer tanh network with softmax output (untrained)."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((dim, width)) / np.sqrt(dim)
    b1 = rng.standard_normal(width) * 0.5
    w2 = scale * rng.standard_normal((width, num_classes)) / np.sqrt(width)
    return lambda x: softmax(np.tanh(x @ w1 + b1) @ w2, axis=1)


def default_predictors(
    mixture: ClassConditionalDistribution,
    *,
    seed: int = 0,
    train_n: int = 5_000,
    trained: bool = True,
) -> list[Predictor]:
    """A spread of predictors, from the BCPD itself to poor ones, plus one label-peeking control.

    Trained predictors (multinomial logistic regression and a small MLP from scikit-learn) are fitted
    on their own sample (``seed + 1000``), independent of the sample they are scored on.
    """
    k = mixture.num_classes
    bcpd = mixture.bcpd
    preds = [
        Predictor("bcpd", lambda x, y: bcpd(x), "exact"),
        Predictor("uniform", lambda x, y: np.full((len(x), k), 1.0 / k), "degraded"),
        Predictor(
            "bayes argmax one-hot (eps=0.01)",
            lambda x, y: label_smoothing(bcpd(x).argmax(1), k, 0.01),
            "degraded",
        ),
        Predictor("tempered bcpd T=0.5", lambda x, y: tempered(bcpd(x), 0.5), "degraded"),
        Predictor("tempered bcpd T=2", lambda x, y: tempered(bcpd(x), 2.0), "degraded"),
        Predictor("tempered bcpd T=4", lambda x, y: tempered(bcpd(x), 4.0), "degraded"),
        Predictor(
            "bcpd mixed with Dirichlet noise",
            lambda x, y: (
                0.5 * bcpd(x)
                + 0.5 * np.random.default_rng(seed + 7).dirichlet(np.ones(k), size=len(x))
            ),
            "degraded",
        ),
    ]
    if not np.allclose(mixture.priors, 1.0 / k):
        preds.append(
            Predictor("class priors", lambda x, y: np.tile(mixture.priors, (len(x), 1)), "degraded")
        )
    for s in (1, 2):
        net = random_mlp(mixture.dim, k, seed=seed + 100 + s)
        preds.append(Predictor(f"random network #{s}", lambda x, y, net=net: net(x), "random"))
    if trained:
        preds.extend(_trained_predictors(mixture, seed=seed, train_n=train_n))
    preds.append(
        Predictor(
            "control: peeks at label",
            lambda x, y: 0.5 * bcpd(x) + 0.5 * onehot(y, k),
            "control",
            peeks_at_label=True,
        )
    )
    return preds


def _trained_predictors(mixture, *, seed: int, train_n: int) -> list[Predictor]:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    train = mixture.sample(train_n, seed=seed + 1000)
    k = mixture.num_classes

    def proba(model):
        def fn(x, y):
            out = np.zeros((len(x), k))
            out[:, model.classes_] = model.predict_proba(x)
            out = np.clip(out, 1e-12, None)
            return out / out.sum(1, keepdims=True)

        return fn

    logreg = LogisticRegression(max_iter=500).fit(train.x, train.y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((128, 128), max_iter=30, random_state=seed).fit(train.x, train.y)
    preds = [
        Predictor(f"logistic regression (n={train_n})", proba(logreg), "trained"),
        Predictor(f"sklearn MLP 128-128, CE, overfit (n={train_n})", proba(mlp), "trained"),
    ]
    # bcpd-sim's own ensemble trainer: the paper MLP under the two losses of Theorem 1.
    from ..ensemble import train as train_ensemble

    val = mixture.sample(max(2, train_n // 5), seed=seed + 2000)
    for loss in ("ce", "mse"):
        ens = train_ensemble(
            train.x,
            train.y,
            members=[seed],
            loss=loss,
            x_val=val.x,
            y_val=val.y,
            num_classes=k,
            optimizer="adam",
            lr=1e-3,
            epochs=15,
            batch_size=64,
            device="cpu",
        )
        preds.append(
            Predictor(
                f"paper MLP trained with {loss} (n={train_n})",
                lambda x, y, ens=ens: ens.predict_proba(x)[0],
                "trained",
            )
        )
    return preds
