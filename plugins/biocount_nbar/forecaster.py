"""The negative-binomial autoregression: a count baseline pooled over series.

ARIMA fits each series on its own and, on short series, is persistence in disguise; a lab with many short
count series reaches for a count regression pooled over them. For each target feature and horizon h (direct
forecasts: one model per h, no simulated paths), statsmodels' ``NegativeBinomial`` (NB2: variance
mu + alpha mu², alpha estimated) regresses the count at t + h on an intercept and log1p of the last k observed
values up to t (counts per size factor, so libraries of different sizes compare), with the log size factor of
the point forecast as offset. One model over every series' training part: rows whose target lies at or before
the series' ``train_end``, origins where the feature was measured. k (1 to ``max_lags``) by AIC on the rows
every k can use. Nothing after the training part is read by the fit, and a forecast from origin t reads the
values up to t only.

Forecasts, with the series' last observed size factor L standing in for the unknown future library size (as
the LSTM's count likelihoods do): the count distribution NB(mu = L exp(x'b), 1 / alpha) (``Forecast.counts``:
scored on the raw counts); the point forecast is its expected value on the encoded scale,
E[(log1p(Y / L) - center) / scale] (the MSE-optimal forecast of what the run scores), summed over the pmf; its
quantiles are the count quantiles mapped the same way (a monotone map). A point with too little history, or a
feature x horizon with fewer than ``min_rows`` training rows or a fit that fails, is persistence, reported.
"""

from __future__ import annotations

import warnings

import numpy as np

from biocount import BiocountInputError, Counts, Forecast, ForecastTask

from .options import NbarOptions

QUANTILES = (0.01, 0.025, *(round(0.05 * k, 2) for k in range(1, 20)), 0.975, 0.99)  # the forecasting hubs' 23
EXACT_UP_TO = 2_000  # counts up to which E[log1p(Y / L)] is summed over the pmf; above, averaged over quantiles
GRID = 400  # quantile levels for that average
MAX_ROUNDS = 50  # alternations of coefficients and dispersion (glm.nb's default limit is 25; these converge in < 10)


def lagged(x: np.ndarray, k: int) -> np.ndarray:
    """(T, k): at each grid index t, log1p of the last k observed values of ``x`` (T,) at or before t, the
    latest first; NaN where fewer than k were observed."""
    seen = np.flatnonzero(~np.isnan(x))
    n = np.searchsorted(seen, np.arange(x.size), side="right")  # observed values up to each t
    out = np.full((x.size, k), np.nan)
    for j in range(k):
        ok = n - 1 - j >= 0
        out[ok, j] = np.log1p(x[seen[n[ok] - 1 - j]])
    return out


def _lag_cube(x: np.ndarray, k: int) -> np.ndarray:
    """(S, T, k): :func:`lagged` for every series of ``x`` (S, T)."""
    return np.stack([lagged(row, k) for row in x])


