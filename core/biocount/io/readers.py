"""Read a study into one AnnData per modality, with canonical ``obs`` columns.

Every reader returns ``dict[modality name, AnnData]`` where each AnnData's ``obs`` has a
``series`` column (str) and, unless the modality is static (one row per series, no time), a
numeric ``time`` column. Formats: ``.h5mu``, ``.h5ad``, tidy long CSV/TSV (series, time,
feature, value[, modality]) and wide CSV/TSV (one row per series and time). Plugins read other
formats through the ``biocount_read_input`` hook, tried first.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from biocount.errors import BiocountInputError

if TYPE_CHECKING:
    from anndata import AnnData

TIME_KEYS = ("time", "day", "timepoint", "hour")
SERIES_KEYS = ("series_id", "series", "sample", "donor", "subject")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")


def _pick(columns: Any, wanted: str | None, defaults: tuple[str, ...], what: str, where: str) -> str | None:
    columns = [str(c) for c in columns]
    if wanted is not None:
        if wanted not in columns:
            raise BiocountInputError(f"{where}: no {what} column '{wanted}'; available: {', '.join(columns)}")
        return wanted
    return next((c for c in defaults if c in columns), None)


def numeric_time(values: pd.Series, column: str, where: str) -> np.ndarray:
    numeric = pd.to_numeric(values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values,
                            errors="coerce")
    bad = numeric.isna() & values.notna()
    if bad.any():
        raise BiocountInputError(
            f"{where}: time column '{column}' is not numeric (e.g. {values[bad].iloc[0]!r}); "
            "convert it to numbers first, e.g. with pandas.to_numeric"
        )
    if numeric.isna().any():
        raise BiocountInputError(f"{where}: time column '{column}' has missing values; drop or fill those rows")
    return numeric.to_numpy(dtype=float)


def _strings(values: pd.Series) -> np.ndarray:
    """``values`` as str objects; a categorical column by its categories (10 million cells of 24
    donors: 80 MB of references, not 10 million new strings)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        names = np.asarray([str(c) for c in values.cat.categories] + ["nan"], dtype=object)
        return names[values.cat.codes.to_numpy()]  # code -1 (missing) -> "nan", as astype(str) gives
    return values.astype(str).to_numpy()


def canonical_obs(adata: AnnData, *, where: str, time_key: str | None = None,
                  series_key: str | None = None) -> AnnData:
    """Add ``obs['series']`` and ``obs['time']`` from the user's columns (a copy of ``obs`` only).

    A modality with no time column and one row per series is static and gets no ``time``.
    """
    obs = adata.obs
    s_col = _pick(obs.columns, series_key, SERIES_KEYS, "series", where)
    static = s_col is not None and obs[s_col].is_unique and (time_key is None or time_key not in obs.columns)
    t_col = None if static and time_key is not None else _pick(obs.columns, time_key, TIME_KEYS, "time", where)
    if s_col is None:
        raise BiocountInputError(
            f"{where}: no series column; looked for {', '.join(SERIES_KEYS)}; name yours with --series-key "
            "(sample_key= in Python)"
        )
    out = adata if adata.isbacked or type(adata.X).__module__.startswith("dask") else adata.copy()  # on disk
    out.obs = obs.copy()
    out.obs["series"] = _strings(obs[s_col])
    if t_col is None:
        if out.obs["series"].is_unique:
            out.obs = out.obs.drop(columns="time", errors="ignore")
            return out  # static: one row per series
        raise BiocountInputError(
            f"{where}: no time column; looked for {', '.join(TIME_KEYS)}; name yours with --time-key "
            "(time_key= in Python)"
        )
    out.obs["time"] = numeric_time(obs[t_col], t_col, where)
    return out


def in_memory_bytes() -> int:
    """Largest .h5ad read into memory; a larger one is read lazily (``BIOCOUNT_IN_MEMORY_MB``, default 2048)."""
    return env_megabytes("BIOCOUNT_IN_MEMORY_MB", 2048)


