"""cuDNN check and LSTM timings: CPU always, GPU when CUDA is present.

    python bench/gpu_check.py            # (or python -m bench gpu) under 6 minutes on one H100; CPU part elsewhere

On a CUDA machine it asserts that cuDNN is in use, compares CPU and GPU predictions of the same
weights (both cells: the peephole cell's GPU run against its CPU reference), times a training step
of both cells at batch 256-4096 x hidden 64-512 in fp32 and bf16 autocast (windows/s: the step time
must grow with the batch when the GPU is busy rather than waiting on launches), and runs the
synthetic study of issue 15 (500 series x 100 days x 16 features, ``--models lstm,naive --horizon
3``) end to end with ``--device cuda`` and ``--device cpu``. It prints the tables and writes
bench/results/gpu_check.json (git-ignored) with the machine.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))  # run from a checkout too
from biocount.forecasters.lstm.network import MultiModalLSTM, NetworkConfig

CPU_SIZES = [(256, 64), (256, 128)]  # (windows per batch, hidden): the CPU reference, kept small
GPU_SIZES = [(b, h) for b in (256, 1024, 4096) for h in (64, 256, 512)]
LOOKBACK, FEATURES, HORIZON, TARGETS = 16, 64, 4, 16


def model(cell: str, hidden: int) -> MultiModalLSTM:
    torch.manual_seed(0)
    return MultiModalLSTM(NetworkConfig(modalities={"rna": FEATURES + 2, "protein": TARGETS + 2}, n_static=8,
                                        n_targets=TARGETS, horizon=HORIZON, hidden=hidden, adapter_dim=32, cell=cell,
                                        dropout=0.0))


def batch(n: int, device: str):
    g = torch.Generator().manual_seed(1)
    x = {"rna": torch.randn(n, LOOKBACK, FEATURES + 2, generator=g), "protein": torch.randn(n, LOOKBACK, TARGETS + 2, generator=g)}
    return ({k: v.to(device) for k, v in x.items()}, torch.randn(n, 8, generator=g).to(device),
            torch.rand(n, HORIZON, generator=g).to(device), torch.randn(n, HORIZON, TARGETS, 1, generator=g).to(device))


def epoch_seconds(cell: str, n: int, hidden: int, device: str, bf16: bool, steps: int = 8) -> float:
    m = model(cell, hidden).to(device)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    x, s, ahead, y = batch(n, device)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and device == "cuda")

    def step():
        with ctx:
            loss = ((m(x, s, ahead).float() - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up: cuDNN plans; TorchScript specialises over its first runs
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def end_to_end(series: int = 500, points: int = 100, features: int = 16,
               devices: tuple[str, ...] = ("cuda", "cpu")) -> dict[str, float]:
    """``biocount run`` on issue 15's synthetic study, --device cuda then cpu, each in a fresh process."""
    import subprocess
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.scaling import study

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.csv"
        study(path, series, points, features=features)
        for device in devices:
            cmd = [sys.executable, "-m", "biocount", "run", "--data", str(path), "--modalities", "y=tabular,x=tabular",
                   "--target", "y", "--models", "lstm,naive", "--horizon", "3", "--device", device, "--quiet",
                   "--out", str(Path(tmp) / device)]
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, timeout=150)
            out[f"{device}_s"] = time.perf_counter() - start
            fit = json.loads((Path(tmp) / device / "run.json").read_text())["forecasters"]["lstm"]
            out[f"{device}_lstm_fit_s"] = fit["timings_s"].get("fit_s", float("nan"))
    if len(devices) < 2:
        return out
    out["cuda_over_cpu"] = out["cuda_s"] / out["cpu_s"]
    print(f"e2e {series} x {points} x {features}: cuda {out['cuda_s']:.1f} s, cpu {out['cpu_s']:.1f} s, "
          f"ratio {out['cuda_over_cpu']:.2f} (goal <= 0.3)")
    return out


def main() -> int:
    cuda = torch.cuda.is_available()
    rows, info = [], {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
                      "cpu_threads": torch.get_num_threads(), "cuda": cuda}
    if cuda:
        assert torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled, "cuDNN is not available"
        info |= {"gpu": torch.cuda.get_device_name(0), "cudnn": torch.backends.cudnn.version()}
        m = model("standard", 64).eval()
        x, s, ahead, _ = batch(64, "cpu")
        with torch.no_grad():
            cpu = m(x, s, ahead)
            m.cuda()
            with torch.backends.cudnn.flags(enabled=True):
                gpu = m({k: v.cuda() for k, v in x.items()}, s.cuda(), ahead.cuda()).cpu()
        diff = float((cpu - gpu).abs().max())
        info["cpu_gpu_max_abs_diff"] = diff
        assert diff < 1e-4, f"CPU and GPU predictions differ by {diff}"
        peep = model("peephole", 64).eval()
        with torch.no_grad():
            ref = peep(x, s, ahead)
            got = peep.cuda()({k: v.cuda() for k, v in x.items()}, s.cuda(), ahead.cuda()).cpu()
        info["peephole_cpu_gpu_max_abs_diff"] = float((ref - got).abs().max())
        assert info["peephole_cpu_gpu_max_abs_diff"] < 1e-4, "the peephole cell differs between CPU and GPU"
    for cell in ("standard", "peephole"):
        for n, hidden in sorted(set(CPU_SIZES) | (set(GPU_SIZES) if cuda else set())):
            row = {"cell": cell, "batch": n, "hidden": hidden, "cpu_fp32_s": float("nan")}
            if (n, hidden) in CPU_SIZES:
                row["cpu_fp32_s"] = epoch_seconds(cell, n, hidden, "cpu", False, steps=4)
            if cuda:
                row["gpu_fp32_s"] = epoch_seconds(cell, n, hidden, "cuda", False)
                row["gpu_bf16_s"] = epoch_seconds(cell, n, hidden, "cuda", True)
                if (n, hidden) in CPU_SIZES:
                    row["cpu_over_gpu"] = row["cpu_fp32_s"] / row["gpu_fp32_s"]
            rows.append(row)
    for r in rows:
        for dev in ("cpu_fp32", "gpu_fp32", "gpu_bf16"):
            if r.get(f"{dev}_s", float("nan")) == r.get(f"{dev}_s"):  # measured (not NaN)
                r[f"{dev}_windows_per_s"] = r["batch"] / r[f"{dev}_s"]
    cols = list(dict.fromkeys(c for r in rows for c in r))
    print(" | ".join(f"{c:>12}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r.get(c, float('nan')):>12.4f}" if isinstance(r.get(c, 0.0), float) else f"{r[c]:>12}"
                         for c in cols))
    print("seconds per training step (forward + backward + Adam) at", f"lookback {LOOKBACK}")
    if not cuda:
        print("GPU part skipped: torch sees no CUDA device on this machine")
    else:
        print(f"cuDNN {info['cudnn']} in use on {info['gpu']}; CPU vs GPU max |diff| {info['cpu_gpu_max_abs_diff']:.2e}")
    if cuda:
        info["e2e"] = end_to_end()
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
