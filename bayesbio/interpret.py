"""Influential parameters and optimal ranges from fitted yield models.

* :func:`permutation_importance`: increase of held-out RMSE when one column is shuffled, on
  the folds of :func:`bayesbio.evaluate.make_folds` (sklearn's ``permutation_importance``).
* :func:`lasso_coefficients`: LASSO coefficients per standardised term and back in domain
  units (the raw polynomial in s, degC, pH, % air sat.); :func:`parameter_effects`: the local
  slope per unit and the effect of a +1 SD change of each parameter, for any model.
* :func:`partial_dependence`: partial dependence and ICE curves (``sklearn.inspection``).
* :func:`influence` and :func:`plot_influence`: all of the above side by side, one table and
  one figure.
* :func:`argmax_setpoint` and :func:`optimal_range`: the baseline recommender (maximise the
  mean prediction within operating ranges; no risk, no uncertainty; compare
  :mod:`bayesbio.recommend`).
* :func:`linear_vs_nonlinear`: the proposal's linear vs non-linear comparison, as a table and
  a generated paragraph.

All functions use only the model protocol (``predict``, ``training_table_``) unless stated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import optimize
from sklearn import inspection
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from bayesbio import schema
from bayesbio.evaluate import Comparison, compare, make_folds

__all__ = [
    "Influence",
    "LinearVsNonlinear",
    "argmax_setpoint",
    "influence",
    "lasso_coefficients",
    "linear_vs_nonlinear",
    "optimal_range",
    "parameter_effects",
    "partial_dependence",
    "permutation_importance",
    "plot_influence",
]


def _fitted_table(model: Any) -> pd.DataFrame:
    check_is_fitted(model, "training_table_")
    return model.training_table_


def _model_groups(model: Any) -> list[str]:
    groups = getattr(model, "groups_", None)
    if groups is None:
        groups = schema.group_columns(_fitted_table(model), model.get_params().get("groups"))
    return list(groups)


def _reference_group(model: Any, group: Mapping[str, Any] | None) -> dict[str, str]:
    """Group levels for predictions: ``group`` where given, else the most common level."""
    table = _fitted_table(model)
    groups = _model_groups(model)
    group = dict(group or {})
    unknown = [g for g in group if g not in groups]
    if unknown:
        raise ValueError(f"group: unknown group column(s) {unknown}; the model uses {groups}")
    return {g: str(group.get(g, table[g].value_counts().index[0])) for g in groups}


def _frame(values: np.ndarray, group: Mapping[str, str], columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(np.atleast_2d(values), columns=list(columns))
    for g, level in group.items():
        frame[g] = level
    return frame


# ---- importance and effects ------------------------------------------------------------------
def permutation_importance(
    models: Mapping[str, Any],
    table: pd.DataFrame,
    *,
    cv: str = "kfold",
    n_splits: int = 5,
    n_repeats: int = 5,
    group_column: str | None = None,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Permutation importance on held-out folds: RMSE increase when a column is shuffled.

    Parameters
    ----------
    models : mapping of str to estimator
        ``{name: model}`` following the model protocol; cloned and refitted per fold.
    table : pandas.DataFrame
        The batch table with ``yield``.
    cv : str, default "kfold"
        Fold scheme (see :func:`bayesbio.evaluate.make_folds`; one scheme).
    n_splits : int, default 5
        K of K-fold.
    n_repeats : int, default 5
        Shuffles per column and fold.
    group_column : str, optional
        For ``cv="group"``.
    random_seed : int, optional
        Seed for folds, models and shuffles.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``model, fold, feature, importance, sd`` with importance the mean increase of
        RMSE in g/L (features: the 4 parameters and the model's group columns).
    """
    data = schema.validate(table).reset_index(drop=True)
    folds = make_folds(
        data, cv, n_splits=n_splits, group_column=group_column, random_seed=random_seed
    )
    rng = np.random.default_rng(random_seed)
    rows = []
    for fold in folds:
        seed = int(rng.integers(2**31 - 1))
        train, test = data.iloc[fold.train], data.iloc[fold.test]
        for name, model in models.items():
            est = clone(model)
            params = est.get_params(deep=False)
            for key in ("random_state", "random_seed"):
                if key in params and params[key] is None:
                    est.set_params(**{key: seed})
            est.fit(train)
            features = [*schema.PARAMETERS, *_model_groups(est)]
            result = inspection.permutation_importance(
                est,
                test[features],
                test[schema.RESPONSE],
                scoring="neg_root_mean_squared_error",
                n_repeats=n_repeats,
                random_state=seed,
            )
            for i, feature in enumerate(features):
                rows.append(
                    {
                        "model": name,
                        "fold": fold.fold,
                        "feature": feature,
                        "importance": float(result.importances_mean[i]),
                        "sd": float(result.importances_std[i]),
                    }
                )
    return pd.DataFrame(rows)