def expected_log1p(mu: np.ndarray, size: np.ndarray, last: np.ndarray) -> np.ndarray:
    """E[log1p(Y / L)] for Y ~ NB(mean mu, size) (1-d arrays of equal length): summed over the pmf where the
    counts stay small; above, the mean of log1p(q / L) over the distribution's quantiles q at ``GRID`` evenly
    spaced levels (the counts are then so many that the pmf is smooth, and overdispersed data are heavily
    skewed: no expansion around mu holds)."""
    from scipy import stats

    p = size / (size + mu)
    top = stats.nbinom.ppf(1 - 1e-10, size, p)
    out = np.full(mu.shape, np.nan)
    small = np.isfinite(top) & (top <= EXACT_UP_TO)
    idx = np.flatnonzero(small)
    for chunk in np.array_split(idx, max(1, idx.size // 2_000)) if idx.size else ():
        k = np.arange(int(top[chunk].max()) + 1)[None, :]
        pmf = stats.nbinom.pmf(k, size[chunk, None], p[chunk, None])
        out[chunk] = (pmf * np.log1p(k / last[chunk, None])).sum(1) / pmf.sum(1)
    big = np.flatnonzero(~small)
    if big.size:
        levels = (np.arange(GRID) + 0.5)[None, :] / GRID
        q = stats.nbinom.ppf(levels, size[big, None], p[big, None])
        out[big] = np.log1p(q / last[big, None]).mean(1)
    return out


def _fit(y: np.ndarray, X: np.ndarray, offset: np.ndarray) -> tuple[dict | None, list[str]]:
    """NB2 regression by maximum likelihood, as R's ``MASS::glm.nb`` fits it: statsmodels' GLM (IRLS) for the
    coefficients at a fixed dispersion, alternating with the dispersion's maximum likelihood given the means, from a
    Poisson fit. (statsmodels' joint ``NegativeBinomial`` optimiser failed to converge on counts in the hundred
    thousands, US measles.) Returns coefficients, dispersion, log-likelihood and AIC, and the warnings; None
    where it does not converge."""
    import statsmodels.api as sm
    from scipy import optimize, stats

    def loglike(log_alpha: float, mu: np.ndarray) -> float:
        r = np.exp(-log_alpha)
        return float(stats.nbinom.logpmf(y, r, r / (r + mu)).sum())

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            res = sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit()
            llf = -np.inf
            for _ in range(MAX_ROUNDS):
                mu = res.fittedvalues
                step = optimize.minimize_scalar(lambda a, mu=mu: -loglike(a, mu), bounds=(-15.0, 8.0), method="bounded")
                log_alpha = float(step.x)
                res = sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=float(np.exp(log_alpha))),
                             offset=offset).fit(start_params=res.params)
                # settled when a round no longer raises the likelihood (near-Poisson data leave the dispersion
                # wandering at its lower bound, where the likelihood no longer depends on it)
                previous, llf = llf, loglike(log_alpha, res.fittedvalues)
                if llf - previous < 1e-9 * (1.0 + abs(llf)):
                    break
            else:
                return None, [f"the dispersion did not settle in {MAX_ROUNDS} rounds"]
        except Exception as exc:  # statsmodels raises PerfectSeparationError, LinAlgError, ValueError ...
            return None, [f"{type(exc).__name__}: {exc}"]
    caught = sorted({f"{w.category.__name__}: {w.message}" for w in record})
    beta = np.asarray(res.params)
    if not (np.all(np.isfinite(beta)) and np.isfinite(llf)):
        return None, [*caught, "no finite estimates"]
    return {"beta": beta, "alpha": float(np.exp(log_alpha)), "llf": llf, "aic": -2 * llf + 2 * (beta.size + 1)}, caught


