"""The tutorial's code runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

ROOT = Path(__file__).resolve().parents[1]


def test_tutorial_code_blocks_run(tmp_path, monkeypatch, shared_data):
    matplotlib.use("Agg")
    (tmp_path / "shared").symlink_to(shared_data.parent)  # the tutorial reads ../shared/data as a checkout does
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    text = (ROOT / "docs" / "tutorial.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    exec(compile("\n".join(blocks), "docs/tutorial.md", "exec"), namespace)
    assert "forecast_lstm" in namespace["tc"]["protein"].uns
    assert namespace["table"].loc["forecast_lstm", "mse"] > 0
    assert namespace["result"].info["design"]["link"] == {"mRNA": "all"}
