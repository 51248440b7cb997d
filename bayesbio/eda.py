"""Exploratory data analysis of a batch table: summaries and figures.

:func:`summarize` counts, missing values and min/median/max per column and group;
:func:`plot_distributions`, :func:`plot_correlation`, :func:`plot_yield_vs_parameter` (with
statsmodels' robust LOWESS smoother, :func:`smooth`), :func:`plot_yield_vs_parameters` and
:func:`plot_pairs` draw figures with axes labelled with the space's labels and units;
:func:`run_eda` does all of it and optionally saves PNGs. Plot functions never call
``plt.show()``; single-panel ones take an optional ``ax``.

Every function takes ``space`` (a :class:`~bayesbio.space.ProcessSpace`, a path to its TOML
file, or None for the default demo process): the factor names, the response, units, labels
and group columns come from it, for any number of factors.

EDA works on raw tables as well as cleaned ones: missing values are allowed and physical
limits are not enforced (they are reported, not fixed; clean the table for that).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from bayesbio import schema
from bayesbio.space import ProcessSpace, resolve_space

__all__ = [
    "EDAResult",
    "plot_correlation",
    "plot_distributions",
    "plot_pairs",
    "plot_yield_vs_parameter",
    "plot_yield_vs_parameters",
    "run_eda",
    "smooth",
    "summarize",
]

_log = logging.getLogger(__name__)
_STATS = ("count", "missing", "min", "median", "max", "mean", "std")
SpaceLike = ProcessSpace | str | Path | None


def _prepare(
    table: pd.DataFrame,
    groups: Sequence[str] | None = None,
    *,
    need_response: bool = False,
    space: ProcessSpace,
) -> pd.DataFrame:
    """Validate for EDA: raw data allowed.

    Column names are mapped onto the space (declared names and units, case variants);
    missing values, values beyond the physical limits and repeated batch ids pass (they are
    what EDA of raw data should show); a missing group label becomes ``"(missing)"``.
    """
    df, _ = schema.map_columns(table, space=space)
    if space.batch_id in df.columns:
        df = df.drop(columns=space.batch_id)
    for g in space.group_columns(df, groups):
        if df[g].isna().any():
            df[g] = df[g].astype(object).where(df[g].notna(), "(missing)")
    # mapped already: validate without the declarations so no unit is converted twice
    return schema.validate(
        df,
        space=space.with_changes(columns=()),
        require_response=need_response,
        groups=groups,
        allow_missing=True,
        check_limits=False,
    )


def _numeric_columns(df: pd.DataFrame, space: ProcessSpace) -> list[str]:
    response = space.response.name
    return [*space.factor_names, *([response] if response in df.columns else [])]


def _default_group(df: pd.DataFrame, group: str | None, space: ProcessSpace) -> str | None:
    """Return the colour group: ``group`` if present, else what the default falls back to.

    The default ``"scale"`` falls back to the space's outermost group present when the space
    has no ``scale``, else to None (one cloud); another absent group is returned as given.
    """
    if group is None or group in df.columns:
        return group
    if group == "scale" and "scale" not in space.groups:
        present = space.group_columns(df)
        return present[0] if present else None
    return None if group == "scale" else group


def _check_group(df: pd.DataFrame, group: str | None, argument: str = "group") -> None:
    if group is not None and group not in df.columns:
        raise ValueError(f"{argument}={group!r} is not a column of the table {list(df.columns)}")


def summarize(
    table: pd.DataFrame,
    groups: Sequence[str] | str | None = None,
    *,
    space: SpaceLike = None,
) -> pd.DataFrame:
    """Summarise each factor and the response, overall or per group.

    Parameters
    ----------
    table : pandas.DataFrame
        A batch table (raw or cleaned).
    groups : str or sequence of str, optional
        Group columns to summarise by. Default: one overall summary.
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).

    Returns
    -------
    pandas.DataFrame
        One row per (group levels, column) with the group columns, ``column``, ``unit`` and
        ``count`` (non-missing), ``missing``, ``min``, ``median``, ``max``, ``mean``, ``std``.

    Raises
    ------
    SchemaError
        If the table does not match the space (missing columns, non-numeric values).
    """
    sp = resolve_space(space)
    if isinstance(groups, str):
        groups = [groups]
    groups = list(groups or [])
    df = _prepare(table, groups or None, space=sp)
    cols = _numeric_columns(df, sp)
    long = df.melt(id_vars=groups, value_vars=cols, var_name="column", value_name="value")
    keys = [*groups, "column"]
    grouped = long.groupby(keys, sort=False)["value"]
    out = grouped.agg(["count", "min", "median", "max", "mean", "std"]).reset_index()
    out["missing"] = grouped.apply(lambda v: int(v.isna().sum())).to_numpy()
    out["unit"] = out["column"].map(sp.units)
    order = {c: i for i, c in enumerate(cols)}
    out = out.sort_values(
        [*groups, "column"], key=lambda s: s.map(order) if s.name == "column" else s
    )
    return out[[*keys, "unit", *_STATS]].reset_index(drop=True)


#: Fewest points in one local line of :func:`smooth`.
_MIN_LOCAL_POINTS = 8


def smooth(
    x: np.ndarray | pd.Series,
    y: np.ndarray | pd.Series,
    *,
    frac: float = 0.5,
    n_points: int = 50,
    iterations: int = 2,
    max_points: int = 3000,
    random_seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust locally linear smoother: statsmodels' LOWESS evaluated on a regular grid.

    A thin wrapper of :func:`statsmodels.nonparametric.smoothers_lowess.lowess` (tricube
    weights, bisquare robustness iterations) that drops non-finite pairs, subsamples large
    data and returns the fit on ``n_points`` points spread over the range of ``x``. Each
    local line uses at least 8 points (all of them in a smaller group), and the curve is
    kept within the range of ``y``: with a handful of noisy points a local line would
    otherwise swing far beyond the data.

    Parameters
    ----------
    x, y : array-like
        Data; pairs with a missing or infinite value are ignored.
    frac : float, default 0.5
        Fraction of the points in each local fit, in (0, 1].
    n_points : int, default 50
        Number of evaluation points spread over the range of ``x``.
    iterations : int, default 2
        Robustness iterations (bisquare reweighting of large residuals; ``it`` of statsmodels).
    max_points : int, default 3000
        Larger data sets are subsampled (with ``random_seed``) to bound memory and time.
    random_seed : int or None, default 0
        Seed of the subsample.

    Returns
    -------
    grid, fitted : numpy.ndarray
        Evaluation points and smoothed values. Empty arrays for fewer than 3 distinct ``x``.

    Raises
    ------
    ValueError
        If ``x`` and ``y`` differ in length or ``frac`` is outside (0, 1].
    """
    from statsmodels.nonparametric.smoothers_lowess import lowess

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if not 0 < frac <= 1:
        raise ValueError(f"frac must be in (0, 1], got {frac!r}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) > max_points:
        pick = np.random.default_rng(random_seed).choice(len(x), max_points, replace=False)
        x, y = x[pick], y[pick]
    if len(np.unique(x)) < 3:
        return np.array([]), np.array([])
    grid = np.linspace(x.min(), x.max(), n_points)
    # each local line uses at least MIN_LOCAL_POINTS points (all of them in a small group):
    # a line through 4 or 5 noisy points swings far beyond the data (the k-th nearest point
    # gets tricube weight 0, so k >= 4 also keeps two weighted points at every grid point)
    frac = max(frac, min(1.0, _MIN_LOCAL_POINTS / len(x)))
    fitted = np.asarray(lowess(y, x, frac=frac, it=int(iterations), xvals=grid), dtype=float)
    if not np.isfinite(fitted).all():
        # ties in distance can still leave a grid point one weighted neighbour: fit at the
        # data points (each its own neighbour) and interpolate onto the grid
        at_data = lowess(y, x, frac=frac, it=int(iterations))
        fitted = np.interp(grid, at_data[:, 0], at_data[:, 1])
    # a smoother summarises the data: it never draws a trend outside their range
    return grid, np.clip(fitted, y.min(), y.max())


def plot_distributions(
    table: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    group: str | None = None,
    bins: int = 30,
    space: SpaceLike = None,
) -> Figure:
    """Histograms of the factors and the response, optionally overlaid by group.

    Parameters
    ----------
    table : pandas.DataFrame
        A batch table.
    columns : sequence of str, optional
        Columns to draw; default the space's factors and its response when present.
    group : str, optional
        Group column whose levels are overlaid in each panel.
    bins : int, default 30
        Histogram bins (shared across groups in a panel).
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per column, x axes labelled with units.
    """
    sp = resolve_space(space)
    df = _prepare(table, space=sp)
    _check_group(df, group)
    numeric = _numeric_columns(df, sp)
    cols = list(columns) if columns is not None else numeric
    bad = [c for c in cols if c not in numeric]
    if bad:
        raise ValueError(f"columns {bad} are not factors or the response of the table {numeric}")
    ncol = min(3, len(cols))
    nrow = int(np.ceil(len(cols) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), squeeze=False)
    for ax, col in zip(axes.flat, cols, strict=False):
        values = df[col].to_numpy()
        finite = values[np.isfinite(values)]
        edges = np.histogram_bin_edges(finite, bins=bins) if len(finite) else bins
        if group is None:
            ax.hist(finite, bins=edges, color="C0", alpha=0.8)
        else:
            for i, (level, sub) in enumerate(df.groupby(group, sort=True)):
                v = sub[col].to_numpy()
                ax.hist(v[np.isfinite(v)], bins=edges, alpha=0.5, color=f"C{i}", label=str(level))
        ax.set_xlabel(sp.axis_label(col))
        ax.set_ylabel("batches")
    for ax in list(axes.flat)[len(cols) :]:
        ax.set_visible(False)
    if group is not None:
        axes.flat[0].legend(title=group, fontsize="small")
    fig.tight_layout()
    return fig


def plot_correlation(
    table: pd.DataFrame,
    *,
    method: str = "spearman",
    ax: Axes | None = None,
    space: SpaceLike = None,
) -> Axes:
    """Heatmap of the correlations between factors and the response.

    Parameters
    ----------
    table : pandas.DataFrame
        A batch table.
    method : {"spearman", "pearson", "kendall"}, default "spearman"
        Correlation coefficient (pairwise complete observations).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made if omitted.
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).

    Returns
    -------
    matplotlib.axes.Axes
        Annotated heatmap; constant columns show as blank (undefined correlation).
    """
    methods = ("spearman", "pearson", "kendall")
    if method not in methods:
        raise ValueError(f"method={method!r}; expected one of {methods}")
    sp = resolve_space(space)
    df = _prepare(table, space=sp)
    cols = _numeric_columns(df, sp)
    data = df[cols].replace([np.inf, -np.inf], np.nan)
    std = data.std()
    varying = [c for c in cols if std[c] > 0]
    corr = pd.DataFrame(np.nan, index=cols, columns=cols)
    if len(varying) >= 2:
        corr.loc[varying, varying] = data[varying].corr(method=method).to_numpy()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(corr.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="RdBu_r")
    labels = [sp.axis_label(c) for c in cols]
    ax.set_xticks(range(len(cols)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(cols)), labels)
    for i in range(len(cols)):
        for j in range(len(cols)):
            value = corr.iat[i, j]
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize="small")
    ax.figure.colorbar(im, ax=ax, label=f"{method} correlation")
    ax.set_title(f"{method.capitalize()} correlation")
    return ax


