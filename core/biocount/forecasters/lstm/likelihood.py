"""The LSTM's likelihoods: the head's output read as a forecast, masked losses, predictive distributions.

Unobserved targets contribute nothing to a loss.

``out`` is the head's output (B, H, F, k). Continuous losses compare with the scaled target ``y``;
count losses use raw counts with the library size as an offset:
log mu = log size_factor + log-rate, the log-rate being the network's output (added to the last
observed log-rate when the head is residual).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from biocount.forecast import Counts

CONTINUOUS = ("mse", "gaussian")
COUNT = ("poisson", "negbin")


def _masked_mean(loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(loss.dtype)
    return (loss * m).sum() / m.sum().clamp(min=1.0)


def mse(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return _masked_mean((pred - y) ** 2, mask)


def gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    log_var = log_var.clamp(-10, 10)
    return _masked_mean(0.5 * (log_var + (y - mean) ** 2 / log_var.exp()), mask)


def poisson_nll(log_mu: torch.Tensor, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return _masked_mean(log_mu.exp() - counts * log_mu + torch.lgamma(counts + 1), mask)


def negbin_nll(log_mu: torch.Tensor, log_alpha: torch.Tensor, counts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """NB with mean mu and dispersion alpha (variance mu + alpha mu^2), r = 1 / alpha."""
    r = torch.exp(-log_alpha).expand_as(log_mu)
    log_r_mu = torch.logaddexp(torch.log(r), log_mu)  # log(r + mu)
    ll = (torch.lgamma(counts + r) - torch.lgamma(r) - torch.lgamma(counts + 1)
          + r * (torch.log(r) - log_r_mu) + counts * (log_mu - log_r_mu))
    return _masked_mean(-ll, mask)


class Dispersion(nn.Module):
    """A learned per-feature log-dispersion for the negative binomial."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.full((n_features,), -2.0))


QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)  # the levels every LSTM forecast carries


def read_head(out: torch.Tensor, batch: dict[str, Any], *, loss: str,
              residual: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The head's output (B, H, F, k) as (first, second): the scaled mean (a log-rate per unit size factor
    for count losses) and, for the gaussian loss, the log-variance; residual heads add the last value."""
    if loss in COUNT:
        base = batch["last_log_rate"][:, None, :] if residual else 0.0
        return out[..., 0] + base, None
    base = batch["last"][:, None, :] if residual else 0.0
    return out[..., 0] + base, (out[..., 1] if loss == "gaussian" else None)


def training_loss(first: torch.Tensor, second: torch.Tensor | None, batch: dict[str, Any], *, loss: str,
                  dispersion: Dispersion | None) -> torch.Tensor:
    """The loss one place for every likelihood."""
    mask = batch["mask"]
    if loss == "mse":
        if batch["spread"] is not None:  # per-window units back to the feature's units: every window
            return mse(first * batch["spread"], batch["y"] * batch["spread"], mask)  # weighs as scored
        return mse(first, batch["y"], mask)
    if loss == "gaussian":
        return gaussian_nll(first, second, batch["y"], mask)
    log_mu = batch["log_sf"][..., None] + first
    if loss == "poisson":
        return poisson_nll(log_mu, batch["counts"], mask)
    return negbin_nll(log_mu, dispersion.log_alpha, batch["counts"], mask)


def normal_quantiles(mean: np.ndarray, sd: np.ndarray) -> dict[float, np.ndarray]:
    from scipy.stats import norm

    return {q: mean + norm.ppf(q) * sd for q in QUANTILES}


def count_distribution(data: Any, origins: np.ndarray, log_rate: np.ndarray,
                       dispersion: Dispersion | None) -> tuple[dict[float, np.ndarray], Counts]:
    """Quantiles of log1p(count / size factor) under the fitted Poisson (``dispersion`` None) or negative
    binomial, and that distribution of the counts themselves.

    The future library size is unknown: each series' last observed size factor stands in for it.
    """
    from scipy import stats

    sf = data.size_factors
    seen = ~np.isnan(data.y).all(axis=2)
    last = np.array([sf[s, np.flatnonzero(seen[s, : t + 1])[-1]] if seen[s, : t + 1].any() else 1.0
                     for s, t in origins])[:, None, None]
    mu = np.exp(log_rate) * last
    r = None
    if dispersion is not None:
        r = np.exp(-dispersion.log_alpha.detach().cpu().numpy())[None, None, :]
        dist = stats.nbinom(r, r / (r + mu))
    else:
        dist = stats.poisson(mu)
    return {q: np.log1p(dist.ppf(q) / last) for q in QUANTILES}, Counts(mu, r)
