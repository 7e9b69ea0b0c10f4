"""Windows: (lookback history, horizon targets) pairs cut from the aligned study once, as arrays.

Per series and target feature, the target is scaled by the mean and standard deviation of its
values up to ``train_end`` (per-series scaling fitted on the training part). Inputs per modality are
three kinds of channel: values (NaN -> 0), the observed flag and log1p of the time gap.

History is read either at the grid's own steps, or (``every=``) at regular times ``t0 - k * step``
before each origin ``t0``, values linearly interpolated between the observations around each time and
never past the origin: on an irregular grid a fixed delay (protein follows its mRNA by 4 days) is then
the same lookback step at every origin, not a different one wherever a weekend was skipped.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from biocount.study.align import Aligned

GAP_CAP = 1e3  # a modality never seen so far counts as this long ago
WINDOW_SD_FLOOR = 0.25  # per-window spread floor, in units of the feature's training sd (a flat window
#                         must not blow its noise up; 0.25 caps the amplification at 4x)
TIME = "_time"  # the input block holding the step between consecutive grid times


@dataclass(frozen=True)
class SeriesScaler:
    mean: np.ndarray  # (S, F)
    std: np.ndarray  # (S, F)

    @classmethod
    def fit(cls, data: Aligned, train_end: np.ndarray, min_obs: int = 3) -> SeriesScaler:
        """Mean and sd per series and feature from values up to ``train_end``.

        A series with fewer than ``min_obs`` training values of a feature (short, or mostly missing)
        borrows the median over series; every sd is floored at a tenth of that median, so a nearly
        flat training stretch cannot blow later values up.
        """
        S, T, F = data.y.shape
        seen = np.arange(T)[None, :] <= train_end[:, None]  # (S, T)
        y = np.where(seen[..., None], data.y, np.nan)
        n = np.sum(~np.isnan(y), axis=1)  # (S, F)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # series with no training values
            mean, std = np.nanmean(y, axis=1), np.nanstd(y, axis=1)
            enough = n >= min_obs
            pooled_mean = np.nanmedian(np.where(enough, mean, np.nan), axis=0)
            pooled_std = np.nanmedian(np.where(enough, std, np.nan), axis=0)
        pooled_mean = np.where(np.isnan(pooled_mean), np.nanmean(y, axis=(0, 1)), pooled_mean)
        pooled_std = np.where(np.isfinite(pooled_std) & (pooled_std > 1e-6), pooled_std, 1.0)
        mean = np.where(enough, mean, pooled_mean[None, :])
        std = np.where(enough, np.maximum(std, 0.1 * pooled_std[None, :]), pooled_std[None, :])
        return cls(np.nan_to_num(mean).astype(np.float32), std.astype(np.float32))

    def scale(self, values: np.ndarray, series: np.ndarray) -> np.ndarray:
        return (values - self.mean[series][:, None]) / self.std[series][:, None]

    def unscale(self, values: np.ndarray, series: np.ndarray) -> np.ndarray:
        return values * self.std[series][:, None] + self.mean[series][:, None]

    @classmethod
    def pooled(cls, data: Aligned, train_end: np.ndarray) -> SeriesScaler:
        """One mean and sd per feature over every series' values up to ``train_end`` (units only: with
        per-window normalisation each window then removes its own level and spread)."""
        seen = np.arange(data.y.shape[1])[None, :] <= train_end[:, None]
        v = data.y[seen]  # (n, F)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(v, axis=0), np.nanstd(v, axis=0)
        std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)
        S = data.y.shape[0]
        return cls(np.tile(np.nan_to_num(mean), (S, 1)).astype(np.float32), np.tile(std, (S, 1)).astype(np.float32))


@dataclass(frozen=True)
class InputScaler:
    """Per modality and feature: centre and scale on the values seen up to ``train_end``."""

    stats: dict[str, tuple[np.ndarray, np.ndarray]]

    @classmethod
    def fit(cls, data: Aligned, train_end: np.ndarray) -> InputScaler:
        stats = {}
        seen = np.arange(data.times.size)[None, :] <= train_end[:, None]
        for name, mod in data.inputs.items():
            v = mod.values[seen]  # (n, F)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, std = np.nanmean(v, axis=0), np.nanstd(v, axis=0)
            std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)
            stats[name] = (np.nan_to_num(mean).astype(np.float32), std.astype(np.float32))
        return cls(stats)

    def scale(self, name: str, values: np.ndarray) -> np.ndarray:
        mean, std = self.stats[name]
        return (values - mean) / std


@dataclass(frozen=True)
class Windows:
    inputs: dict[str, np.ndarray]  # name -> (N, L, F_m + 2) float32
    static: np.ndarray | None  # (N, G)
    last: np.ndarray  # (N, F) scaled last observed target, 0 where none yet
    y: np.ndarray  # (N, H, F) scaled targets, 0 where missing
    mask: np.ndarray  # (N, H, F) bool: target observed and allowed
    counts: np.ndarray | None  # (N, H, F) raw counts
    log_sf: np.ndarray | None  # (N, H) log size factors
    last_log_rate: np.ndarray | None  # (N, F) log of the last observed count rate
    origins: np.ndarray  # (N, 2)
    ahead: np.ndarray | None = None  # (N, H) days from the origin to each horizon's grid time
    center: np.ndarray | None = None  # (N, F) per-window target level (window normalisation), else None
    spread: np.ndarray | None = None  # (N, F) per-window target spread (window normalisation), else None

    def __len__(self) -> int:
        return self.origins.shape[0]


def _gather(arr: np.ndarray, s: np.ndarray, idx: np.ndarray, fill: float) -> np.ndarray:
    """arr[s, idx] with idx possibly out of [0, T): out-of-range reads give ``fill``."""
    T = arr.shape[1]
    ok = (idx >= 0) & (idx < T)
    out = arr[s[:, None], np.clip(idx, 0, T - 1)]
    shape = ok.shape + (1,) * (out.ndim - ok.ndim)
    return np.where(ok.reshape(shape), out, fill)


def _normalise(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window and channel: centre on the mean of the observed history, divide by its sd (floored).

    RevIN-style instance normalisation (Kim et al. 2022): a series at another level or scale than the
    training series (a richer medium, another patient) then looks like them. History only: causal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # windows with no observation of a channel
        center, spread = np.nanmean(v, axis=1), np.nanstd(v, axis=1)
    center = np.nan_to_num(center)
    spread = np.maximum(np.nan_to_num(spread), WINDOW_SD_FLOOR)
    return (v - center[:, None]) / spread[:, None], center, spread


def _at_grid(values: np.ndarray, mod, s: np.ndarray, hist: np.ndarray):
    """History at the grid's own steps: values, observed flag and time since the last observation."""
    v = _gather(values, s, hist, np.nan)
    obs = _gather(mod.observed.astype(np.float32), s, hist, 0.0)
    return v, obs, _gather(mod.gap, s, hist, np.inf)


