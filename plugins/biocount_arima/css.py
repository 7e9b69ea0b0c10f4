"""Conditional sums of squares for many ARMA models at once.

auto.arima's approximation for studies where exact maximum likelihood costs too much (R's forecast
package, ``approximation=TRUE``): each candidate order is estimated by minimising the conditional sum of
squared one-step errors,

    e_t = z_t - c - phi_1 z_{t-1} - ... - phi_p z_{t-p} - theta_1 e_{t-1} - ... - theta_q e_{t-q},

with e_t = 0 before the first p values (Box and Jenkins' conditional least squares), and the order is
chosen by the AICc of that conditional likelihood. Here each Levenberg-Marquardt iteration runs on every
series of a batch at once (numpy over the batch, a Python loop over time only for the MA recursion), so a
candidate costs a few array passes for thousands of series instead of a likelihood optimisation per
series. Rows never mix: each series' iterates, damping and stopping depend on its own data alone, so a
series gets the same numbers in any batch (the truncation contract needs that).
"""

from __future__ import annotations

import math

import numpy as np

MAX_ITER = 100  # rows stop on their own at convergence; near-cancelling roots converge slowly (linearly)
TOL = 1e-12  # a series has converged where a Gauss-Newton step would gain less than this fraction of its squares


def _residuals(z: np.ndarray, beta: np.ndarray, p: int, q: int, const: bool) -> tuple[np.ndarray, np.ndarray]:
    """One-step errors e (B, n) and their Jacobian d e / d beta (B, n, k); beta = [c?, phi_1..p, theta_1..q]."""
    B, n = z.shape
    k = beta.shape[1]
    c = beta[:, 0] if const else np.zeros(B)
    phi, theta = beta[:, const:const + p], beta[:, const + p:]
    e = np.zeros((B, n))
    jac = np.zeros((B, n, k))
    # the AR part and its derivatives are linear: all times at once
    r = z[:, p:] - c[:, None]
    for i in range(p):
        r -= phi[:, i, None] * z[:, p - 1 - i: n - 1 - i]
        jac[:, p:, const + i] = -z[:, p - 1 - i: n - 1 - i]
    if const:
        jac[:, p:, 0] = -1.0
    if q == 0:
        e[:, p:] = r
        return e, jac
    for t in range(p, n):  # the MA recursion: e_t and d e_t feed the next steps
        et = r[:, t - p]
        dt = jac[:, t]
        for j in range(1, min(q, t - p) + 1):
            et = et - theta[:, j - 1] * e[:, t - j]
            dt -= theta[:, j - 1, None] * jac[:, t - j]
            dt[:, const + p + j - 1] -= e[:, t - j]
        e[:, t] = et
    return e, jac


