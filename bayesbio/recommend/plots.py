"""Plots of recommendations and design spaces (matplotlib objects, never shown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from bayesbio.recommend.context import space_or_default
from bayesbio.recommend.messages import group_text, meet_text, value_text
from bayesbio.recommend.objectives import describe_objective
from bayesbio.space import ProcessSpace, number_text, unit_suffix

if TYPE_CHECKING:
    from bayesbio.recommend.design_space import DesignSpace
    from bayesbio.recommend.recommendation import Recommendation

__all__ = ["plot_design_space", "plot_recommendation"]


def _slice_title(space: ProcessSpace, at: Mapping[str, float], width: int = 44) -> str:
    """``"at A 1.2 s, B 3 degC"`` wrapped between factors at ``width`` characters ("" if none).

    Long factor names ("Culture temperature after shift 35.15 degC") take a line each, so
    the titles of neighbouring panels never run into each other.
    """
    items = [value_text(space, p, v) for p, v in at.items()]
    if not items:
        return ""
    lines = ["at " + items[0]]
    for item in items[1:]:
        if len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += ", " + item
        else:
            lines[-1] += ","
            lines.append(item)
    return "\n".join(lines)


def _limit_ticks(ax: Axes, n: int = 5) -> None:
    """At most ``n`` ticks per axis, so numbers never overlap on narrow panels."""
    ax.xaxis.set_major_locator(MaxNLocator(n))
    ax.yaxis.set_major_locator(MaxNLocator(n))


def plot_recommendation(rec: Recommendation, *, ax: Axes | None = None, bins: int = 50) -> Axes:
    """Plot the predictive response at the recipe, mean-optimal and recommended setpoint.

    Parameters
    ----------
    rec : Recommendation
        Result of :func:`recommend`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.
    bins : int, default 50
        Histogram bins.

    Returns
    -------
    matplotlib.axes.Axes
        The axes, with the spec (if any) and each distribution's adverse-tail percentile
        marked (10th when maximising, 90th when minimising); the title names the target
        group and states the objective and its direction; the legend names every mark.
    """
    space = space_or_default(rec.space)
    r = space.response
    tail = "q10" if r.maximise else "q90"
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.8))
    values = rec.draws.to_numpy()
    values = values[np.isfinite(values)]
    # the bulk: heavy-tailed draws (a rare failed batch, a rare top one) would squeeze the
    # distributions into a few bins; the spec and the tail percentiles always stay in view
    marks = [*rec.summary.loc[["recipe", "mean_optimal", "recommended"], tail]]
    marks += [rec.spec] if rec.spec is not None else []
    low = min(float(np.quantile(values, 0.005)), *marks)
    high = max(float(np.quantile(values, 0.995)), *marks)
    cut = bool(values.min() < low or values.max() > high)
    edges = np.linspace(low, high, bins + 1) if high > low else bins
    colors = {"recipe": "0.5", "mean_optimal": "tab:blue", "recommended": "tab:red"}
    for name in ("recipe", "mean_optimal", "recommended"):
        row = rec.summary.loc[name]
        ax.hist(
            rec.draws[name],
            bins=edges,
            density=True,
            histtype="step",
            lw=1.6,
            color=colors[name],
            label=f"{name.replace('_', '-')}: mean {number_text(row['expected_yield'])}, "
            f"{tail} {number_text(row[tail])}",
        )
        ax.axvline(row[tail], color=colors[name], ls=":", lw=1)
    unit = unit_suffix(r.unit)
    if rec.spec is not None:
        rel = ">=" if r.maximise else "<="
        ax.axvline(rec.spec, color="k", ls="--", lw=1.2, label=f"spec: {rel} {rec.spec:g}{unit}")
    # proxy for the dotted percentile lines, so the legend explains every mark
    ax.add_line(
        Line2D([], [], color="0.3", ls=":", lw=1, label=f"dotted: {tail[1:]}th percentile of each")
    )
    if cut:
        ax.add_line(Line2D([], [], color="none", label="axis: central 99 % of the draws"))
    ax.set_xlabel(space.axis_label(r.name))
    ax.set_ylabel(f"probability density [1/{r.unit}]" if r.unit else "probability density")
    ax.set_title(
        f"Predictive {r.label}, {group_text(rec.group, rec.kind)}\n"
        f"objective: {describe_objective(rec.objective, rec.risk, rec.spec, space)}",
        fontsize="medium",
    )
    ax.xaxis.set_major_locator(MaxNLocator(6))
    ax.legend(
        fontsize="small",
        frameon=False,
        title=f"new batch: mean, {tail}" + (f" [{r.unit}]" if r.unit else ""),
        title_fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    return ax


def plot_design_space(
    ds: DesignSpace,
    *,
    pairs: Sequence[tuple[str, ...]] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Plot P(meet spec) on the slices through ``ds.center`` with the design space and PAR box.

    Parameters
    ----------
    ds : DesignSpace
        Result of :func:`design_space`.
    pairs : sequence of tuple of str, optional
        Slices to show (keys of ``ds.maps``: pairs of factors, or a 1-tuple for a profile);
        default all.
    fig : matplotlib.figure.Figure, optional
        Figure to draw on; a new one when None.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per pair of free factors: colour = P(meet spec), black line = the ``prob``
        contour, dashed box = proven acceptable ranges, star = ``ds.center``, dots = training
        setpoints, hatched = outside the data support; the panel title says where the slice
        lies (the other factors' values). With one free factor: the profile of P(meet spec),
        the required ``prob`` (dashed) and the PAR (shaded). A legend below the panels names
        every mark; the figure title names the target group; at most 5 ticks per axis.
    """
    space = space_or_default(ds.space)
    keys = list(ds.maps) if pairs is None else [tuple(p) for p in pairs]
    missing = [p for p in keys if p not in ds.maps]
    if missing:
        raise ValueError(f"pairs {missing} not in the design space maps; valid: {list(ds.maps)}")
    meet = meet_text(space, ds.spec)
    n = max(1, len(keys))
    ncol = min(3, n)
    nrow = -(-n // 3)
    n_lines = max(
        (
            _slice_title(
                space, ds.slices.get(key, dict(ds.maps[key].attrs.get("slice", {})))
            ).count("\n")
            + 1
            for key in keys
        ),
        default=1,
    )
    title_h = 0.25 * (1 + n_lines)
    if fig is None:
        width = max(3.9 * ncol, 5.5)
        fig = plt.figure(figsize=(width, (3.3 + title_h) * nrow), layout="constrained")
    axs = fig.subplots(nrow, ncol, squeeze=False)
    mesh = None
    for ax, key in zip(axs.ravel(), keys, strict=False):
        m = ds.maps[key]
        if len(key) == 1:
            _plot_profile(ax, ds, key[0], m, space, meet)
        else:
            mesh = _plot_map(ax, ds, key, m, space)
        at = ds.slices.get(key, dict(m.attrs.get("slice", {})))
        ax.set_title(_slice_title(space, at), fontsize="small")
        _limit_ticks(ax)
    for ax in axs.ravel()[len(keys) :]:
        ax.set_visible(False)
    if not keys:
        axs[0, 0].set_visible(True)
        axs[0, 0].axis("off")
        axs[0, 0].text(0.5, 0.5, "no free factor: nothing to slice", ha="center", va="center")
    if mesh is not None:
        fig.colorbar(mesh, ax=axs.ravel().tolist(), label=meet)
    empty = "" if ds.grid["inside"].any() else " (empty: no setpoint reaches it)"
    fig.suptitle(f"Design space: {meet} >= {ds.prob:g}{empty}\n{group_text(ds.group, ds.kind)}")
    if keys:
        handles = _design_space_handles(ds, meet, profile=len(keys[0]) == 1)
        fig.legend(
            handles=handles,
            loc="outside lower center" if fig.get_layout_engine() is not None else "lower center",
            ncol=min(3, len(handles)),
            fontsize="small",
            facecolor="0.85",  # the white marks of the maps show on grey
            framealpha=1.0,
        )
    return fig


def _design_space_handles(ds: DesignSpace, meet: str, *, profile: bool) -> list[Any]:
    """Legend proxies for the marks :func:`plot_design_space` draws (only those it drew)."""
    maps = list(ds.maps.values())
    has_unsupported = any((~m["supported"].to_numpy().astype(bool)).any() for m in maps)
    has_contour = any(m["prob"].min() < ds.prob <= m["prob"].max() for m in maps)
    has_par = bool(np.isfinite(ds.par["low"].to_numpy(dtype=float)).any())
    has_training = len(ds.training) > 0
    centre = Line2D(
        [], [], marker="*", color="tab:red", ls="none", ms=10, label="recommended setpoint"
    )
    unsupported = Patch(facecolor="none", edgecolor="0.3", hatch="//", label="outside the data")
    if profile:
        marks = [
            (True, Line2D([], [], color="tab:blue", lw=1.8, label=meet)),
            (True, Line2D([], [], color="k", ls="--", lw=1, label=f"required {ds.prob:g}")),
            (has_par, Patch(color="tab:green", alpha=0.3, label="proven acceptable range")),
            (
                has_training,
                Line2D([], [], marker="|", color="0.3", ls="none", ms=8, label="training batches"),
            ),
        ]
    else:
        marks = [
            (has_contour, Line2D([], [], color="k", lw=1.2, label=f"{meet} = {ds.prob:g}")),
            (
                has_par,
                Patch(
                    facecolor="none",
                    edgecolor="w",
                    ls="--",
                    lw=1.5,
                    label="proven acceptable ranges",
                ),
            ),
            (
                has_training,
                Line2D(
                    [],
                    [],
                    marker="o",
                    mfc="w",
                    mec="0.1",
                    mew=0.6,
                    ls="none",
                    ms=4.5,
                    label="training batches",
                ),
            ),
        ]
    marks += [(True, centre), (has_unsupported, unsupported)]
    return [handle for shown, handle in marks if shown]


def _plot_map(
    ax: Axes, ds: DesignSpace, key: tuple[str, ...], m: pd.DataFrame, space: ProcessSpace
) -> Any:
    a, b = key
    xa, xb = np.unique(m[a]), np.unique(m[b])
    z = m["prob"].to_numpy().reshape(len(xa), len(xb)).T
    mesh = ax.pcolormesh(xa, xb, z, vmin=0, vmax=1, cmap="viridis", shading="nearest")
    if z.min() < ds.prob <= z.max():
        ax.contour(xa, xb, z, levels=[ds.prob], colors="k", linewidths=1.2)
    unsupported = (~m["supported"].to_numpy().astype(bool)).reshape(len(xa), len(xb)).T
    if unsupported.any():
        _hatch_cells(ax, xa, xb, unsupported)
    lo, hi = ds.par.loc[a], ds.par.loc[b]
    if np.isfinite(lo["low"]) and np.isfinite(hi["low"]):
        ax.add_patch(
            Rectangle(
                (lo["low"], hi["low"]),
                lo["high"] - lo["low"],
                hi["high"] - hi["low"],
                fill=False,
                ls="--",
                ec="w",
                lw=1.5,
            )
        )
    if len(ds.training):
        ax.plot(ds.training[a], ds.training[b], "o", mfc="w", mec="0.1", mew=0.6, ms=3.5)
    ax.plot(ds.center[a], ds.center[b], "*", color="tab:red", ms=10)
    ax.set_xlabel(space.axis_label(a))
    ax.set_ylabel(space.axis_label(b))
    return mesh


def _cell_edges(x: np.ndarray) -> np.ndarray:
    """Edges of the cells ``pcolormesh(shading="nearest")`` draws around grid values ``x``."""
    if len(x) == 1:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[2 * x[0] - mid[0]], mid, [2 * x[-1] - mid[-1]]])


