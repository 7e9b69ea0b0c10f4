"""The shared LSTM: cells, shapes, losses, training, checkpoints, determinism, bad options."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from biocount import BiocountInputError
from biocount.forecast import ForecastTask, present_origins
from biocount.forecasters.lstm.forecaster import LSTMForecaster
from biocount.forecasters.lstm.likelihood import gaussian_nll, mse, negbin_nll, poisson_nll
from biocount.forecasters.lstm.network import MultiModalLSTM, NetworkConfig, PeepholeLSTM, _peephole_layer
from biocount.forecasters.lstm.options import SEED, LSTMOptions
from biocount.host.plugins import load_host
from biocount.study.align import align
from biocount.study.encode import TrainSelection, encode

FAST = {"epochs": 15, "patience": 5, "quiet": True, "hidden": 8, "adapter_dim": 8, "lookback": 4, "members": 1}


# -- the peephole cell ------------------------------------------------------------------------
@pytest.mark.parametrize("layers", [1, 2])
def test_peephole_with_zero_peepholes_equals_nn_lstm(layers):
    torch.manual_seed(0)
    ref = torch.nn.LSTM(5, 7, num_layers=layers, batch_first=True)
    cell = PeepholeLSTM(5, 7, num_layers=layers)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            getattr(cell, name).copy_(p)
        for k in range(layers):
            getattr(cell, f"peep_l{k}").zero_()
    x = torch.randn(4, 6, 5, requires_grad=True)
    h0 = torch.randn(layers, 4, 7)
    c0 = torch.randn(layers, 4, 7)
    out_ref, (h_ref, c_ref) = ref(x, (h0, c0))
    out, (h, c) = cell(x, (h0, c0))
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c, c_ref, atol=1e-5, rtol=1e-5)
    g_ref = torch.autograd.grad(out_ref.sum() + c_ref.sum(), [x, ref.weight_hh_l0])
    g = torch.autograd.grad(out.sum() + c.sum(), [x, cell.weight_hh_l0])
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_peephole_terms_act_on_the_previous_cell_state():
    """One step by hand from the seed's equations, with non-zero peepholes."""
    torch.manual_seed(1)
    cell = PeepholeLSTM(3, 2)
    x, h0, c0 = torch.randn(1, 1, 3), torch.randn(1, 1, 2), torch.randn(1, 1, 2)
    out, (_, c1) = cell(x, (h0, c0))
    W, U = cell.weight_ih_l0, cell.weight_hh_l0
    b = cell.bias_ih_l0 + cell.bias_hh_l0
    wci, wcf, wco = cell.peep_l0.chunk(3)
    z = x[0, 0] @ W.t() + h0[0, 0] @ U.t() + b
    zi, zf, zg, zo = z.chunk(4)
    c_prev = c0[0, 0]
    i, f, o = torch.sigmoid(zi + wci * c_prev), torch.sigmoid(zf + wcf * c_prev), torch.sigmoid(zo + wco * c_prev)
    c = f * c_prev + i * torch.tanh(zg)
    torch.testing.assert_close(c1[0, 0], c)
    torch.testing.assert_close(out[0, 0], o * torch.tanh(c))


def test_peephole_gradcheck_float64():
    torch.manual_seed(2)
    B, T, H = 2, 3, 3
    args = [torch.randn(B, T, 4 * H, dtype=torch.float64, requires_grad=True),
            torch.randn(B, H, dtype=torch.float64, requires_grad=True),
            torch.randn(B, H, dtype=torch.float64, requires_grad=True),
            torch.randn(4 * H, H, dtype=torch.float64, requires_grad=True),
            torch.randn(3 * H, dtype=torch.float64, requires_grad=True)]
    assert torch.autograd.gradcheck(lambda *a: _peephole_layer(*a)[0], args)
    from biocount.forecasters.lstm.network import peephole_layer

    # the fast layer (scripted loops, hand-written backward): every output and every input's gradient
    assert torch.autograd.gradcheck(lambda *a: peephole_layer(*a), args)
    ref = _peephole_layer(*args)
    fast = peephole_layer(*args)
    for a, b in zip(ref, fast, strict=True):
        torch.testing.assert_close(a, b)
    g_ref = torch.autograd.grad(sum(x.sum() for x in ref), args)
    g_fast = torch.autograd.grad(sum(x.sum() for x in fast), args)
    for a, b in zip(g_ref, g_fast, strict=True):
        torch.testing.assert_close(a, b)


