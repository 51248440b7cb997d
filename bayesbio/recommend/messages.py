"""What a recommendation tells the user: warnings, with the factor and the numbers named.

Three warning categories, each also kept on the result (``Recommendation.warnings``):
:class:`ModelDiagnosticsWarning` (R-hat, ESS, divergences of the model behind the draws),
:class:`ExtrapolationWarning` (a setpoint outside the group's data support, naming the factors
farthest from the group's batches) and :class:`BoundWarning` (a factor on a bound of the search
box).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesbio.models._tables import ExtrapolationWarning as ExtrapolationWarning
from bayesbio.space import ProcessSpace, number_text, quantity_text, unit_suffix

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel
    from bayesbio.recommend.context import Context


class ModelDiagnosticsWarning(UserWarning):
    """The model's sampling diagnostics flag a problem; the recommendation carries it."""


class BoundWarning(UserWarning):
    """A recommended factor lies on a bound of the search box: the optimum may lie beyond."""


class EmptyDesignSpaceWarning(UserWarning):
    """No setpoint of the design-space grid meets the spec with the required probability."""


def emit(messages: Sequence[str], category: type[Warning]) -> None:
    """Issue each message as a warning of ``category`` (at the caller of the public function)."""
    for text in messages:
        warnings.warn(text, category, stacklevel=3)


def value_text(space: ProcessSpace, name: str, value: float) -> str:
    """``"Temperature 36.5 °C"``: a factor's label (without a bracketed unit), value, unit."""
    return quantity_text(space.label(name), value, space.units.get(name, ""))


def sentence(text: str) -> str:
    """End ``text`` with one full stop (a unit such as ``"% air sat."`` already has one)."""
    return text if text.endswith(".") else f"{text}."


def meet_text(space: ProcessSpace, spec: float) -> str:
    """``"P(titer >= 4.5 g/L)"``: meeting a spec, in the response's direction and unit."""
    r = space.response
    unit = unit_suffix(r.unit)
    return f"P({r.noun} {'>=' if r.maximise else '<='} {spec:g}{unit})"


def group_text(group: Mapping[str, Any] | None, kind: str | None = None) -> str:
    """``"scale 2000L, site A"`` (``"all batches"`` for none); a new group is marked so.

    A label that already names its column (``Werk`` = ``"Werk Süd"``) is shown alone.
    """
    parts = []
    for k, v in (group or {}).items():
        named = str(v).strip().lower().startswith(str(k).strip().lower())
        parts.append(str(v) if named else f"{k} {v}")
    text = ", ".join(parts) or "all batches"
    if kind == "new_group":
        text += " (new group)"
    elif kind == "population":
        text += " (population mean)"
    return text


def point_text(space: ProcessSpace, point: np.ndarray) -> str:
    """Describe a setpoint in words, every factor with its unit."""
    return ", ".join(
        value_text(space, p, float(v)) for p, v in zip(space.factor_names, point, strict=True)
    )


def model_diagnostics(model: YieldModel | Any) -> tuple[dict[str, Any], list[str]]:
    """Copy the model's diagnostics and list the problems they flag."""
    raw = getattr(model, "diagnostics_", None)
    if isinstance(raw, pd.Series):
        raw = raw.to_dict()
    diag: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
    weights = getattr(model, "stacking_weights_", None)
    if weights is not None:
        diag["stacking_weights"] = (
            weights.to_dict()
            if isinstance(weights, pd.Series)
            else dict(weights)
            if isinstance(weights, Mapping)
            else np.asarray(weights).tolist()
        )
    problems: list[str] = []
    # a flat dict of diagnostics, or one dict per model structure (stacked models)
    nested = {k: v for k, v in diag.items() if isinstance(v, Mapping)}
    blocks = nested.items() if nested else [("", diag)]
    for name, block in blocks:
        where = f"structure '{name}': " if name else ""

        def number(key: str, block: Mapping[str, Any] = block) -> float | None:
            try:
                value = float(block[key]) if key in block else None
            except (TypeError, ValueError):
                return None
            return value if value is not None and np.isfinite(value) else None

        r_hat = number("max_r_hat")
        if r_hat is not None and r_hat > 1.01:
            problems.append(f"{where}max R-hat {r_hat:.3f} > 1.01")
        div = number("divergences")
        if div is not None and div > 0:
            problems.append(f"{where}{int(div)} divergent transitions")
        for key in ("min_ess_bulk", "min_ess_tail"):
            ess = number(key)
            if ess is not None and ess < 400:
                problems.append(f"{where}{key} {ess:.0f} < 400")
        if block.get("converged") is False:
            problems.append(f"{where}model reports converged=False")
    messages = []
    if problems:
        messages.append(
            f"model {type(model).__name__} did not pass its sampling diagnostics ("
            + "; ".join(problems)
            + "): the posterior draws behind this result may be unreliable; refit with more "
            "tuning/draws or check the model"
        )
    for text in diag.get("warnings", []) or []:
        messages.append(str(text))
    return diag, messages