def env_megabytes(name: str, default: float) -> int:
    """A size in MB from the environment variable ``name`` (``default`` when unset), as bytes; a value that is
    not a finite number >= 0 is a one-line error naming the variable."""
    import math
    import os

    raw = os.environ.get(name)
    if raw is None:
        return int(default * 2**20)
    try:
        mb = float(raw)
    except ValueError:
        mb = math.nan
    if not math.isfinite(mb) or mb < 0:
        raise BiocountInputError(f"{name}={raw}: not a size in MB (a finite number >= 0, e.g. {name}={default:g}); "
                                 "fix or unset it")
    return int(mb * 2**20)


def check_sparse(adata: Any, where: str) -> Any:
    """A sparse ``X`` or layer whose structure is damaged (an index past the matrix, pointers out of order)
    is refused here: scipy's products would read past its arrays and crash the process."""
    import scipy.sparse as sp

    for name, X in [("X", adata.X), *((f"layers/{k}", v) for k, v in adata.layers.items())]:
        if sp.issparse(X):
            try:
                X.check_format(full_check=True)
            except ValueError as exc:
                raise BiocountInputError(f"{where}: {name} is a damaged sparse matrix ({exc}); re-export the "
                                         "file") from None
    return adata


def _read_zarr(path: Path) -> Any:
    try:
        import zarr

        _check_chunks(zarr.open(str(path), mode="r"), path)
        return _read_store(path, "zarr")
    except BiocountInputError:
        raise
    except Exception as exc:  # zarr / anndata raise many types on a folder that is not an AnnData store
        raise BiocountInputError(f"{path}: not a readable AnnData .zarr store ({type(exc).__name__}: {exc}); "
                                 "write it with AnnData.write_zarr") from None


def _read_store(path: Path, kind: str) -> Any:
    """A store read lazily: ``obs`` and ``var`` in memory, the matrices as Dask arrays read in chunks
    where they are used (the rna encoder's pseudobulk). Without Dask: anndata's backed mode for .h5ad
    (it decodes every cell name at once: 1.7 GB for 10 million cells), memory for .zarr."""
    import anndata as ad

    try:
        import dask.array  # noqa: F401
    except ImportError:
        return ad.read_h5ad(path, backed="r") if kind == "h5ad" else ad.read_zarr(path)
    from anndata.experimental import read_elem_lazy

    from biocount.study.pseudobulk import CHUNK_ROWS

    if kind == "h5ad":
        import h5py

        group = h5py.File(path, "r")  # stays open: the Dask arrays read from it when computed
    else:
        import zarr

        group = zarr.open(str(path), mode="r")
    var = ad.io.read_elem(group["var"])
    obs = group["obs"]
    columns = {k: ad.io.read_elem(obs[k]) for k in obs.attrs.get("column-order", [])}
    # Cell names are not read: 10 million of them cost 1.2 GB (decoded, then hashed for uniqueness) and
    # nothing downstream uses them. Every cell is named after its file (one shared string).
    names = np.empty(len(next(iter(columns.values()))) if columns else group["X"].attrs["shape"][0], dtype=object)
    names.fill(path.name)  # one object referenced n times (np.full would make n copies of the string)
    frame = pd.DataFrame(columns, index=pd.Index(names, copy=False))

    def lazy(elem):
        return read_elem_lazy(elem, chunks=(CHUNK_ROWS, len(var)))

    layers = {k: lazy(group["layers"][k]) for k in group["layers"].keys()} if "layers" in group else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Observation names are not unique")
        return ad.AnnData(X=lazy(group["X"]), obs=frame, var=var, layers=layers)


def _check_chunks(group: Any, path: Path) -> None:
    """Every chunk of the sparse matrices' arrays (``X``, ``layers``) is on disk. zarr reads a missing
    chunk as its fill value (zeros), so a store with a lost chunk would give other numbers without a word.
    Dense arrays are not checked: zarr may legitimately skip writing a chunk that is all fill value."""
    import zarr

    matrices = [("X", group["X"])] if "X" in group else []
    if "layers" in group:
        matrices += [(f"layers/{k}", group["layers"][k]) for k in group["layers"].keys()]
    for name, elem in matrices:
        if not isinstance(elem, zarr.Group):
            continue
        for part in ("data", "indices", "indptr"):
            if part in elem and elem[part].nchunks_initialized < elem[part].nchunks:
                arr = elem[part]
                raise BiocountInputError(f"{path}: {name}/{part} is missing {arr.nchunks - arr.nchunks_initialized} "
                                         f"of its {arr.nchunks} chunk(s) (a damaged or partly copied store); copy "
                                         "the store again or rewrite it with AnnData.write_zarr")


