"""One test per hook (tests/test_author_kit.py checks that every hook has one)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biocount import EncoderSpec, ForecasterSpec, PluginError, hookimpl
from biocount.host.testing import registered
from biocount.io.readers import read


class Echo:
    def __init__(self, options):
        self.options = options


def test_hook_biocount_register_encoders(biocount_host):
    class P:
        @hookimpl
        def biocount_register_encoders(self, register):
            register(EncoderSpec(name="echo", modality="echoes", factory="tests.test_hooks:Echo", api="1.0"))

    with registered(biocount_host, P(), name="echo") as record:
        assert [c.describe() for c in record.components] == ["encoder echo (modality echoes)"]
        assert type(biocount_host.encoder("echoes").build()).__name__ == "Echo"


def test_hook_biocount_register_forecasters(biocount_host):
    from biocount.host.testing import ForecasterContract

    class P:
        @hookimpl
        def biocount_register_forecasters(self, register):
            register(ForecasterSpec(name="persist", factory="biocount.forecasters.naive:build", api="1.0"))

    with registered(biocount_host, P(), name="persist"):
        contract = ForecasterContract()
        task = contract.task()
        model = biocount_host.forecaster("persist").build().fit(task)
        np.testing.assert_array_equal(model.predict(task, np.array([[0, 20]])).mean[0, 0],
                                      task.data.y[0, 20])


def test_hook_biocount_read_input(biocount_host, tmp_path):
    path = tmp_path / "study.weird"
    path.write_text("a 0 1.5\na 1 2.5\nb 0 3.5\nb 1 4.5\n")

    class Reader:
        @hookimpl
        def biocount_read_input(self, path, options):
            if path.suffix != ".weird":
                return None
            rows = [line.split() for line in path.read_text().splitlines()]
            obs = pd.DataFrame({"series": [r[0] for r in rows], "time": [float(r[1]) for r in rows]})
            obs.index = obs.index.astype(str)
            return ad.AnnData(X=np.array([[float(r[2])] for r in rows], dtype=np.float32), obs=obs)

    class Broken:
        @hookimpl
        def biocount_read_input(self, path, options):
            raise OSError("disk on fire")

    with registered(biocount_host, Reader(), name="weird"):
        data = read(path, host=biocount_host, modality="weird")
        assert list(data) == ["data"] and data["data"].shape == (4, 1)
        csv = tmp_path / "t.csv"
        csv.write_text("series_id,time,x\na,0,1\n")
        assert "t" in read(csv, host=biocount_host)  # the plugin declines: biocount's reader takes over
        with registered(biocount_host, Broken(), name="broken-reader"):
            with pytest.raises(PluginError, match="plugin 'broken-reader:broken-reader' failed to read .*disk on fire"):
                read(path, host=biocount_host)