class NbarForecaster:
    """Negative-binomial autoregression per target feature and horizon, pooled over series (module docstring)."""

    def __init__(self, options: NbarOptions | None = None) -> None:
        self.options = options or NbarOptions()
        self.models: dict[tuple[int, int], dict] = {}  # (target feature index, h) -> the fitted regression
        self.features: list[str] = []
        self.persisted = 0  # points of the last predict where persistence stood in

    def fit(self, task: ForecastTask) -> NbarForecaster:
        data = task.data
        if data.y_counts is None or data.units is None or not data.units.log1p:
            raise BiocountInputError(f"nbar: the target '{data.target}' carries no raw counts (its encoder treated it "
                                     "as continuous); nbar forecasts counts: set the tabular option counts: true if "
                                     "the values are counts, or leave nbar out of --models")
        x, sizes = self._per_size(data)
        S, T, F = x.shape
        self.features, self.models = [str(f) for f in data.target_features], {}
        t = np.arange(T)
        for f in range(F):
            lags = _lag_cube(x[..., f], self.options.max_lags)
            usable = ~np.isnan(x[..., f]) & ~np.isnan(lags).any(axis=2)  # origins with max_lags values seen
            for h in range(1, task.horizon + 1):
                ahead = np.zeros((S, T), dtype=bool)  # a measured target h steps on, within the training part
                ahead[:, : T - h] = ~np.isnan(x[:, h:, f])
                ahead &= t[None, :] + h <= np.asarray(task.train_end)[:, None]
                s_idx, t_idx = np.nonzero(usable & ahead)
                self.models[(f, h)] = self._select(lags[s_idx, t_idx], data.y_counts[s_idx, t_idx + h, f],
                                                   np.log(sizes[s_idx, t_idx + h]))
        return self

    @staticmethod
    def _per_size(data) -> tuple[np.ndarray, np.ndarray]:
        sizes = np.ones(data.y.shape[:2]) if data.size_factors is None else np.asarray(data.size_factors, float)
        counts = np.where(np.isnan(data.y), np.nan, data.y_counts)
        return counts / sizes[..., None], sizes

    def _select(self, lags: np.ndarray, y: np.ndarray, offset: np.ndarray) -> dict:
        """The number of lags by AIC, every k on the same rows (each row has ``max_lags`` observed values)."""
        if y.size < self.options.min_rows:
            return {"k": None, "note": f"{y.size} training rows (fewer than min_rows {self.options.min_rows})"}
        best, notes = None, []
        for k in range(1, self.options.max_lags + 1):
            fitted, caught = _fit(y, np.column_stack([np.ones(y.size), lags[:, :k]]), offset)
            notes += caught
            if fitted is not None and (best is None or fitted["aic"] < best["aic"]):
                best = fitted | {"k": k}
        if best is None:
            return {"k": None, "note": "no fit: " + "; ".join(sorted(set(notes)))}
        return best | {"rows": int(y.size), "warnings": sorted(set(notes))}

    def predict(self, task: ForecastTask, origins: np.ndarray) -> Forecast:
        data = task.data
        origins = np.asarray(origins, dtype=int).reshape(-1, 2)
        N, H, F = origins.shape[0], task.horizon, data.y.shape[2]
        x, sizes = self._per_size(data)
        # the series' last observed size factor at or before each origin: the future library size is unknown
        seen = ~np.isnan(data.y).all(axis=2)
        latest = np.maximum.accumulate(np.where(seen, np.arange(seen.shape[1]), -1), axis=1)[origins[:, 0], origins[:, 1]]
        last = np.where(latest >= 0, sizes[origins[:, 0], np.maximum(latest, 0)], 1.0)
        mean = np.full((N, H, F), np.nan)
        quant = np.full((N, H, F, len(QUANTILES)), np.nan)
        mu = np.full((N, H, F), np.nan)
        size = np.full((N, H, F), np.nan)
        center, scale = np.asarray(data.units.center, float), np.asarray(data.units.scale, float)
        for f in range(F):
            lags = _lag_cube(x[..., f], self.options.max_lags)[origins[:, 0], origins[:, 1]]  # (N, max_lags)
            for h in range(1, H + 1):
                model = self.models.get((f, h), {})
                if model.get("k") is None:
                    continue
                X = lags[:, : model["k"]]
                ok = ~np.isnan(X).any(axis=1)
                m = last[ok] * np.exp(model["beta"][0] + X[ok] @ model["beta"][1:])
                r = np.full(m.shape, 1.0 / model["alpha"])
                mu[ok, h - 1, f], size[ok, h - 1, f] = m, r
                mean[ok, h - 1, f] = (expected_log1p(m, r, last[ok]) - center[f]) / scale[f]
                quant[ok, h - 1, f] = self._quantiles(m, r, last[ok], center[f], scale[f])
        still = np.isnan(mean)  # persistence where no model or too little history (reported)
        persist = np.broadcast_to(data.last_target(origins)[:, None, :], mean.shape)
        mean[still] = persist[still]
        quant[still] = np.repeat(persist[..., None], len(QUANTILES), axis=-1)[still]
        self.persisted = int(still.sum())
        # a count distribution only where it covers every point: persistence has none, and scores on a subset of
        # the points would not compare with the other forecasters' (the report says so)
        return Forecast(mean=mean, quantiles={q: quant[..., i] for i, q in enumerate(QUANTILES)},
                        counts=None if self.persisted else Counts(mu, size))

    @staticmethod
    def _quantiles(mu, size, last, center, scale) -> np.ndarray:
        from scipy import stats

        levels = np.asarray(QUANTILES)[None, :]
        counts = stats.nbinom.ppf(levels, size[:, None], (size / (size + mu))[:, None])
        return (np.log1p(counts / last[:, None]) - center) / scale

    def report(self) -> dict:
        """Per target feature and horizon: the lags chosen, the dispersion, training rows; persistence and why."""
        models = {f"{self.features[f]} h={h}": {key: m[key] for key in ("k", "alpha", "rows", "aic", "note", "warnings")
                                                 if key in m}
                  for (f, h), m in sorted(self.models.items())}
        none = [name for name, m in models.items() if m.get("k") is None]
        notes = [f"nbar is persistence for {len(none)} of {len(models)} feature x horizon models (too few training "
                 "rows or no fit)"] if none else []
        if self.persisted:
            notes.append(f"nbar: persistence stood in at {self.persisted} forecast points (too little history or no "
                         "model), so its count-scale scores are left out of this run")
        return {"models": models, "notes": notes}
