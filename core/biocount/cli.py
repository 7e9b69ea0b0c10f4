"""The ``biocount`` command line. Heavy imports happen inside commands, never at start-up."""

from __future__ import annotations

import json
import sys
import typing
from typing import Any

import click

from biocount._version import PLUGIN_API, __version__


class _Group(click.Group):
    """Turns biocount's errors into one line and an exit code, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        from biocount.errors import BiocountError

        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except BiocountError as exc:
            if debug:
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if debug:
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message=f"biocount %(version)s (plugin API {PLUGIN_API})")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--registry", type=click.Path(dir_okay=False), envvar="BIOCOUNT_REGISTRY",
              help="Your registry.yaml, layered over the packaged default [env: BIOCOUNT_REGISTRY].")
@click.pass_context
def cli(ctx: click.Context, debug: bool, registry: str | None) -> None:
    """Forecast biological counts over time, and compare against ARIMA and persistence."""
    ctx.obj = {"debug": debug, "registry": registry}


@cli.group()
def plugins() -> None:
    """List and check the installed plugins."""


_STYLE = {"loaded": "green", "broken": "red", "incompatible": "red", "missing": "red",
          "disabled": "yellow", "blocked": "dim"}


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "show_all", is_flag=True, help="Also show plugins that are installed but not selected, and core.")
@click.pass_obj
def plugins_list(obj: dict[str, Any], as_json: bool, show_all: bool) -> None:
    """Show each plugin: distribution, version, status, what it provides, and why it failed."""
    from biocount.host.plugins import load_host

    host = load_host(obj["registry"])
    sources = [str(p) for p in host.loaded_registry.sources] if host.loaded_registry else []
    shown = [r for r in host.records if show_all or (r.status != "blocked" and r.target != "biocount.core")]
    hidden = sum(r.status == "blocked" for r in host.records) if not show_all else 0
    if as_json:
        click.echo(json.dumps({
            "biocount": __version__, "plugin_api": PLUGIN_API, "python": sys.executable,
            "registry": sources, "registry_error": host.registry_error,
            "conflicts": host.conflicts(), "plugins": [r.to_dict() for r in shown],
        }, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console(highlight=False)
        if host.registry_error:
            console.print(f"[red]registry error:[/red] {host.registry_error}")
        table = Table(show_edge=False, pad_edge=False)
        for column in ("plugin", "distribution", "version", "status"):  # names whole; the prose columns wrap
            table.add_column(column, no_wrap=True)
        table.add_column("provides")
        table.add_column("what it does", ratio=1)
        for r in shown:
            provides = ", ".join(c.describe() for c in r.components) or ("-" if r.error else "")
            what = "; ".join(c.spec.description for c in r.components if c.spec.description)  # the specs' own line
            table.add_row(r.name, r.dist, r.version, f"[{_STYLE[r.status]}]{r.status}[/]", provides, what)
        console.print(table)
        for r in shown:
            if r.error and r.status != "blocked":
                console.print(f"[{_STYLE[r.status]}]{r.status}[/] {r.label}: {r.error}", soft_wrap=True)
        for line in host.conflicts():
            console.print(f"[yellow]conflict:[/yellow] {line}")
        if hidden:
            console.print(f"{hidden} installed plugin(s) not selected by the registry; `--all` shows them.")
        console.print(f"python: {sys.executable}")
        console.print(f"registry: {' + '.join(sources) or '(none)'}")
    if host.strict and host.broken:
        click.echo(f"error: {len(host.broken)} plugin(s) failed and BIOCOUNT_STRICT_PLUGINS=1", err=True)
        sys.exit(2)


@plugins.command("new")
@click.argument("name")
@click.option("--modality", required=True, help="The modality name users will type, e.g. lipidomics.")
@click.option("--dir", "directory", default=".", type=click.Path(file_okay=False), show_default=True,
              help="Where to create biocount-NAME/.")
def plugins_new(name: str, modality: str, directory: str) -> None:
    """Scaffold an installable encoder plugin distribution biocount-NAME with tests and an example table."""
    from biocount.host.scaffold import new_plugin

    root = new_plugin(name, modality, directory)
    click.echo(f"created {root}/\nnext: pip install -e '{root}[test]' && (cd {root} && python -m pytest) "
               f"&& biocount plugins enable {root.name}")


@plugins.command("enable")
@click.argument("dist")
def plugins_enable(dist: str) -> None:
    """Let DIST load: sets enabled: true in your registry (created on first use)."""
    _set_enabled(dist, True)


@plugins.command("disable")
@click.argument("dist")
def plugins_disable(dist: str) -> None:
    """Stop DIST from loading: sets enabled: false in your registry."""
    _set_enabled(dist, False)


def _set_enabled(dist: str, enabled: bool) -> None:
    import importlib.metadata as md

    from packaging.utils import canonicalize_name

    from biocount.errors import BiocountInputError
    from biocount.host.registry import set_enabled

    installed = {canonicalize_name(ep.dist.name) for ep in md.entry_points(group="biocount") if ep.dist}
    if canonicalize_name(dist) == "biocount":
        raise BiocountInputError("biocount is the host itself (core and the built-in plugins), not a plugin to switch "
                                 "off; leave a component out of the run instead (--models, --modalities)")
    if not enabled and canonicalize_name(dist) not in installed:
        others = ", ".join(sorted(installed - {"biocount"})) or "none besides biocount"
        raise BiocountInputError(f"'{dist}' is not an installed plugin distribution (installed: {others}); "
                                 "a component (lstm, rna, ...) is left out with --models / --modalities")
    if enabled and canonicalize_name(dist) not in installed:
        raise BiocountInputError(f"no installed distribution '{dist}' has a 'biocount' entry point; "
                                 f"install it first (pip install {dist}) into {sys.executable}")
    path = set_enabled(dist, enabled)
    click.echo(f"{'enabled' if enabled else 'disabled'} {dist} in {path}")


@plugins.command("validate")
@click.argument("dist")
@click.pass_obj
def plugins_validate(obj: dict[str, Any], dist: str) -> None:
    """Load one plugin distribution, import its factories and check its specs and API version."""
    from biocount.host.plugins import load_host

    host = load_host(obj["registry"], only={dist})
    records = host.plugin(dist)
    if not records:
        click.echo(f"error: no installed distribution '{dist}' has a 'biocount' entry point; "
                   f"check `pip show {dist}` in {sys.executable}", err=True)
        sys.exit(1)
    failures = []
    for record in records:
        if record.status != "loaded":
            failures.append(f"{record.label}: {record.status}: {record.error}")
            continue
        for comp in record.components:
            try:
                factory = comp.spec.load_factory()
                if not callable(factory):
                    raise TypeError(f"factory '{comp.spec.factory}' is not callable")
            except (Exception, SystemExit) as exc:
                failures.append(f"{record.label}: {comp.describe()}: {type(exc).__name__}: {exc}")
                continue
            click.echo(f"ok  {record.label}: {comp.describe()} (API {comp.spec.api}, factory {comp.spec.factory})")
    for line in failures:
        click.echo(f"error: {line}", err=True)
    sys.exit(1 if failures else 0)


@cli.command("report")
@click.argument("folder", type=click.Path(file_okay=False))
def report_cmd(folder: str) -> None:
    """Rebuild FOLDER/report.html from the folder's metrics.csv, forecasts.csv, scores.csv, observed.csv and run.json."""
    from pathlib import Path

    from biocount.errors import BiocountInputError
    from biocount.io.output import recover_beside, write_file
    from biocount.report.html import render

    path = Path(folder)
    for line in recover_beside(path):  # a run killed mid-swap of this folder: it comes back first
        click.echo(f"biocount: {line}", err=True)
    if not path.is_dir():
        raise BiocountInputError(f"{folder}: no such folder; point at a folder biocount run wrote")
    missing = [f for f in ("metrics.csv", "forecasts.csv", "run.json") if not (path / f).is_file()]
    if missing:
        raise BiocountInputError(f"{folder}: not a biocount run folder (no {missing[0]}); point at a folder "
                                 "biocount run wrote")
    try:
        page = render(path)
    except (ValueError, KeyError, OSError) as exc:  # a truncated run.json or a CSV not written by biocount
        raise BiocountInputError(f"{folder}: cannot read its run files ({type(exc).__name__}: {exc}); rerun "
                                 "biocount run to rewrite the folder") from None
    write_file(path / "report.html", page)  # a new file beside it, then renamed: never half-written or followed
    click.echo(f"wrote {path / 'report.html'} ({(path / 'report.html').stat().st_size / 1e6:.2f} MB)")


