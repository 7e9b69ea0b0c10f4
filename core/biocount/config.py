"""Every option of a run, in one place: :class:`RunConfig` (pydantic) and how a YAML file or a mapping becomes one.

The CLI's ``biocount run`` options, ``bc.run(**options)`` and a ``--config`` YAML file all name these
fields (cli.py derives each option's help and default from them). Light: no numpy, pandas or torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from biocount import defaults
from biocount.errors import BiocountInputError

#: Run-wide conveniences (CLI flags) handed to every chosen forecaster whose options declare them.
SHARED_OPTIONS = ("lookback", "device", "cell", "preset", "n_jobs", "quiet", "threads")


class RunConfig(BaseModel):
    """Every option of a run; a ``--config run.yaml`` holds the same keys."""

    model_config = ConfigDict(extra="forbid")

    data: list[str] = Field(default_factory=list,
                            description="Study files (.h5mu, .h5ad, .csv, .tsv), merged; 'demo' is the demo study; "
                                        "none: the demo study.")
    modalities: list[str] = Field(default=list(defaults.MODALITIES),
                                  description="Modalities to use; 'name=encoder' overrides the registry's mapping.")
    target: str | None = Field(default=None, description="'protein' or 'protein:P01,protein:P07'; default protein, "
                                                         "else the first modality.")
    horizon: int = Field(default=3, ge=1, description="Grid steps forecast from each origin.")
    models: list[str] = Field(default=list(defaults.MODELS), description="Forecasters to compare.")
    baselines: list[str] = Field(default=list(defaults.BASELINES),
                                 description="Forecasters every other one is tested against (Diebold-Mariano); "
                                             "those not in --models are left out.")
    split: Literal["time", "series"] = Field(
        default="time", description="time: each series' last points are scored; series: held-out series are.")
    test_size: int | None = Field(default=None, ge=1,
                                  description="Points of each series scored (default 25 %); series split: each test "
                                              "series' last points, unless --warmup or --origins say otherwise.")
    val_size: int | None = Field(default=None, ge=1,
                                 description="Points of each series validating, before the scored ones (default 20 %).")
    train_series: list[str] | float | None = Field(default=None, description="Series split: series the models learn "
                                                   "from (comma list or file of names; default: the rest).")
    val_series: list[str] | float | None = Field(default=None, description="Series split: validation series (names or "
                                                 "a fraction of the training series; default 20 % of them).")
    test_series: list[str] | float | None = Field(default=None, description="Series split: test series (names or a "
                                                  "fraction; default 25 %, or the series in --origins).")
    warmup: int | None = Field(default=None, ge=1, description="Series split: points of each validation and test "
                                                               "series seen before its first origin.")
    origins: Path | None = Field(default=None, description="CSV of (series, origin) to score exactly, for every "
                                                           "forecaster.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Random seed: same seed, data and CPU, same numbers.")
    jobs: int = Field(default=-1, ge=-1, description="Processes for per-series work (ARIMA) and for the LSTM's "
                                                     "seed-ensemble members on large studies, each on one thread; "
                                                     "-1: the cores available (same numbers as 1, sooner).")
    dask: str | None = Field(default=None, description="Run per-series work (ARIMA) on Dask: local, local:N (N worker "
                                                      "processes), auto ($DASK_SCHEDULER_ADDRESS, else local) or a "
                                                      "scheduler address tcp://host:8786; needs biocount[distributed]. "
                                                      "Same numbers as without.")
    threads: int | None = Field(default=None, ge=1,
                                description="CPU threads of this process (torch, BLAS); default $BIOCOUNT_THREADS, else "
                                            "automatic (1 for BLAS and small LSTMs). Worker processes use 1 each.")
    out: Path = Field(default=Path("biocount-out"), description="Output folder.")
    overwrite: bool = Field(default=False, description="Replace an existing output folder (only one biocount wrote).")
    quiet: bool = Field(default=False, description="No progress output.")
    time_key: str | None = Field(default=None, description="Time column of your data (default: time, day, timepoint "
                                                           "or hour).")
    series_key: str | None = Field(default=None, description="Series column (default: series_id, series, sample, "
                                                             "donor or subject).")
    demo_seed: int = Field(default=0, description="Seed of the demo study when no data is given.")
    ensemble: list[str] | None = Field(
        default=None, description="Ensembles of the models: mean, inverse, stack; 'none': no ensemble. Default: the "
                                  "headline, stack per horizon of every model, when validation has points enough "
                                  "(chosen by the accuracy suite, docs/accuracy.md).")
    ensemble_per: Literal["pooled", "feature", "horizon"] = Field(
        default="horizon", description="Fit ensemble weights pooled, per target feature or per horizon.")
    levels: list[float] = Field(default=[0.8, 0.95], description="Prediction interval levels.")
    ablate_modalities: bool = Field(default=False, description="Also fit the LSTM on each subset of the input modalities.")
    grid: Literal["target", "union"] = Field(
        default="target", description="target: the target's time points; union: every modality's time points.")
    time_axis: Literal["time", "index"] = Field(
        default="time", description="time: the measured times; index: each series' own observation order "
                                    "(for series measured at unrelated times).")
    link: dict[str, str] = Field(default_factory=dict, description="MOD=all or MOD=FILE (repeat per modality; a "
                                 "mapping in YAML / bc.run): share a modality measured on fewer units than the target "
                                 "with its series: all gives its one series to every one; FILE is a CSV of target "
                                 "series, source series.")
    replicates: str = Field(default="keep", description="Target replicates: keep (separate series), mean (one "
                                                        "series), or a CSV of series, unit (averaged per unit).")
    period: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="The study's cycle in its time units (24: "
                                                                 "circadian hours): linked modalities are placed on "
                                                                 "the target's clock by phase, climatology "
                                                                 "forecasts from the same phase of earlier cycles "
                                                                 "and ARIMA tries seasonal terms at that lag.")
    time_scale: dict[str, float] = Field(default_factory=dict, description="MOD=FACTOR (repeat per modality; a "
                                         "mapping in YAML / bc.run): multiply a modality's times (hours to days: 1/24).")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                               description="Per component (encoder or forecaster name): its options.")
    model_options: dict[str, Any] = Field(
        default_factory=dict, description="Options handed to every chosen forecaster that declares them: "
                                          f"{', '.join(SHARED_OPTIONS)} (the CLI's --lookback, --device, --cell, --preset).")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        """Old spellings: ``holdout`` is ``test_series``; lookback/device/cell/preset are model options."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "holdout" in data:
            data.setdefault("test_series", data.pop("holdout"))
        moved = {k: data.pop(k) for k in ("lookback", "device", "cell", "preset") if k in data}
        moved = {k: v for k, v in moved.items() if v is not None}
        if moved:
            data["model_options"] = {**moved, **(data.get("model_options") or {})}
        return data

    @field_validator("train_series", "val_series", "test_series", mode="before")
    @classmethod
    def _series_list(cls, value: Any) -> Any:
        """A comma list, a fraction, or a file with one series name per line; names stay strings."""
        if not isinstance(value, str):
            return [str(v) for v in value] if isinstance(value, (list, tuple)) else value
        text = value.strip()
        if re.fullmatch(r"[+-]?(\d*\.\d+|0)", text):  # a fraction; '007' stays a series name
            return float(text)
        path = Path(text)
        if path.is_file():
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            return [n for n in names if not n.startswith("#")]
        return [v.strip() for v in text.split(",") if v.strip()]

    @field_validator("link", mode="before")
    @classmethod
    def _links(cls, value: Any) -> Any:
        return _pairs(value)

    @field_validator("time_scale", mode="before")
    @classmethod
    def _fractions(cls, value: Any) -> Any:
        out = {}
        for k, v in _pairs(value).items():
            try:
                num, _, den = str(v).partition("/")
                out[k] = float(num) / float(den) if den else float(num)
            except (ValueError, ZeroDivisionError):
                raise ValueError(f"{k}={v}: not a number or fraction; use e.g. {k}=1/24") from None
        return out

    @field_validator("time_scale", mode="after")
    @classmethod
    def _positive_scale(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if not v > 0]
        if bad:
            raise ValueError(f"{bad[0]}: a time scale must be a positive factor, e.g. 1/24")
        return value

    @field_validator("dask")
    @classmethod
    def _dask(cls, value: str | None) -> str | None:
        from biocount.parallel import check_spec

        return None if value is None else check_spec(value.strip())

    @field_validator("jobs")
    @classmethod
    def _jobs(cls, value: int) -> int:
        from biocount.parallel import check_jobs

        return check_jobs(value)

    @field_validator("data", mode="before")
    @classmethod
    def _data_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, (str, Path)):
            return [str(value)]
        return [str(v) for v in value]

    @field_validator("levels", mode="before")
    @classmethod
    def _levels(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = [float(v) for v in value.split(",") if v.strip()]
            except ValueError:
                raise ValueError(f"'{value}' is not a comma list of numbers; use e.g. 0.8,0.95") from None
        from biocount.evaluation.intervals import check_levels

        return check_levels(list(value))

    @field_validator("ensemble", mode="before")
    @classmethod
    def _ensembles(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if list(value) == ["none"]:
            return []
        from biocount.evaluation.ensemble import METHODS

        bad = [v for v in value if v not in METHODS]
        if bad:
            raise ValueError(f"unknown ensemble '{bad[0]}'; use {', '.join(METHODS)}")
        return value

    @field_validator("modalities", "models", "baselines", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("modalities", "models")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("empty: name at least one, e.g. rna,protein for modalities or lstm,naive for models")
        return value

    @property
    def choices(self) -> list[ModalityChoice]:
        """``--modalities`` parsed: each name and the encoder it asks for (``name=encoder``), here only."""
        return [ModalityChoice.parse(m) for m in self.modalities]

    def design(self) -> Any:
        """The declared design (:class:`biocount.study.design.Design`: clocks, replicates, shared modalities)."""
        from biocount.study.design import Design

        return Design(link=dict(self.link), replicates=self.replicates, period=self.period,
                      time_scale=dict(self.time_scale))

    @property
    def target_choice(self) -> TargetChoice:
        """``--target`` parsed (default: the default target modality if chosen, else the first), here only."""
        if self.target is None:
            names = [c.name for c in self.choices]
            return TargetChoice(defaults.TARGET if defaults.TARGET in names else names[0])
        return TargetChoice.parse(self.target)


@dataclass(frozen=True)
class ModalityChoice:
    """One entry of ``--modalities``: the name users type, and the encoder it asks for with ``name=encoder``
    (None: the registry's for that name)."""

    name: str
    encoder: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModalityChoice:
        name, _, encoder = text.partition("=")
        return cls(name, encoder or None)


@dataclass(frozen=True)
class TargetChoice:
    """``--target``: the modality forecast and, with ``MOD:F1,MOD:F2``, the features of it (None: all)."""

    modality: str
    features: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> TargetChoice:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        mods = {p.split(":", 1)[0] for p in parts}
        if len(mods) != 1:
            raise BiocountInputError(f"--target {text}: features must come from one modality, got {', '.join(sorted(mods))}")
        features = tuple(p.split(":", 1)[1] for p in parts if ":" in p)
        return cls(mods.pop(), features or None)


def _pairs(value: Any) -> dict[str, Any]:
    """'MOD=VALUE' strings (a list, or one comma list) as a mapping; a mapping passes through."""
    if isinstance(value, dict) or value is None:
        return dict(value or {})
    items = [value] if isinstance(value, str) else list(value)
    out: dict[str, Any] = {}
    for part in (p.strip() for item in items for p in str(item).split(",")):
        if not part:
            continue
        name, sep, rest = part.partition("=")
        if not sep or not name.strip() or not rest.strip():
            raise ValueError(f"'{part}' is not MODALITY=VALUE (e.g. mRNA=all, mRNA=1/24)")
        out[name.strip()] = rest.strip()
    return out


def config_from(path: str | Path | None, flags: dict[str, Any]) -> RunConfig:
    """A RunConfig from a YAML file (optional) overridden by command-line flags; one-line errors."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.load(Path(path).read_text(), Loader=_unique_key_loader()) or {}
        except OSError as exc:
            raise BiocountInputError(f"--config {path}: cannot read it ({exc.strerror})") from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise BiocountInputError(f"--config {path}: not valid YAML{where}: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise BiocountInputError(f"--config {path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise BiocountInputError(f"--config {path}: expected a mapping of options")
        data = {k.replace("-", "_"): v for k, v in data.items()}
    return validated({**data, **flags}, where=f"--config {path}" if path else "options")


def validated(options: dict[str, Any], *, where: str = "options") -> RunConfig:
    """A RunConfig from a mapping; a validation error becomes one line naming the option."""
    from pydantic import ValidationError

    from biocount.host.registry import first_error

    try:
        return RunConfig.model_validate(options)
    except ValidationError as exc:
        raise BiocountInputError(f"{where}: {first_error(exc).replace('_', '-')}") from None


def _unique_mapping(loader: Any, node: Any, deep: bool = False) -> dict:
    """A YAML mapping that refuses a key given twice (PyYAML silently keeps the last)."""
    import yaml

    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"option '{key}' is given twice", key_node.start_mark)
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


def _unique_key_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
    return Loader
