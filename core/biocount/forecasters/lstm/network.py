"""MultiModalLSTM: one input adapter per modality, one shared LSTM, a direct multi-horizon head.

    modality m  (B, L, F_m + 2) --Linear--LayerNorm--GELU-->  (B, L, d)   one adapter per modality
    concat over modalities                                    (B, L, d * M)
    static covariates (B, G) --Linear--tanh--> h0, c0         (layers, B, hidden)
    shared LSTM (standard: torch.nn.LSTM / peephole: the seed's cell)
    [last hidden state, horizon one-hot, log1p(days ahead)] --Linear--> (B, H, F [, 2])
                                                             one head shared by every horizon
  + every step's fused adapter output (B, L * d * M) --Linear--> (B, H, F [, 2])   the lag head

The lag head (LSTNet's linear "highway", Lai et al. 2018) reads each lookback step directly: a response
at a fixed delay is one weight there, where the LSTM would have to learn to carry the input that many
steps (and on a few hundred windows learns to read the latest step instead).

With ``residual=True`` the head predicts the change from each target's last observed value, and
starts at zero, so an uninformed model forecasts persistence, not noise. See docs/model.md.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn


def _peephole_layer(x_proj: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_hh: torch.Tensor,
                    peep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One peephole LSTM layer over time: the reference (plain autograd). Gates in PyTorch's order (i, f, g, o).

    x_proj = x W_ih^T + b (all steps at once); peep = (w_ci, w_cf, w_co), each acting on c_{t-1}
    as in the seed document:
        i = s(W_xi x + W_hi h + w_ci * c_{t-1} + b_i)
        f = s(W_xf x + W_hf h + w_cf * c_{t-1} + b_f)
        g = tanh(W_xc x + W_hc h + b_c)
        o = s(W_xo x + W_ho h + w_co * c_{t-1} + b_o)
        c_t = f * c_{t-1} + i * g ;  h_t = o * tanh(c_t)
    """
    w_ci, w_cf, w_co = peep.chunk(3, 0)
    outputs = []
    for step in range(x_proj.size(1)):
        gates = x_proj[:, step] + h @ w_hh.t()
        i, f, g, o = gates.chunk(4, 1)
        i = torch.sigmoid(i + w_ci * c)
        f = torch.sigmoid(f + w_cf * c)
        o = torch.sigmoid(o + w_co * c)
        c = f * c + i * torch.tanh(g)
        h = o * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, 1), h, c


def _forward_steps(x_proj: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_hh: torch.Tensor, peep: torch.Tensor):
    """The recurrence of :func:`_peephole_layer`, keeping what the hand-written backward needs."""
    H = h.size(1)
    w_ci, w_cf, w_co = peep[:H], peep[H:2 * H], peep[2 * H:]
    B, T = x_proj.size(0), x_proj.size(1)
    outs = torch.empty(B, T, H, dtype=x_proj.dtype, device=x_proj.device)
    gates = torch.empty(T, B, 4 * H, dtype=x_proj.dtype, device=x_proj.device)  # i, f, g, o (activated)
    cs = torch.empty(T + 1, B, H, dtype=x_proj.dtype, device=x_proj.device)
    cs[0] = c
    wt = w_hh.t()
    for t in range(T):
        z = torch.addmm(x_proj[:, t], h, wt)
        i = torch.sigmoid(z[:, :H] + w_ci * c)
        f = torch.sigmoid(z[:, H:2 * H] + w_cf * c)
        g = torch.tanh(z[:, 2 * H:3 * H])
        o = torch.sigmoid(z[:, 3 * H:] + w_co * c)
        c = f * c + i * g
        h = o * torch.tanh(c)
        outs[:, t] = h
        gates[t] = torch.cat([i, f, g, o], 1)
        cs[t + 1] = c
    return outs, h, c, gates, cs