def _at_times(values: np.ndarray, mod, s: np.ndarray, t: np.ndarray, times: np.ndarray, lookback: int,
              step: float):
    """History at ``times[t] - k * step`` (k = lookback-1 .. 0): each value interpolated linearly between
    the latest observation at or before that time and the next one, if that next one is known by the
    origin ``t`` (else carried forward), so nothing after an origin is read. Observed flag: an
    observation lies within half a step; gap: time since the latest observation."""
    T = times.size
    q = times[t][:, None] - step * np.arange(lookback - 1, -1, -1)[None, :]  # (N, L)
    pos = np.searchsorted(times, q, side="right") - 1  # grid point at or before each time
    seen = np.where(np.isfinite(mod.gap), times[None, :] - mod.gap, -np.inf)  # (S, T) when the value was measured
    fresh = np.concatenate([np.isfinite(seen[:, :1]), seen[:, 1:] > seen[:, :-1]], axis=1)
    nxt = np.where(fresh, np.arange(T)[None, :], T)  # the first grid point after each with a newer value
    nxt = np.minimum.accumulate(nxt[:, ::-1], axis=1)[:, ::-1]
    nxt = np.concatenate([nxt[:, 1:], np.full((nxt.shape[0], 1), T)], axis=1)
    ok = pos >= 0
    p = np.maximum(pos, 0)
    S = s[:, None]
    a, n = np.where(ok, seen[S, p], -np.inf), nxt[S, p]
    use = ok & (n <= t[:, None])  # the next value is known by the origin
    b = seen[S, np.minimum(n, T - 1)]
    between = use & np.isfinite(a) & (b > a)
    with np.errstate(invalid="ignore"):  # inf - inf where a modality was never measured: masked by `between`
        w = np.where(between, np.clip((q - a) / np.where(between, b - a, 1.0), 0.0, 1.0), 0.0)
    va = np.where(ok[..., None], values[S, p], np.nan)
    vb = values[S, np.minimum(n, T - 1)]
    v = np.where(np.isnan(vb), va, va + w[..., None] * (vb - va))
    since = q - a  # inf before the first observation
    obs = (since < step / 2) | (use & (b - q < step / 2))
    return v, obs.astype(np.float32), np.where(ok, since, np.inf)


