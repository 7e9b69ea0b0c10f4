"""Options of the shared LSTM and its presets (kept light: no torch import)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The seed document's Keras reference: LSTM(50) -> Dense, adam, mean squared error, 100 epochs,
#: batch 32, raw covariates concatenated, no early stopping, no regularisation.
SEED = {
    "hidden": 50, "layers": 1, "dropout": 0.0, "loss": "mse", "epochs": 100, "batch_size": 32, "lr": 1e-3,
    "weight_decay": 0.0, "patience": None, "clip": None, "residual": False, "scaling": "none",
    "adapters": False, "modality_dropout": 0.0, "members": 1, "steps_per_epoch": None, "lag_head": False,
    "regular_history": False, "lookback": 8,
}
PRESETS: dict[str, dict[str, Any]] = {"default": {}, "seed": SEED}


class LSTMOptions(BaseModel):
    """Options of the ``lstm`` forecaster. Fields left out come from ``preset``."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["default", "seed"] = Field(default="default", description="Starting configuration.")
    lookback: int = Field(default=12, ge=1, description="Steps of history the LSTM sees, regular times (regular_history) "
                                                        "or grid steps; fewer when the training part is shorter, with a note.")
    hidden: int = Field(default=32, ge=1, le=4096, description="LSTM hidden size (small by default: data are scarce).")
    layers: int = Field(default=1, ge=1, le=8, description="Stacked LSTM layers.")
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0, description="Dropout before the head and between layers.")
    adapter_dim: int = Field(default=32, ge=1, description="Channels each modality adapter projects to.")
    adapters: bool = Field(default=True, description="Per-modality projection + LayerNorm; false concatenates raw inputs.")
    lag_head: bool = Field(default=True, description="Add a linear read-out of every lookback step to the LSTM's head "
                                                     "(LSTNet's highway): a delayed response is one weight, not a memory "
                                                     "the LSTM must learn (docs/model.md).")
    regular_history: bool = Field(
        default=True, description="Read each window's history at regular times (the training grid's median step) "
                                  "before the origin, interpolating between observations, so a fixed delay is the "
                                  "same lookback step at every origin of an irregular grid (on a regular grid only "
                                  "unobserved steps change: interpolated, not carried forward). False: the grid's "
                                  "own steps.")
    cell: Literal["standard", "peephole"] = Field(default="standard",
                                                  description="standard: torch.nn.LSTM (cuDNN / oneDNN); peephole: the seed's cell.")
    loss: Literal["mse", "gaussian", "poisson", "negbin"] = Field(
        default="mse", description="mse / gaussian on scaled values; poisson / negbin on raw counts with size-factor offsets.")
    members: int = Field(default=3, ge=1, le=50,
                         description="Seed ensemble: networks trained from seeds seed, seed+1, ...; forecasts averaged.")
    epochs: int = Field(default=200, ge=1, description="Maximum passes over the training windows.")
    batch_size: int = Field(default=64, ge=1, description="Training windows per optimiser step (the smallest; see "
                                                       "steps_per_epoch).")
    steps_per_epoch: int | None = Field(
        default=256, ge=1, description="Most optimiser steps per epoch: with more training windows than batch_size x "
                                       "this, the batch grows to fit and the learning rate by the square root of the "
                                       "growth, so a large study keeps a GPU busy instead of waiting on thousands of "
                                       "tiny steps. None: always batch_size.")
    lr: float = Field(default=3e-3, gt=0.0, description="Adam learning rate.")
    weight_decay: float = Field(default=1.0, ge=0.0,
                                description="AdamW decoupled weight decay (per step the weights shrink by lr x this).")
    patience: int | None = Field(default=20, ge=1,
                                 description="Early stopping: epochs without validation improvement (on a large study at "
                                             "most about 1,000 optimiser steps' worth, at least 5 epochs); the best "
                                             "weights are restored. None: off.")
    min_epochs: int = Field(default=5, ge=1,
                            description="Epochs always trained before early stopping may stop or pick a best epoch: the "
                                        "first epochs of the zero-initialised residual head are persistence by "
                                        "construction, and a few validation windows cannot tell them apart.")
    clip: float | None = Field(default=1.0, gt=0.0, description="Gradient norm clipping; None: off.")
    residual: bool = Field(default=True,
                           description="Predict the change from each target's last observed value (persistence + learned change).")
    scaling: Literal["series", "window", "none"] = Field(
        default="window", description="series: standardise each target per series on its training part; window: "
                                      "centre and scale every input window on its own history (RevIN-style; "
                                      "robust to series at other levels than the training ones).")
    modality_dropout: float = Field(default=0.1, ge=0.0, lt=1.0,
                                    description="Training only: drop a whole non-target modality per sample with this probability.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when available.")
    bf16: bool = Field(default=False, description="bf16 autocast, on CUDA only (off: slower than fp32 on an H200 for this model size, issue 15).")
    seed: int | None = Field(default=None, description="Random seed; None: the run's seed.")
    quiet: bool = Field(default=False, description="No progress bar.")
    n_jobs: int = Field(default=1, ge=-1, description="Processes the seed-ensemble members train in side by side "
                                                      "(loky, one thread each; -1: the cores available), for studies "
                                                      "of at least 2,048 training windows on a model that trains on "
                                                      "one thread; same numbers as 1. A Dask cluster (--dask) "
                                                      "replaces them.")
    threads: int | None = Field(default=None, ge=1, description="torch intra-op CPU threads while fitting and "
                                                              "predicting (restored after); None: 1 for small models "
                                                              "(hidden x batch_size <= 8192), torch's default above.")

    @field_validator("n_jobs")
    @classmethod
    def _jobs(cls, value: int) -> int:
        from biocount.parallel import check_jobs

        return check_jobs(value)

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        preset = data.get("preset", "default")
        if preset not in PRESETS:
            return data  # the Literal check reports it
        return {**PRESETS[preset], **data}
