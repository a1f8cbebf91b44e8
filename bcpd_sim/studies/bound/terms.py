"""The distillation bound of Menon et al. (ICML 2021), term by term, in float64.

For a fixed student f with per-class loss vector l(f(x)) and a teacher p^t, the distilled
empirical risk on S = {x_1..x_N} is R~(f; S) = (1/N) sum_n p^t(x_n)^T l(f(x_n)), the population
risk is R(f) = E_x[p*(x)^T l(f(x))], and

    E_S[(R~ - R)^2] = (1/N) Var[p^t^T l] + (E[p^t^T l] - R)^2                  (exact, i.i.d. S)
                   <= (1/N) Var[p^t^T l] + (E[ ||p^t - p*||_2 ||l||_2 ])^2     (Cauchy-Schwarz).

Arrays: teachers ``(T, n, K)``, students' per-class losses ``(S, n, K)``, p* ``(n, K)``.
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from ...validation import check_choice, check_int

STUDENT_LOSSES = ("ce", "mse")


def per_class_losses(log_q: np.ndarray, loss: str) -> np.ndarray:
    """l(f(x)): the loss the student would pay for each class, from its log-probabilities.

    ``ce``: l_k = -log f_k(x). ``mse``: l_k = ||f(x) - e_k||^2 = ||f||^2 - 2 f_k + 1.
    """
    check_choice("student loss", loss, STUDENT_LOSSES)
    if loss == "ce":
        return -log_q
    q = np.exp(log_q)
    return (q * q).sum(-1, keepdims=True) - 2.0 * q + 1.0


def _weighted(teachers: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """g[t, s, n] = p^t_t(x_n)^T l_s(x_n)."""
    return np.einsum("tnk,snk->tsn", teachers, losses, optimize=True)


def population_terms(
    teachers: np.ndarray, p_star: np.ndarray, losses: np.ndarray, n_set: int
) -> dict[str, np.ndarray]:
    """Both right-side terms, the exact squared bias and the risk, from a large sample of x.

    Returns ``(T, S)`` arrays: ``risk`` R (per student, broadcast), ``distilled_mean`` E[p^t^T l],
    ``variance_term`` Var/N, ``bias_term`` (E||p^t - p*|| ||l||)^2, ``bias_sq`` (E[p^t^T l] - R)^2,
    ``rhs`` = variance_term + bias_term, ``exact`` = variance_term + bias_sq (E_S[(R~ - R)^2]).
    """
    n_set = check_int("n_set", n_set, minimum=1)
    g = _weighted(teachers, losses)  # (T, S, n)
    risk = np.einsum("nk,snk->sn", p_star, losses).mean(-1)  # (S,)
    mean_g = g.mean(-1)
    var_g = g.var(-1, ddof=1)
    dist = np.linalg.norm(teachers - p_star[None], axis=-1)  # (T, n)
    lnorm = np.linalg.norm(losses, axis=-1)  # (S, n)
    bias_term = (dist @ lnorm.T / dist.shape[1]) ** 2  # (T, S)
    variance_term = var_g / n_set
    bias_sq = (mean_g - risk[None]) ** 2
    return {
        "risk": np.broadcast_to(risk[None], mean_g.shape).copy(),
        "distilled_mean": mean_g,
        "variance_term": variance_term,
        "bias_term": bias_term,
        "bias_sq": bias_sq,
        "rhs": variance_term + bias_term,
        "exact": variance_term + bias_sq,
    }


def monte_carlo_lhs(
    teachers: np.ndarray, losses: np.ndarray, risk: np.ndarray, n_set: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """E_S[(R~ - R)^2] by Monte Carlo: the n points are cut into M = n // N disjoint sets S.

    ``risk`` is R per student ``(S,)``. Returns the estimate ``(T, S)``, its standard error
    ``(T, S)`` (sd of the M squared errors / sqrt(M)) and M. All sets at once, no loop over S.
    """
    n_set = check_int("n_set", n_set, minimum=1)
    m = teachers.shape[1] // n_set
    if m < 2:
        raise ConfigError(f"need at least 2 sets of N={n_set} points, got {teachers.shape[1]}")
    used = m * n_set
    g = _weighted(teachers[:, :used], losses[:, :used])  # (T, S, M*N)
    r_tilde = g.reshape(g.shape[0], g.shape[1], m, n_set).mean(-1)  # (T, S, M)
    sq = (r_tilde - np.asarray(risk)[None, :, None]) ** 2
    return sq.mean(-1), sq.std(-1, ddof=1) / np.sqrt(m), m