def max_table_bytes() -> int:
    """Largest decompressed table read (guards against gzip bombs); ``BIOCOUNT_MAX_TABLE_MB`` raises it."""
    return env_megabytes("BIOCOUNT_MAX_TABLE_MB", 1024)


def _text(path: Path) -> str:
    """The file's text, decompressed within the size limit, with one clear error per way it can fail."""
    import gzip
    import zlib

    limit = max_table_bytes()
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                raw = fh.read(limit + 1)
        else:
            if path.stat().st_size > limit:
                raw = b"x" * (limit + 1)
            else:
                raw = path.read_bytes()
    except (gzip.BadGzipFile, zlib.error, EOFError):
        raise BiocountInputError(f"{path}: not gzip-compressed data (or a truncated .gz); rename it without .gz if "
                                 "it is plain text, or compress it again") from None
    except OSError as exc:
        raise BiocountInputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > limit:
        raise BiocountInputError(f"{path}: more than {limit >> 20} MB of table (after decompression); set "
                                 "BIOCOUNT_MAX_TABLE_MB to a larger number if this is really your study")
    if not raw.strip():
        raise BiocountInputError(f"{path}: the file is empty; expected a table with a header row")
    if b"\x00" in raw[:4096]:
        raise BiocountInputError(f"{path}: binary data, not a text table; export the study as CSV/TSV, .h5ad or .h5mu")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("latin-1")
        except UnicodeDecodeError:
            raise BiocountInputError(f"{path}: not UTF-8 text; save the table as UTF-8 CSV") from None


def _read_table(path: Path, series_key: str | None = None) -> pd.DataFrame:
    import io

    text = _text(path)
    header = text.split("\n", 1)[0]
    sep = "\t" if header.count("\t") > header.count(",") else ","  # a tab-separated .csv is read as such
    # every column as text: series ids stay strings ('007' is not 7); numbers are parsed where needed
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=True)
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        raise BiocountInputError(f"{path}: malformed table ({detail}); every row needs the same number of fields") from None
    except pd.errors.EmptyDataError:
        raise BiocountInputError(f"{path}: the file is empty; expected a table with a header row") from None


def _numbers(column: pd.Series, name: str, where: str) -> pd.Series:
    """A column as float64; a non-numeric cell is an error naming the column, the line and the value."""
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna() & (column.str.strip().str.lower() != "nan")
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise BiocountInputError(f"{where}: column '{name}' is not numeric (line {line}: {column[bad].iloc[0]!r}); "
                                 "fix or blank that cell (blank = missing)")
    big = values.abs() > np.finfo(np.float32).max
    if big.any():
        line = int(np.flatnonzero(big.to_numpy())[0]) + 2
        raise BiocountInputError(f"{where}: column '{name}' holds a value too large to store (line {line}: "
                                 f"{column[big].iloc[0]}); rescale it (e.g. log) first")
    return values.astype(float)


def _long_to_anndata(df: pd.DataFrame, path: Path, s_col: str, t_col: str, modality: str | None) -> dict[str, AnnData]:
    import anndata as ad

    where = str(path)
    value = _numbers(df["value"], "value", where)
    frame = pd.DataFrame({
        "series": df[s_col].astype(str), "time": numeric_time(df[t_col], t_col, where),
        "feature": df["feature"].astype(str), "value": value.astype(float),
        "modality": df["modality"].astype(str) if "modality" in df else (modality or path.name.split(".")[0]),
    })
    dup = frame.duplicated(["modality", "series", "time", "feature"])
    if dup.any():
        row = frame[dup].iloc[0]
        raise BiocountInputError(
            f"{where}: duplicate rows for series '{row.series}', time {row.time:g}, feature '{row.feature}'; "
            "average replicates first or give them distinct series ids"
        )
    out = {}
    for name, part in frame.groupby("modality", sort=True):
        wide = part.pivot(index=["series", "time"], columns="feature", values="value").sort_index()
        obs = wide.index.to_frame(index=False)
        obs.index = [f"{s}@{t:g}" for s, t in zip(obs["series"], obs["time"], strict=True)]
        out[str(name)] = ad.AnnData(X=wide.to_numpy(dtype=np.float32), obs=obs,
                                    var=pd.DataFrame(index=wide.columns.astype(str)))
    return out