# -- shapes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["standard", "peephole"])
@pytest.mark.parametrize("mods", [{"a": 3}, {"a": 3, "b": 7}, {"a": 3, "b": 7, "c": 1}])
@pytest.mark.parametrize("n_static", [0, 4])
def test_shapes(cell, mods, n_static):
    model = MultiModalLSTM(NetworkConfig(modalities=mods, n_static=n_static, n_targets=5, horizon=3, hidden=6,
                           adapter_dim=4, cell=cell, outputs_per_target=2))
    inputs = {m: torch.randn(8, 10, c) for m, c in mods.items()}
    static = torch.randn(8, n_static) if n_static else None
    out = model(inputs, static, torch.rand(8, 3))
    assert out.shape == (8, 3, 5, 2)


@pytest.mark.parametrize("lag_steps", [0, 6])
def test_residual_head_starts_at_persistence(lag_steps):
    model = MultiModalLSTM(NetworkConfig(modalities={"a": 3}, n_static=0, n_targets=2, horizon=4, hidden=5, lag_steps=lag_steps))
    model.zero_head()
    assert torch.count_nonzero(model({"a": torch.randn(3, 6, 3)})) == 0


def test_the_lag_head_reads_one_step_directly():
    """A lag head whose only weight links step 2 of the lookback to the forecast: changing that step moves the
    forecast by exactly weight x change (through the adapter's output), other steps only through the LSTM."""
    torch.manual_seed(0)
    model = MultiModalLSTM(NetworkConfig(modalities={"a": 1}, n_static=0, n_targets=1, horizon=1, hidden=4, adapter_dim=2,
                           adapters=False, lag_steps=4, dropout=0.0)).eval()
    model.zero_head()  # the LSTM's head silent: the forecast is the lag head alone
    with torch.no_grad():
        model.lag_head.weight.zero_()
        model.lag_head.weight[0, 2] = 3.0  # steps x channels flattened: step 2, channel 0
    x = torch.zeros(1, 4, 1)
    with torch.no_grad():
        assert float(model({"a": x})) == 0.0
        x[0, 2, 0] = 0.5
        assert float(model({"a": x})) == pytest.approx(1.5)
        x[0, 2, 0], x[0, 1, 0] = 0.0, 7.0
        assert float(model({"a": x})) == 0.0


# -- losses against independent references ----------------------------------------------------------
def test_losses_match_scipy_and_ignore_masked_entries():
    rng = np.random.default_rng(0)
    counts = torch.tensor(rng.poisson(5, size=(4, 3)).astype(np.float64))
    log_mu = torch.tensor(rng.normal(1.5, 0.3, size=(4, 3)))
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[0, 0] = False
    mu, y = log_mu.exp().numpy(), counts.numpy()
    ref = -stats.poisson.logpmf(y, mu)[mask.numpy()].mean()
    assert float(poisson_nll(log_mu, counts, mask)) == pytest.approx(ref, rel=1e-9)
    alpha = np.array([0.1, 0.5, 1.0])
    r = 1 / alpha
    ref_nb = -stats.nbinom.logpmf(y, r, r / (r + mu))[mask.numpy()].mean()
    got = negbin_nll(log_mu, torch.tensor(np.log(alpha)), counts, mask)
    assert float(got) == pytest.approx(ref_nb, rel=1e-9)
    mean, log_var, target = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    ref_g = -stats.norm.logpdf(target.numpy(), mean.numpy(), np.exp(0.5 * log_var.numpy())) - 0.5 * np.log(2 * np.pi)
    assert float(gaussian_nll(mean, log_var, target, mask)) == pytest.approx(ref_g[mask.numpy()].mean(), rel=1e-9)
    # a masked entry can be anything: the loss does not change
    wild = target.clone()
    wild[0, 0] = 1e6
    assert float(mse(mean, wild, mask)) == float(mse(mean, target, mask))