def _unit(parameter: str) -> str:
    unit = schema.UNITS.get(parameter, "")
    if unit:
        return unit
    return "pH unit" if parameter == "ph" else "unit"


def lasso_coefficients(model: Any) -> pd.DataFrame:
    """LASSO coefficients per standardised term and per domain unit.

    The fitted model is ``intercept + sum(beta_t * term_t(z))`` with ``z = (x - centre) /
    scale`` per parameter. Expanding it in the raw parameters gives the same surface as a
    polynomial in domain units; ``coef_domain`` holds those coefficients (g/L per unit for
    linear terms, per unit² for squares, per unit·unit for interactions, g/L for groups).

    Parameters
    ----------
    model : LassoYield
        A fitted :class:`bayesbio.models.LassoYield` (``standardize`` on, the default).

    Returns
    -------
    pandas.DataFrame
        Indexed by term (``intercept`` first): ``coef_std`` (per SD), ``coef_domain``,
        ``unit``, ``selected`` (non-zero).
    """
    check_is_fitted(model, "coef_")
    scaler = model.features_.scaler_
    if scaler is None:
        raise ValueError("lasso_coefficients needs standardised features (standardize=True)")
    c, s = scaler.center_, scaler.scale_
    coef = model.coef_
    params = list(scaler.columns_)
    domain: dict[str, float] = {}
    units: dict[str, str] = {}
    intercept = model.intercept_
    linear = {p: float(coef.get(p, 0.0)) / s[p] for p in params}
    for p in params:
        b = float(coef.get(f"{p}^2", 0.0))
        if f"{p}^2" in coef.index:
            domain[f"{p}^2"] = b / s[p] ** 2
            units[f"{p}^2"] = f"g/L per ({_unit(p)})²"
            linear[p] -= 2 * b * c[p] / s[p] ** 2
            intercept += b * c[p] ** 2 / s[p] ** 2
        intercept -= float(coef.get(p, 0.0)) * c[p] / s[p]
    for p, q in combinations(params, 2):
        name = f"{p}*{q}"
        if name not in coef.index:
            continue
        b = float(coef[name])
        domain[name] = b / (s[p] * s[q])
        units[name] = f"g/L per ({_unit(p)}·{_unit(q)})"
        linear[p] -= b * c[q] / (s[p] * s[q])
        linear[q] -= b * c[p] / (s[p] * s[q])
        intercept += b * c[p] * c[q] / (s[p] * s[q])
    for p in params:
        domain[p] = linear[p]
        units[p] = f"g/L per {_unit(p)}"
    rows = [
        {"term": "intercept", "coef_std": model.intercept_, "coef_domain": intercept, "unit": "g/L"}
    ]
    for term in coef.index:
        rows.append(
            {
                "term": term,
                "coef_std": float(coef[term]),
                "coef_domain": domain.get(term, float(coef[term])),
                "unit": units.get(term, "g/L"),
            }
        )
    out = pd.DataFrame(rows).set_index("term")
    out["selected"] = out["coef_std"] != 0.0
    out.loc["intercept", "selected"] = True
    return out


