"""Influential factors and optimal ranges from fitted yield models, for any process space.

* :func:`permutation_importance`: increase of held-out RMSE when one column is shuffled, on
  the folds of :func:`bayesbio.evaluate.make_folds` (sklearn's ``permutation_importance``).
* :func:`lasso_coefficients`: LASSO coefficients per standardised term and back in domain
  units (the raw polynomial in the factors' units); :func:`parameter_effects`: the local
  slope per unit and the effect of a +1 SD change of each factor, for any model.
* :func:`partial_dependence`: partial dependence and ICE curves (``sklearn.inspection``).
* :func:`influence` and :func:`plot_influence`: all of the above side by side, one table and
  one figure.
* :func:`argmax_setpoint` and :func:`optimal_range`: the baseline recommender (the mean
  prediction's optimum within operating ranges; no risk, no uncertainty), defined in
  :mod:`bayesbio.recommend.argmax` on the machinery of :func:`bayesbio.recommend.recommend`
  and importable from here too.
* :func:`linear_vs_nonlinear`: the proposal's linear vs non-linear comparison, as a table and
  a generated paragraph.

Factors, units, operating ranges and the response (its name, unit and direction) come from
the model's process space ``model.space_`` (see :mod:`bayesbio.space`), or from the ``space``
argument where a function reads a batch table. All functions use only the model protocol
(``predict``, ``training_table_``, ``space_``) unless stated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import inspection
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from bayesbio import schema
from bayesbio.checks import make_rng
from bayesbio.evaluate import Comparison, compare, make_folds
from bayesbio.recommend.argmax import argmax_setpoint, optimal_range
from bayesbio.recommend.context import model_groups, model_space, resolve_group
from bayesbio.space import ProcessSpace, display_unit, resolve_space, unit_suffix

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel

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


def _fitted_table(model: YieldModel | Any) -> pd.DataFrame:
    check_is_fitted(model, "training_table_")
    return model.training_table_


def _model_groups(model: YieldModel | Any) -> list[str]:
    table = _fitted_table(model)
    return model_groups(model, table, model_space(model))


def _reference_group(model: YieldModel | Any, group: Mapping[str, Any] | None) -> dict[str, str]:
    """Group levels for predictions: ``group`` where given, else the most common level.

    Shared with :func:`bayesbio.recommend.recommend`: an unknown group column or a label not
    seen in training is a ValueError naming the known ones.
    """
    table = _fitted_table(model)
    full, _, _ = resolve_group(table, _model_groups(model), group, allow_new=False, fill="overall")
    return full


def _frame(values: np.ndarray, group: Mapping[str, str], columns: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(np.atleast_2d(values), columns=list(columns))
    for g, level in group.items():
        frame[g] = level
    return frame


def _unit(space: ProcessSpace, factor: str) -> str:
    """Return the factor's unit as a word ("pH unit"; "unit" when dimensionless)."""
    unit = space.units.get(factor, "")
    key = unit.strip().lower()
    if key in ("ph", "ph unit", "ph units"):
        return "pH unit"
    if key in ("", "-", "--", "1", "dimensionless"):
        return "unit"
    return unit


