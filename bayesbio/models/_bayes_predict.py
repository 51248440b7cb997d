"""The numpy predictive engine: posterior arrays, the linear predictor and its draws.

Vectorised over posterior draws and prediction rows, in chunks; also the pointwise
log-likelihood (for LOO), the per-batch failure probability and Student-t weight, and the
interval helpers (:func:`_hdi`, :func:`_quantiles`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesbio.models import _bayes_design as design
from bayesbio.models._bayes_spec import _failure_law, _varying_terms
from bayesbio.models._tables import unknown_labels_error
from bayesbio.space import ProcessSpace

_MAX_LOG_NOISE = 10.0  # Student-t noise draws are clipped to +-10 log units (see _block)
_T_UPPER = 0.995  # ... and above, to the 99.5 % quantile of their own t (see _block)
_CHUNK = 8192


def _flat(ds: xr.Dataset, name: str) -> np.ndarray:
    da = ds[name]
    arr = da.values
    return arr.reshape(arr.shape[0] * arr.shape[1], *arr.shape[2:])


def _posterior_arrays(tree: xr.DataTree, spec: dict[str, Any]) -> dict[str, Any]:
    post = tree["posterior"].to_dataset()
    out: dict[str, Any] = {
        "intercept": _flat(post, "intercept"),
        "beta": _flat(post, "beta"),
        "sigma": _flat(post, "sigma"),
        "a": {g: _flat(post, f"a_{g}") for g in spec["used"]},
        "sigma_g": {g: _flat(post, f"sigma_{g}") for g in spec["used"]},
    }
    if spec["primary"]:
        out["b"] = _flat(post, f"b_{spec['primary']}")
        out["sigma_b"] = _flat(post, "sigma_b")
    if spec["heteroscedastic"]:
        out["gamma"] = _flat(post, "gamma")
    if spec["likelihood"] == "student_t":
        out["nu"] = _flat(post, "nu")
    if spec["likelihood"] == "mixture":
        out["pi"] = _flat(post, "failure_rate")
    out["n"] = out["intercept"].shape[0]
    return out


class _Rows:
    """Design and group codes of a prediction table, shared by all structures."""

    def __init__(
        self, table: pd.DataFrame, spec: dict[str, Any], kind: str, space: ProcessSpace
    ) -> None:
        self.n = len(table)
        self.z = design.standardise(table, space)
        self.codes: dict[str, np.ndarray] = {}
        # Per group column: codes into "effect slots". Seen labels keep their training code;
        # labels treated as new get slots >= n_levels, one per distinct new label.
        self.n_new: dict[str, int] = {}
        for g in spec["groups"]:
            levels = spec["levels"][g]
            if kind == "population":
                continue
            if g not in table.columns:
                if kind == "existing":
                    raise ValueError(
                        f"group column '{g}' is missing from the prediction table; it is "
                        f"needed for kind='existing' (training levels: {levels})"
                    )
                self.codes[g] = np.full(self.n, len(levels), dtype=np.int64)
                self.n_new[g] = 1
                continue
            labels = table[g].astype(str).to_numpy()
            # -1 for a label not seen in training (pandas' Categorical would warn, then raise)
            known = pd.Index(levels).get_indexer(labels).astype(np.int64)
            unknown = known < 0
            if unknown.any():
                if kind == "existing":
                    raise unknown_labels_error(g, labels[unknown].tolist(), levels)
                uniq, inv = np.unique(labels[unknown], return_inverse=True)
                known[unknown] = len(levels) + inv
                self.n_new[g] = len(uniq)
            else:
                self.n_new[g] = 0
            self.codes[g] = known
        if self.codes:
            mat = np.column_stack(list(self.codes.values()))
            self.combos, inv = np.unique(mat, axis=0, return_inverse=True)
            self.combo_inv = inv.ravel().astype(np.int64)
        else:
            self.combos = np.zeros((1, 0), dtype=np.int64)
            self.combo_inv = np.zeros(self.n, dtype=np.int64)


_FOLD_MAX = 256


def _coefficients(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    rows: _Rows,
    sel: np.ndarray,
    rng: np.random.Generator,
    *,
    failures: bool = False,
) -> dict[str, Any]:
    """Coefficients of the linear predictor for draws ``sel`` and the rows' groups.

    Group offsets are summed per distinct combination of group labels and, like the primary
    group's slope deviations, folded into one matrix ``B`` so that the log-mean of every row
    and draw is a single matrix product ``B @ [X, onehot(combo), slope block].T``.
    ``failures=True`` (mixture likelihood only) carries the failure rate ``pi`` of each draw,
    so that :func:`_block` draws failed batches along with the noise.
    """
    c = len(sel)
    tables: dict[str, np.ndarray] = {}
    for g in rows.codes:
        n_new = rows.n_new[g]
        if g in spec["used"]:
            seen = arrays["a"][g][sel]
            sd = arrays["sigma_g"][g][sel]
        else:  # one level in training: its effect is absorbed by the intercept
            seen = np.zeros((c, len(spec["levels"][g])))
            sd = np.abs(rng.standard_normal(c)) * spec["priors"]["group_scale"]
        new = sd[:, None] * rng.standard_normal((c, n_new)) if n_new else np.zeros((c, 0))
        tables[g] = np.concatenate([seen, new], axis=1)
    offsets = np.repeat(arrays["intercept"][sel][:, None], len(rows.combos), axis=1)
    for j, g in enumerate(rows.codes):
        offsets += tables[g][:, rows.combos[:, j]]
    slopes = None
    p = spec["primary"]
    if p and p in rows.codes:
        seen = arrays["b"][sel]
        n_new = rows.n_new[p]
        new = arrays["sigma_b"][sel][:, None, :] * rng.standard_normal((c, n_new, seen.shape[2]))
        slopes = np.concatenate([seen, new], axis=1)
    fold_offsets = len(rows.combos) <= _FOLD_MAX
    fold_slopes = slopes is not None and slopes.shape[1] * slopes.shape[2] <= _FOLD_MAX
    parts = [arrays["beta"][sel]]
    if fold_offsets:
        parts.append(offsets)
    if fold_slopes:
        parts.append(slopes.reshape(c, -1))
    return {
        "B": np.concatenate(parts, axis=1),
        "offsets": offsets,
        "slopes": slopes,
        "fold_offsets": fold_offsets,
        "fold_slopes": fold_slopes,
        "sigma": arrays["sigma"][sel],
        "gamma": arrays["gamma"][sel] if spec["heteroscedastic"] else None,
        "nu": arrays["nu"][sel] if spec["likelihood"] == "student_t" else None,
        "pi": arrays["pi"][sel] if failures and spec["likelihood"] == "mixture" else None,
        "failure": _failure_law(spec) if spec["likelihood"] == "mixture" else None,
        "cast": {},
    }


def _cast(coef: dict[str, Any], name: str, dtype: Any) -> np.ndarray:
    key = (name, np.dtype(dtype).str)
    if key not in coef["cast"]:
        coef["cast"][key] = np.ascontiguousarray(coef[name], dtype=dtype)
    return coef["cast"][key]


def _block(
    coef: dict[str, Any],
    spec: dict[str, Any],
    structure: str,
    rows: _Rows,
    lo: int,
    hi: int,
    *,
    noise: bool,
    mean: bool,
    rng: np.random.Generator | None,
    dtype: Any,
) -> np.ndarray:
    """Log-scale predictive of rows ``lo:hi``: ``(n_draws, hi - lo)``.

    With ``noise`` and a failure rate in ``coef`` (mixture), each entry is a failed batch
    with its draw's probability ``pi``: its noise is replaced by the failure law's.
    """
    z = rows.z[lo:hi]
    m = hi - lo
    parts = [design.population_design(z, structure)]
    inv = rows.combo_inv[lo:hi]
    if coef["fold_offsets"]:
        onehot = np.zeros((m, len(rows.combos)))
        onehot[np.arange(m), inv] = 1.0
        parts.append(onehot)
    slopes = coef["slopes"]
    if slopes is not None:
        xs = design.slope_design(z, _varying_terms(spec))
        slot = rows.codes[spec["primary"]][lo:hi]
    if coef["fold_slopes"]:
        block = np.zeros((m, slopes.shape[1], slopes.shape[2]))
        block[np.arange(m), slot, :] = xs
        parts.append(block.reshape(m, -1))
    x = np.concatenate(parts, axis=1).astype(dtype)
    mu = _cast(coef, "B", dtype) @ x.T
    if not coef["fold_offsets"]:
        mu += _cast(coef, "offsets", dtype)[:, inv]
    if slopes is not None and not coef["fold_slopes"]:
        for k in np.unique(slot):
            cols = np.flatnonzero(slot == k)
            mu[:, cols] += slopes[:, k, :].astype(dtype) @ xs[cols].T.astype(dtype)
    sd = _cast(coef, "sigma", dtype)[:, None] * coef.get("noise_factor", 1.0)
    if coef["gamma"] is not None:
        sd = sd * np.exp(_cast(coef, "gamma", dtype) @ z.T.astype(dtype))
    if mean:
        mu += 0.5 * sd**2
    elif noise:
        assert rng is not None
        if coef["nu"] is not None:
            nu = np.broadcast_to(coef["nu"][:, None], mu.shape)
            # heavy tails (nu near 1) draw astronomically far: a batch 20,000 times its
            # median. The low tail is what failed batches look like and stays (within
            # e**-_MAX_LOG_NOISE); above its own t distribution's _T_UPPER quantile a draw is
            # held there (quantiles below it stay exact: intervals, the probability of any
            # spec below it, and every lower-tail risk objective are unaffected); that
            # quantile per draw is coef["nu_top"], set by predict_draws
            eps = np.clip(
                np.minimum(rng.standard_t(nu), coef["nu_top"]) * sd.astype(np.float64),
                -_MAX_LOG_NOISE,
                _MAX_LOG_NOISE,
            ).astype(dtype)
        else:
            eps = rng.standard_normal(mu.shape, dtype=dtype) * sd
        if coef["pi"] is not None:
            failed = rng.random(mu.shape, dtype=dtype) < _cast(coef, "pi", dtype)[:, None]
            shift, fail_sd = coef["failure"]
            n_failed = int(failed.sum())
            eps[failed] = shift + fail_sd * rng.standard_normal(n_failed, dtype=dtype)
        mu += eps
    return mu


def _loglik(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    structure: str,
    table: pd.DataFrame,
    sel: np.ndarray,
    space: ProcessSpace,
) -> np.ndarray:
    """Pointwise log-likelihood of log-yield, ``(len(sel), n)``, matching the PyMC model."""
    from scipy import stats

    rows = _Rows(table, spec, "existing", space)
    coef = _coefficients(arrays, spec, rows, sel, np.random.default_rng(0))
    mu = _block(
        coef, spec, structure, rows, 0, rows.n, noise=False, mean=False, rng=None, dtype=np.float64
    )
    sd = arrays["sigma"][sel][:, None]
    if spec["heteroscedastic"]:
        sd = sd * np.exp(arrays["gamma"][sel] @ rows.z.T)
    logy = np.log(table[space.response.name].to_numpy(dtype=float))[None, :]
    if spec["likelihood"] == "student_t":
        return stats.t.logpdf(logy, arrays["nu"][sel][:, None], loc=mu, scale=sd)
    if spec["likelihood"] == "mixture":
        normal, failed = _mixture_parts(arrays, spec, sel, logy, mu, sd)
        return np.logaddexp(normal, failed)
    return stats.norm.logpdf(logy, loc=mu, scale=sd)


def _mixture_parts(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    sel: np.ndarray,
    logy: np.ndarray,
    mu: np.ndarray,
    sd: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Joint log densities ``log((1 - pi) p_normal)`` and ``log(pi p_failed)``, per draw and row.

    Their ``logaddexp`` is the marginal mixture log-likelihood; ``exp(failed - logaddexp)``
    is the probability that the batch failed given that draw (Bayes' rule).
    """
    from scipy import stats

    pi = arrays["pi"][sel][:, None]
    shift, fail_sd = _failure_law(spec)
    normal = np.log1p(-pi) + stats.norm.logpdf(logy, loc=mu, scale=sd)
    failed = np.log(pi) + stats.norm.logpdf(logy, loc=mu + shift, scale=fail_sd)
    return normal, failed