def _wide_to_anndata(df: pd.DataFrame, path: Path, s_col: str | None, t_col: str, modality: str | None) -> AnnData:
    import anndata as ad

    where = str(path)
    series = df[s_col].astype(str) if s_col else pd.Series(path.name.split(".")[0], index=df.index)
    rest = [c for c in df.columns if c not in (s_col, t_col)]
    raw = df[rest].to_numpy(dtype=object)
    parsed = pd.to_numeric(pd.Series(raw.ravel()), errors="coerce").to_numpy(dtype=float).reshape(raw.shape)
    given = ~pd.isna(raw)
    # a column with no number at all is a label (kept in obs); one with some numbers is a feature, and
    # then every non-blank cell must be a number (one typo must not silently drop the feature)
    is_label = np.isnan(parsed).all(axis=0) & given.any(axis=0)
    labels = [c for c, lab in zip(rest, is_label, strict=True) if lab]
    features = [c for c, lab in zip(rest, is_label, strict=True) if not lab]
    if not features:
        raise BiocountInputError(f"{where}: no numeric feature columns besides series and time")
    values = parsed[:, ~is_label]
    bad = (np.isnan(values) & given[:, ~is_label]) | (np.abs(np.nan_to_num(values)) > np.finfo(np.float32).max)
    if bad.any():
        col = features[int(np.flatnonzero(bad.any(axis=0))[0])]
        _numbers(df[col], col, where)  # raises, naming the column, the line and the value
    obs = pd.DataFrame({"series": series.to_numpy(), "time": numeric_time(df[t_col], t_col, where)})
    for c in labels:
        obs[c] = df[c].to_numpy()
    obs.index = [f"{s}@{t:g}" for s, t in zip(obs["series"], obs["time"], strict=True)]
    if not obs.index.is_unique:
        dup = obs.index[obs.index.duplicated()][0]
        raise BiocountInputError(f"{where}: duplicate (series, time) row {dup}; one row per series and time")
    return ad.AnnData(X=values.astype(np.float32), obs=obs,
                      var=pd.DataFrame(index=[str(f) for f in features]))


def _static_to_anndata(df: pd.DataFrame, path: Path, s_col: str) -> AnnData:
    """Per-series covariates (one row per series, no time column: diets, treatments, genotypes): numeric
    columns as they are, text columns one-hot (``diet=high``, one 0/1 column per level); no ``time``."""
    import anndata as ad

    where = str(path)
    rest = df.drop(columns=[s_col])
    if rest.empty:
        raise BiocountInputError(f"{where}: no covariate columns besides the series column '{s_col}'")
    numbers = {c: pd.to_numeric(rest[c], errors="coerce") for c in rest.columns}
    text = [c for c in rest.columns if (numbers[c].isna() & rest[c].notna()).any()]  # any cell not a number
    rest = rest.assign(**{c: numbers[c] for c in rest.columns if c not in text})
    for c in text:
        if rest[c].isna().any():
            row = int(np.flatnonzero(rest[c].isna().to_numpy())[0]) + 2  # + header, 1-based
            raise BiocountInputError(f"{where}: column '{c}' is empty on line {row}; give every series a value "
                                     "(per-series covariates cannot be missing)")
    wide = pd.get_dummies(rest, columns=text, prefix_sep="=", dtype=np.float32) if text else rest
    values = wide.to_numpy(dtype=np.float64)
    obs = pd.DataFrame({"series": df[s_col].astype(str).to_numpy()}, index=df[s_col].astype(str).to_numpy())
    return ad.AnnData(X=values.astype(np.float32), obs=obs, var=pd.DataFrame(index=[str(c) for c in wide.columns]))