def support_messages(ctx: Context, point: np.ndarray, dist: float, ratio: float) -> list[str]:
    """One sentence when ``point`` is outside the group's support, naming the factors."""
    space = ctx.space
    limit = ctx.res.max_distance
    sd_limit = ctx.res.max_sd_ratio
    out_d = not dist <= limit
    out_r = sd_limit is not None and not ratio <= sd_limit
    if not (out_d or out_r):
        return []
    which = ctx.support.used(ctx.res.support)
    offsets = ctx.support.factor_offsets(point[None], ctx.res.support)
    far = [(p, o) for p, o in offsets if abs(o) > 2.0] or offsets[:1]
    pts = ctx.table.loc[ctx.in_group, ctx.factors] if ctx.in_group.any() else ctx.table
    parts = []
    for p, o in far:
        lo, hi = float(pts[p].min()), float(pts[p].max())
        value = float(point[ctx.factors.index(p)])
        parts.append(
            f"factor '{p}' = {value:.4g}{_unit(space, p)} is {abs(o):.1f} SDs "
            f"{'above' if o > 0 else 'below'} the group's batches (they ran "
            f"{lo:.4g}-{hi:.4g}{_unit(space, p)})"
        )
    what = []
    if out_d:
        what.append(f"Mahalanobis distance {dist:.2f} > limit {limit:.2f}, {which} support")
    if out_r:
        what.append(f"posterior SD {ratio:.1f} x its value at the group's data > {sd_limit:g}")
    return [
        "recommended setpoint is outside the support of the group's data ("
        + "; ".join(what)
        + "): "
        + "; ".join(parts)
        + ". The model is extrapolating: run confirmation batches or keep Constraints(guard=True)"
    ]


#: A recommended setpoint this close to the support limit (share of the limit) is at its edge.
SUPPORT_EDGE = 0.97


def support_edge_notes(ctx: Context, point: np.ndarray, dist: float) -> list[str]:
    """One note when ``point`` sits at the edge of the support: the limit may have stopped it.

    Names the direction from the recipe (the factors that moved most, as changes in their
    units), the way further batches would extend the support.
    """
    limit = ctx.res.max_distance
    edge = np.isfinite(limit) and limit > 0 and SUPPORT_EDGE * limit <= dist <= limit + 1e-9
    if not (ctx.res.guard and edge):  # beyond the limit: support_messages warns instead
        return []
    space = ctx.space
    recipe = ctx.clip(ctx.recipe[None])[0]
    width = np.maximum(space.upper - space.lower, 1e-12)
    moved = [
        (abs(point[j] - recipe[j]) / width[j], ctx.factors[j], float(point[j] - recipe[j]))
        for j in range(space.k)
        if abs(point[j] - recipe[j]) >= 0.01 * width[j]
    ]
    moved.sort(reverse=True)
    steps = ", ".join(
        f"{space.label(name)} {'+' if d > 0 else '-'}{number_text(abs(d))}{_unit(space, name)}"
        for _, name, d in moved[:4]
    )
    return [
        f"the setpoint is at the edge of the data support (distance {dist:.2f}, limit "
        f"{limit:.2f}): the support limit, not the surface, may be what stopped the search, "
        "and the model may rate setpoints further out higher without batches of this group "
        "there to go on"
        + (
            f". To look further, run batches beyond it in the same direction from the recipe "
            f"({steps}); `bayesbio next` extends the support round by round"
            if steps
            else ""
        )
    ]


def bound_messages(ctx: Context, point: np.ndarray) -> list[str]:
    """One sentence per free factor on a bound of the search box."""
    space = ctx.space
    out = []
    for j in ctx.res.free:
        lo, hi = ctx.res.lo[j], ctx.res.hi[j]
        name = ctx.factors[j]
        tol = 0.01 * (hi - lo)
        side = "lower" if point[j] <= lo + tol else "upper" if point[j] >= hi - tol else None
        if side is None:
            continue
        bound = lo if side == "lower" else hi
        op = space.factor(name).operating
        given = (ctx.res.constraints.bounds or {}).get(name)
        if bound in op:
            what = "operating range"
        elif given is not None and bound in tuple(float(v) for v in given):
            what = "constraints.bounds"
        else:
            what = "the group's own values plus max_reach"
        out.append(
            f"factor '{name}' is on the {side} bound {bound:.4g}{_unit(space, name)} of the "
            f"search box ({what}): the optimum may lie beyond it; widen the {what} if the "
            "process allows, and confirm with batches near the bound"
        )
    return out


def recipe_moved_messages(
    ctx: Context, moved: np.ndarray, expected: tuple[float, float] | None = None
) -> list[str]:
    """Sentences for a recipe the constraints move: outside the box, or a factor fixed.

    ``expected`` is the model's mean response at the recipe as run and at the moved one: a
    fixed factor's cost (or gain) is said with it, so a P(better) against the moved recipe
    is not read as one against the recipe as run.
    """
    space = ctx.space
    changed = [j for j in range(space.k) if not np.isclose(moved[j], ctx.recipe[j])]
    held = [j for j in changed if j in ctx.res.fixed]
    boxed = [j for j in changed if j not in ctx.res.fixed]

    def said(idx: list[int], point: np.ndarray) -> str:
        return ", ".join(value_text(space, ctx.factors[j], point[j]) for j in idx)

    out = []
    if boxed:
        was, now = said(boxed, ctx.recipe), said(boxed, moved)
        out.append(
            f"the recipe ({was}) lies outside the search box: the reference to beat, and the "
            f"setpoint kept when nothing beats it, is the recipe moved into the box ({now})"
        )
    if held:
        was, now = said(held, ctx.recipe), said(held, moved)
        text = (
            f"the constraints hold {now} fixed while the recipe runs {was}: the reference to "
            f"beat, and the setpoint kept when nothing beats it, is the recipe with {now}"
        )
        if expected is not None:
            unit = _unit(space, space.response.name)
            text += (
                f"; the model expects {number_text(expected[0])}{unit} at the recipe as run "
                f"and {number_text(expected[1])}{unit} with {now}, so P(better than the "
                "recipe) and the gain compare with the latter"
            )
        out.append(text)
    return out


def _unit(space: ProcessSpace, name: str) -> str:
    return unit_suffix(space.units.get(name, ""))
