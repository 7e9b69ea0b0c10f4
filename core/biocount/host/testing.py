"""Test helpers for plugin authors (opt-in: ``pytest_plugins = ["biocount.host.testing"]``).

Never auto-loaded into other projects' test runs (no ``pytest11`` entry point). Provides:

- ``biocount_host``: a fixture giving a plugin host with entry-point discovery switched off, so a
  test sees only core and what it registers;
- :func:`registered`: a context manager registering a plugin object for the duration of a test;
- :class:`EncoderContract` and :class:`ForecasterContract`: test classes to subclass, checking a
  component on small synthetic data: valid output, no leakage between fit and transform (or from
  the future), determinism under a seed, options round trip, clear errors on bad input.

The causality contract (``test_truncation`` in both): deleting every row after a time t changes
nothing encoded, and no forecast made, at or before t. It catches state learned from rows the
training mask excludes (in any attribute), per-series centring over the whole series inside
``transform``, filters computed on all rows, and decisions about an origin taken with later data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from biocount.errors import BiocountInputError
from biocount.host.contract import ModalityData
from biocount.host.plugins import Host, PluginRecord, load_host


@pytest.fixture
def biocount_host() -> Host:
    """A host with core's components and no installed plugins (discovery off)."""
    return load_host(entry_points=[])


@contextlib.contextmanager
def registered(host: Host, plugin: Any, *, name: str = "test-plugin") -> Iterator[PluginRecord]:
    """Register ``plugin`` (a module or object with hook implementations) in ``host`` for a block."""
    record = host.add_plugin(plugin, name=name, dist=name)
    try:
        if record.status != "loaded":
            raise AssertionError(f"plugin '{name}' did not load: {record.status}: {record.error}")
        yield record
    finally:
        host.remove_plugin(record)


def synthetic_table(*, n_series: int = 4, n_times: int = 12, n_features: int = 5, counts: bool = False,
                    seed: int = 0) -> Any:
    """A small AnnData: one row per series x time, obs ``series`` and ``time``, positive values."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    t = np.arange(n_times, dtype=float)
    level = rng.lognormal(3, 0.5, size=(n_series, 1, n_features))
    wave = 1 + 0.3 * np.sin(t[None, :, None] / 2 + rng.uniform(0, 6, size=(n_series, 1, 1)))
    mean = level * wave
    values = rng.poisson(mean) if counts else mean * rng.lognormal(0, 0.1, size=mean.shape)
    obs = pd.DataFrame({"series": np.repeat([f"s{i}" for i in range(n_series)], n_times),
                        "time": np.tile(t, n_series)})
    obs.index = [f"{s}@{x:g}" for s, x in zip(obs["series"], obs["time"], strict=True)]
    return ad.AnnData(X=values.reshape(-1, n_features).astype(np.float32), obs=obs,
                      var=pd.DataFrame(index=[f"f{i}" for i in range(n_features)]))


def _flatten(prefix: str, value: Any, out: dict[str, np.ndarray]) -> None:
    if isinstance(value, dict):
        for k in sorted(value, key=str):
            _flatten(f"{prefix}[{k}]", value[k], out)
    elif hasattr(value, "__dict__") and not isinstance(value, np.ndarray):
        for k, v in vars(value).items():
            _flatten(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = np.asarray(value)


def fitted_state(obj: Any) -> dict[str, np.ndarray]:
    """Everything an encoder learned: attributes ending in ``_``, dicts and small objects flattened."""
    state: dict[str, np.ndarray] = {}
    for key, value in vars(obj).items():
        if key.endswith("_"):
            _flatten(key, value, state)
    return state


def _assert_same_before(full: ModalityData, short: ModalityData, t: float, atol: float, what: str) -> None:
    """Every value of ``full`` at times <= t equals ``short``'s (same series, features; NaN equal NaN)."""
    assert set(short.series.tolist()) <= set(full.series.tolist()), f"{what}: truncation invented series"
    rows = [full.series.tolist().index(s) for s in short.series.tolist()]
    if short.static is not None or full.static is not None:
        np.testing.assert_allclose(short.static, full.static[rows], atol=atol, equal_nan=True,
                                   err_msg=f"{what}: static covariates changed when rows after time {t:g} were deleted")
    if full.times is None or full.times.size == 0:
        return
    keep = full.times <= t
    np.testing.assert_array_equal(short.times, full.times[keep], err_msg=f"{what}: times at or before {t:g} changed")
    np.testing.assert_allclose(short.values, full.values[rows][:, keep], atol=atol, equal_nan=True,
                               err_msg=f"{what}: values at or before time {t:g} changed when later rows were "
                                       "deleted (state learned from all rows, a whole-series statistic in "
                                       "transform, or a filter over all rows?)")