@cli.command("export")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["hubverse"]), default="hubverse", show_default=True,
              help="hubverse: the forecasting hubs' model-output table (quantiles).")
@click.option("--forecaster", default=None, help="Forecaster to export (default: the run's headline).")
@click.option("--to", "dest", type=click.Path(dir_okay=False), default=None,
              help="File to write (default: FOLDER/hubverse-<model id>.csv).")
def export_cmd(folder: str, fmt: str, forecaster: str | None, dest: str | None) -> None:
    """Write the test-origin forecasts of a run FOLDER in a forecasting hub's format (docs/evaluation.md)."""
    from pathlib import Path

    from biocount.errors import BiocountInputError
    from biocount.io.output import write_file
    from biocount.report.export import hubverse

    path = Path(folder)
    if not path.is_dir():
        raise BiocountInputError(f"{folder}: no such folder; point at a folder biocount run wrote")
    table = hubverse(path, forecaster=forecaster)
    target = Path(dest) if dest else path / f"hubverse-{table.attrs['model_id']}.csv"
    if not target.parent.is_dir():
        raise BiocountInputError(f"--to {dest}: no folder {target.parent}; create it or choose another file")
    try:
        write_file(target, table.to_csv(index=False))  # a new file beside it, then renamed: never half-written
    except OSError as exc:
        raise BiocountInputError(f"--to {target}: cannot write it ({exc.strerror}); choose a folder you can write "
                                 "to") from None
    scale = table.attrs["scale"]
    click.echo(f"wrote {target} ({len(table)} rows: {table['location'].nunique()} locations x "
               f"{table['target'].nunique()} targets x {table['reference_date'].nunique()} reference dates x "
               f"{table['horizon'].nunique()} horizons x {table['output_type_id'].nunique()} quantiles)")
    if scale != "none":
        click.echo(f"note: values are on the target's encoded scale ({scale}), the scale biocount scores on")


