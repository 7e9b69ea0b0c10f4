"""Study designs: shared (linked) modalities, replicates, periodic clocks and time scales."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from biocount.cli import cli
from biocount.errors import BiocountInputError
from biocount.study.design import Design, apply


def _long(series: list[str], times, features: list[str], modality: str, value=lambda s, t, f: t) -> pd.DataFrame:
    rows = [(s, float(t), f, float(value(s, t, f)), modality) for s in series for t in times for f in features]
    return pd.DataFrame(rows, columns=["series_id", "time", "feature", "value", "modality"])


def _study(tmp_path, target: pd.DataFrame, source: pd.DataFrame):
    path = tmp_path / "study.csv"
    pd.concat([target, source]).to_csv(path, index=False)
    from biocount.io.readers import read

    return path, read(path)


def _mods(tmp_path, *frames: pd.DataFrame) -> dict:
    from biocount.io.readers import read

    path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.csv"
    pd.concat(frames).to_csv(path, index=False)
    return read(path)


def _values(adata, feature: str) -> pd.Series:
    frame = adata.obs[["series", "time"]].copy()
    frame["v"] = np.asarray(adata[:, feature].X).ravel()
    return frame.set_index(["series", "time"])["v"].sort_index()


@pytest.fixture
def liver_like():
    """Protein every 3 h (CT 0-45) in 3 replicates; mRNA every 1 h (CT 18-65) in one pooled series, value = CT."""
    protein = _long(["rep1", "rep2", "rep3"], range(0, 46, 3), ["P1", "P2"], "protein",
                    value=lambda s, t, f: int(s[-1]) * 10 + t / 100 + (f == "P2"))
    mrna = _long(["pool"], range(18, 66), ["Per1"], "mRNA")
    return protein, mrna


def test_a_periodic_clock_aligns_a_1h_and_a_3h_series_against_a_hand_computed_table(liver_like, tmp_path):
    protein, mrna = liver_like
    data = _mods(tmp_path, protein, mrna)
    out, report = apply(data, target="protein", design=Design(link={"mRNA": "all"}, period=24.0))
    # phase p of CT t is t mod 24; the last cycle the pool measured phase p: 48 + p for p <= 17, 24 + p above
    expected = {t: (48 + t % 24) if t % 24 <= 17 else (24 + t % 24) for t in range(0, 46, 3)}
    got = _values(out["mRNA"], "Per1")
    for rep in ("rep1", "rep2", "rep3"):
        assert got.loc[rep].to_dict() == {float(t): float(v) for t, v in expected.items()}
    assert any("by phase" in r for r in report) and any("shared with 3 target series" in r for r in report)


def test_a_phase_the_source_never_measured_takes_the_latest_one_before_it(tmp_path):
    target = _long(["a"], [1, 5, 25], ["y"], "protein")
    source = _long(["s"], [2, 4, 22, 26], ["x"], "mRNA")  # phases 2, 4, 22, 2
    data = _mods(tmp_path, target, source)
    out, _ = apply(data, target="protein", design=Design(link={"mRNA": "all"}, period=24.0))
    # t=1 (phase 1): nothing at or before phase 1 in this cycle -> the previous cycle's last phase, 22 (CT 22)
    # t=5 (phase 5): phase 4 (CT 4); t=25 (phase 1): again phase 22
    assert _values(out["mRNA"], "x").loc["a"].to_dict() == {1.0: 22.0, 5.0: 4.0, 25.0: 22.0}


def test_broadcasting_never_looks_ahead(liver_like, tmp_path):
    """Truncation: deleting the target's rows after t changes nothing the design gives at times <= t."""
    protein, mrna = liver_like
    design = Design(link={"mRNA": "all"}, period=24.0, replicates="mean")
    full, _ = apply(_mods(tmp_path, protein, mrna), target="protein", design=design)
    for t in (9.0, 24.0, 33.0):
        cut = protein[protein["time"] <= t]
        part, _ = apply(_mods(tmp_path, cut, mrna), target="protein", design=design)
        for name, feature in (("mRNA", "Per1"), ("protein", "P1")):
            a, b = _values(full[name], feature), _values(part[name], feature)
            pd.testing.assert_series_equal(a[a.index.get_level_values("time") <= t], b)


def test_replicates_keep_mean_and_a_unit_file(liver_like, tmp_path):
    protein, mrna = liver_like
    data = _mods(tmp_path, protein, mrna)
    kept, _ = apply(data, target="protein", design=Design(link={"mRNA": "all"}))
    assert kept["protein"].shape == (48, 2) and kept["mRNA"].shape == (3 * 48, 1)
    mean, report = apply(data, target="protein", design=Design(link={"mRNA": "all"}, replicates="mean"))
    assert mean["protein"].shape == (16, 2) and set(mean["protein"].obs["series"]) == {"mean"}
    hand = protein[protein["feature"] == "P1"].groupby("time")["value"].mean()
    np.testing.assert_allclose(_values(mean["protein"], "P1").loc["mean"].to_numpy(), hand.to_numpy(), rtol=1e-6)
    assert mean["mRNA"].shape == (48, 1) and set(mean["mRNA"].obs["series"]) == {"mean"}  # shared with the unit
    assert any("3 target series into 1 unit" in r for r in report)
    units = tmp_path / "units.csv"
    units.write_text("series,unit\nrep1,A\nrep2,A\nrep3,B\n")
    grouped, _ = apply(data, target="protein", design=Design(link={"mRNA": "all"}, replicates=str(units)))
    assert grouped["protein"].shape == (32, 2) and sorted(set(grouped["protein"].obs["series"])) == ["A", "B"]


