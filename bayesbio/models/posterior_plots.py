"""Posterior plots of a fitted :class:`~bayesbio.models.bayesian.BayesianYieldModel`.

The MCMC diagnostics (trace, rank), the forest of group effects (in % of the response), the
posterior predictive check and the pair plot use ArviZ 1.x (``arviz_plots``); the prior
predictive check (:func:`plot_prior_predictive`) samples the model that
``BayesianYieldModel.build_model`` builds, with ``pm.sample_prior_predictive``, and returns
its ``Axes``. The ArviZ functions return a ``PlotCollection`` (or ``PlotMatrix``); here each
returns its matplotlib ``Figure`` (``pc.viz["figure"]``), so callers save or show it like any
other figure. The marginal effect curves are drawn with matplotlib directly and return a
``Figure`` too; axis labels and units come from the model's process space (``model.space_``).
None of these functions calls ``plt.show()``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.utils.validation import check_is_fitted

from bayesbio.models.bayesian import structure_spec
from bayesbio.space import ProcessSpace

__all__ = [
    "plot_group_effects",
    "plot_marginal_effects",
    "plot_pair",
    "plot_ppc",
    "plot_prior_predictive",
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


def _key_vars(model: Any, structure: str, *, vectors: bool = True) -> list[str]:
    spec = structure_spec(model.spec_, structure)
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
        model.idata_[s], var_names=list(var_names or _key_vars(model, s)), backend="matplotlib"
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
        model.idata_[s], var_names=list(var_names or _key_vars(model, s)), backend="matplotlib"
    )
    return _figure(pc)


def plot_group_effects(model: Any, *, structure: str | None = None, ci_prob: float = 0.9) -> Figure:
    """Forest plot of the group effects in % of the response (one row per level of each group).

    The model's effects act on the log response; they are shown as ``100 * (exp(a) - 1)``:
    an effect of +5 % is a 5 % higher response than the mean over levels (other factors
    equal). Primary-group slope/curvature deviations (``b_<group>``) are included when
    fitted, in % change of the response per unit of the standardised factor (half its
    operating range).

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
        The figure of the PlotCollection; the x axis of the forest reads
        ``effect on <response> [% vs mean over levels]``.
    """
    import arviz_plots as azp

    s = _structure(model, structure)
    spec = structure_spec(model.spec_, s)
    names = [f"a_{g}" for g in spec["used"]]
    if spec["primary"]:
        names.append(f"b_{spec['primary']}")
    if not names:
        raise ValueError("the model has no group column with >= 2 levels: no group effects")
    post = model.idata_[s]["posterior"].to_dataset()[names]
    tree = xr.DataTree()
    tree["posterior"] = xr.DataTree(100.0 * np.expm1(post))
    pc = azp.plot_forest(
        tree,
        var_names=names,
        combined=True,
        ci_probs=(0.5, ci_prob),
        backend="matplotlib",
    )
    fig = _figure(pc)
    label = f"effect on {_space(model).response.noun} [% vs mean over levels]"
    for ax in fig.axes:
        if ax.lines or ax.collections:
            ax.axvline(0.0, color="0.5", lw=0.8, ls=":")
            ax.set_xlabel(label)
    fig.suptitle(
        f"Group effects on {_space(model).response.label}: posterior median, "
        f"50 % and {100 * ci_prob:g} % intervals ({s} structure)",
        fontsize="medium",
    )
    return fig


def plot_ppc(model: Any, *, n_draws: int = 100, random_seed: int | None = 0) -> Figure:
    """Posterior predictive check: densities of replicated training yields vs the observed.

    Replicates come from :meth:`predict_draws` (``kind="existing"``, with noise) at the
    training setpoints, i.e. the stacked mixture of structures. The axis shows the central
    99 % of the replicates and every observed value, in the response's unit.

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
    fig = _figure(pc)
    # a heavy-tailed likelihood draws a few replicates far out: show the bulk, not them
    observed = table[name].to_numpy(dtype=float)
    lo = min(np.quantile(draws, 0.005), observed.min())
    hi = max(np.quantile(draws, 0.995), observed.max())
    pad = 0.05 * (hi - lo)
    for ax in fig.axes:
        ax.set_xlabel(_space(model).axis_label(name))
        ax.set_xlim(lo - pad, hi + pad)
    return fig