def parameter_effects(model: Any, *, group: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Local effect of each parameter at the centre of the training data, in domain units.

    Parameters
    ----------
    model : estimator
        A fitted model following the protocol.
    group : mapping of str to str, optional
        Group levels to predict for; default the most common training level of each.

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter: ``centre`` and ``sd`` (training mean and SD, domain units),
        ``slope_per_unit`` (central difference of the mean prediction over ±0.25 SD, g/L per
        unit; exact for the quadratic :class:`~bayesbio.models.LassoYield`, where it is the
        linear coefficient over the SD),
        ``effect_1sd`` (predicted change from the centre to centre + 1 SD, g/L) and ``unit``.
    """
    table = _fitted_table(model)
    levels = _reference_group(model, group)
    params = list(schema.PARAMETERS)
    centre = table[params].mean()
    sd = table[params].std(ddof=1)
    rows = []
    base = centre.to_numpy()
    for i, p in enumerate(params):
        h = 0.25 * sd[p]  # exact for quadratic surfaces; non-zero for step-wise forests
        points = np.tile(base, (3, 1))
        points[0, i] -= h
        points[1, i] += h
        points[2, i] += sd[p]
        pred = np.asarray(model.predict(_frame(points, levels, params)), dtype=float)
        mid = float(np.asarray(model.predict(_frame(base, levels, params)))[0])
        rows.append(
            {
                "parameter": p,
                "centre": centre[p],
                "sd": sd[p],
                "slope_per_unit": (pred[1] - pred[0]) / (2 * h),
                "effect_1sd": pred[2] - mid,
                "unit": f"g/L per {_unit(p)}",
            }
        )
    return pd.DataFrame(rows).set_index("parameter")


def partial_dependence(
    model: Any,
    table: pd.DataFrame | None = None,
    *,
    parameters: Sequence[str] | None = None,
    grid_resolution: int = 20,
    ice_rows: int = 50,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Partial dependence and ICE curves over the 5-95 % range of each parameter.

    Parameters
    ----------
    model : estimator
        A fitted model following the protocol.
    table : pandas.DataFrame, optional
        Rows to average over; default the model's training table.
    parameters : sequence of str, optional
        Parameters; default all four.
    grid_resolution : int, default 20
        Grid points per parameter.
    ice_rows : int, default 50
        Rows (randomly chosen) drawn as ICE curves; the average uses all rows.
    random_seed : int, optional
        Seed for choosing ICE rows.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``parameter, value, kind ("average"|"individual"), line, yield`` (g/L); ``line``
        is the row position for ICE curves and -1 for the average.
    """
    table = _fitted_table(model) if table is None else table
    parameters = list(parameters or schema.PARAMETERS)
    bad = [p for p in parameters if p not in schema.PARAMETERS]
    if bad:
        raise ValueError(f"parameters: unknown {bad}; choose from {list(schema.PARAMETERS)}")
    X = table[[*schema.PARAMETERS, *_model_groups(model)]].reset_index(drop=True)
    rng = np.random.default_rng(random_seed)
    ice = np.sort(rng.choice(len(X), size=min(ice_rows, len(X)), replace=False))
    parts = []
    for p in parameters:
        result = inspection.partial_dependence(
            model, X, [p], kind="both", grid_resolution=grid_resolution, method="brute"
        )
        grid = result["grid_values"][0]
        parts.append(
            pd.DataFrame(
                {
                    "parameter": p,
                    "value": grid,
                    "kind": "average",
                    "line": -1,
                    "yield": result["average"][0],
                }
            )
        )
        individual = result["individual"][0]
        for r in ice:
            parts.append(
                pd.DataFrame(
                    {
                        "parameter": p,
                        "value": grid,
                        "kind": "individual",
                        "line": int(r),
                        "yield": individual[r],
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


@dataclass
class Influence:
    """Result of :func:`influence`: the side-by-side table and its ingredients.

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed by parameter; columns ``(measure, model)``: ``permutation`` (held-out RMSE
        increase, g/L), ``permutation_se``, ``pd_range`` (max - min of the partial dependence,
        g/L), ``effect_1sd`` (g/L), ``slope_per_unit`` (g/L per unit) and ``rank`` (by
        permutation importance, 1 = most influential).
    permutation : pandas.DataFrame
        Output of :func:`permutation_importance`.
    partial_dependence : pandas.DataFrame
        Output of :func:`partial_dependence`, with a ``model`` column.
    effects : pandas.DataFrame
        Output of :func:`parameter_effects`, with a ``model`` column.
    coefficients : dict of str to pandas.DataFrame
        :func:`lasso_coefficients` for each LASSO model.
    """

    table: pd.DataFrame
    permutation: pd.DataFrame
    partial_dependence: pd.DataFrame
    effects: pd.DataFrame
    coefficients: dict[str, pd.DataFrame]


def influence(
    models: Mapping[str, Any],
    table: pd.DataFrame,
    *,
    cv: str = "kfold",
    n_splits: int = 5,
    n_repeats: int = 5,
    grid_resolution: int = 20,
    random_seed: int | None = None,
) -> Influence:
    """Which parameters matter: permutation importance, effects and partial dependence.

    Parameters
    ----------
    models : mapping of str to estimator
        ``{name: model}``; refitted on held-out folds (importance) and on the whole table
        (effects, partial dependence, LASSO coefficients).
    table : pandas.DataFrame
        The batch table with ``yield``.
    cv : str, default "kfold"
        Fold scheme for permutation importance.
    n_splits : int, default 5
        K of K-fold.
    n_repeats : int, default 5
        Shuffles per column and fold.
    grid_resolution : int, default 20
        Partial-dependence grid points.
    random_seed : int, optional
        Seed.

    Returns
    -------
    Influence
        The side-by-side table and the pieces.
    """
    data = schema.validate(table).reset_index(drop=True)
    perm = permutation_importance(
        models, data, cv=cv, n_splits=n_splits, n_repeats=n_repeats, random_seed=random_seed
    )
    pds, effects, coefs, columns = [], [], {}, {}
    for name, model in models.items():
        est = clone(model)
        params = est.get_params(deep=False)
        for key in ("random_state", "random_seed"):
            if key in params and params[key] is None:
                est.set_params(**{key: random_seed})
        est.fit(data)
        pdp = partial_dependence(
            est, data, grid_resolution=grid_resolution, ice_rows=30, random_seed=random_seed
        ).assign(model=name)
        pds.append(pdp)
        eff = parameter_effects(est).assign(model=name)
        effects.append(eff)
        if hasattr(est, "coef_") and getattr(est.features_, "scaler_", None) is not None:
            coefs[name] = lasso_coefficients(est)
        p = perm[(perm["model"] == name) & perm["feature"].isin(schema.PARAMETERS)]
        stats = p.groupby("feature")["importance"].agg(["mean", "std", "count"])
        avg = pdp[pdp["kind"] == "average"].groupby("parameter")["yield"]
        columns[("permutation", name)] = stats["mean"]
        columns[("permutation_se", name)] = stats["std"] / np.sqrt(stats["count"])
        columns[("pd_range", name)] = avg.max() - avg.min()
        columns[("effect_1sd", name)] = eff["effect_1sd"]
        columns[("slope_per_unit", name)] = eff["slope_per_unit"]
        columns[("rank", name)] = stats["mean"].rank(ascending=False, method="min")
    wide = pd.DataFrame(columns).reindex(list(schema.PARAMETERS))
    wide.columns = pd.MultiIndex.from_tuples(wide.columns, names=["measure", "model"])
    wide.index.name = "parameter"
    return Influence(
        table=wide,
        permutation=perm,
        partial_dependence=pd.concat(pds, ignore_index=True),
        effects=pd.concat(effects).reset_index(),
        coefficients=coefs,
    )


def plot_influence(result: Influence) -> Figure:
    """One figure: permutation importance and +1 SD effects per model, then PD/ICE curves.

    Parameters
    ----------
    result : Influence
        Output of :func:`influence`.

    Returns
    -------
    matplotlib.figure.Figure
        Top row: held-out permutation importance (± SE) and effect of +1 SD, grouped by
        parameter; bottom row: partial dependence (lines) with ICE curves (faint) per
        parameter, one colour per model.
    """
    fig = plt.figure(figsize=(12, 7), layout="constrained")
    axd = fig.subplot_mosaic([["perm", "perm", "eff", "eff"], list(schema.PARAMETERS)])
    models = list(dict.fromkeys(result.partial_dependence["model"]))
    x = np.arange(len(schema.PARAMETERS))
    width = 0.8 / max(len(models), 1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(models):
        col = colors[i % len(colors)]
        t = result.table
        axd["perm"].bar(
            x + i * width,
            t[("permutation", name)],
            width,
            yerr=t[("permutation_se", name)],
            label=name,
            color=col,
        )
        axd["eff"].bar(x + i * width, t[("effect_1sd", name)], width, label=name, color=col)
        pdp = result.partial_dependence[result.partial_dependence["model"] == name]
        for p in schema.PARAMETERS:
            ax = axd[p]
            sub = pdp[pdp["parameter"] == p]
            for _, line in sub[sub["kind"] == "individual"].groupby("line"):
                ax.plot(line["value"], line["yield"], color=col, alpha=0.08, lw=0.8)
            avg = sub[sub["kind"] == "average"]
            ax.plot(avg["value"], avg["yield"], color=col, lw=2, label=name)
            ax.set_xlabel(schema.axis_label(p))
    for key, label in (("perm", "Held-out RMSE increase [g/L]"), ("eff", "Effect of +1 SD [g/L]")):
        axd[key].set_xticks(
            x + 0.4 - width / 2, [schema.axis_label(p) for p in schema.PARAMETERS], fontsize=8
        )
        axd[key].set_ylabel(label)
        axd[key].axhline(0.0, color="grey", lw=0.8)
    axd["perm"].legend()
    axd[schema.PARAMETERS[0]].set_ylabel("Predicted yield [g/L]")
    return fig


# ---- baseline recommender --------------------------------------------------------------------
def _check_space(
    bounds: Mapping[str, tuple[float, float]], fixed: Mapping[str, float] | None
) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    unknown = [k for k in bounds if k not in (*schema.PARAMETERS, schema.RESPONSE)]
    if unknown:
        raise ValueError(f"bounds: unknown parameter(s) {unknown}; use {list(schema.PARAMETERS)}")
    full = {p: tuple(map(float, bounds.get(p, schema.BOUNDS[p]))) for p in schema.PARAMETERS}
    for p, (lo, hi) in full.items():
        if not lo < hi:
            raise ValueError(f"bounds['{p}'] = {(lo, hi)}: low must be below high")
    fixed = dict(fixed or {})
    unknown = [k for k in fixed if k not in schema.PARAMETERS]
    if unknown:
        raise ValueError(f"fixed: unknown parameter(s) {unknown}; use {list(schema.PARAMETERS)}")
    return full, {k: float(v) for k, v in fixed.items()}


def _space(
    model: Any,
    group: Mapping[str, Any] | None,
    bounds: Mapping[str, tuple[float, float]],
    fixed: Mapping[str, float] | None,
) -> tuple[dict[str, str], list[str], np.ndarray, np.ndarray, dict[str, float]]:
    levels = _reference_group(model, group)
    full, fixed = _check_space(bounds, fixed)
    free = [p for p in schema.PARAMETERS if p not in fixed]
    lo = np.array([full[p][0] for p in free])
    hi = np.array([full[p][1] for p in free])
    return levels, free, lo, hi, fixed


def _predictor(
    model: Any, levels: Mapping[str, str], free: Sequence[str], fixed: Mapping[str, float]
):
    def predict(points: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(points)
        frame = pd.DataFrame(points, columns=list(free))
        for p, v in fixed.items():
            frame[p] = v
        frame = frame[list(schema.PARAMETERS)]
        for g, level in levels.items():
            frame[g] = level
        return np.asarray(model.predict(frame), dtype=float)

    return predict


def _candidates(
    lo: np.ndarray, hi: np.ndarray, grid: int, n_random: int, rng: np.random.Generator
) -> np.ndarray:
    axes = [np.linspace(a, b, grid) for a, b in zip(lo, hi, strict=True)]
    points = np.array(list(product(*axes))) if len(axes) else np.empty((1, 0))
    if n_random and len(lo):
        points = np.vstack([points, rng.uniform(lo, hi, size=(n_random, len(lo)))])
    return points


def argmax_setpoint(
    model: Any,
    *,
    group: Mapping[str, Any] | None = None,
    bounds: Mapping[str, tuple[float, float]] = schema.BOUNDS,
    fixed: Mapping[str, float] | None = None,
    grid: int = 7,
    n_random: int = 500,
    popsize: int = 20,
    maxiter: int = 30,
    random_seed: int | None = None,
) -> pd.Series:
    """Setpoint that maximises the model's mean predicted yield within operating ranges.

    A grid (``grid`` points per free parameter) plus ``n_random`` uniform points is
    evaluated in one call; the ``popsize`` best seed a bounded differential evolution
    (:func:`scipy.optimize.differential_evolution`, vectorised: one model call per
    generation), which refines locally without gradients, so it also works for the
    piecewise-constant forest.

    Parameters
    ----------
    model : estimator
        A fitted model following the protocol.
    group : mapping of str to str, optional
        Group levels (e.g. ``{"scale": "2000L", "site": "B"}``); group columns not given take
        the most common training level.
    bounds : mapping of str to (float, float), default schema.BOUNDS
        Search range per parameter (missing ones: ``schema.BOUNDS``).
    fixed : mapping of str to float, optional
        Parameters held at a value.
    grid : int, default 7
        Grid points per free parameter.
    n_random : int, default 500
        Extra uniform random candidates.
    popsize : int, default 20
        Best candidates that form the refinement population.
    maxiter : int, default 30
        Generations of the refinement (0: grid search only).
    random_seed : int, optional
        Seed for the random candidates and the refinement.

    Returns
    -------
    pandas.Series
        The 4 parameters (domain units) and ``yield`` (predicted mean, g/L); ``attrs["group"]``
        holds the group levels used.
    """
    levels, free, lo, hi, fixed = _space(model, group, bounds, fixed)
    predict = _predictor(model, levels, free, fixed)
    rng = np.random.default_rng(random_seed)
    points = _candidates(lo, hi, grid, n_random, rng)
    values = predict(points)
    order = np.argsort(-values)
    best_x, best_y = points[order[0]], float(values[order[0]])
    if free and maxiter > 0:
        span = hi - lo
        # differential evolution seeded with the best candidates: evaluates a whole
        # population per model call (vectorised), so it stays cheap for any model.
        init = (points[order[: max(popsize, 5)]] - lo) / span
        if len(init) < 5:
            init = np.vstack([init, rng.uniform(0.0, 1.0, size=(5 - len(init), len(free)))])
        res = optimize.differential_evolution(
            lambda u: -predict((lo[:, None] + u * span[:, None]).T),
            [(0.0, 1.0)] * len(free),
            init=init,
            maxiter=maxiter,
            tol=0.0,
            atol=0.0,
            polish=False,
            updating="deferred",
            vectorized=True,
            rng=rng,
        )
        x = lo + np.clip(res.x, 0.0, 1.0) * span
        y = float(predict(x)[0])
        if y > best_y:
            best_x, best_y = x, y
    values_by_name = dict(zip(free, best_x, strict=True)) | fixed
    out = pd.Series({p: float(values_by_name[p]) for p in schema.PARAMETERS}, name="setpoint")
    out[schema.RESPONSE] = best_y
    out.attrs["group"] = levels
    return out


def optimal_range(
    model: Any,
    *,
    group: Mapping[str, Any] | None = None,
    bounds: Mapping[str, tuple[float, float]] = schema.BOUNDS,
    fixed: Mapping[str, float] | None = None,
    tolerance: float = 0.05,
    resolution: int = 41,
    n_random: int = 4000,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Ranges of each parameter where predicted yield is within ``tolerance`` of the maximum.

    Parameters
    ----------
    model : estimator
        A fitted model following the protocol.
    group : mapping of str to str, optional
        Group levels (see :func:`argmax_setpoint`).
    bounds : mapping of str to (float, float), default schema.BOUNDS
        Search range per parameter.
    fixed : mapping of str to float, optional
        Parameters held at a value.
    tolerance : float, default 0.05
        Relative shortfall allowed: yield >= (1 - tolerance) x maximum predicted yield.
    resolution : int, default 41
        Points of each one-parameter profile.
    n_random : int, default 4000
        Uniform points used for the joint region.
    random_seed : int, optional
        Seed (argmax search and joint-region points).

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter: ``optimum``; ``low``/``high``, the contiguous range along the
        profile through the optimum (other parameters at their optimum); ``joint_low``/
        ``joint_high``, the extent of all sampled setpoints within tolerance (other
        parameters free); ``unit``. ``attrs`` hold ``max_yield``, ``threshold``, ``group``.
    """
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1); got {tolerance!r}")
    levels, _, _, _, fixed_vals = _space(model, group, bounds, fixed)
    best = argmax_setpoint(model, group=levels, bounds=bounds, fixed=fixed, random_seed=random_seed)
    predict = _predictor(model, levels, list(schema.PARAMETERS), {})
    ymax = float(best[schema.RESPONSE])
    threshold = ymax - tolerance * abs(ymax)
    full, _ = _check_space(bounds, fixed)
    opt = best[list(schema.PARAMETERS)].to_numpy(dtype=float)
    rng = np.random.default_rng(random_seed)
    joint = np.tile(opt, (n_random, 1))
    for j, p in enumerate(schema.PARAMETERS):
        if p not in fixed_vals:
            joint[:, j] = rng.uniform(*full[p], size=n_random)
    inside = joint[predict(joint) >= threshold]
    rows = []
    for j, p in enumerate(schema.PARAMETERS):
        if p in fixed_vals:
            low = high = fixed_vals[p]
        else:
            grid = np.unique(np.append(np.linspace(*full[p], resolution), opt[j]))
            points = np.tile(opt, (grid.size, 1))
            points[:, j] = grid
            ok = predict(points) >= threshold - 1e-12
            k = int(np.argmin(np.abs(grid - opt[j])))
            a = b = k
            while a > 0 and ok[a - 1]:
                a -= 1
            while b < grid.size - 1 and ok[b + 1]:
                b += 1
            low, high = float(grid[a]), float(grid[b])
        jl = float(inside[:, j].min()) if len(inside) else low
        jh = float(inside[:, j].max()) if len(inside) else high
        rows.append(
            {
                "parameter": p,
                "optimum": opt[j],
                "low": low,
                "high": high,
                "joint_low": min(jl, low),
                "joint_high": max(jh, high),
                "unit": schema.UNITS[p],
            }
        )
    out = pd.DataFrame(rows).set_index("parameter")
    out.attrs.update(max_yield=ymax, threshold=threshold, group=levels)
    return out


# ---- linear vs non-linear --------------------------------------------------------------------
class LinearVsNonlinear(NamedTuple):
    """Result of :func:`linear_vs_nonlinear`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model: fold-mean ``rmse, mae, r2, coverage_90, crps``, the RMSE standard
        error and the paired RMSE difference to the linear model (mean and SE over folds).
    text : str
        A short generated summary.
    comparison : bayesbio.evaluate.Comparison
        The underlying comparison.
    """

    table: pd.DataFrame
    text: str
    comparison: Comparison


def linear_vs_nonlinear(
    table: pd.DataFrame,
    *,
    models: Mapping[str, Any] | None = None,
    linear: str | None = None,
    cv: str = "kfold",
    n_splits: int = 5,
    n_repeats: int = 2,
    random_seed: int | None = None,
    n_jobs: int | None = None,
) -> LinearVsNonlinear:
    """Compare linear and non-linear yield models on identical folds and summarise in words.

    Parameters
    ----------
    table : pandas.DataFrame
        The batch table with ``yield``.
    models : mapping of str to estimator, optional
        Default: ``"LASSO (linear)"`` (no squares or interactions), ``"LASSO (quadratic)"``
        and ``"Random Forest"``.
    linear : str, optional
        Name of the reference (linear) model; default the first model.
    cv : str, default "kfold"
        Scheme (see :func:`bayesbio.evaluate.make_folds`).
    n_splits : int, default 5
        K of K-fold.
    n_repeats : int, default 2
        Repeats of K-fold.
    random_seed : int, optional
        Seed.
    n_jobs : int, optional
        Parallel jobs over folds.

    Returns
    -------
    LinearVsNonlinear
        ``table``, ``text`` and ``comparison``.
    """
    from bayesbio.models.baselines import ForestYield, LassoYield

    if models is None:
        models = {
            "LASSO (linear)": LassoYield(quadratic=False, interactions=False),
            "LASSO (quadratic)": LassoYield(),
            "Random Forest": ForestYield(),
        }
    linear = linear or next(iter(models))
    if linear not in models:
        raise ValueError(f"linear: {linear!r} is not one of the models {list(models)}")
    comp = compare(
        models,
        table,
        cv=cv,
        n_splits=n_splits,
        n_repeats=n_repeats,
        random_seed=random_seed,
        n_jobs=n_jobs,
    )
    s = comp.scores
    wide = s.pivot_table(index=["model", "fold"], columns="metric", values="value")
    rmse = wide["rmse"].unstack("model")
    metrics = [m for m in ("rmse", "mae", "r2", "coverage_90", "crps") if m in wide.columns]
    out = wide[metrics].groupby(level="model", sort=False).mean().reindex(list(models))
    n = len(rmse)
    out["rmse_se"] = (rmse.std(ddof=1) / np.sqrt(n)).reindex(out.index)
    diff = rmse.sub(rmse[linear], axis=0)
    out["rmse_diff_vs_linear"] = diff.mean().reindex(out.index)
    out["rmse_diff_se"] = (diff.std(ddof=1) / np.sqrt(n)).reindex(out.index)
    best = str(out["rmse"].idxmin())
    lines = [
        f"On {n} {cv} folds of {len(table)} batches, the reference linear model "
        f"'{linear}' has held-out RMSE {out.loc[linear, 'rmse']:.3g} g/L "
        f"(R² {out.loc[linear, 'r2']:.2f})."
    ]
    for name in out.index:
        if name == linear:
            continue
        d, se = out.loc[name, "rmse_diff_vs_linear"], out.loc[name, "rmse_diff_se"]
        if d + 2 * se < 0:
            verdict = "clearly better than"
        elif d - 2 * se > 0:
            verdict = "clearly worse than"
        else:
            verdict = "not distinguishable from"
        lines.append(
            f"'{name}': RMSE {out.loc[name, 'rmse']:.3g} g/L, {d:+.3g} ± {se:.2g} g/L "
            f"(paired, ± SE) vs the linear model, i.e. {verdict} it."
        )
    lines.append(
        f"Lowest RMSE: '{best}'. Fold SEs ignore the correlation between CV folds, so treat "
        "small differences with caution."
    )
    return LinearVsNonlinear(out, " ".join(lines), comp)