def _residual_chunks(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    structure: str,
    table: pd.DataFrame,
    sel: np.ndarray,
    space: ProcessSpace,
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(lo, hi, log y, mu, sd)`` of the rows ``lo:hi`` of ``table``, by chunks.

    ``log y`` is ``(1, hi - lo)``; ``mu`` (the linear predictor of the batch's own groups)
    and ``sd`` (the noise sd) are per posterior draw in ``sel``.
    """
    logy_all = np.log(table[space.response.name].to_numpy(dtype=float))
    for lo in range(0, len(table), _CHUNK):
        hi = min(lo + _CHUNK, len(table))
        rows = _Rows(table.iloc[lo:hi], spec, "existing", space)
        coef = _coefficients(arrays, spec, rows, sel, np.random.default_rng(0))
        mu = _block(
            coef, spec, structure, rows, 0, rows.n, noise=False, mean=False, rng=None,
            dtype=np.float64,
        )  # fmt: skip
        sd = arrays["sigma"][sel][:, None]
        if spec["heteroscedastic"]:
            sd = sd * np.exp(arrays["gamma"][sel] @ rows.z.T)
        yield lo, hi, logy_all[None, lo:hi], mu, sd


def _failure_probability(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    structure: str,
    table: pd.DataFrame,
    sel: np.ndarray,
    space: ProcessSpace,
) -> np.ndarray:
    """Posterior mean over draws ``sel`` of P(batch failed | data), per row of ``table``."""
    out = np.empty(len(table))
    for lo, hi, logy, mu, sd in _residual_chunks(arrays, spec, structure, table, sel, space):
        normal, failed = _mixture_parts(arrays, spec, sel, logy, mu, sd)
        out[lo:hi] = np.exp(failed - np.logaddexp(normal, failed)).mean(axis=0)
    return out


def _t_weight(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    structure: str,
    table: pd.DataFrame,
    sel: np.ndarray,
    space: ProcessSpace,
) -> np.ndarray:
    """Posterior mean over draws ``sel`` of each row's Student-t weight.

    A Student-t is a normal whose precision is scaled per batch by a latent weight; given
    the residual ``r = (log y - mu) / sigma`` its conditional mean is
    ``(nu + 1) / (nu + r**2)``: about 1 for a batch the surface explains, near 0 for one far
    from it, which therefore barely moves the surface.
    """
    out = np.empty(len(table))
    nu = arrays["nu"][sel][:, None]
    for lo, hi, logy, mu, sd in _residual_chunks(arrays, spec, structure, table, sel, space):
        r2 = ((logy - mu) / sd) ** 2
        out[lo:hi] = ((nu + 1.0) / (nu + r2)).mean(axis=0)
    return out


def _hdi(draws: np.ndarray, prob: float) -> tuple[float, float]:
    """Narrowest interval holding a share ``prob`` of ``draws`` (one-dimensional)."""
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    n = len(x)
    if n < 2:
        return float(x[0]), float(x[-1])
    m = max(1, min(n - 1, int(np.floor(prob * n))))
    widths = x[m:] - x[: n - m]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + m])


def _quantiles(draws: np.ndarray, probs: Sequence[float]) -> list[np.ndarray]:
    """Column quantiles of ``draws`` (linear interpolation, as ``np.quantile``), fast.

    One ``np.partition`` of the transposed (row-contiguous) block instead of a full sort.
    """
    block = np.ascontiguousarray(draws.T)
    n = block.shape[1]
    pos = [(n - 1) * p for p in probs]
    kth = sorted({k for h in pos for k in (int(np.floor(h)), min(int(np.floor(h)) + 1, n - 1))})
    part = np.partition(block, kth, axis=1)
    out = []
    for h in pos:
        f = int(np.floor(h))
        c = min(f + 1, n - 1)
        lo = part[:, f].astype(np.float64)
        out.append(lo + (h - f) * (part[:, c].astype(np.float64) - lo))
    return out