def fit(z: np.ndarray, p: int, q: int, const: bool, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Conditional least-squares estimates (B, k) and sums of squares (B,) of an ARMA(p, q) (with an
    intercept c when ``const``) on every row of ``z`` (B, n; no missing values), the squares summed over
    t >= ``start`` (>= p: a common sample, so orders are compared on the same errors). Starts from zero
    (the first step is then a least-squares AR fit with the intercept); q = 0 is linear and needs one step."""
    B, n = z.shape
    k = const + p + q
    beta = np.zeros((B, k))
    with np.errstate(all="ignore"):  # an MA step outside invertibility may overflow: rejected below
        e, jac = _residuals(z, beta, p, q, const)
        rss = np.sum(e[:, start:] ** 2, axis=1)
        if k == 0:
            return beta, rss
        lam = np.full(B, 0.0 if q == 0 else 1e-3)  # q = 0: the undamped Gauss-Newton step is the solution
        active = np.ones(B, dtype=bool)
        for _ in range(MAX_ITER):
            rows = np.flatnonzero(active)
            if rows.size == 0:
                break
            J, err = jac[rows, start:], e[rows, start:]
            A = np.matmul(J.transpose(0, 2, 1), J)
            g = np.matmul(J.transpose(0, 2, 1), err[..., None])[..., 0]
            diag = np.einsum("bii->bi", A)
            # a ridge far below the data's scale keeps collinear columns (a constant series) solvable
            ridge = np.maximum(1e-12 * diag.max(axis=1), 1e-300)[:, None, None] * np.eye(k)
            damped = A + ridge + (lam[rows, None] * np.maximum(diag, 1e-12))[..., None] * np.eye(k)
            ok = np.isfinite(damped).all(axis=(1, 2)) & np.isfinite(g).all(axis=1)
            step = np.zeros((rows.size, k))
            if ok.any():
                step[ok] = np.linalg.solve(damped[ok], -g[ok][..., None])[..., 0]
            trial = beta[rows] + step
            e_new, jac_new = _residuals(z[rows], trial, p, q, const)
            rss_new = np.sum(e_new[:, start:] ** 2, axis=1)
            better = ok & np.isfinite(rss_new) & (rss_new < rss[rows])
            # converged: the undamped Gauss-Newton step would lower the sum of squares by less than TOL of it (an
            # observed small decrease is no test: damped steps crawl through the flat valleys of near-cancelling
            # AR and MA roots)
            gain = np.full(rows.size, np.inf)
            if ok.any():
                newton = np.linalg.solve(A[ok] + ridge[ok], g[ok][..., None])[..., 0]
                gain[ok] = np.einsum("bk,bk->b", g[ok], newton)
            done = ~ok | (gain <= TOL * rss[rows]) | (lam[rows] > 1e8) | (q == 0)
            keep = rows[better]
            beta[keep], e[keep], jac[keep], rss[keep] = trial[better], e_new[better], jac_new[better], rss_new[better]
            lam[rows] = np.where(better, lam[rows] * 0.1, lam[rows] * 10.0)
            active[rows[done]] = False
    return beta, rss


def admissible(coefs: np.ndarray, sign: float) -> np.ndarray:
    """Rows (B, m) of lag coefficients whose polynomial 1 + sign * (c_1 x + ... + c_m x^m) has every root
    outside the unit circle (sign -1: a stationary AR; +1: an invertible MA)."""
    B, m = coefs.shape
    if m == 0:
        return np.ones(B, dtype=bool)
    companion = np.zeros((B, m, m))
    companion[:, 0, :] = -sign * coefs
    companion[:, np.arange(1, m), np.arange(m - 1)] = 1.0
    good = np.isfinite(coefs).all(axis=1)
    radius = np.full(B, np.inf)
    if good.any():
        radius[good] = np.abs(np.linalg.eigvals(companion[good])).max(axis=1)
    return radius < 1.0 - 1e-8


def aicc(rss: np.ndarray, n: int, k: int) -> np.ndarray:
    """AICc of the conditional Gaussian likelihood at the least-squares estimates: n errors, k parameters
    (the variance included)."""
    if n - k - 1 <= 0:
        return np.full(rss.shape, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        loglike = -0.5 * n * (np.log(2 * math.pi * rss / n) + 1)
    out = -2 * loglike + 2 * k + 2 * k * (k + 1) / (n - k - 1)
    return np.where(np.isfinite(out) & (rss > 0), out, np.inf)


def psi_weights(phi: np.ndarray, theta: np.ndarray, d: int, horizon: int) -> np.ndarray:
    """The first ``horizon`` weights of the ARIMA's infinite MA form (psi_0 = 1): theta(B) / (phi(B) (1 - B)^d)
    (statsmodels' ``arma2ma`` with the differencing multiplied into the AR polynomial)."""
    from statsmodels.tsa.arima_process import arma2ma

    ar = np.r_[1.0, -np.asarray(phi, dtype=float)]
    for _ in range(d):
        ar = np.convolve(ar, [1.0, -1.0])
    return arma2ma(ar, np.r_[1.0, np.asarray(theta, dtype=float)], lags=horizon)


def forecast(y: np.ndarray, d: int, c: float, phi: np.ndarray, theta: np.ndarray, sigma2: float,
             origins: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Box and Jenkins' forecasts of an ARIMA(p, d, q) estimated by :func:`fit` (intercept ``c`` of the
    differenced series), mean and variance (n, H) from every origin: the conditional errors up to the origin
    (the recursion :func:`fit` minimised, run on ``y[: origin + 1]``: ``y`` must have no missing values up to the
    last origin), future errors zero, the differencing undone; variance sigma2 * (psi_0^2 + ... + psi_{h-1}^2)."""
    from scipy.signal import lfilter

    phi, theta = np.asarray(phi, dtype=float), np.asarray(theta, dtype=float)
    p, q = phi.size, theta.size
    o = np.asarray(origins, dtype=int)
    diffs = [np.asarray(y[: o.max() + 1], dtype=float)]
    for _ in range(d):
        diffs.append(np.diff(diffs[-1]))
    z = diffs[-1]  # z[i] is the differenced value at y's index i + d
    r = z[p:] - c - sum(phi[i] * z[p - 1 - i: z.size - 1 - i] for i in range(p))
    e = np.zeros(z.size)
    e[p:] = lfilter([1.0], np.r_[1.0, theta], r) if q else r  # errors are causal: e[:i+1] reads z[:i+1]
    last = o - d  # the last differenced value observed at each origin
    zhat = np.empty((o.size, horizon))
    for h in range(1, horizon + 1):
        value = np.full(o.size, c)
        for i in range(1, p + 1):
            value += phi[i - 1] * (zhat[:, h - i - 1] if h > i else z[last + h - i])
        for j in range(h, q + 1):  # errors at or before the origin are known; later ones are zero
            value += theta[j - 1] * e[last + h - j]
        zhat[:, h - 1] = value
    mean = zhat
    for k in range(d - 1, -1, -1):  # undo the differencing: level k+1 forecasts summed onto level k's last value
        mean = diffs[k][o - k][:, None] + np.cumsum(mean, axis=1)
    var = sigma2 * np.cumsum(psi_weights(phi, theta, d, horizon) ** 2)
    return mean, np.broadcast_to(var, mean.shape).copy()