@cli.group()
def datasets() -> None:
    """Make the embedded example studies."""


@datasets.command("make")
@click.argument("name", type=click.Choice(["demo", "chemostat", "gut"]))
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True,
              help="Where to write it: .h5mu for the demo, .csv for the simulators.")
@click.option("--seed", default=0, show_default=True, help="Random seed of the simulation.")
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
def datasets_make(name: str, out: str, seed: int, overwrite: bool) -> None:
    """Write an example study to OUT: the demo (MuData: genomic, rna, protein) or a simulator's long CSV
    (chemostat: algae -> rotifers; gut: antibiotics -> taxa; see docs/datasets.md)."""
    import os
    from pathlib import Path

    from biocount.errors import BiocountInputError
    from biocount.io import datasets as ds

    path = Path(out)
    suffix = ".h5mu" if name == "demo" else ".csv"
    if not path.name.endswith(suffix):
        raise BiocountInputError(f"--out {out}: the {name} study is written as {suffix}; name it *{suffix}")
    if path.exists() and not overwrite:
        raise BiocountInputError(f"--out {out}: the file exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:  # write aside, then rename: never a half-written study
        if name == "demo":
            ds.demo(seed=seed).write(tmp)
        else:
            getattr(ds, name)(seed=seed).to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"wrote {path} ({name} study, seed {seed})")


