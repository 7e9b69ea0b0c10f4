"""Integrated gradients of the shared LSTM: which input feature, at which lookback step, moved a forecast.

Integrated gradients (Sundararajan, Taly & Yan 2017) attribute ``f(x) - f(x')`` to each input value:
``(x_i - x'_i) * mean over a in (0, 1] of df/dx_i (x' + a (x - x'))``, and the attributions of one
window add up to that difference (completeness, checked by the tests). Here ``f`` is the network's
output for one target feature at one horizon, in the units the network forecasts (scaled; per-window
units with ``scaling: window``), averaged over the seed-ensemble members; ``x'`` (the baseline) sets
every value channel to 0, which is the training mean of an input (or the window's own mean with
per-window scaling). Observed flags, time gaps and level channels stay at their values: they say
*when* something was measured, not *what*.

Written for the torch model here (a few lines of autograd, no extra dependency: Captum would add a
package for one method).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _path(batch: dict[str, Any], base: dict[str, torch.Tensor], steps: int):
    """Every point of the straight path from the baseline to the input, stacked: (steps * N, ...) tensors."""
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps  # midpoints

    def along(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        shape = (steps,) + (1,) * a.dim()
        mixed = b.unsqueeze(0) + alphas.view(shape).to(a.device) * (a - b).unsqueeze(0)
        return mixed.reshape(steps * a.shape[0], *a.shape[1:]).requires_grad_(True)

    path = {n: along(batch["inputs"][n], b) for n, b in base.items()}
    static = batch["static"]
    return path, None if static is None else along(static, torch.zeros_like(static))


def integrated_gradients(model: torch.nn.Module, batch: dict[str, Any], value_channels: dict[str, int], *,
                         targets: np.ndarray, steps: int = 32) -> dict[str, Any]:
    """Mean |IG| over the windows of ``batch``, per horizon, target and input.

    Parameters
    ----------
    model
        A :class:`~biocount.forecasters.lstm.network.MultiModalLSTM` in eval mode, with the weights to explain.
    batch
        Window tensors (``inputs`` per modality, ``static``, ``ahead``) as the LSTM forecaster cuts them.
    value_channels
        Per modality, how many leading channels are feature values (the ones attributed).
    targets
        Indices of the target features to explain.
    steps
        Riemann steps of the path integral (midpoint rule).

    Returns
    -------
    ``{"abs": {modality: (H, T, L, F)}, "static_abs": (H, T, G) or None, "delta": (N, H, T),
    "total": (N, H, T)}``: ``delta`` is f(x) - f(baseline), ``total`` the sum of all attributions (equal up to
    the integration error).
    """
    names = list(value_channels)
    x = {n: batch["inputs"][n] for n in names}
    base = {n: torch.cat([torch.zeros_like(v[..., :value_channels[n]]), v[..., value_channels[n]:]], -1)
            for n, v in x.items()}
    static = batch["static"]
    N, S = next(iter(x.values())).shape[0], steps
    path, st = _path(batch, base, steps)
    inputs = {**{n: v.repeat(S, *([1] * (v.dim() - 1))) for n, v in batch["inputs"].items()}, **path}
    ahead = None if batch["ahead"] is None else batch["ahead"].repeat(S, 1)
    out = model(inputs, st, ahead)[..., 0]  # (S * N, H, F)
    with torch.no_grad():
        ends = model({**batch["inputs"]}, static, batch["ahead"])[..., 0][:, :, targets]
        starts = model({**batch["inputs"], **base}, None if static is None else torch.zeros_like(static),
                       batch["ahead"])[..., 0][:, :, targets]
    H = out.shape[1]
    res = {"abs": {n: [] for n in names}, "static_abs": [], "total": []}
    wrt = [path[n] for n in names] + ([st] if st is not None else [])
    for h in range(H):
        for k in targets:
            grads = torch.autograd.grad(out[:, h, k].sum(), wrt, retain_graph=True)
            total = 0
            for n, g in zip(names, grads, strict=False):  # grads also hold the static one
                c = value_channels[n]
                ig = g[..., :c].reshape(S, N, *g.shape[1:-1], c).mean(0) * (x[n] - base[n])[..., :c]
                res["abs"][n].append(ig.abs().mean(0))
                total = total + ig.flatten(1).sum(1)
            if st is not None:
                ig = grads[-1].reshape(S, N, -1).mean(0) * static
                res["static_abs"].append(ig.abs().mean(0))
                total = total + ig.sum(1)
            res["total"].append(total)

    def stack(parts: list[torch.Tensor]) -> np.ndarray:
        a = torch.stack(parts).detach().cpu().numpy()
        return a.reshape(H, len(targets), *a.shape[1:])

    return {"abs": {n: stack(v) for n, v in res["abs"].items()},
            "static_abs": stack(res["static_abs"]) if res["static_abs"] else None,
            "delta": (ends - starts).cpu().numpy(),
            "total": stack(res["total"]).transpose(2, 0, 1)}


def over_members(forecaster: Any, batch: dict[str, Any], *, targets: np.ndarray, steps: int = 32) -> dict[str, Any]:
    """:func:`integrated_gradients` of every seed-ensemble member, averaged (IG is linear in the function
    explained, so this is the IG of the averaged forecast)."""
    channels = {n: len(f) for n, f in forecaster.signature["inputs"].items()}
    parts = []
    for state in forecaster.members:
        forecaster.load_state(state)
        forecaster.model.eval()
        parts.append(integrated_gradients(forecaster.model, batch, channels, targets=targets, steps=steps))

    def mean(get):
        return np.mean([get(p) for p in parts], axis=0)

    return {"abs": {n: mean(lambda p, n=n: p["abs"][n]) for n in channels},
            "static_abs": None if parts[0]["static_abs"] is None else mean(lambda p: p["static_abs"]),
            "delta": mean(lambda p: p["delta"]), "total": mean(lambda p: p["total"])}