def plot_prior_predictive(
    model: Any,
    *,
    structure: str | None = None,
    n_draws: int = 200,
    n_lines: int = 50,
    max_rows: int = 999,
    random_seed: int | None = 0,
    ax: Axes | None = None,
) -> Axes:
    """Prior predictive check: data sets drawn from the prior vs the observed responses.

    The PyMC model of ``structure`` is rebuilt on the training table
    (``model.build_model``) and ``pm.sample_prior_predictive`` draws ``n_draws`` replicated
    data sets of the observed response before the model has seen it. Their empirical CDFs
    (grey, at most ``n_lines``) should bracket the observed one (black): the priors then
    allow the data without forcing them. Dashed lines mark the response's declared limits;
    the legend says which share of prior draws lies inside them. The axis is logarithmic
    because the model is on the log scale.

    Parameters
    ----------
    model : BayesianYieldModel
        Fitted model (its training table, settings and process space are used).
    structure : str, optional
        Which structure's model; default the one with the largest stacking weight.
    n_draws : int, default 200
        Prior predictive data sets drawn.
    n_lines : int, default 50
        At most this many of them are drawn as lines.
    max_rows : int, default 999
        Tables with more rows are subsampled to this many (seeded) before the model is
        built, which keeps the per-batch likelihood (from 1000 batches the model uses
        sufficient statistics and has no per-batch response to draw).
    random_seed : int or None, default 0
        Seed of the subsample and the prior draws.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
        The axes: x the response with its unit (log scale), y the cumulative share of
        batches; a legend for every mark.
    """
    import pymc as pm

    s = _structure(model, structure)
    space = _space(model)
    r = space.response
    table = model.training_table_
    rng = np.random.default_rng(random_seed)
    if len(table) > max_rows:
        table = table.iloc[np.sort(rng.choice(len(table), max_rows, replace=False))]
    pm_model = model.build_model(table, structure=s)
    obs_name = "log_yield_obs"
    if obs_name not in pm_model.named_vars:  # pragma: no cover - guarded by max_rows
        raise ValueError(f"the {s!r} model has no per-batch response to draw; lower max_rows")
    # PyMC logs the internal variable names it draws ("Sampling: [beta_linear, ...]"):
    # nothing a user of the plot can act on, so its logger is quiet while it draws
    forward_log = logging.getLogger("pymc.sampling.forward")
    level = forward_log.level
    forward_log.setLevel(logging.WARNING)
    try:
        prior = pm.sample_prior_predictive(
            draws=n_draws,
            model=pm_model,
            var_names=[obs_name],
            random_seed=int(rng.integers(2**31)),
        )
    finally:
        forward_log.setLevel(level)
    logy = np.asarray(prior["prior_predictive"][obs_name].values, dtype=float)
    # a heavy-tailed prior (Student-t with small nu) draws log-yields far beyond any float:
    # clipped at +-700 so every draw is finite (such draws lie far outside the limits anyway)
    draws = np.exp(np.clip(logy.reshape(-1, logy.shape[-1]), -700.0, 700.0))
    observed = table[r.name].to_numpy(dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    level = (np.arange(len(observed)) + 1) / len(observed)
    finite = draws[np.isfinite(draws) & (draws > 0)]
    lo_lim, hi_lim = _response_limits(space)
    inside = np.mean((draws >= lo_lim) & (draws <= hi_lim)) if np.isfinite(hi_lim) else np.nan
    # x range: the central 99 % of the prior draws and every observed batch; draws beyond it
    # are drawn at its edge (heavy-tailed priors reach values no axis can hold)
    left = min(np.quantile(finite, 0.005), observed.min()) if len(finite) else observed.min()
    right = max(np.quantile(finite, 0.995), observed.max()) if len(finite) else observed.max()
    x_lo, x_hi = left / 1.2, right * 1.2
    for i, row in enumerate(draws[: min(n_lines, len(draws))]):
        ax.step(
            np.sort(np.clip(row, x_lo, x_hi)),
            level,
            where="post",
            color="0.6",
            lw=0.6,
            alpha=0.5,
            label=f"prior predictive data sets ({min(n_lines, len(draws))} of {len(draws)})"
            if i == 0
            else None,
        )
    ax.step(
        np.sort(observed),
        level,
        where="post",
        color="k",
        lw=2.0,
        label=f"observed batches ({len(observed)})",
    )
    for value in (lo_lim, hi_lim):
        if np.isfinite(value) and value > 0:
            ax.axvline(value, color="tab:red", ls="--", lw=1)
    if np.isfinite(hi_lim):
        share = f"{100 * inside:.0f} %" if np.isfinite(inside) else "n/a"
        ax.plot(
            [],
            [],
            color="tab:red",
            ls="--",
            lw=1,
            label=f"declared limits {lo_lim:g}-{hi_lim:g} {r.unit} ({share} of prior draws inside)",
        )
    ax.set_xscale("log")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{space.axis_label(r.name)} (log scale)")
    ax.set_ylabel("cumulative share of batches")
    ax.set_title(f"Prior predictive check, {s} structure:\n{r.label} before seeing the data")
    ax.legend(fontsize="small", loc="upper left", frameon=False)
    return ax


def _response_limits(space: ProcessSpace) -> tuple[float, float]:
    """Return the response's declared physical limits (NaN when not declared)."""
    limits = getattr(space.response, "limits", None)
    if limits is None or len(limits) != 2:
        return float("nan"), float("nan")
    return float(limits[0]), float(limits[1])


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
        var_names=list(var_names or _key_vars(model, s, vectors=False)),
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
