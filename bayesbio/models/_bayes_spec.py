"""Priors and the model specification: what the data support, as a JSON-able dict.

The spec (levels, pooled group columns, parameterisation, primary group and its varying
terms, likelihood, curvature, prior location and scale) is made once per fit by
:func:`_make_spec` and saved with the model. The priors are documented in the table of
:mod:`bayesbio.models.bayesian`'s module docstring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayesbio import schema
from bayesbio.checks import check_choice
from bayesbio.models import _bayes_design as design
from bayesbio.models import _bayes_sampling as sampling
from bayesbio.space import ProcessSpace

DEFAULT_PRIORS: dict[str, float | None] = {
    "intercept_loc": None,
    "intercept_scale": 1.0,
    "log_yield_sd": None,
    "slope_scale": 1.0,
    "curvature_scale": 1.0,
    "curvature_nu": None,
    "interaction_scale": 0.5,
    "spline_scale": 0.5,
    "group_scale": 0.2,
    "slope_group_scale": 0.5,
    "noise_scale": 0.2,
    "nu_alpha": 2.0,
    "nu_beta": 0.1,
    "nu_min": 1.0,
    "hetero_scale": 0.5,
    "failure_alpha": 1.0,
    "failure_beta": 19.0,
    "failure_fraction": 0.15,
    "failure_sd": 0.8,
    "gp_scale": 0.5,
    "gp_ls_alpha": 5.0,
    "gp_ls_beta": 5.0,
}

_CENTRED_SIGNAL_RATIO = 4.0
_SLOPES_MIN_PER_LEVEL = 20.0  # "auto": varying slopes (linear and squared) from this median
_SUFFICIENT_MIN_ROWS = 1000
_LIKELIHOODS = ("normal", "student_t", "mixture")
#: the ``likelihood`` argument's choices ("auto": Student-t below 1,000 batches, else normal)
LIKELIHOODS = ("auto", *_LIKELIHOODS)
CURVATURES = ("auto", "concave", "convex", "free")


def _priors(priors: Mapping[str, float | None] | None) -> dict[str, float | None]:
    merged = dict(DEFAULT_PRIORS)
    for key, value in (priors or {}).items():
        if key not in DEFAULT_PRIORS:
            raise ValueError(f"unknown prior {key!r}; valid keys are {sorted(DEFAULT_PRIORS)}")
        merged[key] = None if value is None else float(value)
    nu = merged["curvature_nu"]
    if nu is not None and not (np.isfinite(nu) and nu > 0):
        raise ValueError(f"prior 'curvature_nu' must be a positive number or None, got {nu!r}")
    floor = merged["nu_min"]
    if floor is not None and not (np.isfinite(floor) and floor >= 0):
        raise ValueError(f"prior 'nu_min' must be a number >= 0 or None, got {floor!r}")
    return merged


def _check_failure_priors(priors: Mapping[str, float | None]) -> None:
    """Refuse failure-law priors the mixture cannot use (names the key and its range)."""
    ranges = {
        "failure_alpha": (0.0, np.inf),
        "failure_beta": (0.0, np.inf),
        "failure_fraction": (0.0, 1.0),
        "failure_sd": (0.0, np.inf),
    }
    for key, (lo, hi) in ranges.items():
        value = priors[key]
        if value is None or not (np.isfinite(value) and lo < value < hi):
            raise ValueError(
                f"prior {key!r} must be in ({lo}, {hi}) for likelihood='mixture', got {value!r}"
            )


def _informative_groups(
    table: pd.DataFrame, logy: np.ndarray, used: Sequence[str], space: ProcessSpace
) -> dict[str, bool]:
    """Whether the data pin each group column's level effects (-> centred parameterisation).

    A quick ridge fit of the quadratic surface gives residuals; per level, the mean residual
    has standard error ``s / sqrt(n_level)``. If the spread of the level means clearly exceeds
    that (ratio of variances > 4) and levels hold >= 10 batches on average, the likelihood
    identifies the effects and the centred form samples better; otherwise (few or noisy
    batches per level, the funnel regime) the non-centred form is used.
    """
    z = design.standardise(table, space)
    x = np.column_stack([np.ones(len(z)), design.population_design(z, "quadratic")])
    ridge = np.eye(x.shape[1]) * 1e-3 * len(z)
    ridge[0, 0] = 0.0
    coef = np.linalg.solve(x.T @ x + ridge, x.T @ logy)
    resid = logy - x @ coef
    out = {}
    for g in used:
        frame = pd.DataFrame({"r": resid, "g": table[g].to_numpy()})
        stats = frame.groupby("g")["r"].agg(["mean", "count", "var"])
        within = float(np.nanmean(stats["var"])) if len(stats) else 0.0
        se2 = float(np.mean(within / stats["count"]))
        between = float(np.var(stats["mean"], ddof=1)) if len(stats) > 1 else 0.0
        out[g] = bool(stats["count"].mean() >= 10 and between > _CENTRED_SIGNAL_RATIO * se2)
    return out


def _make_spec(
    table: pd.DataFrame,
    groups: Sequence[str],
    *,
    likelihood: str,
    heteroscedastic: bool,
    varying_slopes: bool | str,
    parameterization: str,
    priors: Mapping[str, float | None],
    space: ProcessSpace,
    curvature: str = "auto",
    varying_terms: str = "auto",
) -> dict[str, Any]:
    check_choice("likelihood", likelihood, LIKELIHOODS)
    check_choice("varying_terms", varying_terms, ("auto", *design.VARYING_TERMS))
    check_choice("curvature", curvature, CURVATURES)
    if likelihood == "auto":
        # robust for the small histories the tool is for; exact sufficient statistics (and a
        # gradient whose cost does not grow with n) for thousands of batches
        likelihood = "student_t" if len(table) < _SUFFICIENT_MIN_ROWS else "normal"
    if curvature == "auto":
        curvature = "concave" if space.response.direction == "maximise" else "convex"
    check_choice("parameterization", parameterization, ("auto", "centered", "noncentered"))
    n = len(table)
    response = space.response
    y = table[response.name].to_numpy(dtype=float)
    bad = y <= 0
    if bad.any():
        raise ValueError(
            f"column '{response.name}': {int(bad.sum())} value(s) <= 0 "
            f"({schema._ids(table, bad, space.batch_id)}); the model works on the log scale "
            f"and needs {response.name} > 0 {response.unit}. A batch that made no product "
            "(failed, aborted, contaminated) belongs out of the yield model: `bayesbio clean` "
            "drops such rows and logs each one"
        )
    logy = np.log(y)
    if likelihood == "mixture":
        _check_failure_priors(priors)
    levels = {g: sorted(pd.unique(table[g]).tolist()) for g in groups}
    used = [g for g in groups if len(levels[g]) >= 2]
    centred = {}
    informative = (
        _informative_groups(table, logy, used, space) if parameterization == "auto" else {}
    )
    for g in used:
        if parameterization == "auto":
            centred[g] = informative[g]
        else:
            centred[g] = parameterization == "centered"
    primary = used[0] if used else None
    if isinstance(varying_slopes, str) and varying_slopes != "auto":
        if varying_slopes not in used:
            raise ValueError(
                f"varying_slopes={varying_slopes!r} must name a group column with >= 2 levels "
                f"among {used}, or be 'auto', True or False"
            )
        primary = varying_slopes
    counts = table[primary].value_counts() if primary else pd.Series(dtype=float)
    per_level = float(counts.median()) if len(counts) else 0.0
    if varying_slopes == "auto":
        slopes = bool(primary is not None and per_level >= _SLOPES_MIN_PER_LEVEL)
    else:
        slopes = bool(varying_slopes) and primary is not None
    if varying_terms == "auto":
        varying_terms = "quadratic" if per_level >= _SLOPES_MIN_PER_LEVEL else "linear"
    prior_loc, prior_scale = data_priors(logy, priors)
    return {
        "factors": list(space.factor_names),
        "groups": list(groups),
        "levels": levels,
        "used": used,
        "centred": centred,
        "primary": primary if slopes else None,
        "slope_group": primary,
        "varying_terms": varying_terms,
        "likelihood": likelihood,
        "curvature": curvature,
        "heteroscedastic": bool(heteroscedastic),
        "sufficient": bool(
            likelihood == "normal" and not heteroscedastic and n >= _SUFFICIENT_MIN_ROWS
        ),
        "prior_loc": prior_loc,
        "prior_scale": prior_scale,
        "n": n,
        "priors": dict(priors),
    }


def structure_spec(spec: dict[str, Any], structure: str) -> dict[str, Any]:
    """Return the model spec as ``structure`` sees it.

    ``"quadratic_by_group"`` varies the primary group's terms (``spec["slope_group"]``)
    whether or not the model's other structures do; every other structure sees ``spec``.
    """
    if structure != "quadratic_by_group" or spec["primary"]:
        return spec
    return {**spec, "primary": spec.get("slope_group")}


def _duplicate_structure(spec: dict[str, Any], structure: str) -> bool:
    """Whether ``structure`` would be the same model as ``"quadratic"`` on this data."""
    seen = structure_spec(spec, structure)
    return structure == "quadratic_by_group" and seen["primary"] == spec["primary"]


def data_priors(logy: np.ndarray, priors: Mapping[str, float | None]) -> tuple[float, float]:
    """Return the prior location and scale of log-yield: the overrides, else from the data.

    ``intercept_loc`` (None: the median of ``logy``) and ``log_yield_sd`` (None: the sd of
    ``logy``, at least 0.05), as :data:`DEFAULT_PRIORS` documents.
    """
    loc, sd = priors.get("intercept_loc"), priors.get("log_yield_sd")
    return (
        float(np.median(logy)) if loc is None else float(loc),
        float(max(np.std(logy), 0.05)) if sd is None else float(sd),
    )


def _varying_terms(spec: dict[str, Any]) -> str:
    """Terms the primary group varies ("quadratic" for specs saved before the choice existed)."""
    return str(spec.get("varying_terms", "quadratic"))


def _failure_law(spec: dict[str, Any]) -> tuple[float, float]:
    """Log-shift and log-sd of a failed batch (defaults for specs saved before they existed)."""
    pr = spec["priors"]
    fraction = pr.get("failure_fraction", DEFAULT_PRIORS["failure_fraction"])
    sd = pr.get("failure_sd", DEFAULT_PRIORS["failure_sd"])
    return float(np.log(fraction)), float(sd)


def _signature(spec: dict[str, Any], structure: str) -> str:
    spec = structure_spec(spec, structure)
    return sampling.signature(
        {
            "structure": structure,
            "k": len(spec["factors"]),
            "likelihood": spec["likelihood"],
            "curvature": spec.get("curvature", "free"),
            "heteroscedastic": spec["heteroscedastic"],
            "sufficient": spec["sufficient"],
            "used": {g: len(spec["levels"][g]) for g in spec["used"]},
            "centred": spec["centred"],
            "primary": None if spec["primary"] is None else len(spec["levels"][spec["primary"]]),
            "varying_terms": _varying_terms(spec),
            "priors": {
                k: v
                for k, v in spec["priors"].items()
                if k not in ("intercept_loc", "log_yield_sd")
            },
        }
    )