# Every `biocount run` option is a RunConfig field (engine.py), the one source of its name, default and help;
# here only how the command line spells and types it. tests/test_cli_options.py checks both agree.
_RUN_OPTIONS = [  # (flag, RunConfig field, click type; click.Choice: the field's Literal values)
    ("--data", "data", click.Path()),  # a file, or a .zarr store (a folder)
    ("--modalities", "modalities", str),
    ("--target", "target", str),
    ("--horizon", "horizon", int),
    ("--models", "models", str),
    ("--baselines", "baselines", str),
    ("--split", "split", click.Choice),
    ("--test-size", "test_size", int),
    ("--val-size", "val_size", int),
    ("--train-series", "train_series", str),
    ("--val-series", "val_series", str),
    ("--test-series", "test_series", str),
    ("--warmup", "warmup", int),
    ("--origins", "origins", click.Path(dir_okay=False)),
    ("--seed", "seed", int),
    ("--demo-seed", "demo_seed", int),
    ("--jobs", "jobs", int),
    ("--dask", "dask", str),
    ("--threads", "threads", int),
    ("--out", "out", click.Path(file_okay=False)),
    ("--time-key", "time_key", str),
    ("--series-key", "series_key", str),
    ("--ensemble", "ensemble", str),
    ("--ensemble-per", "ensemble_per", click.Choice),
    ("--levels", "levels", str),
    ("--grid", "grid", click.Choice),
    ("--time-axis", "time_axis", click.Choice),
    ("--link", "link", str),
    ("--replicates", "replicates", str),
    ("--period", "period", float),
    ("--time-scale", "time_scale", str),
    ("--overwrite", "overwrite", None),
    ("--quiet", "quiet", None),
    ("--ablate-modalities", "ablate_modalities", None),
]
# Shorthands for options of every forecaster that declares them (RunConfig.model_options; the LSTM's help)
_MODEL_OPTIONS = [  # (flag, LSTMOptions field, click type)
    ("--lookback", "lookback", int),
    ("--device", "device", click.Choice),
    ("--cell", "cell", click.Choice),
    ("--preset", "preset", click.Choice),
]
MULTIPLE = ("data", "link", "time_scale")  # options given once per value


def _default_text(value) -> str:
    if isinstance(value, bool) or value is None or value == [] or value == {}:
        return ""
    shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return f" [default: {shown}]"


def _run_options(func):
    from biocount.config import RunConfig
    from biocount.forecasters.lstm.options import LSTMOptions

    specs = [(f, n, k, RunConfig.model_fields[n]) for f, n, k in _RUN_OPTIONS]
    specs += [(f, n, k, LSTMOptions.model_fields[n]) for f, n, k in _MODEL_OPTIONS]
    specs.append(("--holdout", "holdout", str, None))
    for flag, name, kind, info in reversed(specs):
        if kind is click.Choice:  # the choices are the field's Literal values: written once, in the model
            kind = click.Choice(list(typing.get_args(info.annotation)))
        if info is None:
            text = "Deprecated spelling of --test-series."
        else:
            default = info.get_default(call_default_factory=True)
            text = info.description + ("" if kind is None else _default_text(default))
        if kind is None:  # a flag: absent means "RunConfig's default", not False
            extra = {"is_flag": True, "default": None}
        else:
            extra = {"type": kind, "multiple": True, "default": ()} if name in MULTIPLE else {"type": kind, "default": None}
        func = click.option(flag, name, help=text, **extra)(func)
    return func


@cli.command()
@_run_options
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file with any of these options.")
@click.pass_obj
def run(obj: dict[str, Any], config_file: str | None, **flags: Any) -> None:
    """Fit and backtest the forecasters on identical rolling origins; write DIR/metrics.csv,
    forecasts.csv, observed.csv, run.json and lstm.pt, and print the comparison.

    \b
    Examples:
      biocount run --modalities rna,protein
      biocount run --data cases.csv --modalities case_count=tabular --horizon 2
    """
    from biocount.engine import config_from, write
    from biocount.engine import run as run_engine

    config = config_from(config_file, {k: (list(v) if k in MULTIPLE else v) for k, v in flags.items()
                                       if v is not None and v != ()})
    from pathlib import Path

    from biocount.host.plugins import load_host
    from biocount.io.output import check, recover_beside

    for line in recover_beside(Path(config.out)):  # a run killed mid-swap beside this --out: its result comes back
        click.echo(f"biocount: {line}", err=True)
    check(config.out, overwrite=config.overwrite)  # before any work: an unusable --out fails in a second
    host = load_host(obj["registry"])
    say = (lambda msg: None) if config.quiet else (lambda msg: click.echo(f"biocount: {msg}", err=True))
    result = run_engine(config, host=host, log=say)
    if result.rank:  # a torchrun rank > 0: it trained with rank 0, which writes the folder
        return
    out = write(result)
    _print_comparison(result)
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # what is there, not a list
    missing = "" if "report.html" in written else f"; no report.html (see the warning above): biocount report {out}"
    click.echo(f"wrote {out}/ ({', '.join(written)}){missing}")