# -- training on the demo ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_aligned(demo_study):
    from biocount.io.readers import as_modalities

    data = as_modalities(demo_study, where="demo")
    times = np.unique(data["protein"].obs["time"])
    encoded, _ = encode(data, ["rna", "protein", "genomic"], load_host(),
                        train=TrainSelection(until=float(times[17])), options={"rna": {"n_top_genes": 12}})
    return align(encoded, target="protein")


def make_task(aligned, horizon=2, seed=0):
    S = aligned.series.size
    train_end = np.full(S, 17)
    val = present_origins(aligned, np.full(S, 17), np.full(S, 22 - horizon))
    return ForecastTask(data=aligned, horizon=horizon, train_end=train_end, val_origins=val, seed=seed)


@pytest.mark.parametrize(("scaling", "drop"), [("series", 0.8), ("window", 0.95)])
def test_loss_decreases_and_predictions_have_the_right_shape(demo_aligned, scaling, drop):
    # per-window units start from persistence on each window's own scale: less room to fall than per-series ones
    task = make_task(demo_aligned)
    f = LSTMForecaster(LSTMOptions(**{**FAST, "patience": None, "epochs": 20, "scaling": scaling})).fit(task)
    losses = [h[1] for h in f.history]
    assert losses[-1] < drop * losses[0]
    origins = present_origins(demo_aligned, np.full(12, 22), np.full(12, 27))
    pred = f.predict(task, origins).mean
    assert pred.shape == (origins.shape[0], 2, 10) and np.isfinite(pred).all()


def test_same_seed_same_predictions_other_seed_differs(demo_aligned):
    task = make_task(demo_aligned)
    origins = present_origins(demo_aligned, np.full(12, 22), np.full(12, 27))
    p1 = LSTMForecaster(LSTMOptions(**FAST)).fit(task).predict(task, origins).mean
    p2 = LSTMForecaster(LSTMOptions(**FAST)).fit(task).predict(task, origins).mean
    p3 = LSTMForecaster(LSTMOptions(**FAST, seed=1)).fit(task).predict(task, origins).mean
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)


@pytest.mark.parametrize("options", [{"cell": "peephole"}, {"loss": "gaussian"}, {"members": 2},
                                     {"regular_history": False, "lag_head": False}])
def test_save_and_load_give_identical_predictions(demo_aligned, tmp_path, options):
    task = make_task(demo_aligned)
    f = LSTMForecaster(LSTMOptions(**{**FAST, **options})).fit(task)
    origins = present_origins(demo_aligned, np.full(12, 22), np.full(12, 27))
    f.save(tmp_path / "model.pt")
    g = LSTMForecaster.load(tmp_path / "model.pt", device="cpu")
    a, b = f.predict(task, origins), g.predict(task, origins)
    np.testing.assert_array_equal(a.mean, b.mean)
    for q in a.quantiles:
        np.testing.assert_array_equal(a.quantiles[q], b.quantiles[q])


def test_a_seed_ensemble_is_the_mean_of_its_members(demo_aligned):
    """Member k is exactly the single network trained from seed + k; the ensemble averages them."""
    task = make_task(demo_aligned)
    origins = present_origins(demo_aligned, np.full(12, 22), np.full(12, 27))
    both = LSTMForecaster(LSTMOptions(**{**FAST, "members": 2})).fit(task)
    one = [LSTMForecaster(LSTMOptions(**FAST, seed=k)).fit(task).predict(task, origins).mean for k in (0, 1)]
    np.testing.assert_allclose(both.predict(task, origins).mean, (one[0] + one[1]) / 2, rtol=1e-6, atol=1e-6)
    assert len(both.report()["best_epochs"]) == 2