def read_table(path: str | Path, *, time_key: str | None = None, series_key: str | None = None,
               modality: str | None = None) -> dict[str, AnnData]:
    """Read a tidy long or a wide CSV/TSV (gzip allowed) into one AnnData per modality."""
    path = Path(path)
    df = _read_table(path)
    where = str(path)
    if df.empty:
        raise BiocountInputError(f"{where}: the table has no rows")
    if series_key is not None and series_key in ("feature", "value", time_key or "time"):
        raise BiocountInputError(f"{where}: --series-key {series_key} names the {series_key} column; give the column "
                                 "that identifies each series (subject, culture, ...)")
    if ("feature" in df.columns) != ("value" in df.columns):
        has, lacks = ("feature", "value") if "feature" in df.columns else ("value", "feature")
        raise BiocountInputError(f"{where}: a long table needs both 'feature' and 'value' columns; it has '{has}' "
                                 f"but no '{lacks}' (a wide table has neither: one column per feature)")
    t_col = _pick(df.columns, time_key, TIME_KEYS, "time", where)
    s_col = _pick(df.columns, series_key, SERIES_KEYS, "series", where)
    if t_col is None and s_col is not None and "feature" not in df.columns and df[s_col].is_unique:
        return {modality or path.name.split(".")[0]: _static_to_anndata(df, path, s_col)}
    if t_col is None:
        raise BiocountInputError(f"{where}: no time column; looked for {', '.join(TIME_KEYS)}; "
                                 "name yours with --time-key (a table of per-series covariates has one row per "
                                 "series and no time column)")
    if {"feature", "value"} <= set(df.columns):
        if s_col is None:
            raise BiocountInputError(f"{where}: no series column; looked for {', '.join(SERIES_KEYS)}; "
                                     "name yours with --series-key")
        return _long_to_anndata(df, path, s_col, t_col, modality)
    return {modality or path.name.split(".")[0]: _wide_to_anndata(df, path, s_col, t_col, modality)}


def _read_hdf5(path: Path, kind: str) -> Any:
    import h5py

    try:
        with h5py.File(path, "r"):
            pass
    except OSError as exc:
        raise BiocountInputError(
            f"{path}: not a readable {kind} file (truncated or not HDF5: {exc}); re-export it"
        ) from None
    try:
        if kind == "h5mu":
            import mudata as md

            md.set_options(pull_on_update=False)
            data = md.read_h5mu(path)
            for name, mod in data.mod.items():
                check_sparse(mod, f"{path}: modality '{name}'")
            return data
        import anndata as ad

        if path.stat().st_size > in_memory_bytes():  # cells stay on disk; the rna encoder sums them chunk by chunk
            return _read_store(path, "h5ad")  # (each chunk is checked as it is summed: pseudobulk.py)
        return check_sparse(ad.read_h5ad(path), str(path))
    except BiocountInputError:
        raise
    except Exception as exc:  # anndata/mudata raise many types on damaged files
        raise BiocountInputError(f"{path}: not a valid {kind} file ({type(exc).__name__}: {exc})") from None


