"""The seed document's Keras model (LSTM(50) -> Dense(1), adam, MSE, 100 epochs, batch 32; Keras 3 on the
torch backend, `pip install -e ".[bench]"`) vs biocount's `seed` preset, on the same windows of the demo:
protein P01, horizon 1, lookback 8, the same raw input channels, the same train and test origins."""

from __future__ import annotations

import os
import time

import numpy as np

from bench.common import report


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        report("seed", [{"status": "skipped: keras is not installed (pip install -e '.[bench]')"}])
        return
    from biocount.forecast import ForecastTask, present_origins
    from biocount.forecasters.lstm.forecaster import LSTMForecaster
    from biocount.forecasters.lstm.options import LSTMOptions
    from biocount.forecasters.lstm.windows import make_windows, train_origins
    from biocount.host.plugins import load_host
    from biocount.io.datasets import demo
    from biocount.io.readers import as_modalities
    from biocount.study.align import align
    from biocount.study.encode import TrainSelection, encode

    data = as_modalities(demo(0), where="demo")
    times = np.unique(data["protein"].obs["time"])
    encoded, _ = encode(data, ["rna", "protein"], load_host(), train=TrainSelection(until=float(times[17])))
    aligned = align(encoded, target="protein", target_features=["P01"])
    S = aligned.series.size
    task = ForecastTask(data=aligned, horizon=1, train_end=np.full(S, 17))
    test = present_origins(aligned, np.full(S, 21), np.full(S, 28))

    t = time.perf_counter()
    ours = LSTMForecaster(LSTMOptions(preset="seed", quiet=True, seed=0)).fit(task)
    ours_s = (time.perf_counter() - t) / 100
    train = train_origins(task.data, task.train_end, task.horizon, task.train_series)

    def xy(origins):
        w = make_windows(aligned, origins, lookback=8, horizon=1, scaler=ours.scaler, inputs_scaler=ours.inputs_scaler)
        x = np.concatenate([w.inputs[k] for k in ours.model.names], axis=-1)  # the seed: raw channels concatenated
        keep = w.mask[:, 0, 0]
        return x[keep], w.y[keep, 0, :1], origins[keep]

    x_tr, y_tr, _ = xy(train)
    x_te, y_te, test_kept = xy(test)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(x_tr.shape[1:]), keras.layers.LSTM(50), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    t = time.perf_counter()
    model.fit(x_tr, y_tr, epochs=100, batch_size=32, verbose=0)
    keras_s = (time.perf_counter() - t) / 100
    keras_mse = float(np.mean((model.predict(x_te, verbose=0) - y_te) ** 2))
    ours_mse = float(np.mean((ours.predict(task, test_kept).mean[:, 0, :1] - y_te) ** 2))
    default = LSTMForecaster(LSTMOptions(quiet=True, seed=0)).fit(task)
    default_mse = float(np.mean((default.predict(task, test_kept).mean[:, 0, :1] - y_te) ** 2))
    naive_mse = float(np.mean((aligned.inputs["protein"].values[test_kept[:, 0], test_kept[:, 1], :1] - y_te) ** 2))
    rows = [
        {"model": f"Keras {keras.__version__} LSTM(50)->Dense(1)", "s_per_epoch": keras_s, "test_mse": keras_mse},
        {"model": "biocount preset seed", "s_per_epoch": ours_s, "test_mse": ours_mse},
        {"model": "biocount preset default", "s_per_epoch": float("nan"), "test_mse": default_mse},
        {"model": "persistence", "s_per_epoch": float("nan"), "test_mse": naive_mse},
    ]
    report("seed", rows, [f"{len(x_tr)} training windows, {len(x_te)} test windows; "
                          f"seconds per epoch ratio biocount seed / Keras = {ours_s / keras_s:.2f}"])
