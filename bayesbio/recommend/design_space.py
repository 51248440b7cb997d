"""Bayesian design space: where a new batch meets the spec with the required probability.

:func:`design_space` evaluates ``P(meet spec | data)`` on a grid over the search box and on
slices through a centre setpoint, and finds the proven acceptable ranges (PAR): the largest
axis-aligned box of grid points all inside the design space (:func:`largest_box`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bayesbio.checks import check_fraction, check_int
from bayesbio.recommend.constraints import Constraints, check_execution_sd
from bayesbio.recommend.context import Context, build_context
from bayesbio.recommend.messages import EmptyDesignSpaceWarning, emit, point_text
from bayesbio.recommend.objectives import check_spec
from bayesbio.recommend.recommendation import Recommendation, recommend
from bayesbio.recommend.sampler import Evaluator, seed_pair
from bayesbio.recommend.support import outside, sd_ratio_fn
from bayesbio.space import ProcessSpace

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel

#: Most grid points of a design-space grid, and most boxes enumerated by :func:`largest_box`
#: over the outer axes; the resolution is lowered for many free factors to stay within both.
MAX_GRID_POINTS: int = 50_000
MAX_OUTER_BOXES: int = 20_000


@dataclass(frozen=True)
class DesignSpace:
    """Setpoints where a new batch meets the spec with at least the required probability.

    Attributes
    ----------
    spec : float
        Specification in the response's unit; met when ``y >= spec`` (or ``y <= spec`` for a
        response to minimise).
    prob : float
        Required probability ``P(meet spec | data)``.
    grid : pandas.DataFrame
        Tidy grid over the search bounds, cut to the box around the data support when the
        guard is on (``settings["grid_bounds"]``; fixed factors at their values): the factors,
        ``prob`` (P(meet spec)), ``expected_yield`` (expected response), ``distance`` (support
        distance used by the guard), ``sd_ratio`` (the model-based support measure),
        ``supported`` (within both support limits, as :func:`recommend` holds its setpoints)
        and ``inside`` (``prob >= prob`` and, with the guard on, supported).
    maps : dict
        Slices through ``center``: ``{(f1, f2): DataFrame}`` for every pair of free factors (a
        finer 2-D grid of ``f1, f2, prob, expected_yield, supported, inside``); with a single
        free factor one 1-D profile ``{(f1,): DataFrame}``; empty with none.
    slices : dict
        For every key of ``maps``: where the slice lies, ``{factor: value}`` for the factors
        not varied in it (held at ``center``).
    par : pandas.DataFrame
        Proven acceptable ranges: per factor ``low``, ``high`` (domain units), ``unit`` and
        ``fixed``; the largest axis-aligned box of grid points that are all inside (NaN when
        the design space is empty).
    center : pandas.Series
        The setpoint the slices go through.
    training : pandas.DataFrame
        The target group's training setpoints (for plots).
    group : dict
        Target group; ``kind`` how it was predicted.
    settings : dict
        Arguments used (``resolution`` is the one used, lowered for many free factors).
    space : ProcessSpace or None
        The model's process space (None: the default space).
    """

    spec: float
    prob: float
    grid: pd.DataFrame
    maps: dict[tuple[str, ...], pd.DataFrame]
    par: pd.DataFrame
    center: pd.Series
    training: pd.DataFrame
    group: dict[str, str]
    kind: str
    settings: dict[str, Any] = field(default_factory=dict)
    slices: dict[tuple[str, ...], dict[str, float]] = field(default_factory=dict)
    space: ProcessSpace | None = None

    @property
    def share_inside(self) -> float:
        """Share of grid points inside the design space."""
        return float(self.grid["inside"].mean())

    def to_frame(self) -> pd.DataFrame:
        """Return the tidy grid (see ``grid``)."""
        return self.grid.copy()

    def __repr__(self) -> str:
        """Return a summary for a notebook: spec, probability, share inside and the ranges."""
        meets = ">=" if self.settings.get("direction", "maximise") == "maximise" else "<="
        ranges = ", ".join(
            f"{name} {low:.4g}-{high:.4g}"
            for name, low, high in zip(
                self.par.index, self.par["low"], self.par["high"], strict=True
            )
            if np.isfinite(low)
        )
        return (
            f"DesignSpace(P(response {meets} {self.spec:g}) >= {self.prob:g}, group "
            f"{self.group or 'population'}: {int(self.grid['inside'].sum())} of {len(self.grid)} "
            f"grid points inside ({100 * self.share_inside:.1f} %); proven acceptable ranges: "
            f"{ranges or 'none'})"
        )

    def plot(self, *, pairs: Sequence[tuple[str, ...]] | None = None) -> Figure:
        """Plot the slices; see :func:`~bayesbio.recommend.plots.plot_design_space`."""
        from bayesbio.recommend.plots import plot_design_space

        return plot_design_space(self, pairs=pairs)


def design_space(
    model: YieldModel | Any,
    spec: float,
    prob: float = 0.9,
    *,
    group: Mapping[str, Any] | None = None,
    resolution: int = 9,
    map_resolution: int = 25,
    constraints: Constraints | Mapping[str, Any] | None = None,
    center: Recommendation | Mapping[str, float] | None = None,
    noise: bool = True,
    kind: str = "auto",
    execution_sd: Mapping[str, float] | None = None,
    n_draws: int = 1000,
    transfer_risk: bool = False,
    random_seed: int | np.random.Generator | None = None,
) -> DesignSpace:
    """Find the setpoints where ``P(a new batch meets spec | data) >= prob``.

    A batch meets the spec when its response is ``>= spec`` (``<= spec`` for a response the
    model's space declares to minimise).

    Parameters
    ----------
    model : fitted yield model
        Any model following the bayesbio model protocol; its process space ``model.space_``
        gives the factors, ranges, units and direction.
    spec : float
        Specification in the response's unit.
    prob : float, default 0.9
        Required probability of meeting ``spec``, in (0, 1).
    group : mapping of str to str, optional
        Target group (as in :func:`recommend`).
    resolution : int, default 9
        Grid points per free factor of the full grid (``resolution ** n_free`` setpoints);
        lowered automatically for many free factors (the one used is in ``settings``). With
        the guard on the grid spans the search bounds cut to the smallest box around the data
        support (outside it no point can be inside the design space); the slices still span
        the whole search bounds.
    map_resolution : int, default 25
        Grid points per axis of each slice.
    constraints : Constraints or mapping, optional
        Bounds and fixed factors span the grid; with the guard on, unsupported grid points
        are never inside the design space.
    center : Recommendation or mapping of str to float, optional
        Setpoint the slices go through (the other factors are held there). Default: the
        :func:`recommend` setpoint maximising ``P(meet spec)``. A mapping must give every
        factor not fixed.
    noise : bool, default True
        Include new-batch noise (the probability is for one new batch).
    kind : {"auto", "existing", "new_group", "population"}, default "auto"
        Prediction kind (as in :func:`recommend`).
    execution_sd : mapping of str to float, optional
        Setpoint execution SDs per factor (as in :func:`recommend`).
    n_draws : int, default 1000
        Predictive draws per setpoint.
    transfer_risk : bool, default False
        The target group's own slope deviation in the draws (as in :func:`recommend`).
    random_seed : int, numpy.random.Generator or None, default None
        Seed.

    Returns
    -------
    DesignSpace
        Tidy grid, slices (2-D for every pair of free factors, a 1-D profile for one free
        factor) with their location, and proven acceptable ranges (PAR).

    Notes
    -----
    The proven acceptable ranges are the largest axis-aligned box (most grid points) whose
    faces lie on grid points and whose grid points are all inside the design space; the search
    over all such boxes is exhaustive (a summed-area table over the last two factors,
    enumeration over the others). The box found on the grid is then searched again on a
    grid of the same resolution over that box widened by one grid step on every side
    (``settings["par_zoom"]`` gives that grid's bounds), so its faces come closer to the
    design space's boundary: a design space one grid step thin in a factor gets a range
    there instead of a single value. Between grid points the box is still an interpolation:
    raise ``resolution`` to tighten it further.
    """
    prob = check_fraction("prob", prob)
    resolution = check_int("resolution", resolution, minimum=2)
    map_resolution = check_int("map_resolution", map_resolution, minimum=2)
    ctx = build_context(model, group, kind, constraints)
    space = ctx.space
    factors = ctx.factors
    spec_value = check_spec(spec, "prob_spec", space)
    assert spec_value is not None
    exec_sd = check_execution_sd(execution_sd, space)
    rng, seed = seed_pair(random_seed)
    if center is None:
        center_point = recommend(
            model,
            group=group,
            objective="prob_spec",
            spec=spec_value,
            constraints=constraints,
            noise=noise,
            kind=kind,
            execution_sd=execution_sd,
            n_draws=n_draws,
            transfer_risk=transfer_risk,
            random_seed=rng,
        ).setpoint.to_numpy(dtype=float)
    elif isinstance(center, Recommendation):
        center_point = center.setpoint.reindex(factors).to_numpy(dtype=float)
        if np.isnan(center_point).any():
            raise ValueError(
                f"center: the recommendation's setpoint {list(center.setpoint.index)} lacks "
                f"factors of this model's space {factors}"
            )
    else:
        center_point = _center_from_mapping(center, ctx)
    center_point = ctx.clip(center_point[None])[0]
    ev = Evaluator(
        model, ctx, n_draws=n_draws, seed=seed, execution_sd=exec_sd, transfer_risk=transfer_risk
    )
    free = ctx.res.free
    used = grid_resolution(resolution, len(free))
    lo, hi, box_note = _grid_bounds(ctx)
    axes = [
        np.linspace(lo[j], hi[j], used) if j in free else np.array([ctx.res.lo[j]])
        for j in range(space.k)
    ]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, space.k)
    grid = _prob_table(ev, ctx, mesh, spec_value, prob, noise)
    maps, slices = _slices(ev, ctx, center_point, spec_value, prob, noise, map_resolution)
    par, zoomed = _refined_par(ev, ctx, grid, axes, spec_value, prob, noise)
    training = ctx.table.loc[ctx.in_group, factors].reset_index(drop=True)
    settings = {
        "resolution": used,
        "resolution_asked": resolution,
        "map_resolution": map_resolution,
        "direction": space.response.direction,
        "noise": bool(noise),
        "execution_sd": {p: float(s) for p, s in zip(factors, exec_sd, strict=True) if s > 0},
        "constraints": ctx.res.constraints,
        "max_distance": ctx.res.max_distance,
        "n_draws": n_draws,
        "par_zoom": zoomed,
        "transfer_risk": None if ev.slopes is None else ev.slopes.describe(),
        "random_seed": random_seed if isinstance(random_seed, int | None) else "generator",
        "notes": list(ctx.notes),
    }
    settings["grid_bounds"] = {factors[j]: (float(lo[j]), float(hi[j])) for j in free}
    if box_note:
        settings["notes"].append(box_note)
    if not grid["inside"].any():  # said out loud: an all-NaN table is easy to miss
        settings["notes"].append(_empty_note(ctx, grid, prob))
        emit([settings["notes"][-1]], EmptyDesignSpaceWarning)
    else:
        settings["notes"] += _par_notes(ctx, grid, par, center_point)
    if used < resolution:
        settings["notes"].append(
            f"resolution lowered from {resolution} to {used} for {len(free)} free factors "
            f"({used}**{len(free)} = {used ** len(free)} grid points)"
        )
    return DesignSpace(
        spec=spec_value,
        prob=prob,
        grid=grid,
        maps=maps,
        par=par,
        center=pd.Series(center_point, index=factors, name="center"),
        training=training,
        group=dict(ctx.group),
        kind=ctx.kind,
        settings=settings,
        slices=slices,
        space=space,
    )


def _grid_bounds(ctx: Context) -> tuple[np.ndarray, np.ndarray, str]:
    """Bounds of the full grid: the search box, cut to the data support's box (guard on).

    With the guard on, grid points outside the support can never be inside the design
    space; a grid over the whole operating box would spend nearly all its points there (a
    group's routine spread of setpoints is a small part of the box) and leave the proven
    acceptable ranges to one or two points. Returns the bounds and a note naming the factors
    whose range was cut ("" when none was).
    """
    lo, hi = ctx.res.lo.astype(float).copy(), ctx.res.hi.astype(float).copy()
    if not ctx.res.guard:
        return lo, hi, ""
    s_lo, s_hi = ctx.support.bounding_box(ctx.res.support, ctx.res.max_distance)
    cut = []
    for k, j in enumerate(ctx.support.dims):
        if j not in ctx.res.free:
            continue
        new_lo, new_hi = max(lo[j], s_lo[k]), min(hi[j], s_hi[k])
        if new_lo < new_hi and (new_lo, new_hi) != (lo[j], hi[j]):
            lo[j], hi[j] = new_lo, new_hi
            cut.append(f"{ctx.factors[j]} {new_lo:.4g}-{new_hi:.4g}")
    note = (
        "grid cut to the box around the data support (points outside it cannot be inside "
        "the design space): " + ", ".join(cut)
        if cut
        else ""
    )
    return lo, hi, note


def _center_from_mapping(center: Any, ctx: Context) -> np.ndarray:
    factors = ctx.factors
    if not isinstance(center, Mapping):
        raise ValueError(
            "center must be a Recommendation or a mapping from factor names to values, got "
            f"{type(center).__name__}"
        )
    try:
        given = {str(k): float(v) for k, v in center.items()}
    except (TypeError, ValueError):
        raise ValueError(f"center values must be numbers, got {dict(center)!r}") from None
    fixed = {factors[j]: v for j, v in ctx.res.fixed.items()}
    unknown = [k for k in given if k not in factors]
    missing = [p for p in factors if p not in given and p not in fixed]
    if unknown or missing:
        raise ValueError(
            f"center must give every factor {factors} (fixed ones may be left out); unknown "
            f"{unknown}, missing {missing}"
        )
    return np.array([given.get(p, fixed.get(p, np.nan)) for p in factors])


def _slices(
    ev: Evaluator,
    ctx: Context,
    center: np.ndarray,
    spec: float,
    prob: float,
    noise: bool,
    resolution: int,
) -> tuple[dict[tuple[str, ...], pd.DataFrame], dict[tuple[str, ...], dict[str, float]]]:
    """Slices through ``center``: a 2-D map per pair of free factors, or one 1-D profile."""
    factors = ctx.factors
    free = [int(j) for j in ctx.res.free]
    if len(free) >= 2:
        keys = list(itertools.combinations(free, 2))
    elif len(free) == 1:
        keys = [(free[0],)]
    else:
        return {}, {}
    blocks = []
    for key in keys:
        axes = [np.linspace(ctx.res.lo[j], ctx.res.hi[j], resolution) for j in key]
        pts = np.tile(center, (resolution ** len(key), 1))
        mesh = np.meshgrid(*axes, indexing="ij")
        for j, values in zip(key, mesh, strict=True):
            pts[:, j] = values.ravel()
        blocks.append(pts)
    table = _prob_table(ev, ctx, np.vstack(blocks), spec, prob, noise)
    maps: dict[tuple[str, ...], pd.DataFrame] = {}
    slices: dict[tuple[str, ...], dict[str, float]] = {}
    start = 0
    for key, pts in zip(keys, blocks, strict=True):
        names = tuple(factors[j] for j in key)
        part = table.iloc[start : start + len(pts)]
        start += len(pts)
        cols = [*names, "prob", "expected_yield", "supported", "inside"]
        at = {p: float(center[j]) for j, p in enumerate(factors) if j not in key}
        frame = part[cols].reset_index(drop=True)
        frame.attrs["slice"] = at
        maps[names] = frame
        slices[names] = at
    return maps, slices


def _prob_table(
    ev: Evaluator, ctx: Context, points: np.ndarray, spec: float, prob: float, noise: bool
) -> pd.DataFrame:
    p_meet, mean, ratio = [], [], []
    ratio_of = sd_ratio_fn(ev, ctx)
    step = 2048
    for start in range(0, len(points), step):
        chunk = points[start : start + step]
        y = ev.raw(chunk, noise=noise)
        p_meet.append(ctx.meets(y, spec).mean(axis=0))
        # the expected response: no new-batch noise (heavy-tailed noise has no usable mean)
        f = ev.raw(chunk, noise=False) if noise else y
        mean.append(f.mean(axis=0))
        ratio.append(ratio_of(f))
    out = pd.DataFrame(points, columns=ctx.factors)
    out["prob"] = np.concatenate(p_meet)
    out["expected_yield"] = np.concatenate(mean)
    out["distance"] = ctx.support.guard_distance(points, ctx.res.support)
    out["sd_ratio"] = np.concatenate(ratio)
    # the support recommend() holds to: the distance limit and the model-based SD ratio
    out["supported"] = outside(ctx, points, out["sd_ratio"].to_numpy()) <= 0
    ok = out["prob"] >= prob
    out["inside"] = ok & out["supported"] if ctx.res.guard else ok
    return out


def _par_notes(
    ctx: Context, grid: pd.DataFrame, par: pd.DataFrame, center: np.ndarray
) -> list[str]:
    """Return notes on what the ranges hide: a point-sized box, a centre outside them."""
    free = [ctx.factors[j] for j in ctx.res.free]
    notes = []
    n_in, n_all = int(grid["inside"].sum()), len(grid)
    if free and (par.loc[free, "low"] == par.loc[free, "high"]).all():
        notes.append(
            f"the design space is a single grid point ({n_in} of {n_all} grid points inside): no "
            "range of setpoints holds the spec with the required probability, so its proven "
            f"acceptable ranges are a point; {_relax(ctx)} before using it"
        )
    else:
        point = [f for f in free if par.loc[f, "low"] == par.loc[f, "high"]]
        if point:
            notes.append(
                f"the proven acceptable range of {point} has zero width: the largest box of "
                "the design space is one grid step thin there: only that value is proven, "
                "with the others anywhere within their proven ranges; a slice plot shows "
                f"where the design space runs ({_relax(ctx)} for a usable range)"
            )
    low, high = par["low"].to_numpy(dtype=float), par["high"].to_numpy(dtype=float)
    out = [
        ctx.factors[j]
        for j in ctx.res.free
        if not low[j] - 1e-9 * abs(low[j]) <= center[j] <= high[j] + 1e-9 * abs(high[j])
    ]
    if out:
        notes.append(
            f"the centre (the recommended setpoint unless given) lies outside the proven "
            f"acceptable ranges in {out}: the ranges are the largest box of the design space, "
            "elsewhere"
        )
    return notes


def _empty_note(ctx: Context, grid: pd.DataFrame, prob: float) -> str:
    """Say why the design space is empty: the best P(meet spec) where the guard allowed."""
    pool = grid[grid["supported"]] if ctx.res.guard else grid
    where = "supported grid point" if ctx.res.guard else "grid point"
    if pool.empty:
        return f"empty design space: no {where} (the guard's support holds none of the grid)"
    best = pool["prob"].idxmax()
    at = point_text(ctx.space, grid.loc[best, ctx.factors].to_numpy(dtype=float))
    return (
        f"empty design space: no {where} reaches P(meet spec) >= {prob:g}; the highest is "
        f"{grid.loc[best, 'prob']:.3f} at {at} ({_relax(ctx)}, or run batches where the "
        "model is unsure)"
    )


def _relax(ctx: Context) -> str:
    """How to widen a design space: a looser spec (lower for a maximum, higher for a minimum)."""
    way = "lower" if ctx.sign > 0 else "raise"
    return f"{way} the spec or lower the probability"


def _refined_par(
    ev: Evaluator,
    ctx: Context,
    grid: pd.DataFrame,
    axes: list[np.ndarray],
    spec: float,
    prob: float,
    noise: bool,
) -> tuple[pd.DataFrame, dict[str, tuple[float, float]] | None]:
    """Proven acceptable ranges: the largest box on the grid, searched again zoomed in.

    The zoom grid has the full grid's resolution over the box found there, widened by one
    grid step each way (so it is never coarser than the full grid); the box found on it is
    checked at every one of its grid points. Returns the ranges and the zoom grid's bounds
    per free factor (None when nothing is inside or no factor is free).
    """
    par = _par(ctx, grid, axes)
    free = ctx.res.free
    if len(free) == 0 or par["low"].isna().all():
        return par, None
    zoom_axes = []
    for j, axis in enumerate(axes):
        if j not in free:
            zoom_axes.append(axis)
            continue
        i_lo = int(np.searchsorted(axis, par["low"].iloc[j] - 1e-12 * abs(axis).max()))
        i_hi = int(np.searchsorted(axis, par["high"].iloc[j] - 1e-12 * abs(axis).max()))
        lo, hi = axis[max(i_lo - 1, 0)], axis[min(i_hi + 1, len(axis) - 1)]
        zoom_axes.append(np.linspace(lo, hi, len(axis)))
    mesh = np.stack(np.meshgrid(*zoom_axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    zoom = _prob_table(ev, ctx, mesh, spec, prob, noise)
    bounds = {ctx.factors[j]: (float(zoom_axes[j][0]), float(zoom_axes[j][-1])) for j in free}
    if not zoom["inside"].any():  # the full grid's points are not on the zoom grid
        return par, bounds
    fine = _par(ctx, zoom, zoom_axes)
    return fine, bounds


def _par(ctx: Context, grid: pd.DataFrame, axes: list[np.ndarray]) -> pd.DataFrame:
    factors = ctx.factors
    free = ctx.res.free
    shape = tuple(len(a) for a in axes)
    inside = grid["inside"].to_numpy().reshape(shape)
    inside = inside.reshape(tuple(shape[j] for j in free))
    box = largest_box(inside)
    low = np.full(len(factors), np.nan)
    high = np.full(len(factors), np.nan)
    if box is not None:
        for k, j in enumerate(free):
            low[j], high[j] = axes[j][box[0][k]], axes[j][box[1][k]]
        for j, v in ctx.res.fixed.items():
            low[j] = high[j] = v
    return pd.DataFrame(
        {
            "low": low,
            "high": high,
            "unit": [ctx.space.units[p] for p in factors],
            "fixed": [j in ctx.res.fixed for j in range(len(factors))],
        },
        index=pd.Index(factors, name="parameter"),
    )


def largest_box(ok: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Largest axis-aligned box of True cells in a boolean grid (any number of dimensions).

    Exhaustive over all boxes whose faces lie on grid points: the first ``d - 2`` axes are
    enumerated (with an OR-collapse of the failing cells), the last two are solved at once with
    a 2-D summed-area table. Size is the number of grid points in the box; ties go to the box
    found first. Returns ``(low_index, high_index)`` per axis, or None if no cell is True.
    """
    if not ok.any():
        return None
    d = ok.ndim
    if d == 0:
        return np.array([], dtype=int), np.array([], dtype=int)
    bad = ~ok
    if d == 1:
        bad = bad[:, None]
    shape = bad.shape
    outer, inner = shape[:-2], shape[-2:]
    pairs2 = [
        np.array([(lo, hi) for lo in range(n) for hi in range(lo, n)], dtype=int) for n in inner
    ]
    # all (row-pair, col-pair) combinations for the last two axes
    r = pairs2[0][:, None, :]
    c = pairs2[1][None, :, :]
    size2 = (r[..., 1] - r[..., 0] + 1) * (c[..., 1] - c[..., 0] + 1)
    best_size, best = 0, None
    outer_pairs = [[(lo, hi) for lo in range(n) for hi in range(lo, n)] for n in outer]
    for combo in itertools.product(*outer_pairs):
        size_outer = int(np.prod([hi - lo + 1 for lo, hi in combo])) if combo else 1
        if size_outer * inner[0] * inner[1] <= best_size:
            continue
        sl = tuple(slice(lo, hi + 1) for lo, hi in combo)
        collapsed = bad[sl].any(axis=tuple(range(len(combo)))) if combo else bad
        sat = np.zeros((inner[0] + 1, inner[1] + 1), dtype=int)
        sat[1:, 1:] = collapsed.cumsum(0).cumsum(1)
        count = (
            sat[r[..., 1] + 1, c[..., 1] + 1]
            - sat[r[..., 0], c[..., 1] + 1]
            - sat[r[..., 1] + 1, c[..., 0]]
            + sat[r[..., 0], c[..., 0]]
        )
        sizes = np.where(count == 0, size2, 0) * size_outer
        i = np.unravel_index(int(sizes.argmax()), sizes.shape)
        if sizes[i] > best_size:
            best_size = int(sizes[i])
            lo = [p[0] for p in combo] + [pairs2[0][i[0]][0], pairs2[1][i[1]][0]]
            hi = [p[1] for p in combo] + [pairs2[0][i[0]][1], pairs2[1][i[1]][1]]
            best = (np.array(lo), np.array(hi))
    assert best is not None
    if d == 1:
        return best[0][:1], best[1][:1]
    return best


def grid_resolution(resolution: int, n_free: int) -> int:
    """Largest resolution <= ``resolution`` (and >= 2) whose grid and box search stay small."""
    r = int(resolution)
    while r > 2:
        pairs = r * (r + 1) // 2
        if r**n_free <= MAX_GRID_POINTS and pairs ** max(n_free - 2, 0) <= MAX_OUTER_BOXES:
            break
        r -= 1
    return r