def _print_comparison(result) -> None:
    from rich.console import Console
    from rich.markup import escape

    info, baselines = result.info, result.info.get("baselines", [])
    console = Console(highlight=False)
    console.width = max(console.width, 132)  # a pipe or a log file still gets the whole table
    console.print(_main_table(result))
    console.print(_by_horizon(result.metrics, baselines))
    _print_scores(console, result.scores, baselines)
    console.print("MSE weights every scored point equally. DM: Diebold-Mariano on each (series, origin)'s summed "
                  "squared error (so its sign always agrees with MSE), Harvey-corrected; negative = lower error than "
                  "the named baseline. Bold: best per metric. cover: test coverage of the split-conformal interval.")
    units = info.get("units", {})
    if units.get("forecasts") == "data":
        console.print(f"scale: MSE, MAE, R², MASE on the encoder's scale (what the models fit); RMSE (data), MAPE % "
                      f"and forecasts.csv in {escape(units['label'])} (point forecasts are means; metrics.csv has both)")
    else:
        console.print(f"scale: every number and forecasts.csv on the encoder's scale: {escape(units.get('label', ''))}")
    console.print("scored: " + "; ".join(f"{role} {v['series']} series, {v['origins']} origins, {v['points']} points"
                                         for role, v in info.get("scored", {}).items()))
    _print_weights(console, info)
    for row in info.get("modality_sets", []):
        console.print(f"[bold]modality:[/] {escape(row['text'])}")
    if info.get("headline"):
        console.print(f"[bold]headline:[/] {escape(info['headline'])}")
    for why in info.get("failed", {}).values():
        console.print(f"[yellow]left out:[/] {escape(why)}")
    for note in info.get("notes", []):
        console.print(f"[yellow]note:[/] {escape(note)}")
    for line in info.get("verdict", []):  # the plain conclusion, last: what a reader sees first (biocount.report.verdict)
        head, _, rest = line.partition(": ")
        console.print(f"[bold]{escape(head)}:[/] {escape(rest)}")


def _main_table(result):
    """One row per forecaster: the overall metrics, DM against each baseline, coverage."""
    import numpy as np
    from rich.markup import escape
    from rich.table import Table

    from biocount.evaluation.intervals import pct
    from biocount.evaluation.metrics import LOWER_IS_BETTER, METRICS

    cmp = result.comparison
    info = result.info
    target, baselines = info["target"], info.get("baselines", [])
    scored = info.get("scored", {}).get("test", {})
    table = Table(title=f"{target['modality']}: {len(target['features'])} feature(s), {scored.get('series', '?')} "
                        f"series, {info['origins']['test']} test origins, {scored.get('points', '?')} points scored, "
                        f"horizon {result.config.horizon}")
    table.add_column("forecaster", overflow="fold")
    data = [m for m in ("data_rmse", "data_mape") if m in cmp]  # the data's units (biocount.evaluation.units)
    # with data units, RMSE and sMAPE on the encoder's scale give way to them (a z-score's sMAPE means nothing)
    shown = [m for m in METRICS if not (data and m in ("rmse", "smape"))] + data
    names = {"r2": "R²", "data_rmse": "RMSE (data)", "data_mape": "MAPE %"}
    for m in shown:
        table.add_column(names.get(m, m.upper()), justify="right")
    for b in baselines:  # statistic and p-value in one cell: three baselines still fit 132 columns
        table.add_column(f"DM vs {b} (p)", justify="right")
    level = min(result.config.levels, key=lambda lv: abs(lv - 0.8))
    cov = f"coverage_{pct(level)}"
    table.add_column(f"cover {level:.0%}", justify="right")
    best = {m: (cmp[m].min() if LOWER_IS_BETTER.get(m, True) else cmp[m].max()) for m in shown}
    for name, row in cmp.iterrows():
        cells = []
        for m in shown:
            text = f"{row[m]:.4g}" if np.isfinite(row[m]) else ""
            cells.append(f"[bold green]{text}[/]" if row[m] == best[m] else text)
        tests = []
        for b in baselines:
            stat, p = row.get(f"dm_{b}_stat", np.nan), row.get(f"dm_{b}_p", np.nan)
            tests.append("" if np.isnan(stat) else f"{stat:.2f} ({p:.2g})")
        table.add_row(escape(_label(str(name), info)), *cells, *tests,
                      f"{row[cov]:.0%}" if np.isfinite(row.get(cov, np.nan)) else "")
    return table