def plot_yield_vs_parameter(
    table: pd.DataFrame,
    parameter: str,
    *,
    group: str | None = "scale",
    frac: float = 0.5,
    max_points: int = 5000,
    random_seed: int | None = 0,
    ax: Axes | None = None,
    space: SpaceLike = None,
    outliers: Iterable[Any] | None = None,
) -> Axes:
    """Scatter of the response against one factor, coloured by group, with a robust smoother.

    Parameters
    ----------
    table : pandas.DataFrame
        A batch table with the response column.
    parameter : str
        One of the space's factors.
    group : str or None, default "scale"
        Group column for colours and one smoother per level; None draws one cloud. Left at
        its default, a table without ``scale`` is coloured by the space's outermost group
        present when the space declares no ``scale``, else drawn as one cloud.
    frac : float, default 0.5
        Span of the LOWESS smoother (see :func:`smooth`).
    max_points : int, default 5000
        At most this many points are drawn (a seeded subsample).
    random_seed : int or None, default 0
        Seed of the subsample.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).
    outliers : iterable of batch ids, optional
        Batches the cleaner flagged (e.g. a contaminated batch at a tenth of the usual
        titer): drawn as crosses and left out of the smoothers, which a few such batches in a
        small group would otherwise drag down. Ids not in the table are ignored.

    Returns
    -------
    matplotlib.axes.Axes
    """
    sp = resolve_space(space)
    if parameter not in sp.factor_names:
        raise ValueError(f"parameter={parameter!r}; expected one of {list(sp.factor_names)}")
    flag_index = _flagged_index(table, outliers, sp)
    df = _prepare(table, need_response=True, space=sp)
    group = _default_group(df, group, sp)
    _check_group(df, group)
    if len(df) > max_points:
        df = df.sample(max_points, random_state=np.random.default_rng(random_seed))
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.8))
    flagged = pd.Series(df.index.isin(flag_index), index=df.index)
    levels = [(None, df)] if group is None else list(df.groupby(group, sort=True))
    for i, (level, sub) in enumerate(levels):
        off = flagged.loc[sub.index].to_numpy()
        x = sub[parameter].to_numpy()
        y = sub[sp.response.name].to_numpy()
        label = "batches" if level is None else str(level)
        ax.scatter(x[~off], y[~off], s=8, alpha=0.4, color=f"C{i}", label=label)
        if off.any():
            ax.scatter(x[off], y[off], s=28, marker="x", color=f"C{i}", lw=1.2)
        gx, gy = smooth(x[~off], y[~off], frac=frac, random_seed=random_seed)
        if len(gx):
            ax.plot(gx, gy, color=f"C{i}", lw=2)
    ax.set_xlabel(sp.axis_label(parameter))
    ax.set_ylabel(sp.axis_label(sp.response.name))
    handles, _ = ax.get_legend_handles_labels()
    smoother = "LOWESS smoother" + (" per group" if group is not None else "")
    handles.append(Line2D([], [], color="0.3", lw=2, label=smoother))
    if flagged.any():
        handles.append(
            Line2D(
                [], [], marker="x", color="0.3", ls="none", label="flagged outlier (not smoothed)"
            )
        )
    ax.legend(handles=handles, title=group, fontsize="small")
    return ax


