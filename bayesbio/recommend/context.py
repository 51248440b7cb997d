"""The target of a recommendation: the model's space, the group, its data and the limits.

:func:`build_context` resolves once what every entry point needs (:func:`~bayesbio.recommend.
recommend`, :func:`~bayesbio.recommend.design_space`, :func:`~bayesbio.recommend.next_batches`,
:class:`~bayesbio.recommend.Campaign`, :func:`~bayesbio.recommend.argmax_setpoint`, the
profiler): the process space, the training table, the target group with its batches, the
prediction kind, the checked constraints, the support and the group's recipe. Everything
downstream works on numpy arrays in the space's factor order; :class:`Context` maps between
them, unit coordinates of the free factors and model input tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesbio import schema
from bayesbio.checks import KINDS as MODEL_KINDS
from bayesbio.checks import check_choice
from bayesbio.models.protocol import discounted
from bayesbio.recommend.constraints import (
    Constraints,
    Resolved,
    check_names,
    reach_box,
    resolve_constraints,
)
from bayesbio.recommend.support import Support
from bayesbio.space import ProcessSpace, resolve_space

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel

KINDS: tuple[str, ...] = ("auto", *MODEL_KINDS)


def space_or_default(space: ProcessSpace | None) -> ProcessSpace:
    """``space``, or the default space for a result made without one."""
    return ProcessSpace.default() if space is None else space


def model_space(model: YieldModel | Any) -> ProcessSpace:
    """Return the process space a fitted model was fitted on (``model.space_``).

    The one place that falls back to :meth:`ProcessSpace.default` for a model without
    ``space_`` (a user's model written before spaces existed).
    """
    return resolve_space(getattr(model, "space_", None))


def sign(space: ProcessSpace) -> float:
    """+1 when the space's response is maximised, -1 when it is minimised."""
    return 1.0 if space.response.maximise else -1.0


@dataclass
class Context:
    """The process space, the target group, its data and the checked constraints."""

    space: ProcessSpace
    table: pd.DataFrame
    group_cols: list[str]
    group: dict[str, str]
    in_group: np.ndarray
    kind: str
    res: Resolved
    support: Support
    recipe: np.ndarray
    data_sd: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def factors(self) -> list[str]:
        """Factor names in model order."""
        return list(self.space.factor_names)

    @property
    def sign(self) -> float:
        """+1 to maximise the response, -1 to minimise it."""
        return sign(self.space)

    def frame(self, points: np.ndarray) -> pd.DataFrame:
        """Return a setpoint table (group columns, then factors) for ``points``."""
        lim = self.space.limits
        lo = np.array([lim[f][0] for f in self.factors])
        hi = np.array([lim[f][1] for f in self.factors])
        points = np.clip(np.atleast_2d(points), lo, hi)
        df = pd.DataFrame(
            {c: np.full(len(points), self.group[c], dtype=object) for c in self.group_cols}
        )
        for j, p in enumerate(self.factors):
            df[p] = points[:, j]
        return df

    def to_points(self, u: np.ndarray) -> np.ndarray:
        """Map unit coordinates of the free factors to full setpoints (domain units)."""
        u = np.clip(np.atleast_2d(u), 0.0, 1.0)
        out = np.tile(self.res.lo, (len(u), 1))
        f = self.res.free
        out[:, f] = self.res.lo[f] + u * (self.res.hi[f] - self.res.lo[f])
        return out

    def to_unit(self, points: np.ndarray) -> np.ndarray:
        """Map full setpoints to unit coordinates of the free factors."""
        f = self.res.free
        w = self.res.hi[f] - self.res.lo[f]
        return np.clip((np.atleast_2d(points)[:, f] - self.res.lo[f]) / w, 0.0, 1.0)

    def clip(self, points: np.ndarray) -> np.ndarray:
        """Clip setpoints into the search bounds (fixed factors at their values)."""
        return np.clip(np.atleast_2d(points), self.res.lo, self.res.hi)

    def meets(self, draws: np.ndarray, spec: float) -> np.ndarray:
        """Boolean draws meeting ``spec``: ``y >= spec`` (maximise) or ``y <= spec``."""
        return draws >= spec if self.space.response.maximise else draws <= spec


def training_table(model: YieldModel | Any, *, method: str = "predict_draws") -> pd.DataFrame:
    """Return ``model.training_table_`` or raise a ValueError saying the model is not fitted.

    ``method`` is the prediction method the caller needs (a ValueError when it is missing).
    """
    table = getattr(model, "training_table_", None)
    if not isinstance(table, pd.DataFrame):
        raise ValueError(
            f"model ({type(model).__name__}) has no training_table_: fit it before recommending"
        )
    if not callable(getattr(model, method, None)):
        raise ValueError(f"model ({type(model).__name__}) has no {method} method")
    return table


def model_groups(model: YieldModel | Any, table: pd.DataFrame, space: ProcessSpace) -> list[str]:
    """Return the model's group columns: ``model.groups_``, else the space's in ``table``.

    Without ``groups_`` the model's ``groups`` argument (or else the space's groups) present
    in ``table`` are used.
    """
    groups = getattr(model, "groups_", None)
    if groups is None:
        wanted = getattr(model, "groups", None)
        if wanted is None and hasattr(model, "get_params"):
            wanted = model.get_params().get("groups")
        groups = space.group_columns(table, wanted)
    return [str(g) for g in groups]


def resolve_group(
    table: pd.DataFrame,
    group_cols: list[str],
    group: Mapping[str, Any] | None,
    *,
    allow_new: bool,
    fill: str = "group",
    new_hint: str = (
        "For a group without training data pass kind='new_group' (its effect is drawn from "
        "the population)"
    ),
) -> tuple[dict[str, str], np.ndarray, list[str]]:
    """Check a target group against the training data and complete it.

    Parameters
    ----------
    table : pandas.DataFrame
        Training table.
    group_cols : list of str
        The model's group columns.
    group : mapping of str to str or None
        Labels given by the caller.
    allow_new : bool
        Accept labels not seen in training (``kind="new_group"``); otherwise a label not seen
        is a ValueError listing the known labels of its column.
    fill : {"group", "overall"}, default "group"
        How a group column not given is filled: its most frequent value among the batches
        matching what was given (among all batches when none match), or among all batches
        (what :mod:`bayesbio.interpret` has always done).
    new_hint : str
        The sentence that ends the error for an unseen label (what to do instead).

    Returns
    -------
    full : dict
        A label for every group column: as given, else filled (see ``fill``).
    mask : numpy.ndarray of bool
        Training rows in the given group.
    notes : list of str
        One note per group column filled in.
    """
    if group is not None and not isinstance(group, Mapping):
        raise ValueError(f"group must be a mapping such as {{'site': 'A'}}, got {group!r}")
    given = {str(k): str(v) for k, v in (group or {}).items()}
    unknown = [k for k in given if k not in group_cols]
    if unknown:
        raise ValueError(
            f"group names unknown column(s) {unknown}; the model's group columns are {group_cols}"
        )
    notes: list[str] = []
    for col, label in list(given.items()):
        known = sorted(table[col].astype(str).unique())
        if label in known:
            continue
        # "r1" for "R1", "2000 L" for "2000L": the same label up to case and spaces
        same = [k for k in known if "".join(k.split()).lower() == "".join(label.split()).lower()]
        if len(same) == 1:
            given[col] = same[0]
            notes.append(f"group[{col!r}] = {label!r} read as {same[0]!r} (same up to case/spaces)")
            continue
        if not allow_new:
            raise ValueError(
                f"group[{col!r}] = {label!r} is not a label seen in training; known "
                f"labels of {col!r}: {known}. {new_hint}"
            )
    mask = np.ones(len(table), dtype=bool)
    for k, v in given.items():
        mask &= table[k].astype(str).to_numpy() == v
    full: dict[str, str] = {}
    for c in group_cols:
        if c in given:
            full[c] = given[c]
        elif fill == "overall":
            full[c] = str(table[c].astype(str).value_counts().index[0])
        else:
            source = table.loc[mask, c] if mask.any() else table[c]
            full[c] = str(source.astype(str).mode().iloc[0])
            notes.append(
                f"group column '{c}' not given: the model's effect of {full[c]!r}, its most "
                "frequent label among the batches given, is used; the recipe and the support "
                f"come from all of them (give {c} too to choose)"
            )
    return full, mask, notes


def build_context(
    model: YieldModel | Any,
    group: Mapping[str, Any] | None,
    kind: str,
    constraints: Constraints | Mapping[str, Any] | None,
    *,
    fill: str = "group",
    prefix: str = "constraints.",
    method: str = "predict_draws",
) -> Context:
    """Resolve the space, the target group, the prediction kind and the constraints.

    ``fill`` and ``prefix`` go to :func:`resolve_group` and :func:`~bayesbio.recommend.
    constraints.resolve_constraints`; with ``fill="group"`` (the recommenders) a training
    table of several groups needs ``group``, with ``"overall"`` (the mean argmax) the group
    columns not given take their most frequent level. ``method`` is the prediction method
    the caller uses.
    """
    table = training_table(model, method=method)
    check_choice("kind", kind, KINDS)
    space = model_space(model)
    res = resolve_constraints(constraints, space, prefix=prefix)
    group_cols = model_groups(model, table, space)
    full, mask, notes = resolve_group(
        table, group_cols, group, allow_new=kind == "new_group", fill=fill
    )
    if not group and group_cols and fill == "group":
        combos = table[group_cols].astype(str).drop_duplicates()
        if len(combos) > 1:
            shown = combos.head(3).to_dict("records")
            raise ValueError(
                f"group must name the target group, e.g. group={shown[0]}; the training data "
                f"hold {len(combos)} combinations of {group_cols} (first: {shown}); for a "
                "group without batches yet (the next campaign, a new site) give its new "
                "label with kind='new_group'"
            )
    if kind == "auto":
        kind = "existing" if mask.any() else "new_group"
    elif kind == "existing" and not mask.any():
        raise ValueError(
            f"kind='existing' but group {dict(group or {})} has no training batches; use "
            "kind='new_group'"
        )
    points = table[list(space.factor_names)].to_numpy(dtype=float)
    # groups like the target: the columns it was named by (scale and site, not campaign)
    named = [c for c in group_cols if group and c in group] or group_cols
    keys = schema.group_keys(table, named)
    # batches the fit discounts (outlying, failed) do not vouch for their neighbourhood: the
    # surface there ignores them, and a true cliff at the edge of the data reads as one
    trusted = ~discounted_batches(model, table)
    if trusted.all() or trusted.sum() < 2:
        support = Support(points, keys, mask, space)
    else:
        support = Support(points[trusted], np.asarray(keys)[trusted], mask[trusted], space)
        notes += discounted_notes(table, space, mask & ~trusted)
    reach_notes = reach_box(res, points[mask]) if kind == "existing" else []
    recipe = np.median(points[mask] if mask.any() else points, axis=0)
    # the process runs the factors its space fixes at one value; a constraint's fixed value
    # moves the reference from the recipe, and says so (recipe_moved_messages)
    for name, v in space.fixed.items():
        recipe[space.factor_names.index(name)] = v
    width = space.upper - space.lower
    data_sd = points.std(axis=0, ddof=1) if len(points) > 1 else width * 0.1
    data_sd = np.where(data_sd > 0, data_sd, width * 0.01)
    return Context(
        space, table, group_cols, full, mask, kind, res, support, recipe, data_sd,
        [*res.notes, *notes, *reach_notes],
    )  # fmt: skip


def discounted_batches(model: YieldModel | Any, table: pd.DataFrame) -> np.ndarray:
    """Return the rows of ``table`` the fit discounts (outlying or failed batches).

    The rule of :func:`bayesbio.models.protocol.discounted`: a Student-t weight below
    ``OUTLIER_WEIGHT`` (``batch_weight_``) or a posterior P(failed) >= ``FAILED_PROB``
    (``failure_prob_``). Models without either attribute (and attributes not indexed like
    ``table``) discount nothing.
    """
    out = np.zeros(len(table), dtype=bool)
    for name in ("failure_prob_", "batch_weight_"):
        value = getattr(model, name, None)
        if value is not None and not (
            isinstance(value, pd.Series) and value.index.equals(table.index)
        ):
            return out  # a measure of some other table
    found = discounted(model, pd.RangeIndex(len(table)))  # by position
    if found is not None:
        out[found[0].index.to_numpy()] = True
    return out


def discounted_notes(table: pd.DataFrame, space: ProcessSpace, rows: np.ndarray) -> list[str]:
    """Return the note naming the target group's discounted batches (no support)."""
    if not rows.any():
        return []
    bid = space.batch_id
    ids = (
        table.loc[rows, bid].astype(str).tolist()
        if bid in table.columns
        else [f"row {i}" for i in np.flatnonzero(rows)]
    )
    shown = ", ".join(ids[:6]) + (f" and {len(ids) - 6} more" if len(ids) > 6 else "")
    return [
        f"{len(ids)} batch(es) of the target group weigh little in the fit (outlying or "
        f"failed: {shown}): they do not count as support, since the surface ignores them "
        "(a failed batch, or a true cliff: which one, only a batch near them can tell)"
    ]


def group_recipe(recipe: Mapping[str, float] | None, ctx: Context) -> np.ndarray:
    """Return the group's recipe: ``recipe`` where given, else the group's median setpoint.

    Factors the space fixes take their fixed values; a factor fixed by the constraints keeps
    the recipe's value here (the recipe as run: the reference, ``ctx.clip(recipe)``, holds
    it at the fixed value, and :func:`~bayesbio.recommend.messages.recipe_moved_messages`
    says so). A value outside the physical limits is a ValueError naming the factor and its
    limits.
    """
    out = ctx.recipe.astype(float).copy()
    space = ctx.space
    for name, value in check_names(recipe, "recipe", space).items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = np.nan
        lo, hi = space.limits[name]
        if not (np.isfinite(v) and lo <= v <= hi):
            raise ValueError(
                f"recipe['{name}'] = {value!r} must be a number within the physical limits "
                f"{lo:g} to {hi:g} {space.units[name]} of {name!r}"
            )
        out[space.factor_names.index(name)] = v
    for name, v in space.fixed.items():
        out[space.factor_names.index(name)] = v
    return out


def validate_setpoints(table: pd.DataFrame, space: ProcessSpace) -> pd.DataFrame:
    """Validate a table of setpoints (no response needed) against ``space``."""
    return schema.validate(table, require_response=False, space=space)