def _hatch_cells(ax: Axes, xa: np.ndarray, xb: np.ndarray, mask: np.ndarray) -> None:
    """Hatch the grid cells where ``mask`` (shape ``(len(xb), len(xa))``) is True.

    The hatching follows the cells of the probability map exactly: every cell becomes a
    constant 2 x 2 block whose corners sit just inside its edges, so the contour at 0.5 runs
    along cell edges instead of halfway through the neighbouring supported cells (a plain
    ``contourf`` of the grid values interpolates, and hatched a supported recommendation).
    """
    ea, eb = _cell_edges(np.asarray(xa, float)), _cell_edges(np.asarray(xb, float))
    da, db = 1e-6 * (ea[-1] - ea[0]), 1e-6 * (eb[-1] - eb[0])
    ca = np.column_stack([ea[:-1] + da, ea[1:] - da]).ravel()
    cb = np.column_stack([eb[:-1] + db, eb[1:] - db]).ravel()
    z = np.repeat(np.repeat(mask.astype(float), 2, axis=0), 2, axis=1)
    ax.contourf(ca, cb, z, levels=[0.5, 1.5], colors="none", hatches=["//"])


def _plot_profile(
    ax: Axes, ds: DesignSpace, a: str, m: pd.DataFrame, space: ProcessSpace, meet: str
) -> None:
    x = m[a].to_numpy(dtype=float)
    p = m["prob"].to_numpy(dtype=float)
    ax.plot(x, p, color="tab:blue", lw=1.8)
    unsupported = ~m["supported"].to_numpy().astype(bool)
    if unsupported.any():
        ax.fill_between(x, 0, 1, where=unsupported, color="none", hatch="//", edgecolor="0.6", lw=0)
    ax.axhline(ds.prob, color="k", ls="--", lw=1)
    row = ds.par.loc[a]
    if np.isfinite(row["low"]):
        ax.axvspan(row["low"], row["high"], color="tab:green", alpha=0.15, label="PAR")
    if len(ds.training):
        ax.plot(ds.training[a], np.zeros(len(ds.training)), "|", color="0.3", ms=8)
    ax.plot(ds.center[a], np.interp(ds.center[a], x, p), "*", color="tab:red", ms=10)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(space.axis_label(a))
    ax.set_ylabel(meet)
