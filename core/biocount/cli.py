"""The ``biocount`` command line. Heavy imports happen inside commands, never at start-up."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ._version import PLUGIN_API, __version__


class _Group(click.Group):
    """Turns biocount's errors into one line and an exit code, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        from .errors import BiocountError

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
    from .plugins import load_host

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
        for column in ("plugin", "distribution", "version", "status", "provides"):
            table.add_column(column)
        for r in shown:
            provides = ", ".join(c.describe() for c in r.components) or ("-" if r.error else "")
            table.add_row(r.name, r.dist, r.version, f"[{_STYLE[r.status]}]{r.status}[/]", provides)
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


@plugins.command("validate")
@click.argument("dist")
@click.pass_obj
def plugins_validate(obj: dict[str, Any], dist: str) -> None:
    """Load one plugin distribution, import its factories and check its specs and API version."""
    from .plugins import load_host

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


@cli.group()
def datasets() -> None:
    """Make the embedded example studies."""


@datasets.command("make")
@click.argument("name", type=click.Choice(["demo"]))
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="Where to write the .h5mu.")
@click.option("--seed", default=0, show_default=True, help="Random seed of the simulation.")
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
def datasets_make(name: str, out: str, seed: int, overwrite: bool) -> None:
    """Write the demo study (MuData: genomic, rna, protein) to OUT."""
    import os
    from pathlib import Path

    from .datasets import demo
    from .errors import BiocountInputError

    path = Path(out)
    if not path.name.endswith(".h5mu"):
        raise BiocountInputError(f"--out {out}: the demo study is a MuData file; name it *.h5mu")
    if path.exists() and not overwrite:
        raise BiocountInputError(f"--out {out}: the file exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        demo(seed=seed).write(tmp)  # write aside, then rename: never a half-written study
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"wrote {path} (demo study, seed {seed})")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--modalities", default="rna,protein", show_default=True, help="Comma list of modalities.")
def run(modalities: str) -> None:
    """Fit and backtest the forecasters (arrives with the run issue)."""
    from .errors import BiocountError

    raise BiocountError("`biocount run` is not yet available in this version: the backtest engine has not landed; "
                        "`biocount plugins list` shows what is installed")


def main() -> None:
    cli(prog_name="biocount")
