"""The candidates the backtest fits and scores: every forecaster the run built, its ``--ablate-modalities``
refits on input subsets, and the input-subset views the headline may choose among.

A :class:`PlannedForecaster` is what the plan hands the backtest: the host's component, the built model
and, for an ablation, the restricted data and the model it is tested against. A :class:`View` is a fitted
forecaster forecasting with some inputs switched off (``Capabilities.subsets``): no refit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from biocount.errors import BiocountInputError
from biocount.study.align import Aligned


@dataclass
class PlannedForecaster:
    """A forecaster the backtest fits: the host's component, the built model, and for an
    ``--ablate-modalities`` refit the data it sees and the forecaster it is compared with."""

    component: Any  # the host's component (its spec, plugin and factory)
    model: Any  # the built forecaster
    data: Aligned | None = None  # what it is fitted on; None: the run's aligned study
    ablation_of: str | None = None  # an ablation: the full forecaster it is tested against

    @property
    def capabilities(self) -> Any:
        return self.component.spec.capabilities


@dataclass(frozen=True)
class View:
    """A fitted forecaster forecasting with some inputs switched off (``Capabilities.subsets``)."""

    model: str  # the fitted forecaster it is a view of
    off: tuple[str, ...]  # the input blocks switched off (``predict(..., without=off)``)
    reads: tuple[str, ...]  # the input modalities it still reads (the target's history always)
    drops: tuple[str, ...]  # the input modalities switched off


MANY_LOCAL_FITS = 20_000  # series x target features from which a per-feature local model is said to be slow


def many_local_fits(forecasters: dict[str, PlannedForecaster], aligned: Aligned) -> list[str]:
    """A line per forecaster that fits one model per series and feature, where there are very many of them
    (a 100,000-column table as the target): said before fitting, so a long run is not a silent one."""
    n = int(aligned.series.size * aligned.target_features.size)
    if n < MANY_LOCAL_FITS:
        return []
    return [f"{name} fits one model per series x target feature: {n:,} here ({aligned.series.size:,} series x "
            f"{aligned.target_features.size:,} features), which can take hours; forecast fewer features with "
            f"--target {aligned.target}:F1,F2,... or leave {name} out of --models"
            for name, p in forecasters.items() if p.capabilities.local_fits]


VIEW_SUBSETS_UP_TO = 3  # input modalities up to which every subset is a view (2^3 = 8 views); above: all or none


def views_of(forecasters: dict[str, PlannedForecaster], aligned: Aligned, inputs: list[str]) -> dict[str, dict[str, View]]:
    """The headline's modality-subset candidates: for each forecaster that forecasts from any subset of its
    inputs (``Capabilities.subsets``), every proper subset of the input modalities (the target alone at
    least), labelled by what it reads: ``lstm(protein)`` is the LSTM on the target's history only."""
    from itertools import combinations

    static = aligned.static_modalities()
    blocks = {m: [b for b in dict.fromkeys([*aligned.inputs, *static]) if block_of(b, inputs) == m] for m in inputs}
    present = [m for m in inputs if blocks[m]]
    if not present:
        return {}
    sizes = range(len(present)) if len(present) <= VIEW_SUBSETS_UP_TO else [0]
    subsets = [kept for k in sizes for kept in combinations(present, k)]
    out = {}
    for name, p in forecasters.items():
        if p.capabilities.subsets:
            out[name] = {f"{name}({'+'.join([*kept, aligned.target])})": View(
                name, off=tuple(b for m in present if m not in kept for b in blocks[m]), reads=kept,
                drops=tuple(m for m in present if m not in kept)) for kept in subsets}
    return out


def block_of(name: str, modalities: list[str]) -> str:
    """The modality an aligned input block belongs to: its own name, or ``modality_*`` (an encoder may write
    extra blocks, e.g. rna's ``rna_celltypes``)."""
    return next((m for m in modalities if name == m or name.startswith(f"{m}_")), name)


def ablations(forecasters: dict[str, PlannedForecaster], aligned: Aligned, inputs: list[str], *,
              models: list[str]) -> dict[str, PlannedForecaster]:
    """``--ablate-modalities``: each forecaster that uses inputs, built again for every proper subset of
    them (the target's history always stays), labelled ``name[kept+target]``."""
    users = [n for n, p in forecasters.items() if p.capabilities.uses_inputs]
    if not users:
        raise BiocountInputError("--ablate-modalities compares a model on modality subsets, but none of "
                                 f"{', '.join(models)} uses input modalities; add one that does (e.g. lstm)")
    out = {}
    for name in users:
        full = forecasters[name]
        for subset, restricted in _subsets(aligned, inputs):
            label = f"{name}[{'+'.join([*subset, aligned.target])}]"
            out[label] = PlannedForecaster(full.component, full.component.build(**full.model.options.model_dump()),
                                           data=restricted, ablation_of=name)
    return out


def _subsets(aligned: Aligned, inputs: list[str]):
    """Every proper subset of the non-target input modalities, and the study restricted to it."""
    from dataclasses import replace
    from itertools import combinations

    for k in range(len(inputs)):
        for subset in combinations(inputs, k):
            keep = set(subset) | {aligned.target}
            kept_inputs = {n: v for n, v in aligned.inputs.items() if block_of(n, inputs) in keep}
            static = static_names = None
            if aligned.static is not None:
                cols = [i for i, m in enumerate(aligned.static_modalities()) if m in keep]
                if cols:
                    static, static_names = aligned.static[:, cols], aligned.static_names[cols]
            yield list(subset), replace(aligned, inputs=kept_inputs, static=static, static_names=static_names)
