"""The ``lstm`` forecaster's wing: the shared multi-input LSTM, one module per concern.

    options.py      LSTMOptions and presets (light: no torch; the host reads it to list options)
    forecaster.py   LSTMForecaster: fit, predict, attribute, save, load (the factory ``build``)
    network.py      NetworkConfig and MultiModalLSTM (adapters, LSTM or peephole cell, heads)
    windows.py      (history, horizon) windows cut from the aligned study, and their scalers
    training.py     the members, the training loop, threads, progress
    likelihood.py   the head read as a forecast, masked losses, predictive distributions
    attribution.py  integrated gradients over the members
    checkpoint.py   save and load (weights_only)

Only this wing imports these modules; this file imports nothing, so listing plugins stays light.
"""