def _print_weights(console, info: dict) -> None:
    """Each ensemble's weights per horizon (per feature: too many to print; run.json has them)."""
    from rich.markup import escape

    for name, w in info.get("ensembles", {}).items():
        if w["per"] != "feature":
            rows = [w["weights"]] if w["per"] == "pooled" else w["weights"]
            console.print(escape(f"{name} weights (fitted on validation points only): " + "; ".join(
                (f"h={h + 1} " if w["per"] == "horizon" else "")
                + ", ".join(f"{m} {x:.2f}" for m, x in zip(w["members"], row, strict=True))
                for h, row in enumerate(rows))))


def _print_scores(console, scores, baselines: list[str]) -> None:
    """The CRPS by horizon and the toughest baseline (scores.csv)."""
    from rich.markup import escape

    if scores is None:
        return
    console.print(_crps_by_horizon(scores, baselines))
    toughest = _toughest(scores, baselines)
    if toughest:
        console.print(f"[bold]toughest baseline:[/] {escape(toughest)}")


def _label(name: str, info: dict) -> str:
    """A forecaster's name, marked where its forecasts were persistence on some series."""
    fallback = info.get("forecasters", {}).get(name, {}).get("fallback") or {}
    if fallback.get("series"):
        return f"{name} ({fallback.get('to', 'fallback')} on {fallback['series']} of {fallback['of']} series×features)"
    return name


def _by_horizon(metrics, baselines: list[str]):
    """MSE per horizon per forecaster, with the DM p-value against each baseline at that horizon."""
    rows = metrics[(metrics["scope"] == "horizon") & ~metrics["forecaster"].str.endswith(":native")]
    return _horizon_table(rows, "MSE by horizon", "mse", "dm_{}_p", baselines)


def _crps_by_horizon(scores, baselines: list[str]):
    """CRPS of every forecaster's conformal predictive distribution per horizon, DM p against each baseline."""
    rows = scores[(scores["distribution"] == "conformal") & (scores["feature"] == "all")
                  & (scores["horizon"].astype(str) != "all")]
    return _horizon_table(rows, "CRPS by horizon, conformal predictive distributions", "crps", "dm_crps_{}_p", baselines)


def _horizon_table(rows, title: str, value: str, p_column: str, baselines: list[str]):
    """One row per forecaster, one column per horizon: the value and the DM p-values against each baseline."""
    import numpy as np
    from rich.markup import escape
    from rich.table import Table

    horizons = sorted({str(h) for h in rows["horizon"]}, key=int)
    table = Table(title=f"{title} (DM p vs {', '.join(baselines)})" if baselines else title)
    # names whole (an ablation's "lstm[protein]" is not rich markup, and is not cut to "lstm…")
    table.add_column("forecaster", min_width=max(len(str(n)) for n in rows["forecaster"]), overflow="fold")
    for h in horizons:
        table.add_column(f"h={h}", justify="right")
    for name, group in rows.groupby("forecaster", sort=False):
        cells = []
        for h in horizons:
            r = group[group["horizon"].astype(str) == h].iloc[0]
            ps = [f"{r[p_column.format(b)]:.2g}" for b in baselines if np.isfinite(r.get(p_column.format(b), np.nan))]
            cells.append(f"{r[value]:.4g}" + (f" ({', '.join(ps)})" if ps else ""))
        table.add_row(escape(str(name)), *cells)
    return table


def _toughest(scores, baselines: list[str]) -> str:
    """'naive (CRPS 0.61 over every horizon; h=1 arima, h=2-3 naive)': the baseline hardest to beat."""
    rows = scores[(scores["distribution"] == "conformal") & (scores["feature"] == "all")
                  & scores["forecaster"].isin(baselines)]
    if rows.empty:
        return ""
    every = rows[rows["horizon"].astype(str) == "all"].sort_values("crps")
    per = [(str(h), g.sort_values("crps").iloc[0]["forecaster"]) for h, g in rows.groupby(rows["horizon"].astype(str))
           if h != "all"]
    per.sort(key=lambda x: int(x[0]))
    return (f"{every.iloc[0]['forecaster']} (CRPS {every.iloc[0]['crps']:.3g} over every horizon; "
            + ", ".join(f"h={h} {b}" for h, b in per) + ")")


def main() -> None:
    cli(prog_name="biocount")