def test_forecasts_in_pieces_equal_one_pass(demo_aligned, monkeypatch):
    """A large batch of windows goes through the network in pieces (FORWARD_CHUNK, lowered here): the same
    forecasts and spreads as one pass, to float32 rounding, in the same order; the network's raw outputs too."""
    from biocount.forecasters.lstm import forecaster as module

    task = make_task(demo_aligned)
    S = demo_aligned.series.size
    origins = present_origins(demo_aligned, np.full(S, 5), np.full(S, 27))
    model = LSTMForecaster(LSTMOptions(**{**FAST, "members": 2, "loss": "gaussian"})).fit(task)
    whole = model.predict(task, origins)
    val = model._windows(demo_aligned, task.val_origins)
    raw = model._with_state(model.members[0], lambda: model.outputs(val))
    monkeypatch.setattr(module, "FORWARD_CHUNK", 7)
    pieces = model.predict(task, origins)
    np.testing.assert_allclose(pieces.mean, whole.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pieces.sd, whole.sd, rtol=1e-5)
    for a, b in zip(model._with_state(model.members[0], lambda: model.outputs(val)), raw, strict=True):
        assert a.shape == b.shape == (task.val_origins.shape[0], 2, demo_aligned.target_features.size)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_no_room_for_the_windows_files_trains_the_members_here(demo_aligned, monkeypatch, capsys):
    """A temporary folder without room for the workers' window files costs the side-by-side training, not the
    model: the members train here, one after another, to the same weights, and one line says why and what to do."""
    import errno

    from biocount.forecasters.lstm import training

    def full(batch, stem):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training, "LOKY_MEMBERS_MIN_WINDOWS", 0)
    monkeypatch.setattr(training, "_mapped", full)
    task = make_task(demo_aligned)
    options = {**FAST, "members": 2, "epochs": 3}
    here = LSTMForecaster(LSTMOptions(**options)).fit(task)
    capsys.readouterr()
    fallback = LSTMForecaster(LSTMOptions(**{**options, "n_jobs": 2, "quiet": False})).fit(task)
    err = capsys.readouterr().err
    assert "cannot write the training windows" in err and "No space left on device" in err and "TMPDIR" in err
    assert fallback.report()["members_on"] == "this process"
    for a, b in zip(here.members, fallback.members, strict=True):
        for name, tensor in a["model"].items():
            assert torch.equal(tensor, b["model"][name]), name


def test_windows_go_to_worker_processes_as_files_not_copies(tmp_path):
    """The members' workers get the windows as file names (a pickle of a few hundred bytes whatever the study's
    size) and map them back to the same tensors, nested dicts, bools, empty tensors and None included; a write
    into a mapped tensor stays in that process (copy-on-write), so one member cannot change another's data."""
    import pickle

    from biocount.forecasters.lstm import training

    batch = {"last": torch.randn(50_000, 12), "mask": torch.rand(50_000, 3) > 0.5, "static": None,
             "inputs": {"rna": torch.randn(50_000, 12, 8), "_time": torch.arange(12.0).expand(50_000, 12)},
             "empty": torch.zeros(0, 4)}
    files = training._mapped(batch, tmp_path / "train")
    assert len(pickle.dumps(files)) < 2_000 < len(pickle.dumps(batch)) // 1_000
    back = training._loaded(pickle.loads(pickle.dumps(files)))
    assert back.keys() == batch.keys() and back["inputs"].keys() == batch["inputs"].keys() and back["static"] is None
    for got, want in [(back[k], batch[k]) for k in ("last", "mask", "empty")] + \
                     [(back["inputs"][k], batch["inputs"][k]) for k in ("rna", "_time")]:
        assert got.dtype == want.dtype and torch.equal(got, want)
    back["last"][0, 0] = 1e6
    assert torch.equal(training._loaded(files)["last"], batch["last"])
    assert training._loaded(None) is None


