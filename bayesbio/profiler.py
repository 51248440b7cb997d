"""A prediction profiler: the predicted response along each factor through one setpoint.

As JMP's prediction profiler: one row of panels, one per factor of the process space. Each
panel varies its factor over the operating range with every other factor held at the
setpoint, and shows the posterior mean response with a credible band (default 80 %) and the
setpoint itself. All points of all panels are predicted in one ``predict_draws`` call, so the
curves and bands share the same posterior draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from bayesbio.checks import check_fraction, check_int
from bayesbio.recommend.context import build_context
from bayesbio.recommend.messages import group_text
from bayesbio.space import unit_suffix

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel

__all__ = ["plot_profiler", "profile"]


def _setpoint_array(setpoint: Any, factors: list[str]) -> np.ndarray:
    """Return ``setpoint`` (a mapping or Series indexed by factor) as an array in model order."""
    if isinstance(setpoint, pd.DataFrame):
        if len(setpoint) != 1:
            raise ValueError(
                f"setpoint must be one setpoint (a mapping or Series), got a table with "
                f"{len(setpoint)} rows"
            )
        setpoint = setpoint.iloc[0]
    if not isinstance(setpoint, Mapping | pd.Series):
        raise ValueError(
            "setpoint must map every factor to a value, e.g. "
            f"{{{', '.join(repr(f) + ': ...' for f in factors[:2])}}}; got "
            f"{type(setpoint).__name__}"
        )
    missing = [f for f in factors if f not in setpoint]
    if missing:
        raise ValueError(
            f"setpoint lacks factor(s) {', '.join(missing)}; give a value for every factor "
            f"of the process ({', '.join(factors)})"
        )
    values = np.array([float(setpoint[f]) for f in factors])
    if not np.isfinite(values).all():
        bad = [f for f, v in zip(factors, values, strict=True) if not np.isfinite(v)]
        raise ValueError(f"setpoint value of {', '.join(bad)} is not a finite number")
    return values


def profile(
    model: YieldModel | Any,
    setpoint: Mapping[str, float] | pd.Series,
    group: Mapping[str, Any] | None = None,
    *,
    ci_prob: float = 0.8,
    n_points: int = 25,
    n_draws: int = 400,
    noise: bool = False,
    kind: str = "auto",
    random_seed: int | None = 0,
) -> pd.DataFrame:
    """Return the predicted response along each factor through ``setpoint``.

    Parameters
    ----------
    model : fitted yield model
        Any model following the bayesbio model protocol (``predict_draws``,
        ``training_table_``, ``space_``).
    setpoint : mapping or pandas.Series
        A value for every factor of the model's process space, in domain units.
    group : mapping of str to str, optional
        Target group, as in :func:`bayesbio.recommend.recommend` (required when the training
        data hold more than one group).
    ci_prob : float, default 0.8
        Probability of the equal-tailed band.
    n_points : int, default 25
        Points per factor over its operating range (the setpoint's own value is added).
    n_draws : int, default 400
        Posterior draws.
    noise : bool, default False
        False: the band is the uncertainty about the mean response. True: the predictive band
        of one new batch (new-batch noise included).
    kind : {"auto", "existing", "new_group", "population"}, default "auto"
        Prediction kind, as in :func:`bayesbio.recommend.recommend`.
    random_seed : int or None, default 0
        Seed of the posterior draws.

    Returns
    -------
    pandas.DataFrame
        Long table: ``factor``, ``value`` (domain units), ``mean``, ``lower``, ``upper``
        (response unit) and ``at_setpoint`` (the row through the setpoint itself).
        ``attrs`` hold ``setpoint``, ``group``, ``ci_prob`` and ``units``.

    Raises
    ------
    ValueError
        If ``setpoint`` misses a factor, ``ci_prob`` is not in (0, 1), or the group or kind
        is unknown (as in :func:`bayesbio.recommend.recommend`).
    """
    ci_prob = check_fraction("ci_prob", ci_prob)
    n_points = check_int("n_points", n_points, minimum=2)
    n_draws = check_int("n_draws", n_draws, minimum=10)
    ctx = build_context(model, group, kind, None)
    space = ctx.space
    factors = ctx.factors
    x0 = _setpoint_array(setpoint, factors)
    blocks, names, values = [], [], []
    for j, f in enumerate(space.factors):
        lo, hi = f.operating
        grid = np.unique(np.append(np.linspace(lo, hi, n_points), x0[j]))
        points = np.tile(x0, (len(grid), 1))
        points[:, j] = grid
        blocks.append(points)
        names += [f.name] * len(grid)
        values.append(grid)
    points = np.vstack(blocks)
    draws = np.asarray(
        model.predict_draws(
            ctx.frame(points), n_draws=n_draws, noise=noise, kind=ctx.kind, random_seed=random_seed
        ),
        dtype=float,
    )
    tail = (1.0 - ci_prob) / 2.0
    value = np.concatenate(values)
    at = np.zeros(len(value), dtype=bool)
    start = 0
    for j, grid in enumerate(values):
        at[start + int(np.argmin(np.abs(grid - x0[j])))] = True
        start += len(grid)
    out = pd.DataFrame(
        {
            "factor": names,
            "value": value,
            "mean": draws.mean(axis=0),
            "lower": np.quantile(draws, tail, axis=0),
            "upper": np.quantile(draws, 1.0 - tail, axis=0),
            "at_setpoint": at,
        }
    )
    out.attrs.update(
        setpoint=dict(zip(factors, x0.tolist(), strict=True)),
        group=dict(ctx.group),
        ci_prob=ci_prob,
        noise=bool(noise),
        units=space.response.unit,
    )
    return out


def plot_profiler(
    model: YieldModel | Any,
    setpoint: Mapping[str, float] | pd.Series,
    group: Mapping[str, Any] | None = None,
    *,
    recipe: Mapping[str, float] | pd.Series | None = None,
    ci_prob: float = 0.8,
    n_points: int = 25,
    n_draws: int = 400,
    noise: bool = False,
    kind: str = "auto",
    random_seed: int | None = 0,
    panel_size: tuple[float, float] = (3.0, 2.8),
) -> Figure:
    """Plot a JMP-style prediction profiler through ``setpoint``: one panel per factor.

    Each panel shows the posterior mean response (line) and its ``ci_prob`` band along one
    factor over its operating range, every other factor held at ``setpoint``; the setpoint
    is marked (red line and dot, its value in the panel title), the ``recipe`` too when given
    (grey), and the training setpoints of the target group as a rug along the x axis.

    Parameters
    ----------
    model : fitted yield model
        Any model following the bayesbio model protocol.
    setpoint : mapping or pandas.Series
        The setpoint to profile through (e.g. ``Recommendation.setpoint``), domain units.
    group : mapping of str to str, optional
        Target group (shown in the title).
    recipe : mapping or pandas.Series, optional
        A second setpoint to mark for comparison (e.g. ``Recommendation.recipe``).
    ci_prob : float, default 0.8
        Probability of the band.
    n_points : int, default 25
        Points per factor.
    n_draws : int, default 400
        Posterior draws.
    noise : bool, default False
        Band of the mean response (False) or of one new batch (True).
    kind : {"auto", "existing", "new_group", "population"}, default "auto"
        Prediction kind, as in :func:`bayesbio.recommend.recommend`.
    random_seed : int or None, default 0
        Seed of the posterior draws.
    panel_size : tuple of float, default (3.0, 2.8)
        Width and height of one panel, inches.

    Returns
    -------
    matplotlib.figure.Figure
        One row of ``space.k`` panels sharing the response axis.

    Raises
    ------
    ValueError
        As :func:`profile`.
    """
    table = profile(
        model,
        setpoint,
        group,
        ci_prob=ci_prob,
        n_points=n_points,
        n_draws=n_draws,
        noise=noise,
        kind=kind,
        random_seed=random_seed,
    )
    ctx = build_context(model, group, kind, None)
    space = ctx.space
    x0 = table.attrs["setpoint"]
    x_recipe = (
        dict(zip(ctx.factors, _setpoint_array(recipe, ctx.factors), strict=True))
        if recipe is not None
        else None
    )
    k = space.k
    fig, axes = plt.subplots(
        1, k, figsize=(panel_size[0] * k, panel_size[1]), sharey=True, squeeze=False
    )
    axes = axes[0]
    in_group = ctx.table.loc[ctx.in_group] if ctx.in_group.any() else ctx.table
    for ax, f in zip(axes, space.factors, strict=True):
        part = table[table["factor"] == f.name]
        ax.fill_between(part["value"], part["lower"], part["upper"], color="tab:blue", alpha=0.25)
        ax.plot(part["value"], part["mean"], color="tab:blue", lw=1.8)
        at = part[part["at_setpoint"]].iloc[0]
        ax.axvline(x0[f.name], color="tab:red", lw=1, ls="--")
        ax.plot([x0[f.name]], [at["mean"]], "o", color="tab:red", ms=6, zorder=5)
        if x_recipe is not None:
            ax.axvline(x_recipe[f.name], color="0.45", lw=1, ls=":")
        rug = in_group[f.name].to_numpy(dtype=float)
        ax.plot(
            rug,
            np.zeros_like(rug),
            "|",
            color="0.3",
            ms=8,
            alpha=0.6,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
        ax.set_xlim(*f.operating)
        ax.set_xlabel(f.axis_label)
        unit = unit_suffix(f.unit)
        fixed = " (fixed)" if f.fixed is not None else ""
        ax.set_title(f"{f.label} = {x0[f.name]:.4g}{unit}{fixed}", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.locator_params(axis="x", nbins=4)
        ax.grid(alpha=0.3)
    band = f"{100 * ci_prob:g} % band ({'new batch' if noise else 'mean ' + space.response.noun})"
    axes[0].set_ylabel(space.response.axis_label)
    handles = [
        Line2D([], [], color="tab:blue", lw=1.8, label=f"mean {space.response.noun}"),
        Patch(color="tab:blue", alpha=0.25, label=band),
        Line2D([], [], color="tab:red", ls="--", marker="o", label="profiled setpoint"),
        Line2D([], [], color="0.3", marker="|", ls="none", ms=8, label="training batches"),
    ]
    if x_recipe is not None:
        handles.insert(3, Line2D([], [], color="0.45", ls=":", label="recipe"))
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=len(handles),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, -0.02),
    )
    fig.suptitle(
        f"Profiler: predicted {space.response.noun} along each factor, others held at "
        f"the setpoint; group: {group_text(ctx.group)}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return fig
