"""Search: Latin-hypercube candidates, a vectorised local pattern search and a polish.

Searches work in unit coordinates of the free factors (:meth:`~bayesbio.recommend.context.
Context.to_unit`) and call a score ``score(points) -> values`` (to maximise) on whole arrays
of setpoints, so each round of a search is one model call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import optimize
from scipy.stats import qmc

from bayesbio.recommend.context import Context

ScoreFn = Callable[[np.ndarray], np.ndarray]


def lhs(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Return a Latin hypercube of ``n`` points in ``[0, 1]^d``."""
    return qmc.LatinHypercube(d=d, rng=rng).random(n)


def local_search(
    score: ScoreFn,
    ctx: Context,
    starts: np.ndarray,
    rng: np.random.Generator,
    *,
    iterations: int = 6,
    n_local: int = 24,
    radius: float = 0.12,
    maxfev: int = 40,
) -> np.ndarray:
    """Refine ``starts`` (full setpoints); return the refined setpoints, best first.

    Vectorised pattern search: each round evaluates, in one call, the current best points and
    a Latin hypercube of ``n_local`` points in a box of half-width ``radius`` (unit scale)
    around each, keeps improvements and halves the box. Then Nelder-Mead polishes the best
    point (``maxfev`` one-row evaluations, same seed, so common random numbers).
    """
    d = len(ctx.res.free)
    if d == 0:
        return ctx.clip(starts[:1])
    u = ctx.to_unit(starts)
    b = len(u)
    best = score(ctx.to_points(u))
    for _ in range(iterations):
        cloud = (2.0 * lhs(n_local, d, rng) - 1.0) * radius
        cand = np.clip(u[:, None, :] + cloud[None, :, :], 0.0, 1.0).reshape(-1, d)
        values = score(ctx.to_points(np.vstack([u, cand])))
        current, values = values[:b], values[b:].reshape(b, n_local)
        j = values.argmax(axis=1)
        better = values[np.arange(b), j] > current
        u[better] = cand.reshape(b, n_local, d)[np.arange(b), j][better]
        best = np.where(better, values[np.arange(b), j], current)
        radius *= 0.5
    order = np.argsort(-best)
    u = u[order]
    if maxfev > 0:
        u0 = u[0]
        simplex = np.vstack([u0, np.clip(u0 + radius * 2 * np.eye(d), 0.0, 1.0)])
        simplex[1:][np.all(simplex[1:] == u0, axis=1)] -= radius * 2
        res = optimize.minimize(
            lambda x: -float(score(ctx.to_points(x))[0]),
            u0,
            method="Nelder-Mead",
            options={"maxfev": maxfev, "initial_simplex": np.clip(simplex, 0.0, 1.0)},
        )
        u = np.vstack([np.clip(res.x, 0.0, 1.0), u])
    return ctx.to_points(u)


def distinct_top(points: np.ndarray, values: np.ndarray, k: int, min_gap: float) -> np.ndarray:
    """Return indices of the ``k`` best rows at least ``min_gap`` apart (unit scale)."""
    chosen: list[int] = []
    for i in np.argsort(-values):
        if all(np.max(np.abs(points[i] - points[c])) >= min_gap for c in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return np.array(chosen, dtype=int)


def candidates(
    ctx: Context, r0: np.ndarray, n_candidates: int, rng: np.random.Generator
) -> np.ndarray:
    """Return the recipe, the group's setpoints (64 at most) and a Latin hypercube.

    Setpoints are clipped into the search box; duplicates are dropped; the recipe ``r0`` (shape
    ``(1, k)``) is row 0.
    """
    d = len(ctx.res.free)
    cands = ctx.to_points(lhs(n_candidates, d, rng)) if d else r0.copy()
    group_points = ctx.table.loc[ctx.in_group, ctx.factors].to_numpy(dtype=float)[:64]
    cands = np.unique(np.vstack([ctx.clip(group_points), cands]), axis=0)
    return np.vstack([r0, cands[~np.all(cands == r0, axis=1)]])