def _flagged_index(
    table: pd.DataFrame, outliers: Iterable[Any] | None, sp: ProcessSpace
) -> pd.Index:
    """Index labels of the rows whose batch id is among ``outliers`` (none without ids)."""
    if outliers is None:
        return pd.Index([])
    mapped, _ = schema.map_columns(table, space=sp)
    if sp.batch_id not in mapped.columns:
        return pd.Index([])
    wanted = {str(b) for b in outliers}
    return mapped.index[mapped[sp.batch_id].astype(str).isin(wanted)]


def plot_yield_vs_parameters(
    table: pd.DataFrame,
    *,
    group: str | None = "scale",
    frac: float = 0.5,
    space: SpaceLike = None,
    outliers: Iterable[Any] | None = None,
) -> Figure:
    """One :func:`plot_yield_vs_parameter` panel per factor (two panels a row).

    Parameters
    ----------
    table : pandas.DataFrame
        A batch table with the response column.
    group : str or None, default "scale"
        Group column for colours and smoothers.
    frac : float, default 0.5
        Span of the smoother.
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).
    outliers : iterable of batch ids, optional
        Batches drawn as crosses and left out of the smoothers (see
        :func:`plot_yield_vs_parameter`).

    Returns
    -------
    matplotlib.figure.Figure
        One visible panel per factor.
    """
    sp = resolve_space(space)
    factors = sp.factor_names
    ncol = min(2, len(factors))
    nrow = int(np.ceil(len(factors) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.75 * nrow), squeeze=False)
    for ax, p in zip(axes.flat, factors, strict=False):
        plot_yield_vs_parameter(
            table, p, group=group, frac=frac, ax=ax, space=sp, outliers=outliers
        )
    for ax in list(axes.flat)[len(factors) :]:
        ax.remove()
    fig.tight_layout()
    return fig