def _with_space(est: Any, space: ProcessSpace | None) -> Any:
    """Give a cloned estimator the caller's space when it takes one and has none."""
    if space is None or not hasattr(est, "get_params"):
        return est
    params = est.get_params(deep=False)
    if "space" in params and params["space"] is None:
        est.set_params(space=space)
    return est


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
    space: ProcessSpace | str | Path | None = None,
) -> pd.DataFrame:
    """Permutation importance on held-out folds: RMSE increase when a column is shuffled.

    Parameters
    ----------
    models : mapping of str to estimator
        ``{name: model}`` following the model protocol; cloned and refitted per fold (a model
        taking a ``space`` argument left at None is given ``space``).
    table : pandas.DataFrame
        The batch table with the response.
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
    space : ProcessSpace, path or None, optional
        The process space of ``table``; None: the default space.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``model, fold, feature, importance, sd`` with importance the mean increase of
        RMSE in the response's unit (features: the model's factors and group columns).
    """
    sp = resolve_space(space)
    data = schema.validate(table, space=sp).reset_index(drop=True)
    folds = make_folds(
        data, cv, n_splits=n_splits, group_column=group_column, random_seed=random_seed, space=sp
    )
    rng = make_rng(random_seed)
    rows = []
    for fold in folds:
        seed = int(rng.integers(2**31 - 1))
        train, test = data.iloc[fold.train], data.iloc[fold.test]
        for name, model in models.items():
            est = _with_space(clone(model), sp if space is not None else None)
            params = est.get_params(deep=False)
            for key in ("random_state", "random_seed"):
                if key in params and params[key] is None:
                    est.set_params(**{key: seed})
            est.fit(train)
            est_space = model_space(est)
            features = [*est_space.factor_names, *_model_groups(est)]
            result = inspection.permutation_importance(
                est,
                test[features],
                test[est_space.response.name],
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


def lasso_coefficients(model: YieldModel | Any) -> pd.DataFrame:
    """LASSO coefficients per standardised term and per domain unit.

    The fitted model is ``intercept + sum(beta_t * term_t(z))`` with ``z = (x - centre) /
    scale`` per factor. Expanding it in the raw factors gives the same surface as a
    polynomial in domain units; ``coef_domain`` holds those coefficients (response unit per
    factor unit for linear terms, per unit² for squares, per unit·unit for interactions, the
    response unit for groups).

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
    space = model_space(model)
    resp = space.response.unit or space.response.name
    scaler = model.features_.scaler_
    if scaler is None:
        raise ValueError("lasso_coefficients needs standardised features (standardize=True)")
    c, s = scaler.center_, scaler.scale_
    coef = model.coef_
    params = list(scaler.columns_)
    # term tokens may be factor names or their short names
    factor_of = {f.name: f.name for f in space.factors} | {f.short: f.name for f in space.factors}

    def unit(p: str) -> str:
        return _unit(space, factor_of.get(p, p))

    domain: dict[str, float] = {}
    units: dict[str, str] = {}
    intercept = model.intercept_
    linear = {p: float(coef.get(p, 0.0)) / s[p] for p in params}
    for p in params:
        b = float(coef.get(f"{p}^2", 0.0))
        if f"{p}^2" in coef.index:
            domain[f"{p}^2"] = b / s[p] ** 2
            units[f"{p}^2"] = f"{resp} per ({unit(p)})²"
            linear[p] -= 2 * b * c[p] / s[p] ** 2
            intercept += b * c[p] ** 2 / s[p] ** 2
        intercept -= float(coef.get(p, 0.0)) * c[p] / s[p]
    for p, q in combinations(params, 2):
        name = f"{p}*{q}"
        if name not in coef.index:
            continue
        b = float(coef[name])
        domain[name] = b / (s[p] * s[q])
        units[name] = f"{resp} per ({unit(p)}·{unit(q)})"
        linear[p] -= b * c[q] / (s[p] * s[q])
        linear[q] -= b * c[p] / (s[p] * s[q])
        intercept += b * c[p] * c[q] / (s[p] * s[q])
    for p in params:
        domain[p] = linear[p]
        units[p] = f"{resp} per {unit(p)}"
    rows = [
        {"term": "intercept", "coef_std": model.intercept_, "coef_domain": intercept, "unit": resp}
    ]
    for term in coef.index:
        rows.append(
            {
                "term": term,
                "coef_std": float(coef[term]),
                "coef_domain": domain.get(term, float(coef[term])),
                "unit": units.get(term, resp),
            }
        )
    out = pd.DataFrame(rows).set_index("term")
    out["selected"] = out["coef_std"] != 0.0
    out.loc["intercept", "selected"] = True
    return out


def parameter_effects(
    model: YieldModel | Any, *, group: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Local effect of each factor at the centre of the training data, in domain units.

    Parameters
    ----------
    model : estimator
        A fitted model following the protocol; its factors come from ``model.space_``.
    group : mapping of str to str, optional
        Group levels to predict for; default the most common training level of each.

    Returns
    -------
    pandas.DataFrame
        Indexed by factor (``parameter``): ``centre`` and ``sd`` (training mean and SD, domain
        units), ``slope_per_unit`` (central difference of the mean prediction over ±0.25 SD,
        response unit per factor unit; exact for the quadratic
        :class:`~bayesbio.models.LassoYield`, where it is the linear coefficient over the SD),
        ``effect_1sd`` (predicted change from the centre to centre + 1 SD) and ``unit``.
    """
    table = _fitted_table(model)
    space = model_space(model)
    levels = _reference_group(model, group)
    params = list(space.factor_names)
    resp = space.response.unit or space.response.name
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
                "unit": f"{resp} per {_unit(space, p)}",
            }
        )
    return pd.DataFrame(rows).set_index("parameter")