def read(path: str | Path, *, time_key: str | None = None, series_key: str | None = None,
         modality: str | None = None, host: Any = None) -> dict[str, AnnData]:
    """Read a study file into ``{modality: AnnData}`` with canonical ``series``/``time`` obs columns.

    Parameters
    ----------
    path
        ``.h5mu``, ``.h5ad`` (read backed above ``BIOCOUNT_IN_MEMORY_MB``), an AnnData ``.zarr`` store (its
        matrices as Dask arrays), ``.csv``/``.tsv`` (optionally ``.gz``), or any format a plugin reads.
    time_key, series_key
        ``obs``/table columns holding time and series id; default: the first of
        ``time, day, timepoint, hour`` and ``series_id, series, sample, donor, subject``.
    modality
        Name of the modality for single-modality files (default: the file's stem).
    host
        A loaded plugin host whose ``biocount_read_input`` implementations are tried first.
    """
    path = Path(path)
    if not path.exists():
        raise BiocountInputError(f"{path}: no such file")
    options = {"time_key": time_key, "series_key": series_key, "modality": modality}
    data = _read_with_plugins(path, options, host) if host is not None else None
    if data is None:
        name = path.name.lower()
        if name.endswith(".h5mu"):
            data = dict(_read_hdf5(path, "h5mu").mod)
        elif name.endswith(".h5ad"):
            data = {modality or path.name.split(".")[0]: _read_hdf5(path, "h5ad")}
        elif name.rstrip("/").endswith(".zarr") and path.is_dir():
            data = {modality or path.name.split(".")[0]: _read_zarr(path)}
        elif name.endswith(TABLE_SUFFIXES):  # already canonical
            data = read_table(path, time_key=time_key, series_key=series_key, modality=modality)
            time_key = series_key = None
        else:
            raise BiocountInputError(f"{path}: unknown format; use .h5mu, .h5ad, .zarr, .csv or .tsv, "
                                     "or install a plugin that reads it")
    return as_modalities(data, where=str(path), time_key=time_key, series_key=series_key)


def as_modalities(data: Any, *, where: str, time_key: str | None = None, series_key: str | None = None,
                  name: str = "data") -> dict[str, AnnData]:
    """Normalise an AnnData, MuData or mapping of AnnData into ``{modality: AnnData}`` with canonical obs."""
    from anndata import AnnData

    if isinstance(data, AnnData):
        data = {name: data}
    elif hasattr(data, "mod"):
        data = dict(data.mod)
    out = {}
    for mod, adata in data.items():
        if adata.n_obs == 0 or adata.n_vars == 0:
            raise BiocountInputError(f"{where}: modality '{mod}' is empty ({adata.n_obs} x {adata.n_vars})")
        out[str(mod)] = canonical_obs(adata, where=f"{where} [{mod}]", time_key=time_key, series_key=series_key)
    return out


def _read_with_plugins(path: Path, options: dict[str, Any], host: Any) -> Any:
    from biocount.errors import PluginError

    for impl in reversed(host.pm.hook.biocount_read_input.get_hookimpls()):
        try:
            result = impl.function(**{k: v for k, v in {"path": path, "options": options}.items() if k in impl.argnames})
        except (Exception, SystemExit) as exc:
            raise PluginError(f"plugin '{impl.plugin_name}' failed to read {path}: {type(exc).__name__}: {exc}") from exc
        if result is not None:
            return result
    return None


def read_sources(sources: list[str], *, host: Any = None, time_key: str | None = None, series_key: str | None = None,
                 demo_seed: int = 0) -> tuple[dict[str, Any], str]:
    """Every source (files, or ``demo``) read and merged into {modality: AnnData}, and a name for messages;
    a modality in two sources is refused."""
    out, origin = {}, {}
    for src in sources:
        if src == "demo":
            from biocount.io.datasets import demo

            part = as_modalities(demo(seed=demo_seed), where="demo study", time_key=time_key, series_key=series_key)
        else:
            part = read(src, time_key=time_key, series_key=series_key, host=host)
        for mod, adata in part.items():
            if mod in out:
                raise BiocountInputError(f"modality '{mod}' is in both {origin[mod]} and {src}; rename one of them")
            out[mod], origin[mod] = adata, src
    return out, " + ".join("the demo study" if s == "demo" else s for s in sources)


def index_time_axis(data: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``--time-axis index``: each series' times replaced by their rank among that series' times in all the
    modalities ``names``."""
    timed = [n for n in names if "time" in data[n].obs]
    union = pd.concat([data[n].obs[["series", "time"]] for n in timed]).drop_duplicates()
    union["rank"] = union.groupby("series")["time"].rank(method="dense") - 1
    rank = union.set_index(["series", "time"])["rank"]
    out = dict(data)
    for n in timed:
        adata = data[n].copy()
        keys = pd.MultiIndex.from_frame(adata.obs[["series", "time"]])
        adata.obs["time"] = rank.reindex(keys).to_numpy(dtype=float)
        out[n] = adata
    return out