def _backward_steps(d_out: torch.Tensor, dh: torch.Tensor, dc: torch.Tensor, gates: torch.Tensor, cs: torch.Tensor,
                    outs: torch.Tensor, h0: torch.Tensor, w_hh: torch.Tensor, peep: torch.Tensor):
    """Backpropagation through time for the peephole cell, one fused loop (no per-op autograd records)."""
    H = h0.size(1)
    T = gates.size(0)
    w_ci, w_cf, w_co = peep[:H], peep[H:2 * H], peep[2 * H:]
    d_xp = torch.empty(d_out.size(0), T, 4 * H, dtype=d_out.dtype, device=d_out.device)
    d_w = torch.zeros_like(w_hh)
    d_peep = torch.zeros_like(peep)
    for t in range(T - 1, -1, -1):
        gt = gates[t]
        i, f, g, o = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:3 * H], gt[:, 3 * H:]
        c_prev = cs[t]
        tc = torch.tanh(cs[t + 1])
        dh = dh + d_out[:, t]
        dct = dc + dh * o * (1 - tc * tc)
        dzi = dct * g * i * (1 - i)
        dzf = dct * c_prev * f * (1 - f)
        dzg = dct * i * (1 - g * g)
        dzo = dh * tc * o * (1 - o)
        dz = torch.cat([dzi, dzf, dzg, dzo], 1)
        d_xp[:, t] = dz
        h_prev = outs[:, t - 1] if t > 0 else h0
        d_w += dz.t() @ h_prev
        d_peep += torch.cat([(dzi * c_prev).sum(0), (dzf * c_prev).sum(0), (dzo * c_prev).sum(0)])
        dc = dct * f + dzi * w_ci + dzf * w_cf + dzo * w_co
        dh = dz @ w_hh
    return d_xp, dh, dc, d_w, d_peep


_scripted: dict[str, object] = {}


def _script(fn):
    """TorchScript-compile once (torch.jit.script works in 2.13; torch.compile needs a C++ toolchain)."""
    if fn.__name__ not in _scripted:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            _scripted[fn.__name__] = torch.jit.script(fn)
    return _scripted[fn.__name__]


class _PeepholeFunction(torch.autograd.Function):
    """Forward and backward as two scripted loops: 3-5x faster than letting autograd record each op."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, x_proj, h0, c0, w_hh, peep):
        outs, h, c, gates, cs = _script(_forward_steps)(x_proj, h0, c0, w_hh, peep)
        ctx.save_for_backward(gates, cs, outs, h0, w_hh, peep)
        return outs, h, c

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, d_out, d_h, d_c):
        gates, cs, outs, h0, w_hh, peep = ctx.saved_tensors
        zero = torch.zeros_like(h0)
        d_out = torch.zeros_like(outs) if d_out is None else d_out.contiguous()
        return _script(_backward_steps)(d_out, zero if d_h is None else d_h, zero if d_c is None else d_c,
                                        gates, cs, outs, h0, w_hh, peep)


def peephole_layer(x_proj: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_hh: torch.Tensor,
                   peep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One peephole layer over time, as :func:`_peephole_layer` computes it, with a hand-written backward."""
    return _PeepholeFunction.apply(x_proj, h, c, w_hh, peep)