def partial_dependence(
    model: YieldModel | Any,
    table: pd.DataFrame | None = None,
    *,
    parameters: Sequence[str] | None = None,
    grid_resolution: int = 20,
    ice_rows: int = 50,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Partial dependence and ICE curves over the 5-95 % range of each factor.

    Parameters
    ----------
    model : estimator
        A fitted model following the protocol (a scikit-learn regressor); its factors come
        from ``model.space_``.
    table : pandas.DataFrame, optional
        Rows to average over; default the model's training table.
    parameters : sequence of str, optional
        Factors; default all of the model's space.
    grid_resolution : int, default 20
        Grid points per factor.
    ice_rows : int, default 50
        Rows (randomly chosen) drawn as ICE curves; the average uses all rows.
    random_seed : int, optional
        Seed for choosing ICE rows.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``parameter, value, kind ("average"|"individual"), line`` and the predicted
        response in a column named after it (``space.response.name``, e.g. ``yield``);
        ``line`` is the row position for ICE curves and -1 for the average.
    """
    space = model_space(model)
    factors = list(space.factor_names)
    response = space.response.name
    table = _fitted_table(model) if table is None else table
    parameters = list(parameters or factors)
    bad = [p for p in parameters if p not in factors]
    if bad:
        raise ValueError(f"parameters: unknown {bad}; choose from the factors {factors}")
    X = table[[*factors, *_model_groups(model)]].reset_index(drop=True)
    rng = make_rng(random_seed)
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
                    response: result["average"][0],
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
                        response: individual[r],
                    }
                )
            )
    out = pd.concat(parts, ignore_index=True)
    out.attrs["response"] = response
    return out


@dataclass
class Influence:
    """Result of :func:`influence`: the side-by-side table and its ingredients.

    Attributes
    ----------
    table : pandas.DataFrame
        Indexed by factor (``parameter``); columns ``(measure, model)``: ``permutation``
        (held-out RMSE increase, response unit), ``permutation_se``, ``pd_range`` (max - min
        of the partial dependence), ``effect_1sd`` and ``slope_per_unit`` (response unit per
        factor unit) and ``rank`` (by permutation importance, 1 = most influential).
    permutation : pandas.DataFrame
        Output of :func:`permutation_importance`.
    partial_dependence : pandas.DataFrame
        Output of :func:`partial_dependence`, with a ``model`` column.
    effects : pandas.DataFrame
        Output of :func:`parameter_effects`, with a ``model`` column.
    coefficients : dict of str to pandas.DataFrame
        :func:`lasso_coefficients` for each LASSO model.
    space : ProcessSpace or None
        The process space (labels and units for :func:`plot_influence`; None: default).
    """

    table: pd.DataFrame
    permutation: pd.DataFrame
    partial_dependence: pd.DataFrame
    effects: pd.DataFrame
    coefficients: dict[str, pd.DataFrame]
    space: ProcessSpace | None = None


def influence(
    models: Mapping[str, Any],
    table: pd.DataFrame,
    *,
    cv: str = "kfold",
    n_splits: int = 5,
    n_repeats: int = 5,
    grid_resolution: int = 20,
    random_seed: int | None = None,
    space: ProcessSpace | str | Path | None = None,
) -> Influence:
    """Which factors matter: permutation importance, effects and partial dependence.

    Parameters
    ----------
    models : mapping of str to estimator
        ``{name: model}``; refitted on held-out folds (importance) and on the whole table
        (effects, partial dependence, LASSO coefficients).
    table : pandas.DataFrame
        The batch table with the response.
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
    space : ProcessSpace, path or None, optional
        The process space of ``table``; None: the default space.

    Returns
    -------
    Influence
        The side-by-side table and the pieces.
    """
    sp = resolve_space(space)
    data = schema.validate(table, space=sp).reset_index(drop=True)
    perm = permutation_importance(
        models,
        data,
        cv=cv,
        n_splits=n_splits,
        n_repeats=n_repeats,
        random_seed=random_seed,
        space=space,
    )
    pds, effects, coefs, columns = [], [], {}, {}
    factors = list(sp.factor_names)
    for name, model in models.items():
        est = _with_space(clone(model), sp if space is not None else None)
        params = est.get_params(deep=False)
        for key in ("random_state", "random_seed"):
            if key in params and params[key] is None:
                est.set_params(**{key: random_seed})
        est.fit(data)
        est_space = model_space(est)
        factors = list(est_space.factor_names)
        response = est_space.response.name
        pdp = partial_dependence(
            est, data, grid_resolution=grid_resolution, ice_rows=30, random_seed=random_seed
        ).assign(model=name)
        pds.append(pdp)
        eff = parameter_effects(est).assign(model=name)
        effects.append(eff)
        if hasattr(est, "coef_") and getattr(est.features_, "scaler_", None) is not None:
            coefs[name] = lasso_coefficients(est)
        p = perm[(perm["model"] == name) & perm["feature"].isin(factors)]
        stats = p.groupby("feature")["importance"].agg(["mean", "std", "count"])
        avg = pdp[pdp["kind"] == "average"].groupby("parameter")[response]
        columns[("permutation", name)] = stats["mean"]
        columns[("permutation_se", name)] = stats["std"] / np.sqrt(stats["count"])
        columns[("pd_range", name)] = avg.max() - avg.min()
        columns[("effect_1sd", name)] = eff["effect_1sd"]
        columns[("slope_per_unit", name)] = eff["slope_per_unit"]
        columns[("rank", name)] = stats["mean"].rank(ascending=False, method="min")
    wide = pd.DataFrame(columns).reindex(factors)
    wide.columns = pd.MultiIndex.from_tuples(wide.columns, names=["measure", "model"])
    wide.index.name = "parameter"
    return Influence(
        table=wide,
        permutation=perm,
        partial_dependence=pd.concat(pds, ignore_index=True),
        effects=pd.concat(effects).reset_index(),
        coefficients=coefs,
        space=sp,
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
        factor; below: partial dependence (lines) with ICE curves (faint) per factor (up to
        four per row), one colour per model. Labels and units from ``result.space``.
    """
    space = result.space or ProcessSpace.default()
    factors = [str(p) for p in result.table.index]
    r = space.response
    resp = r.name if r.name in result.partial_dependence.columns else "yield"
    unit = f" [{display_unit(r.unit)}]" if display_unit(r.unit) else ""
    ncol = min(4, max(1, len(factors)))
    nrow = -(-len(factors) // ncol)
    fig = plt.figure(figsize=(max(12.0, 3.0 * ncol), 3.5 * (1 + nrow)), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, float(nrow)])
    ax_perm, ax_eff = top.subplots(1, 2)
    pd_axes = bottom.subplots(nrow, ncol, squeeze=False).ravel()
    for ax in pd_axes[len(factors) :]:
        ax.set_visible(False)
    models = list(dict.fromkeys(result.partial_dependence["model"]))
    x = np.arange(len(factors))
    width = 0.8 / max(len(models), 1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, name in enumerate(models):
        col = colors[i % len(colors)]
        t = result.table
        ax_perm.bar(
            x + i * width,
            t[("permutation", name)],
            width,
            yerr=t[("permutation_se", name)],
            label=name,
            color=col,
        )
        ax_eff.bar(x + i * width, t[("effect_1sd", name)], width, label=name, color=col)
        pdp = result.partial_dependence[result.partial_dependence["model"] == name]
        for ax, p in zip(pd_axes, factors, strict=False):
            sub = pdp[pdp["parameter"] == p]
            for _, line in sub[sub["kind"] == "individual"].groupby("line"):
                ax.plot(line["value"], line[resp], color=col, alpha=0.08, lw=0.8)
            avg = sub[sub["kind"] == "average"]
            ax.plot(avg["value"], avg[resp], color=col, lw=2, label=name)
            ax.set_xlabel(space.axis_label(p))
    for ax, label in (
        (ax_perm, f"Held-out RMSE increase{unit}"),
        (ax_eff, f"Effect of +1 SD{unit}"),
    ):
        ax.set_xticks(x + 0.4 - width / 2, [space.axis_label(p) for p in factors], fontsize=8)
        ax.set_ylabel(label)
        ax.axhline(0.0, color="grey", lw=0.8)
    ax_perm.legend()
    for row in range(nrow):
        pd_axes[row * ncol].set_ylabel(f"Predicted {r.axis_label}")
    return fig


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
    space: ProcessSpace | str | Path | None = None,
) -> LinearVsNonlinear:
    """Compare linear and non-linear yield models on identical folds and summarise in words.

    Parameters
    ----------
    table : pandas.DataFrame
        The batch table with the response.
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
    space : ProcessSpace, path or None, optional
        The process space of ``table`` (given to the default models and to
        :func:`bayesbio.evaluate.compare`); None: the default space.

    Returns
    -------
    LinearVsNonlinear
        ``table``, ``text`` and ``comparison``.
    """
    from bayesbio.models.baselines import ForestYield, LassoYield

    sp = resolve_space(space)
    unit = unit_suffix(sp.response.unit)
    if models is None:
        models = {
            "LASSO (linear)": LassoYield(quadratic=False, interactions=False),
            "LASSO (quadratic)": LassoYield(),
            "Random Forest": ForestYield(),
        }
        if space is not None:
            models = {name: _with_space(m, sp) for name, m in models.items()}
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
        space=space,
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
        f"'{linear}' has held-out RMSE {out.loc[linear, 'rmse']:.3g}{unit} "
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
            f"'{name}': RMSE {out.loc[name, 'rmse']:.3g}{unit}, {d:+.3g} ± {se:.2g}{unit} "
            f"(paired, ± SE) vs the linear model, i.e. {verdict} it."
        )
    lines.append(
        f"Lowest RMSE: '{best}'. Fold SEs ignore the correlation between CV folds, so treat "
        "small differences with caution."
    )
    return LinearVsNonlinear(out, " ".join(lines), comp)
