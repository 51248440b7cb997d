"""Posterior plots of a fitted :class:`~bayesbio.models.bayesian.BayesianYieldModel`.

The MCMC diagnostics (trace, rank), the forest of group effects, the posterior predictive
check and the pair plot use ArviZ 1.x (``arviz_plots``). Those functions return a
``PlotCollection`` (or ``PlotMatrix``); here each returns its matplotlib ``Figure``
(``pc.viz["figure"]``), so callers save or show it like any other figure. The marginal
effect curves are drawn with matplotlib directly and return a ``Figure`` too; their axis
labels and units come from the model's process space (``model.space_``).
None of these functions calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.utils.validation import check_is_fitted

from bayesbio.space import ProcessSpace

__all__ = [
    "plot_group_effects",
    "plot_marginal_effects",
    "plot_pair",
    "plot_ppc",
    "plot_rank",
    "plot_trace",
]


def _structure(model: Any, structure: str | None) -> str:
    check_is_fitted(model, "idata_")
    if structure is None:
        return str(model.stacking_weights_.idxmax())
    if structure not in model.idata_:
        raise ValueError(f"structure must be one of {list(model.idata_)}, got {structure!r}")
    return structure


def _figure(pc: Any) -> Figure:
    viz = pc.viz
    fig = viz["figure"]
    return fig.item() if hasattr(fig, "item") else fig


def _space(model: Any) -> ProcessSpace:
    space = getattr(model, "space_", None)
    return space if isinstance(space, ProcessSpace) else ProcessSpace.default()


def _key_vars(model: Any, *, vectors: bool = True) -> list[str]:
    spec = model.spec_
    names = ["intercept", "sigma"] + [f"sigma_{g}" for g in spec["used"]]
    if spec["primary"] and vectors:
        names.append("sigma_b")
    if spec["likelihood"] == "student_t":
        names.append("nu")
    return names


def plot_trace(
    model: Any, *, structure: str | None = None, var_names: Sequence[str] | None = None
) -> Figure:
    """Trace and marginal density of key parameters (``arviz_plots.plot_trace_dist``).

    Parameters
    ----------
    model : BayesianYieldModel
        Fitted model.
    structure : str, optional
        Which structure's posterior; default the one with the largest stacking weight.
    var_names : sequence of str, optional
        Variables; default intercept, noise and group standard deviations.

    Returns
    -------
    matplotlib.figure.Figure
        The figure of the PlotCollection.
    """
    import arviz_plots as azp

    s = _structure(model, structure)
    pc = azp.plot_trace_dist(
        model.idata_[s], var_names=list(var_names or _key_vars(model)), backend="matplotlib"
    )
    return _figure(pc)


def plot_rank(
    model: Any, *, structure: str | None = None, var_names: Sequence[str] | None = None
) -> Figure:
    """Rank (fractional ECDF) plots per chain: flat within the band means chains agree.

    Parameters
    ----------
    model : BayesianYieldModel
        Fitted model.
    structure : str, optional
        Which structure; default the largest stacking weight.
    var_names : sequence of str, optional
        Variables; default intercept, noise and group standard deviations.

    Returns
    -------
    matplotlib.figure.Figure
        The figure of the PlotCollection.
    """
    import arviz_plots as azp

    s = _structure(model, structure)
    pc = azp.plot_rank(
        model.idata_[s], var_names=list(var_names or _key_vars(model)), backend="matplotlib"
    )
    return _figure(pc)


def plot_group_effects(model: Any, *, structure: str | None = None, ci_prob: float = 0.9) -> Figure:
    """Forest plot of the group effects on log-yield (one row per level of each group).

    An effect of 0.05 is a ~5 % higher yield than the mean over levels. Primary-group
    slope/curvature deviations (``b_<group>``) are included when fitted.

    Parameters
    ----------
    model : BayesianYieldModel
        Fitted model.
    structure : str, optional
        Which structure; default the largest stacking weight.
    ci_prob : float, default 0.9
        Probability of the thick interval.

    Returns
    -------
    matplotlib.figure.Figure
        The figure of the PlotCollection.
    """
    import arviz_plots as azp

    s = _structure(model, structure)
    spec = model.spec_
    names = [f"a_{g}" for g in spec["used"]]
    if spec["primary"]:
        names.append(f"b_{spec['primary']}")
    if not names:
        raise ValueError("the model has no group column with >= 2 levels: no group effects")
    pc = azp.plot_forest(
        model.idata_[s],
        var_names=names,
        combined=True,
        ci_probs=(0.5, ci_prob),
        backend="matplotlib",
    )
    return _figure(pc)


def plot_ppc(model: Any, *, n_draws: int = 100, random_seed: int | None = 0) -> Figure:
    """Posterior predictive check: densities of replicated training yields vs the observed.

    Replicates come from :meth:`predict_draws` (``kind="existing"``, with noise) at the
    training setpoints, i.e. the stacked mixture of structures.

    Parameters
    ----------
    model : BayesianYieldModel
        Fitted model.
    n_draws : int, default 100
        Replicated data sets drawn.
    random_seed : int, optional, default 0
        Seed of the replicates.

    Returns
    -------
    matplotlib.figure.Figure
        The figure of the PlotCollection.
    """
    import arviz_plots as azp

    check_is_fitted(model, "idata_")
    table = model.training_table_
    draws = model.predict_draws(table, n_draws=n_draws, random_seed=random_seed)
    name = _space(model).response.name
    tree = xr.DataTree()
    tree["posterior_predictive"] = xr.DataTree(
        xr.Dataset({name: (("chain", "draw", "batch"), draws[None])})
    )
    tree["observed_data"] = xr.DataTree(xr.Dataset({name: ("batch", table[name].to_numpy())}))
    pc = azp.plot_ppc_dist(tree, num_samples=min(n_draws, 50), backend="matplotlib")
    return _figure(pc)


def plot_pair(
    model: Any, *, structure: str | None = None, var_names: Sequence[str] | None = None
) -> Figure:
    """Pair plot of key parameters (look for funnels and strong correlations).

    Parameters
    ----------
    model : BayesianYieldModel
        Fitted model.
    structure : str, optional
        Which structure; default the largest stacking weight.
    var_names : sequence of str, optional
        Scalar variables; default intercept, noise and group standard deviations.

    Returns
    -------
    matplotlib.figure.Figure
        The figure of the PlotMatrix.
    """
    import arviz_plots as azp

    s = _structure(model, structure)
    pc = azp.plot_pair(
        model.idata_[s],
        var_names=list(var_names or _key_vars(model, vectors=False)),
        backend="matplotlib",
    )
    return _figure(pc)


def plot_marginal_effects(
    model: Any,
    *,
    parameters: Sequence[str] | None = None,
    group: str | None = None,
    ci_prob: float = 0.9,
    n_points: int = 40,
    n_draws: int = 400,
    random_seed: int | None = 0,
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """Plot the expected response vs each factor, a band per group level, data overlaid.

    Each curve varies one factor over its operating range (``model.space_.bounds``) with the
    other factors at the training medians, for each level of ``group`` (the other group
    columns at their most frequent level). Bands are ``ci_prob`` intervals of the expected
    response (``noise=False``: epistemic uncertainty); dots are the training batches. Axis
    labels carry the space's labels and units.

    Parameters
    ----------
    model : BayesianYieldModel
        Fitted model.
    parameters : sequence of str, optional
        Factors to plot; default all of the space's factors.
    group : str, optional
        Group column giving one band per level; default the primary group (else the first
        group column).
    ci_prob : float, default 0.9
        Band probability.
    n_points : int, default 40
        Grid points per curve.
    n_draws : int, default 400
        Posterior draws per curve.
    random_seed : int, optional, default 0
        Seed of the draws.
    axes : sequence of matplotlib.axes.Axes, optional
        One axes per parameter; default a new 1 x k figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.
    """
    check_is_fitted(model, "idata_")
    space = _space(model)
    params = list(parameters or space.factor_names)
    for p in params:
        if p not in space.factor_names:
            raise ValueError(f"parameters: {p!r} is not one of {list(space.factor_names)}")
    table = model.training_table_
    spec = model.spec_
    if group is None:
        group = spec["primary"] or (spec["groups"][0] if spec["groups"] else None)
    if group is not None and group not in spec["groups"]:
        raise ValueError(f"group must be one of {spec['groups']}, got {group!r}")
    if axes is None:
        fig, ax_arr = plt.subplots(1, len(params), figsize=(3.6 * len(params), 3.4), sharey=True)
        axes = list(np.atleast_1d(ax_arr))
    elif len(axes) != len(params):
        raise ValueError(f"axes: need {len(params)} axes, got {len(axes)}")
    fig = axes[0].figure
    levels = spec["levels"][group] if group else [None]
    base = {p: float(table[p].median()) for p in space.factor_names}
    for g in spec["groups"]:
        base[g] = str(table[g].mode().iloc[0])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lo_q, hi_q = (1 - ci_prob) / 2, (1 + ci_prob) / 2
    for ax, p in zip(axes, params, strict=True):
        grid = np.linspace(*space.bounds[p], n_points)
        for k, level in enumerate(levels):
            color = colors[k % len(colors)]
            frame = pd.DataFrame({**base, p: grid})
            if group:
                frame[group] = level
            draws = model.predict_draws(
                frame, n_draws=n_draws, noise=False, random_seed=random_seed
            )
            lo, mid, hi = np.quantile(draws, [lo_q, 0.5, hi_q], axis=0)
            ax.fill_between(grid, lo, hi, color=color, alpha=0.25, linewidth=0)
            ax.plot(grid, mid, color=color, label=str(level) if group else "population")
            data = table if not group else table[table[group] == level]
            ax.scatter(data[p], data[space.response.name], s=6, color=color, alpha=0.5)
        ax.set_xlabel(space.axis_label(p))
    axes[0].set_ylabel(space.axis_label(space.response.name))
    axes[0].legend(title=group, fontsize="small")
    return fig