class PeepholeLSTM(nn.Module):
    """A stack of peephole LSTM layers with nn.LSTM's parameter layout (plus ``peep_l{k}``)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_size, self.num_layers, self.dropout = hidden_size, num_layers, dropout
        bound = 1 / math.sqrt(hidden_size)
        for k in range(num_layers):
            size = input_size if k == 0 else hidden_size
            for name, shape in ((f"weight_ih_l{k}", (4 * hidden_size, size)),
                                (f"weight_hh_l{k}", (4 * hidden_size, hidden_size)),
                                (f"bias_ih_l{k}", (4 * hidden_size,)), (f"bias_hh_l{k}", (4 * hidden_size,)),
                                (f"peep_l{k}", (3 * hidden_size,))):
                self.register_parameter(name, nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        B = x.size(0)
        if state is None:
            zeros = x.new_zeros(self.num_layers, B, self.hidden_size)
            state = (zeros, zeros)
        h_n, c_n = [], []
        for k in range(self.num_layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}")
            bias = getattr(self, f"bias_ih_l{k}") + getattr(self, f"bias_hh_l{k}")
            x_proj = torch.addmm(bias, x.reshape(-1, x.size(-1)), w_ih.t()).view(B, x.size(1), -1)
            x, h, c = peephole_layer(x_proj, state[0][k], state[1][k], w_hh, getattr(self, f"peep_l{k}"))
            h_n.append(h)
            c_n.append(c)
            if self.training and self.dropout > 0 and k < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout)
        return x, (torch.stack(h_n), torch.stack(c_n))


class ModalityAdapter(nn.Module):
    """Each modality gets its own projection and normalisation to ``dim`` channels."""

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_features, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.norm(self.proj(x)))


def _default(name: str):
    from .options import LSTMOptions  # one home for the defaults: the forecaster's options

    return LSTMOptions.model_fields[name].default


@dataclass(frozen=True)
class NetworkConfig:
    """Everything that shapes the network, saved in the checkpoint (as nanoGPT's GPTConfig is).

    The data fix the first block (input channels per modality, static covariates, target features,
    horizon, lag-head steps, outputs per target); the rest defaults to :class:`LSTMOptions`' defaults.
    """

    modalities: dict[str, int]  # input channels per modality (values, observed flag, gap, level channels)
    n_static: int
    n_targets: int
    horizon: int
    target: str | None = None  # the modality modality dropout never drops
    outputs_per_target: int = 1  # 2: mean and log-variance (loss gaussian)
    lag_steps: int = 0  # lookback steps the lag head reads; 0: no lag head
    hidden: int = field(default_factory=lambda: _default("hidden"))
    layers: int = field(default_factory=lambda: _default("layers"))
    dropout: float = field(default_factory=lambda: _default("dropout"))
    adapter_dim: int = field(default_factory=lambda: _default("adapter_dim"))
    adapters: bool = field(default_factory=lambda: _default("adapters"))
    cell: str = field(default_factory=lambda: _default("cell"))
    modality_dropout: float = field(default_factory=lambda: _default("modality_dropout"))


class MultiModalLSTM(nn.Module):
    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        c = self.config = config
        modalities, hidden, layers, dropout = c.modalities, c.hidden, c.layers, c.dropout
        self.names = list(modalities)
        self.target, self.modality_dropout = c.target, c.modality_dropout
        self.horizon, self.n_targets, self.k = c.horizon, c.n_targets, c.outputs_per_target
        self.hidden, self.layers = hidden, layers
        if c.adapters:
            self.adapters = nn.ModuleDict({m: ModalityAdapter(n, c.adapter_dim) for m, n in modalities.items()})
            fused = c.adapter_dim * len(modalities)
        else:  # the seed's raw concatenation of every input channel
            self.adapters = None
            fused = sum(modalities.values())
        self.init_state = nn.Linear(c.n_static, 2 * layers * hidden) if c.n_static else None
        rnn_dropout = dropout if layers > 1 else 0.0
        if c.cell == "standard":
            self.rnn = nn.LSTM(fused, hidden, num_layers=layers, batch_first=True, dropout=rnn_dropout)
        elif c.cell == "peephole":
            self.rnn = PeepholeLSTM(fused, hidden, num_layers=layers, dropout=rnn_dropout)
        else:
            raise ValueError(f"unknown cell {c.cell!r}; use 'standard' or 'peephole'")
        self.drop = nn.Dropout(dropout)
        # one head shared by all horizons; it sees which horizon it serves and how many days ahead it lies
        self.head = nn.Linear(hidden + c.horizon + 1, c.n_targets * c.outputs_per_target)
        self.lag_head = (nn.Linear(c.lag_steps * fused, c.horizon * c.n_targets * c.outputs_per_target)
                         if c.lag_steps else None)
        if self.lag_head is not None:  # starts silent: the network begins as the LSTM alone
            nn.init.zeros_(self.lag_head.weight)
            nn.init.zeros_(self.lag_head.bias)

    def zero_head(self) -> None:
        """Start from a zero change: with a residual head the first forecast is persistence."""
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, inputs: dict[str, torch.Tensor], static: torch.Tensor | None = None,
                ahead: torch.Tensor | None = None, off: frozenset[str] = frozenset()) -> torch.Tensor:
        """Forecasts (B, H, F, k); the modalities in ``off`` are switched off (their adapter output zero,
        as modality dropout leaves a dropped modality in training): one network, any input subset."""
        parts = []
        for name in self.names:
            x = inputs[name]
            z = self.adapters[name](x) if self.adapters is not None else x
            if name in off:
                z = torch.zeros_like(z)
            elif self.training and self.modality_dropout > 0 and name != self.target:
                keep = (torch.rand(z.size(0), 1, 1, device=z.device) >= self.modality_dropout).to(z.dtype)
                z = z * keep  # the whole modality goes missing for this sample
            parts.append(z)
        fused = torch.cat(parts, dim=-1)
        state = None
        if self.init_state is not None and static is not None:
            hc = torch.tanh(self.init_state(static)).view(-1, 2, self.layers, self.hidden)
            state = (hc[:, 0].transpose(0, 1).contiguous(), hc[:, 1].transpose(0, 1).contiguous())
        out, _ = self.rnn(fused, state)
        last = self.drop(out[:, -1])  # (B, hidden)
        B, H = last.size(0), self.horizon
        which = torch.eye(H, device=last.device, dtype=last.dtype).expand(B, H, H)
        days = torch.log1p(ahead.clamp(min=0)).unsqueeze(-1) if ahead is not None else last.new_zeros(B, H, 1)
        features = torch.cat([last.unsqueeze(1).expand(B, H, -1), which, days.to(last.dtype)], dim=-1)
        out = self.head(features).view(B, H, self.n_targets, self.k)
        if self.lag_head is not None:  # windows always hold lag_steps steps (the forecaster's lookback)
            out = out + self.lag_head(fused.reshape(B, -1)).view(B, H, self.n_targets, self.k)
        return out
