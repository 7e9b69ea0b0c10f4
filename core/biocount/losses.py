"""Masked losses: unobserved targets contribute nothing.

``out`` is the head's output (B, H, F, k). Continuous losses compare with the scaled target ``y``;
count losses use raw counts with the library size as an offset:
log mu = log size_factor + log-rate, the log-rate being the network's output (added to the last
observed log-rate when the head is residual).
"""

from __future__ import annotations

import torch
from torch import nn

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