def plot_pairs(
    table: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    group: str | None = None,
    max_points: int = 2000,
    random_seed: int | None = 0,
    space: SpaceLike = None,
) -> Figure:
    """Pair plot: histograms on the diagonal, scatter plots off it.

    Parameters
    ----------
    table : pandas.DataFrame
        A batch table.
    columns : sequence of str, optional
        Columns; default the space's factors and its response when present.
    group : str, optional
        Group column for colours.
    max_points : int, default 2000
        At most this many points (a seeded subsample).
    random_seed : int or None, default 0
        Seed of the subsample.
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).

    Returns
    -------
    matplotlib.figure.Figure
    """
    sp = resolve_space(space)
    df = _prepare(table, space=sp)
    _check_group(df, group)
    numeric = _numeric_columns(df, sp)
    cols = list(columns) if columns is not None else numeric
    bad = [c for c in cols if c not in numeric]
    if bad:
        raise ValueError(f"columns {bad} are not factors or the response of the table {numeric}")
    if len(df) > max_points:
        df = df.sample(max_points, random_state=np.random.default_rng(random_seed))
    k = len(cols)
    fig, axes = plt.subplots(k, k, figsize=(2.2 * k, 2.2 * k), squeeze=False)
    levels = [(None, df)] if group is None else list(df.groupby(group, sort=True))
    for i, ci in enumerate(cols):
        for j, cj in enumerate(cols):
            ax = axes[i, j]
            for c, (level, sub) in enumerate(levels):
                if i == j:
                    v = sub[ci].to_numpy()
                    ax.hist(v[np.isfinite(v)], bins=20, alpha=0.5, color=f"C{c}")
                else:
                    lab = None if level is None or (i, j) != (1, 0) else str(level)
                    ax.scatter(sub[cj], sub[ci], s=4, alpha=0.4, color=f"C{c}", label=lab)
            if i == k - 1:
                ax.set_xlabel(sp.axis_label(cj), fontsize="small")
            if j == 0:
                ax.set_ylabel(sp.axis_label(ci), fontsize="small")
            ax.tick_params(labelsize="x-small")
            # few ticks: the small panels would otherwise print overlapping numbers
            ax.xaxis.set_major_locator(MaxNLocator(3))
            ax.yaxis.set_major_locator(MaxNLocator(3))
    if group is not None and k > 1:
        fig.legend(*axes[1, 0].get_legend_handles_labels(), title=group, loc="upper right")
    fig.tight_layout()
    return fig


