"""LOO stacking of the structures: PSIS-LOO per structure, weights, the user's notice.

Yao et al. (2018): the weights maximise the leave-one-out log score of the mixture of the
structures' predictive distributions.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesbio.models._bayes_predict import _loglik
from bayesbio.space import ProcessSpace

_LOO_MAX_ROWS = 4000
_LOO_MAX_DRAWS = 2000
_PARETO_K_LIMIT = 0.7  # PSIS-LOO unreliable above (Vehtari et al. 2024)
_NAMED_BATCHES = 8


def _loo_stacking(
    idata: Mapping[str, xr.DataTree],
    arrays: Mapping[str, dict[str, Any]],
    specs: Mapping[str, dict[str, Any]],
    table: pd.DataFrame,
    space: ProcessSpace,
    diagnostics: Mapping[str, dict[str, float]],
    *,
    random_seed: int | None,
) -> tuple[pd.Series, str]:
    """LOO (PSIS) per structure on the training data, then stacking weights.

    ``arrays`` and ``specs`` are each structure's posterior arrays
    (:func:`~bayesbio.models._bayes_predict._posterior_arrays`) and spec as it sees it. The
    LOO figures (``elpd_loo``, ``elpd_loo_se``, ``p_loo``, ``max_pareto_k``) are added to
    ``diagnostics[structure]`` in place. Returns the weights (``name="weight"``, indexed by
    structure) and :func:`_loo_notice`'s sentence (empty when LOO is reliable).
    """
    import arviz as az

    names = list(idata)
    rng = np.random.default_rng(random_seed)
    rows = np.arange(len(table))
    if len(rows) > _LOO_MAX_ROWS:  # pointwise LOO on a random subsample of batches
        rows = np.sort(rng.choice(len(table), _LOO_MAX_ROWS, replace=False))
    sub = table.iloc[rows]
    elpd = []
    influential: dict[str, list[Any]] = {}
    for s in names:
        tree = idata[s]
        n_chain = tree["posterior"].sizes["chain"]
        n_draw = tree["posterior"].sizes["draw"]
        step = max(1, (n_chain * n_draw) // _LOO_MAX_DRAWS)
        keep = max(1, n_draw // step)
        sel = (np.arange(n_chain)[:, None] * n_draw + np.arange(0, keep * step, step)).ravel()
        ll = _loglik(arrays[s], specs[s], s, sub, sel, space)
        ll = ll.reshape(n_chain, keep, len(sub))
        loo_tree = xr.DataTree()
        loo_tree["posterior"] = xr.DataTree(
            xr.Dataset(
                {"sigma": (("chain", "draw"), arrays[s]["sigma"][sel].reshape(n_chain, keep))}
            )
        )
        loo_tree["log_likelihood"] = xr.DataTree(
            xr.Dataset({"log_yield": (("chain", "draw", "obs"), ll)})
        )
        with warnings.catch_warnings():  # ArviZ's generic notice; ours names the batches
            warnings.filterwarnings("ignore", "Estimated shape parameter", UserWarning)
            res = az.loo(loo_tree, pointwise=True)
        elpd.append(np.asarray(res.elpd_i).ravel())
        k_i = np.asarray(res.pareto_k).ravel()
        diagnostics[s]["elpd_loo"] = float(res.elpd)
        diagnostics[s]["elpd_loo_se"] = float(res.se)
        diagnostics[s]["p_loo"] = float(res.p)
        diagnostics[s]["max_pareto_k"] = float(np.nanmax(k_i))
        # named as the user knows them: by batch id where the table has one
        labels = sub[space.batch_id] if space.batch_id in sub.columns else sub.index.to_series()
        influential[s] = list(labels[k_i > _PARETO_K_LIMIT])
    weights = pd.Series(_stacking_weights(np.column_stack(elpd)), index=names, name="weight")
    return weights, _loo_notice(influential, diagnostics, weights, len(sub))


def _loo_notice(
    influential: Mapping[str, list[Any]],
    diagnostics: Mapping[str, Mapping[str, float]],
    weights: pd.Series,
    n: int,
) -> str:
    """Return the user's sentence on an unreliable leave-one-out check (empty if reliable).

    Names the batches whose Pareto k exceeds 0.7 in any structure and the structures whose
    effective number of parameters ``p_loo`` exceeds the number of batches checked.
    """
    batches = list(dict.fromkeys(b for found in influential.values() for b in found))
    crowded = {s: d["p_loo"] for s, d in diagnostics.items() if d.get("p_loo", 0.0) > n}
    if not batches and not crowded:
        return ""
    parts = []
    if batches:
        shown = ", ".join(str(b) for b in batches[:_NAMED_BATCHES])
        if len(batches) > _NAMED_BATCHES:
            shown += f" and {len(batches) - _NAMED_BATCHES} more"
        per = "; ".join(f"'{s}' {len(found)}" for s, found in influential.items() if found)
        parts.append(
            f"{len(batches)} of {n} batches ({shown}) too influential to leave out in one fit "
            f"(Pareto k > {_PARETO_K_LIMIT}; {per})"
        )
    if crowded:
        per = "; ".join(f"'{s}' {p:.1f}" for s, p in crowded.items())
        parts.append(
            f"effective parameters (p_loo: {per}) exceed the {n} batches: the surface follows "
            "single batches"
        )
    share = ", ".join(f"{s} {w:.2f}" for s, w in weights.items())
    return (
        "Leave-one-out check: "
        + "; ".join(parts)
        + f". The stacking weights ({share}) are approximate. Usual causes: a group level "
        "with one or two batches, an outlying or failed batch, a factor missing from the model."
    )


def _stacking_weights(elpd_i: np.ndarray) -> np.ndarray:
    """Stacking weights from pointwise LOO elpd ``(n, K)`` (as az.compare(method='stacking'))."""
    from scipy.optimize import Bounds, LinearConstraint, minimize

    k = elpd_i.shape[1]
    if k == 1:
        return np.ones(1)
    dens = np.exp(elpd_i - elpd_i.max(axis=1, keepdims=True))

    def score(w: np.ndarray) -> float:
        return -float(np.sum(np.log(dens @ w)))

    def grad(w: np.ndarray) -> np.ndarray:
        return -np.sum(dens / (dens @ w)[:, None], axis=0)

    res = minimize(
        score,
        np.full(k, 1.0 / k),
        jac=grad,
        bounds=Bounds(np.zeros(k), np.ones(k)),
        constraints=LinearConstraint(np.ones(k), 1.0, 1.0),
    )
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()