def test_members_trained_side_by_side_in_worker_processes_equal_those_trained_here(demo_aligned, monkeypatch):
    """With n_jobs > 1 the members train at once in loky worker processes (a study this small only because the
    threshold is lowered): the same weights, bit for bit, and the same forecasts."""
    from biocount.forecasters.lstm import training

    monkeypatch.setattr(training, "LOKY_MEMBERS_MIN_WINDOWS", 0)
    task = make_task(demo_aligned)
    origins = present_origins(demo_aligned, np.full(12, 22), np.full(12, 27))
    here = LSTMForecaster(LSTMOptions(**{**FAST, "members": 3})).fit(task)
    there = LSTMForecaster(LSTMOptions(**{**FAST, "members": 3, "n_jobs": 2})).fit(task)
    assert (here.report()["members_on"], there.report()["members_on"]) == ("this process", "this process and 2 worker processes")
    for a, b in zip(here.members, there.members, strict=True):
        for name, tensor in a["model"].items():
            assert torch.equal(tensor, b["model"][name]), name
    np.testing.assert_array_equal(here.predict(task, origins).mean, there.predict(task, origins).mean)
    assert here.report()["history"] == there.report()["history"]
    monkeypatch.setattr(training, "LOKY_MEMBERS_MIN_WINDOWS", 10**9)  # below the threshold: here, one by one
    assert LSTMForecaster(LSTMOptions(**{**FAST, "members": 2, "n_jobs": 2})).fit(task).report()["members_on"] \
        == "this process"