def make_windows(data: Aligned, origins: np.ndarray, *, lookback: int, horizon: int, scaler: SeriesScaler,
                 inputs_scaler: InputScaler | None = None, target_until: np.ndarray | None = None,
                 window_norm: bool = False, every: float | None = None) -> Windows:
    """Cut windows at ``origins`` ((N, 2) series and grid index).

    ``target_until[s]`` masks targets after that grid index (training windows must not see
    validation or test targets). ``window_norm`` normalises every value channel per window
    (:func:`_normalise`); targets and the last value are then in the target window's units, and
    ``center`` / ``spread`` hold the way back. ``every``: read the history at regular times, this far apart (module
    docstring). Built with array indexing: no Python loop over windows.
    """
    s, t = origins[:, 0], origins[:, 1]
    hist = t[:, None] + np.arange(-lookback + 1, 1)[None, :]  # (N, L)
    ahead = t[:, None] + np.arange(1, horizon + 1)[None, :]  # (N, H)
    inputs, center, spread = {}, None, None
    for name, mod in data.inputs.items():
        values = mod.values
        if inputs_scaler is not None:
            values = inputs_scaler.scale(name, values)
        if name == data.target:  # the target's own history is scaled like the target
            values = np.array(values, dtype=np.float32)
            values[..., data.target_index] = scaler.scale(mod.values[..., data.target_index], np.arange(values.shape[0]))
        if every is None:
            v, obs, gap = _at_grid(values, mod, s, hist)
        else:
            v, obs, gap = _at_times(values, mod, s, t, data.times, lookback, every)
        if window_norm:
            v, c, d = _normalise(v)
            if name == data.target:
                center, spread = c[:, data.target_index], d[:, data.target_index]
        v = np.nan_to_num(v, nan=0.0)
        blocks = [v, obs[..., None], np.log1p(np.minimum(gap, GAP_CAP))[..., None]]
        if window_norm and name == data.target:  # the level and spread removed, kept as inputs: where a
            L = hist.shape[1]  # series sits in its cycle matters (hare-lynx), a shift may not (chemostats)
            blocks += [np.repeat(center[:, None], L, axis=1), np.repeat(np.log(spread)[:, None], L, axis=1)]
        inputs[name] = np.concatenate(blocks, axis=2).astype(np.float32)
    # irregular sampling: each history step carries the time since the previous grid point, and the
    # head learns how far ahead each horizon lies (the sampling schedule is known in advance)
    step = np.diff(data.times, prepend=data.times[0]).astype(np.float32)[:, None]  # (T, 1)
    step_all = np.broadcast_to(step[None], (data.y.shape[0],) + step.shape)
    inputs[TIME] = np.log1p(_gather(step_all, s, hist, 0.0) if every is None
                            else np.full(hist.shape + (1,), every)).astype(np.float32)
    future = data.extended_times(horizon)
    days_ahead = (future[np.clip(ahead, 0, None) + 0] - data.times[t][:, None]).astype(np.float32)
    y_raw = _gather(data.y, s, ahead, np.nan)  # (N, H, F)
    mask = ~np.isnan(y_raw)
    if target_until is not None:
        mask &= (ahead <= target_until[s][:, None])[..., None]
    y = np.nan_to_num(scaler.scale(y_raw, s), nan=0.0)
    last_raw = data.inputs[data.target].values[s, t][:, data.target_index]
    last = np.nan_to_num((last_raw - scaler.mean[s]) / scaler.std[s], nan=0.0)
    if window_norm:
        y = np.where(mask, (y - center[:, None]) / spread[:, None], 0.0)
        last = np.where(np.isnan(last_raw), 0.0, (last - center) / spread)
    counts = log_sf = last_log_rate = None
    if data.y_counts is not None and data.size_factors is not None:
        counts = np.nan_to_num(_gather(data.y_counts, s, ahead, np.nan), nan=0.0)
        log_sf = np.log(_gather(data.size_factors, s, ahead, 1.0))
        last_rate = _last_rate(data)[s, t]
        last_log_rate = np.log(last_rate + 0.5)
    return Windows(
        inputs=inputs, static=None if data.static is None else data.static[s],
        last=last.astype(np.float32), y=y.astype(np.float32), mask=mask, counts=counts,
        log_sf=None if log_sf is None else log_sf.astype(np.float32),
        last_log_rate=None if last_log_rate is None else last_log_rate.astype(np.float32), origins=origins,
        ahead=days_ahead, center=None if center is None else center.astype(np.float32),
        spread=None if spread is None else spread.astype(np.float32),
    )