class EDAResult(NamedTuple):
    """Result of :func:`run_eda` (a NamedTuple: ``summary, figures = run_eda(table)``).

    Attributes
    ----------
    summary : pandas.DataFrame
        :func:`summarize` by the group columns.
    figures : dict of str to matplotlib.figure.Figure
        ``distributions``, ``correlation``, ``yield_vs_parameters`` (when the table has the
        response) and ``pairs``; with ``out_dir`` each is saved as ``<name>.png``.
    """

    summary: pd.DataFrame
    figures: dict[str, Figure]


def run_eda(
    table: pd.DataFrame,
    out_dir: str | Path | None = None,
    *,
    groups: Sequence[str] | None = None,
    group: str | None = "scale",
    dpi: int = 100,
    space: SpaceLike = None,
    outliers: Iterable[Any] | None = None,
) -> EDAResult:
    """Summary table and the standard EDA figures; PNGs saved when ``out_dir`` is given.

    Parameters
    ----------
    table : pandas.DataFrame
        A batch table.
    out_dir : str or path, optional
        Folder for ``<name>.png`` files and ``summary.csv`` (created if needed).
    groups : sequence of str, optional
        Group columns for the summary; default the space's group columns present except its
        innermost one (``campaign`` in the default space: many small groups) unless it is the
        only one.
    group : str or None, default "scale"
        Group column for colours in the figures (ignored when absent; see
        :func:`plot_yield_vs_parameter` for the default).
    dpi : int, default 100
        Resolution of saved PNGs.
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).
    outliers : iterable of batch ids, optional
        Batches the cleaner flagged: crosses in the yield-vs-parameter panels, left out of
        their smoothers.

    Returns
    -------
    EDAResult
        ``summary`` and ``figures``. With ``out_dir``, ``out_dir/<figure name>.png`` and
        ``out_dir/summary.csv`` are written. The caller closes the figures.
    """
    sp = resolve_space(space)
    df = _prepare(table, space=sp)
    # the table is mapped now: the figures below read it against the bare space
    bare = sp.with_changes(columns=())
    if groups is None:
        present = sp.group_columns(df)
        inner = sp.groups[-1] if sp.groups else None
        groups = [g for g in present if g != inner] or present
    group = _default_group(df, group, sp)
    if group is not None and group not in df.columns:
        group = None
    summary = summarize(df, groups, space=bare)
    figures: dict[str, Figure] = {
        "distributions": plot_distributions(df, group=group, space=bare),
        "correlation": plot_correlation(df, space=bare).figure,
    }
    if sp.response.name in df.columns:
        ids = schema.map_columns(table, space=sp)[0].get(sp.batch_id)
        figures["yield_vs_parameters"] = plot_yield_vs_parameters(
            df if ids is None else df.assign(**{sp.batch_id: ids.loc[df.index]}),
            group=group,
            space=bare,
            outliers=outliers,
        )
    figures["pairs"] = plot_pairs(df, group=group, space=bare)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, fig in figures.items():
            fig.savefig(out / f"{name}.png", dpi=dpi, bbox_inches="tight")
        summary.to_csv(out / "summary.csv", index=False)
        _log.info("EDA written to %s", out)
    return EDAResult(summary, figures)