def test_period_alone_declares_the_cycle_and_leaves_the_data_as_they_are(liver_like, tmp_path):
    """Without --link, --period only tells the forecasters the study's cycle (climatology, ARIMA's seasonal
    terms): no modality is moved."""
    protein, mrna = liver_like
    data = _mods(tmp_path, protein, mrna)
    out, report = apply(data, target="protein", design=Design(period=24.0))
    assert all(out[m] is data[m] for m in data) and report == []


def test_time_scale_multiplies_one_modality_s_times(liver_like, tmp_path):
    protein, mrna = liver_like
    data = _mods(tmp_path, protein, mrna)
    out, _ = apply(data, target="protein", design=Design(time_scale={"mRNA": 1 / 24}))
    np.testing.assert_allclose(np.sort(out["mRNA"].obs["time"].unique()), np.arange(18, 66) / 24)
    assert out["protein"] is data["protein"]


@pytest.mark.parametrize(("design", "needle"), [
    (Design(link={"mRNA": "all"}, replicates="nope.csv"), "--replicates nope.csv: nope.csv is neither"),
    (Design(link={"protein": "all"}), "'protein' is the target"),
    (Design(link={"metab": "all"}), "no modality 'metab'"),
])
def test_design_errors(liver_like, tmp_path, design, needle):
    protein, mrna = liver_like
    with pytest.raises(BiocountInputError, match=needle.replace("(", r"\(")):
        apply(_mods(tmp_path, protein, mrna), target="protein", design=design)


def _cli(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_cli_link_file_with_unknown_series_is_a_clear_exit_2(liver_like, tmp_path):
    protein, mrna = liver_like
    two = pd.concat([mrna, mrna.assign(series_id="pool2")])
    path, _ = _study(tmp_path, protein, two)
    base = ["run", "--data", path, "--modalities", "protein=tabular,mRNA=tabular", "--target", "protein",
            "--models", "naive", "--horizon", "1", "--quiet"]
    mapping = tmp_path / "map.csv"
    mapping.write_text("target,source\nrep1,pool\nrep9,pool2\n")
    result = _cli(*base, "--link", f"mRNA={mapping}", "--out", tmp_path / "o1")
    assert result.exit_code == 2 and f"--link mRNA={mapping}: target series 'rep9' is not in the target" in result.output
    mapping.write_text("target,source\nrep1,pool\nrep2,pool7\n")
    result = _cli(*base, "--link", f"mRNA={mapping}", "--out", tmp_path / "o2")
    assert result.exit_code == 2 and "series 'pool7' is not in modality 'mRNA'" in result.output
    result = _cli(*base, "--link", "mRNA=all", "--out", tmp_path / "o3")
    assert result.exit_code == 2 and "modality 'mRNA' has 2 series" in result.output and "Traceback" not in result.output
    result = _cli(*base, "--out", tmp_path / "o4")
    assert result.exit_code == 2 and "use --link mRNA=all" in result.output
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))
    mapping.write_text("target,source\nrep1,pool\nrep2,pool2\nrep3,pool2\n")
    result = _cli(*base, "--link", f"mRNA={mapping}", "--time-scale", "mRNA=1", "--out", tmp_path / "ok")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "ok" / "run.json").read_text())
    assert info["design"] == {"link": {"mRNA": str(mapping)}, "replicates": "keep", "period": None,
                              "time_scale": {"mRNA": 1.0}}
    assert any("2 series shared with 3 target series" in n for n in info["notes"])


def test_bad_time_scale_and_link_syntax_are_one_line_errors(liver_like, tmp_path):
    protein, mrna = liver_like
    path, _ = _study(tmp_path, protein, mrna)
    base = ["run", "--data", path, "--modalities", "protein=tabular,mRNA=tabular", "--models", "naive", "--quiet",
            "--out", tmp_path / "o"]
    for args, needle in ((["--time-scale", "mRNA=1/0"], "mRNA=1/0: not a number or fraction"),
                         (["--time-scale", "mRNA=-2"], "a time scale must be a positive factor"),
                         (["--link", "mRNA"], "'mRNA' is not MODALITY=VALUE"),
                         (["--period", "0"], "period")):
        result = _cli(*base, *args)
        assert result.exit_code == 2 and needle in result.output, (args, result.output)


def test_bc_tl_forecast_takes_the_design(liver_like, tmp_path):
    """The Python API declares the same designs: a pooled mRNA shared with every protein replicate."""
    import biocount as bc

    protein, mrna = liver_like
    mods = _mods(tmp_path, protein, mrna)
    import mudata as md

    mdata = md.MuData(mods)
    bc.tl.forecast(mdata, method="naive", modalities=["protein=tabular", "mRNA=tabular"], target="protein",
                   horizon=1, link={"mRNA": "all"}, period=24, key_added="fc")
    assert mdata["protein"].uns["fc"]["params"]["method"] == "naive"
    with pytest.raises(BiocountInputError, match="has 1 series, the target 'protein' has 3.*--link mRNA=all"):
        bc.tl.forecast(mdata, method="naive", modalities=["protein=tabular", "mRNA=tabular"], target="protein",
                       horizon=1, key_added="fc2")