def _last_rate(data: Aligned) -> np.ndarray:
    """(S, T, F) the latest observed count / size factor at or before each grid index (0 if none)."""
    rate = data.y_counts / data.size_factors[..., None]
    seen = ~np.isnan(rate)
    idx = np.where(seen, np.arange(rate.shape[1])[None, :, None], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(np.nan_to_num(rate), np.maximum(idx, 0), axis=1)
    return np.where(idx >= 0, filled, 0.0)


def train_origins(data: Aligned, train_end: np.ndarray, horizon: int,
                  train_series: np.ndarray | None = None) -> np.ndarray:
    """Origins (series, grid index) whose history and at least one target lie in the training part."""
    s, t = np.nonzero(data.present | np.any([m.observed for m in data.inputs.values()], axis=0))
    keep = t < train_end[s]
    if train_series is not None:
        keep &= train_series[s]
    s, t = s[keep], t[keep]
    ahead = t[:, None] + np.arange(1, horizon + 1)[None, :]
    ok = (ahead <= train_end[s][:, None]) & (ahead < data.times.size)
    has_target = np.zeros(s.size, dtype=bool)
    for h in range(horizon):
        col = np.where(ok[:, h], ahead[:, h], 0)
        has_target |= ok[:, h] & data.present[s, col]
    return np.stack([s[has_target], t[has_target]], axis=1).astype(int)


def regular_step(times: np.ndarray, train_end: np.ndarray) -> float | None:
    """The median step of the grid's training part: the spacing of regular-time history (None: one point)."""
    steps = np.diff(times[: int(train_end.max()) + 1])
    return float(np.median(steps)) if steps.size else None


def target_scaler(scaling: str, data: Aligned, train_end: np.ndarray) -> SeriesScaler:
    """The target's scaler for the ``scaling`` option (series, window or none)."""
    if scaling == "series":
        return SeriesScaler.fit(data, train_end)
    if scaling == "window":  # units from the pooled training values; each window removes its own level
        return SeriesScaler.pooled(data, train_end)
    return SeriesScaler(np.zeros_like(data.y[:, 0]), np.ones_like(data.y[:, 0]))