class EncoderContract:
    """Subclass and set ``modality`` (the name your encoder serves) and, if needed, override
    :meth:`build` and :meth:`example`. Fitted state must live in attributes ending with ``_``."""

    modality: str = ""
    options: dict[str, Any] = {}
    truncation_atol: float = 1e-9  # raise it for float32 / GPU arithmetic, never to hide a leak

    @pytest.fixture
    def host(self) -> Host:
        return load_host()

    def build(self, host: Host, **options: Any) -> Any:
        return host.encoder(self.modality).build(**{**self.options, **options})

    def example(self, seed: int = 0) -> Any:
        return synthetic_table(seed=seed)

    def _outputs(self, encoder: Any, adata: Any) -> list[ModalityData]:
        out = encoder.transform(adata)
        return out if isinstance(out, list) else [out]

    def test_returns_the_data_contract(self, host):
        adata = self.example()
        parts = self._outputs(self.build(host).fit(adata), adata)
        assert parts and all(isinstance(p, ModalityData) for p in parts)
        main = parts[0]
        assert set(main.series) == set(adata.obs["series"].astype(str))
        assert main.times.size == np.unique(adata.obs["time"]).size

    def test_fit_learns_from_training_rows_only(self, host):
        adata = self.example()
        late = adata.obs["time"].to_numpy() > np.median(adata.obs["time"])
        changed = adata.copy()
        X = np.array(changed.X.toarray() if hasattr(changed.X, "toarray") else changed.X, dtype=np.float64)
        X[late] = X[late] * 3 + 7
        changed.X = X.astype(np.float32)
        a, b = self.build(host).fit(adata, train=~late), self.build(host).fit(changed, train=~late)
        sa, sb = fitted_state(a), fitted_state(b)
        assert sa.keys() == sb.keys(), "fitted attributes differ"
        for key in sa:
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=f"fitted {key} saw test rows")

    def test_truncation(self, host):
        """Deleting every row after time t (and fitting on the same training rows) changes nothing at or before t."""
        adata = self.example()
        time = adata.obs["time"].to_numpy(dtype=float)
        times = np.unique(time)
        train_until, t = times[len(times) // 3], times[(2 * len(times)) // 3]

        def encode(a):
            a_time = a.obs["time"].to_numpy(dtype=float)
            return self._outputs(self.build(host).fit(a, train=a_time <= train_until), a)

        full, short = encode(adata), encode(adata[time <= t].copy())
        assert len(full) == len(short), "truncation changed how many modalities the encoder returns"
        for a, b in zip(full, short, strict=True):
            _assert_same_before(a, b, t, self.truncation_atol, f"encoder for '{self.modality}' ({a.meta.modality})")

    def test_deterministic(self, host):
        adata = self.example()
        first = self._outputs(self.build(host).fit(adata), adata)
        second = self._outputs(self.build(host).fit(adata), adata)
        for x, y in zip(first, second, strict=True):
            np.testing.assert_array_equal(x.values, y.values)

    def test_options_round_trip(self, host):
        comp = host.encoder(self.modality)
        opts = comp.spec.options.model_validate(self.options)
        assert comp.spec.options.model_validate(opts.model_dump()) == opts

    def test_clear_error_on_bad_input(self, host):
        adata = self.example()
        broken = adata.copy()
        broken.obs = broken.obs.drop(columns="time")
        with pytest.raises(BiocountInputError):
            enc = self.build(host).fit(broken)
            enc.transform(broken)


class ForecasterContract:
    """Subclass and set ``name`` (your forecaster's name) and ``options`` (keep them fast)."""

    name: str = ""
    options: dict[str, Any] = {}
    horizon: int = 2
    truncation_atol: float = 1e-9  # raise it for float32 / GPU arithmetic, never to hide a leak

    @pytest.fixture
    def host(self) -> Host:
        return load_host()

    def task(self, seed: int = 0, shift_after: int | None = None, delete_after: int | None = None,
             in_series: list[int] | None = None) -> Any:
        """3 series x 30 days x 2 features; training up to day 15, validation targets up to day 19.

        ``delete_after``: rows after that day are deleted (of ``in_series``, default all series), as
        if the study had ended then.
        """
        from biocount.forecast import ForecastTask, present_origins
        from biocount.study.align import align

        rng = np.random.default_rng(seed)
        S, T, F = 3, 30, 2
        t = np.arange(T, dtype=float)
        y = np.sin(t[None, :, None] / 3 + rng.uniform(0, 6, (S, 1, F))) + rng.normal(0, 0.1, (S, T, F))
        if shift_after is not None:
            y[:, shift_after + 1:] += 5.0
        if delete_after is not None:
            cut = list(range(S)) if in_series is None else in_series
            if in_series is None:
                t, y = t[: delete_after + 1], y[:, : delete_after + 1]
            else:
                y[cut, delete_after + 1:] = np.nan
        d = ModalityData(series=[f"s{i}" for i in range(S)], times=t, features=[f"f{i}" for i in range(F)],
                         values=y, meta={"modality": "x"})
        data = align({"x": d}, target="x")
        val = present_origins(data, np.full(S, 15), np.full(S, 19 - self.horizon))
        return ForecastTask(data=data, horizon=self.horizon, train_end=np.full(S, 15), val_origins=val,
                            seed=0, val_end=np.full(S, 19))

    def build(self, host: Host) -> Any:
        return host.forecaster(self.name).build(**self.options)

    def test_fit_predict_shapes(self, host):
        task = self.task()
        origins = np.array([[0, 20], [1, 25], [2, 28]])
        fc = self.build(host).fit(task).predict(task, origins)
        assert fc.mean.shape == (3, self.horizon, 2) and np.isfinite(fc.mean).all()

    def test_deterministic(self, host):
        task = self.task()
        origins = np.array([[0, 20], [2, 26]])
        a = self.build(host).fit(task).predict(task, origins).mean
        b = self.build(host).fit(task).predict(task, origins).mean
        np.testing.assert_array_equal(a, b)

    def test_no_look_ahead(self, host):
        """Changing data after the last origin changes no forecast."""
        origins = np.array([[0, 20], [1, 21]])
        base, changed = self.task(), self.task(shift_after=21)
        a = self.build(host).fit(base).predict(base, origins).mean
        b = self.build(host).fit(changed).predict(changed, origins).mean
        np.testing.assert_allclose(a, b, atol=1e-9)

    def test_truncation(self, host):
        """Deleting the rows after day t (of one series, then of every series, as a global model also
        learns from the others) leaves every forecast at origins <= t unchanged."""
        t = 24  # after the validation targets: fitting sees the same data either way
        origins = np.array([(s, o) for s in range(3) for o in range(16, t + 1)])
        full = self.build(host).fit(self.task()).predict(self.task(), origins)
        for in_series in ([0], None):
            short_task = self.task(delete_after=t, in_series=in_series)
            short = self.build(host).fit(short_task).predict(short_task, origins)
            where = "series s0" if in_series else "every series"
            np.testing.assert_allclose(short.mean, full.mean, atol=self.truncation_atol, err_msg=(
                f"forecaster '{self.name}': forecasts at origins <= {t} changed when the rows after {t} of {where} "
                "were deleted: something about an origin used later data"))
            for q, values in full.quantiles.items():
                np.testing.assert_allclose(short.quantiles[q], values, atol=self.truncation_atol,
                                           err_msg=f"forecaster '{self.name}': quantile {q} looked ahead")
            if full.sd is not None:
                np.testing.assert_allclose(short.sd, full.sd, atol=self.truncation_atol,
                                           err_msg=f"forecaster '{self.name}': its predictive sd looked ahead")

    def test_options_round_trip(self, host):
        comp = host.forecaster(self.name)
        opts = comp.spec.options.model_validate(self.options)
        assert comp.spec.options.model_validate(opts.model_dump()) == opts