def test_window_normalisation_against_a_hand_computed_window(demo_aligned):
    """Per-window scaling: each window's target history is centred on its own mean and divided by its own
    sd (floored); targets use the same level and spread; the level and log spread ride along as inputs.
    Lifting one series by c moves only its level channel (by c / pooled sd): the normalised values stay."""
    from dataclasses import replace

    from biocount.forecasters.lstm.windows import WINDOW_SD_FLOOR, SeriesScaler, make_windows

    S = demo_aligned.series.size
    scaler = SeriesScaler.pooled(demo_aligned, np.full(S, 17))
    origins = present_origins(demo_aligned, np.full(S, 10), np.full(S, 20))
    L, H, F = 4, 2, demo_aligned.target_features.size
    w = make_windows(demo_aligned, origins, lookback=L, horizon=H, scaler=scaler, window_norm=True)
    s, t = origins[7]
    hist = (demo_aligned.inputs["protein"].values[s, t - L + 1:t + 1] - scaler.mean[s]) / scaler.std[s]  # (L, F)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a protein unseen in this window: mean of nothing
        center, sd = np.nan_to_num(np.nanmean(hist, 0)), np.nan_to_num(np.nanstd(hist, 0))
    spread = np.maximum(sd, WINDOW_SD_FLOOR)
    np.testing.assert_allclose(w.center[7], center, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.spread[7], spread, rtol=1e-5)
    block = w.inputs["protein"][7]  # values, observed, gap, level, log spread
    np.testing.assert_allclose(block[:, :F], np.nan_to_num((hist - center) / spread), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(block[:, F + 2:2 * F + 2], np.broadcast_to(center, (L, F)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(block[:, 2 * F + 2:], np.broadcast_to(np.log(spread), (L, F)), rtol=1e-5)
    y = (demo_aligned.y[s, t + 1:t + H + 1] - scaler.mean[s]) / scaler.std[s]
    np.testing.assert_allclose(w.y[7][w.mask[7]], ((y - center) / spread)[w.mask[7]], rtol=1e-5, atol=1e-5)

    c = 3.0
    protein = demo_aligned.inputs["protein"]
    values, y_all = protein.values.copy(), demo_aligned.y.copy()
    values[0] += c
    y_all[0] += c
    lifted = replace(demo_aligned, y=y_all, inputs={**demo_aligned.inputs, "protein": replace(protein, values=values)})
    v = make_windows(lifted, origins, lookback=L, horizon=H, scaler=scaler, window_norm=True)
    first = origins[:, 0] == 0
    rows = origins[:, 1:2] + np.arange(-L + 1, 1)[None, :]  # (N, L) grid indices of each window's history
    seen = ~np.isnan(protein.values[origins[:, 0][:, None], rows]).all(axis=1)  # (N, F): any history observed
    np.testing.assert_allclose(v.inputs["protein"][..., :F], w.inputs["protein"][..., :F], atol=1e-4)
    np.testing.assert_allclose(np.where(seen[:, None], v.y, 0), np.where(seen[:, None], w.y, 0), atol=1e-4)
    lift = np.broadcast_to(c / scaler.std[0], seen.shape)
    np.testing.assert_allclose((v.center - w.center)[first & seen.all(1)], lift[first & seen.all(1)], atol=1e-4)
    np.testing.assert_array_equal(v.center[~first], w.center[~first])


def test_checkpoint_from_another_version_is_refused(demo_aligned, tmp_path):
    f = LSTMForecaster(LSTMOptions(**{**FAST, "epochs": 1})).fit(make_task(demo_aligned))
    f.save(tmp_path / "m.pt")
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    ckpt["biocount"] = "9.0.0"
    torch.save(ckpt, tmp_path / "old.pt")
    with pytest.raises(BiocountInputError, match="written by biocount 9.0.0.*retrain"):
        LSTMForecaster.load(tmp_path / "old.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(BiocountInputError, match="not a biocount checkpoint"):
        LSTMForecaster.load(tmp_path / "junk.pt")


def test_a_fully_missing_input_modality_still_trains_and_predicts(demo_aligned):
    from dataclasses import replace

    rna = demo_aligned.inputs["rna"]
    blank = replace(rna, values=np.full_like(rna.values, np.nan), observed=np.zeros_like(rna.observed),
                    gap=np.full_like(rna.gap, np.inf))
    data = replace(demo_aligned, inputs={**demo_aligned.inputs, "rna": blank})
    task = make_task(data)
    f = LSTMForecaster(LSTMOptions(**FAST, modality_dropout=0.5)).fit(task)
    pred = f.predict(task, present_origins(data, np.full(12, 22), np.full(12, 27))).mean
    assert np.isfinite(pred).all()


def test_count_likelihood_trains_on_count_targets(demo_study):
    from biocount.io.readers import as_modalities

    data = as_modalities(demo_study, where="demo")
    encoded, _ = encode(data, ["rna"], load_host(), options={"rna": {"n_top_genes": 6}})
    aligned = align(encoded, target="rna")
    task = make_task(aligned)
    for loss in ("poisson", "negbin"):
        f = LSTMForecaster(LSTMOptions(**FAST, loss=loss)).fit(task)
        fc = f.predict(task, present_origins(aligned, np.full(12, 22), np.full(12, 27)))
        pred = fc.mean
        assert np.isfinite(pred).all() and (pred >= 0).all()
        assert f.history[-1][1] < f.history[0][1]
        # likelihood intervals: ordered quantiles around the mean
        assert (fc.quantiles[0.025] <= fc.quantiles[0.5]).all() and (fc.quantiles[0.5] <= fc.quantiles[0.975]).all()
        assert (fc.quantiles[0.1] <= pred + 1e-6).mean() > 0.9 and (fc.quantiles[0.9] >= pred - 1e-6).mean() > 0.9


# -- options, presets, bad input -----------------------------------------------------------------------
def test_seed_preset_is_the_seed_documents_configuration():
    o = LSTMOptions(preset="seed")
    assert (o.hidden, o.layers, o.loss, o.epochs, o.batch_size, o.lr, o.patience) == (50, 1, "mse", 100, 32, 1e-3, None)
    assert not o.residual and o.scaling == "none" and not o.adapters and o.weight_decay == 0.0 and o.steps_per_epoch is None
    assert LSTMOptions(preset="seed", hidden=8).hidden == 8  # explicit options win
    assert set(SEED) <= set(LSTMOptions.model_fields)


def test_bad_options_and_tasks(demo_aligned):
    with pytest.raises(Exception, match="hidden"):
        LSTMOptions(hidden=0)
    with pytest.raises(BiocountInputError, match="horizon 30 leaves no history"):
        make_task(demo_aligned, horizon=30)
    f = LSTMForecaster(LSTMOptions(**{**FAST, "lookback": 19, "epochs": 1})).fit(make_task(demo_aligned))
    assert f.lookback == 18 and "lookback 18 (not 19)" in f.report()["notes"][0]
    with pytest.raises(BiocountInputError, match="loss 'negbin' needs count targets"):
        LSTMForecaster(LSTMOptions(**FAST, loss="negbin")).fit(make_task(demo_aligned))
    if not torch.cuda.is_available():
        with pytest.raises(BiocountInputError, match="--device cuda: no CUDA device"):
            LSTMForecaster(LSTMOptions(**FAST, device="cuda")).fit(make_task(demo_aligned))


def test_unknown_target_feature(demo_aligned):
    from biocount.host.contract import ModalityData

    d = ModalityData(series=["a"], times=[0, 1], features=["P1"], values=np.ones((1, 2, 1)), meta={"modality": "p"})
    with pytest.raises(BiocountInputError, match=r"target feature\(s\) P9 not in modality 'p'; it has P1"):
        align({"p": d}, target="p", target_features=["P9"])


def test_lstm_is_registered_through_the_forecaster_hook():
    comp = load_host().forecaster("lstm")
    assert comp.plugin.target == "biocount.core" and comp.spec.kind == "forecaster"
    assert isinstance(comp.build(hidden=4), LSTMForecaster)


def test_a_preset_chosen_at_build_time_is_applied():
    comp = load_host().forecaster("lstm")
    model = comp.build(preset="seed", quiet=True)
    assert (model.options.hidden, model.options.epochs, model.options.adapters) == (50, 100, False)
    assert comp.build(preset="seed", hidden=8).options.hidden == 8


def test_an_lstm_no_better_than_persistence_says_so(demo_aligned):
    """Validation's best epoch in the first two, or a validation MSE not below persistence's: one note."""
    task = make_task(demo_aligned)
    f = LSTMForecaster(LSTMOptions(**{**FAST, "epochs": 2, "min_epochs": 1})).fit(task)
    notes = [n for n in f.report()["notes"] if "no better than persistence" in n]
    assert len(notes) == 1 and "tried: 1 seed(s)" in notes[0] and "epoch" in notes[0]


def test_large_studies_take_fewer_bigger_steps(demo_aligned, monkeypatch):
    """At most steps_per_epoch optimiser steps per epoch: the batch grows to ceil(windows / steps) and the
    learning rate by the square root of the growth; below the threshold nothing changes."""
    task = make_task(demo_aligned)
    small = LSTMForecaster(LSTMOptions(**{**FAST, "epochs": 2, "patience": None})).fit(task)
    n = small.train_windows
    assert (small.batch_size, small.lr) == (64, FAST.get("lr", LSTMOptions().lr)) and n > 64
    steps = []
    real_step = torch.optim.AdamW.step

    def counted(self, *args, **kwargs):
        steps.append(1)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted)
    big = LSTMForecaster(LSTMOptions(**{**FAST, "epochs": 2, "patience": None, "steps_per_epoch": 2})).fit(task)
    assert big.batch_size == -(-n // 2) and len(steps) == 2 * 2 * big.options.members
    assert big.lr == pytest.approx(small.lr * (big.batch_size / 64) ** 0.5)
    assert big.report()["batch_size"] == big.batch_size and big.report()["train_windows"] == n


def test_patience_is_capped_in_optimiser_steps_on_large_studies(demo_aligned, monkeypatch):
    """Early stopping waits `patience` epochs, or PATIENCE_STEPS optimiser steps' worth when an epoch is many
    steps, never fewer than MIN_PATIENCE epochs: the run stops exactly that many epochs after its best one."""
    from biocount.forecasters.lstm import training

    steps = (1, 35, 52, 57, 135, 256)  # per epoch, at batch 64
    assert [training.patience_epochs(20, 64 * s, 64) for s in steps] == [20, 20, 20, 18, 8, 5]
    assert training.patience_epochs(20, 64 * 135 - 10, 64) == 8  # a last, smaller batch is a step too
    assert (training.patience_epochs(3, 64 * 256, 64), training.patience_epochs(None, 64 * 256, 64)) == (3, None)
    task = make_task(demo_aligned)
    options = LSTMOptions(**{**FAST, "epochs": 200, "patience": 20})

    def waited(fitted):  # epochs trained after the best one
        assert len(fitted.history) < options.epochs  # stopped early, not at the last epoch
        return len(fitted.history) - 1 - fitted.best_epoch

    first = LSTMForecaster(options).fit(task)
    assert waited(first) == first.report()["patience"] == 20
    steps = -(-first.train_windows // first.batch_size)  # this small study's steps per epoch
    monkeypatch.setattr(training, "MIN_PATIENCE", 1)
    monkeypatch.setattr(training, "PATIENCE_STEPS", 2 * steps)  # two epochs' worth of steps
    capped = LSTMForecaster(options).fit(task)
    assert waited(capped) == capped.report()["patience"] == 2


# -- one network, any input subset ------------------------------------------------------------------
def test_a_switched_off_modality_is_a_zero_adapter_output():
    """off={"b"} equals the same network whose adapter b outputs exactly zero (LayerNorm's affine zeroed:
    GELU(0) = 0), computed independently of the off path."""
    torch.manual_seed(0)
    model = MultiModalLSTM(NetworkConfig(modalities={"a": 3, "b": 4}, n_static=0, n_targets=2, horizon=2, hidden=5,
                           adapter_dim=3, lag_steps=6, modality_dropout=0.5)).eval()
    torch.nn.init.normal_(model.lag_head.weight)
    inputs = {"a": torch.randn(7, 6, 3), "b": torch.randn(7, 6, 4)}
    with torch.no_grad():
        off = model(inputs, None, torch.rand(7, 2), frozenset({"b"}))
        silent = MultiModalLSTM(NetworkConfig(modalities={"a": 3, "b": 4}, n_static=0, n_targets=2, horizon=2, hidden=5,
                                adapter_dim=3, lag_steps=6)).eval()
        silent.load_state_dict(model.state_dict())
        silent.adapters["b"].norm.weight.zero_()
        silent.adapters["b"].norm.bias.zero_()
        ahead = torch.rand(7, 2)
        np.testing.assert_allclose(model(inputs, None, ahead, frozenset({"b"})), silent(inputs, None, ahead), atol=1e-6)
        assert not torch.allclose(off, model(inputs, None, torch.rand(7, 2)))


def test_forecasts_without_a_modality_do_not_read_it(demo_aligned):
    from dataclasses import replace

    task = make_task(demo_aligned)
    f = LSTMForecaster(LSTMOptions(**FAST)).fit(task)
    origins = present_origins(demo_aligned, np.full(12, 22), np.full(12, 27))
    rna = demo_aligned.inputs["rna"]
    noisy = replace(demo_aligned, inputs=dict(demo_aligned.inputs) | {"rna": replace(
        rna, values=rna.values + np.random.default_rng(0).normal(0, 3, rna.values.shape))})
    other = ForecastTask(data=noisy, horizon=2, train_end=task.train_end, val_origins=task.val_origins)
    kept = ("rna", "rna_celltypes", "genomic")  # every block the rna encoder wrote, and the static genotypes
    np.testing.assert_array_equal(f.predict(task, origins, without=kept).mean, f.predict(other, origins, without=kept).mean)
    assert not np.allclose(f.predict(task, origins).mean, f.predict(other, origins).mean)
    with pytest.raises(BiocountInputError, match="cannot switch off 'protein'.*do without are rna, rna_celltypes, genomic$"):
        f.predict(task, origins, without=("protein",))
