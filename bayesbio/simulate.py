"""Synthetic batch records with a known truth, group structure, noise and labelled defects.

:func:`simulate_batches` draws a batch table from a plausible upstream-bioprocess response and
returns it together with the :class:`Truth` that generated it and a table of labelled data
defects. Without a ``space`` (or with :meth:`ProcessSpace.default() <bayesbio.space.
ProcessSpace.default>`) it simulates the four-factor demo process below; for any other
:class:`~bayesbio.space.ProcessSpace` the response is described by a :class:`ProcessBiology`
(derived automatically from the space unless given), see *Other processes* below.

The demo biology (per row, with group ``g = (scale, site)`` and campaign ``c``)::

    E[yield] = Y_g * f_T(T) * f_pH(pH) * f_DO(DO, T, t_mix) * f_mix(t_mix) * s_c

* ``f_T`` -- cardinal temperature model with inflection (CTMI, Rosso et al. 1993) with
  ``T_min = T_opt,g - 17`` and ``T_max = T_opt,g + 4.5`` degC: skewed, falls steeply above the
  optimum.
* ``f_pH`` -- cardinal pH model (Rosso et al. 1995) with ``pH_min = pH_opt,g - 1.1`` and
  ``pH_max = pH_opt,g + 0.9``.
* ``f_DO`` -- Haldane (substrate-inhibition) term in the effective dissolved oxygen
  ``DO_eff = DO * (1 - 0.25 t_mix / (t_mix + 60 s))`` (poor mixing leaves cells in oxygen-poor
  zones). Its half-saturation ``K_DO = 8 % * k_g * exp(0.1 (T - 37))`` rises with temperature
  (oxygen demand) and with scale (oxygen transfer is harder at large scale, ``k_g``); the
  inhibition constant ``250 %`` gives mild oxidative stress at high DO. Normalised to 1 at the
  small-scale optimum.
* ``f_mix`` -- direct, saturating mixing-time penalty ``1 - 0.15 t_mix / (t_mix + 40 s)``
  (substrate and pH gradients). Larger scales run with longer mixing times.
* ``s_c`` -- campaign level shift, ``exp(N(0, 0.04^2))``; a campaign not in the truth gets 1.

Batch-to-batch noise is multiplicative log-normal with mean 1 and coefficient of variation
``noise_cv`` (default 6 %), so ``yield = E[yield] * eps`` and ``sd = noise_cv * E[yield]``.

Group structure: the scale effects are a fixed, documented default world
(:data:`DEFAULT_SCALES`: level, optimum shifts and oxygen-transfer factor per scale); site
effects and campaign shifts are drawn from ``random_seed`` (:data:`SITE_EFFECT_SD`). All are
exposed on :class:`Truth` (``truth.group_effects``, ``truth.campaign_effects``).

Other processes
---------------
For a declared space with factors ``x_1..x_k`` (any k >= 1), a :class:`ProcessBiology` gives::

    E[response] = B * L_g * s_c * prod_j f_j(x_j; o_j,g)          (maximised response)
    E[response] = B * L_g * s_c * (1 + 2 (1 - prod_j f_j))        (minimised response)

* peaked factors: cardinal model (Rosso et al. 1995) with optimum ``o_j``, zero response at
  ``o_j - width_j`` and at ``o_j + asymmetry_j * width_j`` (``asymmetry < 1``: falls faster
  above the optimum);
* saturating factors: Haldane term in ``s = x_j - (o_j - width_j)`` with half-saturation
  ``0.15 width_j``, maximal at ``o_j`` and declining slowly above (substrate inhibition);
* one interaction ``(a, b, s)``: the optimum of ``b`` moves by ``s`` half-widths of ``b`` per
  half-width of ``a`` above ``a``'s optimum;
* ``L_g`` and the optimum shifts ``o_j,g - o_j`` per group label (:class:`GroupLevel`; labels
  not declared are drawn from ``random_seed``), ``s_c`` a campaign shift when the space has a
  ``campaign`` group column. ``prod_j f_j`` is floored at 1e-3 so responses stay positive.

Defects (``defects=True`` or ``{kind: rate}``; rates are fractions of ``n``, counts are
``round(rate * n)``, each defective row carries exactly one defect, and defects are applied to
the finished clean table):

* ``missing`` -- one of the factors or the response set to NaN.
* ``duplicate_exact`` / ``duplicate_near`` -- an extra copy of a clean row, inserted at a random
  later position, keeping its ``batch_id``; the label is on the copy (``column="batch_id"``).
  Near copies have the factors rounded coarser (demo: 0.1 degC, 0.01 pH, 1 s, 1 %) and the
  response moved by 0.2-1 %.
* ``outlier`` -- response times 3 or times 0.2 (inside the physical limits).
* ``impossible`` -- a value outside the physical limits (demo: pH times 10, or a negative DO,
  yield or mixing time).
* ``unit_kelvin`` / ``unit_fahrenheit`` -- a temperature factor recorded in K / degF (only for
  factors whose unit is a temperature).
* ``unit_do_mg_per_l`` -- DO recorded in mg/L (:data:`DO_MG_PER_L_AT_100_PERCENT`; only for a
  factor in % air saturation).
* ``label_typo`` -- a group label mis-typed (``" a"``, ``"Site-A"``, ``"2000 L"``, ...).

With ``defects=True`` the kinds a space does not allow are left out; asking for one
explicitly is an error.

Randomness: one ``random_seed`` is split into independent streams for the world (site and
campaign effects), the design (setpoints and groups), the noise and the defects. Hence the same
seed with ``defects=False`` gives exactly the clean rows of the run with defects, and
:attr:`SimulatedBatches.clean_table` recovers them from a defective table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.stats import qmc

from bayesbio.checks import check_int, make_rng
from bayesbio.space import ProcessSpace, SpaceError, convert_units, resolve_space

__all__ = [
    "DEFAULT_DEFECT_RATES",
    "DEFAULT_SCALES",
    "DEFAULT_SITES",
    "DEFECT_KINDS",
    "DESIGNS",
    "DO_MG_PER_L_AT_100_PERCENT",
    "SITE_EFFECT_SD",
    "GroupLevel",
    "ProcessBiology",
    "SimulatedBatches",
    "Truth",
    "simulate_batches",
]

#: Dissolved oxygen of air-saturated culture medium at 37 degC and 1 atm, mg/L: the factor of the
#: ``unit_do_mg_per_l`` defect (recorded = % air saturation / 100 * this). Pure water holds
#: 6.7 mg/L at 37 degC (Benson & Krause 1984); salts in medium lower it slightly.
DO_MG_PER_L_AT_100_PERCENT: float = 6.7

#: Experimental designs understood by :func:`simulate_batches`.
DESIGNS: tuple[str, ...] = ("historical", "doe", "uniform")

#: Labelled defect kinds, in the order they are assigned.
DEFECT_KINDS: tuple[str, ...] = (
    "missing",
    "duplicate_exact",
    "duplicate_near",
    "outlier",
    "impossible",
    "unit_kelvin",
    "unit_fahrenheit",
    "unit_do_mg_per_l",
    "label_typo",
)

#: Default defect rates (fraction of clean batches) used by ``defects=True``.
DEFAULT_DEFECT_RATES: dict[str, float] = {
    "missing": 0.02,
    "duplicate_exact": 0.01,
    "duplicate_near": 0.01,
    "outlier": 0.01,
    "impossible": 0.005,
    "unit_kelvin": 0.005,
    "unit_fahrenheit": 0.005,
    "unit_do_mg_per_l": 0.005,
    "label_typo": 0.01,
}

#: The default world's scales. ``weight``: share of batches; ``yield_factor``: level relative to
#: the reference; ``temperature_shift`` (degC) and ``ph_shift``: moves of the optimum on scale-up;
#: ``oxygen_factor``: multiplier of the DO half-saturation (harder oxygen transfer);
#: ``mixing_time``: typical mixing time (s) in plant history.
DEFAULT_SCALES: dict[str, dict[str, float]] = {
    "2L": {
        "weight": 0.45,
        "yield_factor": 1.00,
        "temperature_shift": 0.0,
        "ph_shift": 0.00,
        "oxygen_factor": 1.0,
        "mixing_time": 12.0,
    },
    "200L": {
        "weight": 0.35,
        "yield_factor": 0.96,
        "temperature_shift": -0.5,
        "ph_shift": -0.04,
        "oxygen_factor": 1.5,
        "mixing_time": 35.0,
    },
    "2000L": {
        "weight": 0.20,
        "yield_factor": 0.92,
        "temperature_shift": -1.0,
        "ph_shift": -0.08,
        "oxygen_factor": 2.2,
        "mixing_time": 80.0,
    },
}
_SCALE_NEUTRAL = {
    "weight": 1.0,
    "yield_factor": 1.0,
    "temperature_shift": 0.0,
    "ph_shift": 0.0,
    "oxygen_factor": 1.0,
    "mixing_time": 20.0,
}

#: Default sites and their shares of batches (unbalanced on purpose).
DEFAULT_SITES: dict[str, float] = {"A": 0.5, "B": 0.3, "C": 0.2}

#: Standard deviations of the site effects drawn from ``random_seed``: log yield level,
#: optimum temperature shift (degC), optimum pH shift, log oxygen factor; and of the log
#: campaign level shift.
SITE_EFFECT_SD: dict[str, float] = {
    "log_yield": 0.05,
    "temperature_shift": 0.3,
    "ph_shift": 0.03,
    "log_oxygen_factor": 0.1,
    "log_campaign": 0.04,
}

# Reference biology (small scale, reference site).
_Y_REF = 7.0  # g/L, level at the reference optimum before penalties
_T_OPT = 36.8  # degC
_T_MIN_OFFSET = 17.0
_T_MAX_OFFSET = 4.5
_PH_OPT = 7.02
_PH_MIN_OFFSET = 1.1
_PH_MAX_OFFSET = 0.9
_K_DO = 8.0  # % air saturation, half-saturation at 37 degC
_K_DO_TEMP = 0.1  # 1/degC, rise of oxygen demand with temperature
_KI_DO = 250.0  # % air saturation, oxidative inhibition constant
_DO_GRADIENT = 0.25  # fraction of DO lost to gradients at long mixing time
_DO_GRADIENT_HALF = 60.0  # s
_MIX_PENALTY = 0.15
_MIX_HALF = 40.0  # s
_DO_NORM = 1.0 + 2.0 * np.sqrt(_K_DO / _KI_DO)

# Historical plant recipe and its variation.
_RECIPE = {"temperature": 36.5, "ph": 7.0, "dissolved_oxygen": 40.0}
_RECIPE_GROUP_SD = {"temperature": 0.3, "ph": 0.03, "dissolved_oxygen": 5.0}
_RECIPE_CAMPAIGN_SD = {"temperature": 0.2, "ph": 0.02, "dissolved_oxygen": 4.0}
_BATCH_SD = {"temperature": 0.15, "ph": 0.02, "dissolved_oxygen": 3.0}
_MIX_LOG_SD = 0.12
# Recorded precision (decimals) of the clean table.
_DECIMALS = {"mixing_time": 1, "temperature": 2, "ph": 3, "dissolved_oxygen": 1, "yield": 3}
_GROUP_COLUMNS = ("scale", "site", "campaign")
_DEFAULT_SPACE = ProcessSpace.default()
_PARAMS: tuple[str, ...] = _DEFAULT_SPACE.factor_names
_RESPONSE: str = _DEFAULT_SPACE.response.name
_BATCH_ID: str = _DEFAULT_SPACE.batch_id


# Generic biology (any process space): shape constants.
_SAT_HALF = 0.15  # half-saturation of a saturating factor, as a fraction of its width
_F_FLOOR = 1e-3  # floor of the product of factor responses (responses stay positive)
_MINIMISE_SPAN = 2.0  # a minimised response rises to B * (1 + this) where the factors fail
_AUTO_Z_OPT = (0.4, -0.35, 0.3, -0.45, 0.25, -0.3, 0.35, -0.25)  # optimum, in half-widths
_AUTO_STEEP, _AUTO_GENTLE = 1.2, 1.7  # width / distance to the operating edge, steep and gentle
_AUTO_INTERACTION = 0.3
_AUTO_SCALES: dict[str, tuple[float, float, float, float]] = {
    # label: (weight, level, shift of the 1st factor's optimum, of the 2nd), shifts in half-widths
    "2L": (0.45, 1.00, 0.0, 0.0),
    "200L": (0.35, 0.96, -0.10, 0.05),
    "2000L": (0.20, 0.92, -0.20, 0.10),
}
_AUTO_SITES = {"A": 0.5, "B": 0.3, "C": 0.2}
# Historical design of a generic space, in half-widths of each operating range.
_GEN_GROUP_SD, _GEN_CAMPAIGN_SD, _GEN_BATCH_SD = 0.08, 0.05, 0.04


@dataclass(frozen=True)
class GroupLevel:
    """One label of a group column (a scale, a site, ...) in a :class:`ProcessBiology`.

    Parameters
    ----------
    weight : float, default 1.0
        Share of batches (relative to the other labels of the column), > 0.
    level : float, default 1.0
        Multiplicative level of the response, > 0 (0.9: 10 % lower than the reference).
    shift : mapping of str to float, optional
        Shift of factor optima at this label, in the factor's unit (``{"temperature": -0.5}``).
    """

    weight: float = 1.0
    level: float = 1.0
    shift: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcessBiology:
    """How the response of a declared process depends on its factors (for simulation).

    Every field is optional: what is left out is derived from the space by
    :meth:`for_space` (an optimum inside each operating range but off its centre, widths that
    keep the response positive over the range, one saturating factor when k >= 3, one
    interaction between the first two peaked factors, a baseline from the response's typical
    range). See the module docstring for the response model.

    Parameters
    ----------
    optimum : mapping of str to float, optional
        Optimum of each factor at the reference group, in the factor's unit.
    width : mapping of str to float, optional
        Distance from the optimum down to zero response on the low side, factor's unit, > 0.
    asymmetry : mapping of str to float, optional
        High-side width / low-side width of a peaked factor, > 0 (< 1: falls faster above).
    saturating : sequence of str, optional
        Factors with a saturating (Haldane) response; None: automatic, ``()``: none.
    interaction : tuple (str, str, float), optional
        ``(a, b, strength)``: b's optimum moves by ``strength`` half-widths of b per half-width
        of a; None: automatic, ``()``: none.
    baseline : float, optional
        Expected response at the optimum of the reference group (response unit), > 0.
    groups : mapping of str to mapping of str to GroupLevel, optional
        ``{column: {label: GroupLevel}}`` for group columns of the space (not ``campaign``).
        Columns left out get labels ``2L/200L/2000L`` (``scale``), ``A/B/C`` (``site``) or
        ``<initial>1..3`` with effects drawn from ``random_seed``.
    recipe : mapping of str to float, optional
        Standard setpoint of the historical design (default: halfway between the centre of
        the operating range and the optimum).
    noise_cv : float, optional
        Batch-to-batch coefficient of variation (default 0.06); ``simulate_batches(noise_cv=)``
        overrides it.
    level_sd, shift_sd, campaign_sd : float
        Spread of drawn effects: log level of a label, optimum shift (half-widths), log level of
        a campaign. Defaults 0.05, 0.1, 0.04.

    Examples
    --------
    >>> from bayesbio.space import Factor, ProcessSpace
    >>> space = ProcessSpace((Factor("temperature", "degC", (25, 32)),
    ...                       Factor("feed_rate", "mL/h", (2, 10))), groups=("site",))
    >>> bio = ProcessBiology.for_space(space, optimum={"temperature": 30.5})
    >>> round(bio.optimum["temperature"], 2)
    30.5
    """

    optimum: Mapping[str, float] = field(default_factory=dict)
    width: Mapping[str, float] = field(default_factory=dict)
    asymmetry: Mapping[str, float] = field(default_factory=dict)
    saturating: tuple[str, ...] | None = None
    interaction: tuple[Any, ...] | None = None
    baseline: float | None = None
    groups: Mapping[str, Mapping[str, GroupLevel]] = field(default_factory=dict)
    recipe: Mapping[str, float] = field(default_factory=dict)
    noise_cv: float | None = None
    level_sd: float = 0.05
    shift_sd: float = 0.1
    campaign_sd: float = 0.04

    @classmethod
    def for_space(cls, space: ProcessSpace | str | Path | None, **fields: Any) -> ProcessBiology:
        """Return a complete biology for ``space``: ``fields`` as given, the rest automatic.

        Parameters
        ----------
        space : ProcessSpace, path or None
            The process (None: the demo space).
        **fields
            Any :class:`ProcessBiology` field.

        Returns
        -------
        ProcessBiology
            Every factor has an optimum, width, asymmetry and recipe value.

        Raises
        ------
        ValueError
            Naming the field and factor: an unknown factor or group column, a width or level
            <= 0, an optimum outside the factor's limits, a baseline outside the response's
            limits.
        """
        return _complete_biology(cls(**fields), resolve_space(space))


def _finite(value: Any, where: str, *, positive: bool = False) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a number, got {value!r}") from None
    if not math.isfinite(out) or (positive and out <= 0):
        raise ValueError(
            f"{where} must be a finite number{' > 0' if positive else ''}, got {value!r}"
        )
    return out


def _check_factor_keys(mapping: Mapping[str, Any], where: str, space: ProcessSpace) -> None:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"biology.{where} must be a mapping {{factor: value}}, got {mapping!r}")
    unknown = [k for k in mapping if k not in space.factor_names]
    if unknown:
        raise ValueError(
            f"biology.{where} names unknown factor(s) {unknown}; the process has "
            f"{list(space.factor_names)}"
        )


def _complete_biology(bio: ProcessBiology, space: ProcessSpace) -> ProcessBiology:
    """Fill every field of ``bio`` that is left out, and check it against ``space``."""
    if not isinstance(bio, ProcessBiology):
        raise ValueError(f"biology must be a ProcessBiology, got {type(bio).__name__}")
    for name in ("optimum", "width", "asymmetry", "recipe"):
        _check_factor_keys(getattr(bio, name), name, space)
    names = space.factor_names
    hw, centre, lo, hi = space.half_width, space.centre, space.lower, space.upper
    k = space.k
    # saturating factor: the oxygen-like one, else the last, when k >= 3
    if bio.saturating is None:
        sat: tuple[str, ...] = ()
        if k >= 3:
            oxy = [f.name for f in space.factors if "oxygen" in f.name.lower()]
            for f in space.factors:
                try:
                    convert_units([1.0], f.unit, "% air sat.")
                    oxy.append(f.name)
                except SpaceError:
                    pass
            sat = (oxy[0] if oxy else names[-1],)
    else:
        if isinstance(bio.saturating, str):
            raise ValueError(
                f"biology.saturating must be a sequence of factor names, got {bio.saturating!r}"
            )
        sat = tuple(str(s) for s in bio.saturating)
        _check_factor_keys(dict.fromkeys(sat), "saturating", space)
    peaked = [n for n in names if n not in sat]
    # interaction: the first two peaked factors
    if bio.interaction is None:
        inter: tuple[Any, ...] = (
            (peaked[0], peaked[1], _AUTO_INTERACTION) if len(peaked) >= 2 else ()
        )
    else:
        inter = tuple(bio.interaction)
        if inter:
            if len(inter) != 3:
                raise ValueError(
                    "biology.interaction must be (factor_a, factor_b, strength) or (), "
                    f"got {inter!r}"
                )
            a, b, s = inter
            _check_factor_keys({a: 0, b: 0}, "interaction", space)
            if a == b:
                raise ValueError(
                    f"biology.interaction needs two different factors, got {a!r} twice"
                )
            inter = (str(a), str(b), _finite(s, "biology.interaction strength"))
    optimum: dict[str, float] = {}
    for j, f in enumerate(space.factors):
        if f.name in bio.optimum:
            o = _finite(bio.optimum[f.name], f"biology.optimum[{f.name!r}]")
            if not f.limits[0] <= o <= f.limits[1]:
                raise ValueError(
                    f"biology.optimum[{f.name!r}] = {o:g} is outside the limits "
                    f"[{f.limits[0]:g}, {f.limits[1]:g}] {f.unit}"
                )
        else:
            z = 0.5 if f.name in sat else _AUTO_Z_OPT[j % len(_AUTO_Z_OPT)]
            o = float(centre[j] + z * hw[j])
        optimum[f.name] = o
    # group labels and effects declared or automatic (drawn ones are added at simulation time)
    groups: dict[str, dict[str, GroupLevel]] = {}
    if not isinstance(bio.groups, Mapping):
        raise ValueError("biology.groups must be a mapping {column: {label: GroupLevel}}")
    for col, labels in bio.groups.items():
        if col not in space.groups or col == "campaign":
            raise ValueError(
                f"biology.groups names {col!r}, which is not a group column of the process "
                f"(campaign excluded); the process has {list(space.groups)}"
            )
        if not isinstance(labels, Mapping) or not labels:
            raise ValueError(f"biology.groups[{col!r}] must map at least one label to a GroupLevel")
        out = {}
        for label, level in labels.items():
            where = f"biology.groups[{col!r}][{label!r}]"
            if not isinstance(level, GroupLevel):
                raise ValueError(f"{where} must be a GroupLevel, got {type(level).__name__}")
            _finite(level.weight, f"{where}.weight", positive=True)
            _finite(level.level, f"{where}.level", positive=True)
            _check_factor_keys(level.shift, f"groups[{col!r}][{label!r}].shift", space)
            out[str(label)] = GroupLevel(
                float(level.weight),
                float(level.level),
                {n: _finite(v, f"{where}.shift[{n!r}]") for n, v in level.shift.items()},
            )
        groups[col] = out
    if "scale" in space.groups and "scale" not in groups:
        shift_names = peaked[:2]
        groups["scale"] = {
            label: GroupLevel(
                w,
                lev,
                {n: s * float(hw[names.index(n)]) for n, s in zip(shift_names, sh, strict=False)},
            )
            for label, (w, lev, *sh) in _AUTO_SCALES.items()
        }
    # widths keep the response positive over the range, allowing for group and interaction moves
    moves = np.zeros(k)
    for labels in groups.values():
        for level in labels.values():
            for n, v in level.shift.items():
                moves[names.index(n)] = max(moves[names.index(n)], abs(v))
    moves += 2.0 * bio.shift_sd * hw  # drawn labels
    if inter:
        a, b, s = inter
        ia, ib = names.index(a), names.index(b)
        za = (optimum[a] - centre[ia]) / hw[ia]
        moves[ib] += abs(s) * (1.0 + abs(za)) * hw[ib]
    width: dict[str, float] = {}
    asym: dict[str, float] = {}
    for j, n in enumerate(names):
        d_lo = max(optimum[n] - lo[j], 0.0) + moves[j] + 0.1 * hw[j]
        d_hi = max(hi[j] - optimum[n], 0.0) + moves[j] + 0.1 * hw[j]
        steep_above = j % 2 == 0
        c_lo, c_hi = (_AUTO_GENTLE, _AUTO_STEEP) if steep_above else (_AUTO_STEEP, _AUTO_GENTLE)
        if n in sat:
            c_lo = 1.0 / (1.0 - 0.15)  # the lower operating edge: about 60 % of the plateau
        w = (
            _finite(bio.width[n], f"biology.width[{n!r}]", positive=True)
            if n in bio.width
            else c_lo * d_lo
        )
        width[n] = float(w)
        asym[n] = (
            _finite(bio.asymmetry[n], f"biology.asymmetry[{n!r}]", positive=True)
            if n in bio.asymmetry
            else float(c_hi * d_hi / w)
        )
    recipe = {
        n: (
            _finite(bio.recipe[n], f"biology.recipe[{n!r}]")
            if n in bio.recipe
            else float(space.fixed.get(n, centre[j] + 0.5 * (optimum[n] - centre[j])))
        )
        for j, n in enumerate(names)
    }
    resp = space.response
    if bio.baseline is None:
        if resp.typical is not None:
            baseline = 0.7 * resp.typical[1]
        elif math.isfinite(resp.limits[1]):
            baseline = 0.25 * resp.limits[1]
        else:
            baseline = 10.0
        baseline = max(baseline, resp.limits[0] + 1e-6)
    else:
        baseline = _finite(bio.baseline, "biology.baseline", positive=True)
        if not resp.limits[0] < baseline < resp.limits[1]:
            raise ValueError(
                f"biology.baseline = {baseline:g} is outside the response limits "
                f"[{resp.limits[0]:g}, {resp.limits[1]:g}] {resp.unit}"
            )
    noise_cv = 0.06 if bio.noise_cv is None else _finite(bio.noise_cv, "biology.noise_cv")
    if not 0.0 <= noise_cv <= 0.5:
        raise ValueError(f"biology.noise_cv must be in [0, 0.5], got {bio.noise_cv!r}")
    for name in ("level_sd", "shift_sd", "campaign_sd"):
        v = _finite(getattr(bio, name), f"biology.{name}")
        if v < 0:
            raise ValueError(f"biology.{name} must be >= 0, got {v!r}")
    return replace(
        bio,
        optimum=optimum,
        width=width,
        asymmetry=asym,
        saturating=sat,
        interaction=inter,
        baseline=float(baseline),
        groups=groups,
        recipe=recipe,
        noise_cv=float(noise_cv),
    )


def _rng(random_seed: int | np.random.Generator | None) -> np.random.Generator:
    return make_rng(random_seed)


class Truth:
    """The data-generating process of a simulation: noise-free response, optimum and noise.

    Built by :func:`simulate_batches`; not meant to be constructed by hand. This class is the
    demo process's truth; other spaces get a :class:`Truth` subclass with the same methods
    (``mean_yield``, ``noise_sd``, ``sample_yield``, ``optimum``, ``groups``) over their own
    factors, response and group columns.

    Attributes
    ----------
    space : ProcessSpace
        The process the truth describes (factors, operating ranges, response).
    noise_cv : float
        Coefficient of variation of the multiplicative batch-to-batch noise.
    group_effects : pandas.DataFrame
        One row per (scale, site): ``scale``, ``site``, ``yield_max`` (g/L, level before the
        response factors), ``temperature_opt`` (degC, the cardinal optimum), ``ph_opt``,
        ``k_do`` (% air saturation, DO half-saturation at 37 degC), ``weight`` (share of
        batches).
    campaign_effects : pandas.Series
        Multiplicative level shift by campaign label.
    scales, sites : pandas.DataFrame
        The scale configuration and the drawn site effects.
    """

    #: group columns that locate a group (the campaign only shifts the level)
    _structural: tuple[str, ...] = ("scale", "site")
    _campaign: str | None = "campaign"

    def __init__(
        self,
        scales: pd.DataFrame,
        sites: pd.DataFrame,
        campaign_effects: pd.Series,
        noise_cv: float,
        space: ProcessSpace = _DEFAULT_SPACE,
    ) -> None:
        self.space = space
        self.scales = scales
        self.sites = sites
        self.campaign_effects = campaign_effects
        self.noise_cv = float(noise_cv)
        combos = pd.MultiIndex.from_product(
            [scales.index, sites.index], names=["scale", "site"]
        ).to_frame(index=False)
        sc = scales.loc[combos["scale"]].reset_index(drop=True)
        st = sites.loc[combos["site"]].reset_index(drop=True)
        self.group_effects = pd.DataFrame(
            {
                "scale": combos["scale"].astype(str),
                "site": combos["site"].astype(str),
                "yield_max": _Y_REF * sc["yield_factor"] * st["yield_factor"],
                "temperature_opt": _T_OPT + sc["temperature_shift"] + st["temperature_shift"],
                "ph_opt": _PH_OPT + sc["ph_shift"] + st["ph_shift"],
                "k_do": _K_DO * sc["oxygen_factor"] * st["oxygen_factor"],
                "weight": sc["weight"].to_numpy() * st["weight"].to_numpy(),
            }
        )
        self._optima: dict[tuple[str | None, ...], pd.Series] = {}

    @property
    def groups(self) -> pd.DataFrame:
        """The combinations of the group columns that locate a group, one row each."""
        return self.group_effects[list(self._structural)].copy()

    def __repr__(self) -> str:
        return (
            f"Truth(scales={list(self.scales.index)}, sites={list(self.sites.index)}, "
            f"campaigns={len(self.campaign_effects)}, noise_cv={self.noise_cv:g})"
        )

    # -- group lookup ---------------------------------------------------------------------
    def _group_index(
        self, X: pd.DataFrame | None, n: int, group: Mapping[str, Any] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (row index into group_effects, campaign factor) per row."""
        group = dict(group or {})
        unknown = set(group) - set(_GROUP_COLUMNS)
        if unknown:
            raise ValueError(
                f"group has unknown key(s) {sorted(unknown)}; valid keys are {list(_GROUP_COLUMNS)}"
            )
        codes = {}
        for col, index in (("scale", self.scales.index), ("site", self.sites.index)):
            if col in group:
                labels = np.full(n, str(group[col]), dtype=object)
            elif X is not None and col in X.columns:
                labels = X[col].astype(str).to_numpy()
            else:
                raise ValueError(
                    f"no '{col}' for mean_yield: X has no '{col}' column and group does not "
                    f"set it; pass group={{'{col}': ...}} with one of {list(index)}"
                )
            code = pd.Index(index).get_indexer(labels)
            if (code < 0).any():
                bad = pd.unique(labels[code < 0])[:5].tolist()
                raise ValueError(f"unknown {col} {bad}; the truth knows {list(index)}")
            codes[col] = code
        row = codes["scale"] * len(self.sites) + codes["site"]
        return row, self._campaign_factor(X, n, group)

    def _campaign_factor(
        self, X: pd.DataFrame | None, n: int, group: Mapping[str, Any]
    ) -> np.ndarray:
        col = self._campaign
        if col is None:
            return np.ones(n)
        if col in group:
            labels = np.full(n, str(group[col]), dtype=object)
        elif X is not None and col in X.columns:
            labels = X[col].astype(str).to_numpy()
        else:
            return np.ones(n)
        # an unseen campaign gets no shift
        return self.campaign_effects.reindex(labels).fillna(1.0).to_numpy(dtype=float)

    def _factor_values(
        self, X: pd.DataFrame | np.ndarray
    ) -> tuple[np.ndarray, pd.DataFrame | None]:
        """Return the factors as an ``(n, k)`` array, and X when it is a DataFrame."""
        names = self.space.factor_names
        if isinstance(X, pd.DataFrame):
            missing = [p for p in names if p not in X.columns]
            if missing:
                raise ValueError(
                    f"X is missing parameter column(s) {missing}; the process's factors are "
                    f"{list(names)}"
                )
            return X.loc[:, list(names)].to_numpy(dtype=float), X
        arr = np.asarray(X, dtype=float)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != len(names):
            raise ValueError(
                f"X as an array must have shape (n, {len(names)}) with columns "
                f"{list(names)}, got shape {np.shape(X)}"
            )
        return arr, None

    # -- the response ---------------------------------------------------------------------
    def mean_yield(
        self, X: pd.DataFrame | np.ndarray, group: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Noise-free expected response (yield, g/L for the demo) for each row of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            Setpoints: the space's factor columns in domain units, and its group columns
            (demo: ``scale``, ``site``, optionally ``campaign``) unless ``group`` sets them. A
            2-D array is read as the factors in the space's order; it needs ``group``.
        group : mapping, optional
            ``{"scale": ..., "site": ..., "campaign": ...}`` applied to all rows, overriding the
            columns of ``X``. A campaign not in the truth gets no campaign shift; no campaign
            at all means no shift.

        Returns
        -------
        numpy.ndarray
            Expected response in the response's unit, shape ``(len(X),)``.

        Raises
        ------
        ValueError
            If a factor column is missing, or a group label is missing or unknown.
        """
        x, frame = self._factor_values(X)
        n = len(x)
        row, campaign = self._group_index(frame, n, group)
        return self._mean(x, row) * campaign

    def _mean(self, x: np.ndarray, row: np.ndarray) -> np.ndarray:
        ge = self.group_effects
        return _response(
            *x.T,
            y_max=ge["yield_max"].to_numpy()[row],
            t_opt=ge["temperature_opt"].to_numpy()[row],
            ph_opt=ge["ph_opt"].to_numpy()[row],
            k_do=ge["k_do"].to_numpy()[row],
        )

    def noise_sd(
        self, X: pd.DataFrame | np.ndarray, group: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Return the standard deviation of a new batch's response at each row of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            As for :meth:`mean_yield`.
        group : mapping, optional
            As for :meth:`mean_yield`.

        Returns
        -------
        numpy.ndarray
            ``noise_cv * mean_yield(X, group)``, in the response's unit.
        """
        return self.noise_cv * self.mean_yield(X, group)

    def sample_yield(
        self,
        X: pd.DataFrame | np.ndarray,
        group: Mapping[str, Any] | None = None,
        *,
        random_seed: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Draw noisy responses of new batches run at the rows of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            As for :meth:`mean_yield`.
        group : mapping, optional
            As for :meth:`mean_yield`.
        random_seed : int, numpy.random.Generator or None, default None
            Seed of the noise.

        Returns
        -------
        numpy.ndarray
            ``mean_yield * eps`` with log-normal ``eps`` of mean 1 and CV ``noise_cv``.
        """
        mu = self.mean_yield(X, group)
        return mu * _noise(_rng(random_seed), len(mu), self.noise_cv)

    def optimum(self, group: Mapping[str, Any] | None = None) -> pd.Series:
        """Return the true best setpoint of a group within the space's operating ranges.

        Best means the highest expected response, or the lowest for a response the space
        declares as minimised. Factors the space fixes are held at their fixed value. Found
        numerically: a grid over the operating box (9 points per factor for k <= 5, fewer
        for larger k, a Sobol sample beyond), then L-BFGS-B from the best grid points.
        Results are cached per group.

        Parameters
        ----------
        group : mapping, optional
            A label for each group column that locates a group (demo: ``{"scale": ...,
            "site": ...}``) and optionally ``"campaign"`` (which scales the response, not
            the location). A ``pandas.Series`` works too. May be omitted when the space has
            no such group columns.

        Returns
        -------
        pandas.Series
            The factors (domain units) and the response (its expected value there), named
            after the group labels joined by ``"/"``.
        """
        group = dict(group or {})
        for key in self._structural:
            if key not in group:
                raise ValueError(f"group must set '{key}'; got keys {sorted(group)}")
        keys = (*self._structural, *(() if self._campaign is None else (self._campaign,)))
        group = {k: v for k, v in group.items() if k in keys}
        key: tuple[str | None, ...] = tuple(str(group[c]) for c in self._structural)
        if self._campaign is not None:
            camp = group.get(self._campaign)
            key = (*key, None if camp is None else str(camp))
        if key not in self._optima:
            self._optima[key] = self._find_optimum(group)
        return self._optima[key].copy()

    def _find_optimum(self, group: Mapping[str, Any]) -> pd.Series:
        space = self.space
        lo_all, hi_all = space.lower, space.upper
        base = space.centre.copy()
        free = []
        for j, f in enumerate(space.factors):
            if f.fixed is None:
                free.append(j)
            else:
                base[j] = f.fixed
        lo, hi = lo_all[free], hi_all[free]
        self._group_index(None, 1, group)  # fail early on unknown labels
        sign = -1.0 if space.response.maximise else 1.0

        def full(u: np.ndarray) -> np.ndarray:
            x = np.tile(base, (len(u), 1))
            x[:, free] = lo + u * (hi - lo)
            return x

        m = len(free)
        if m == 0:
            best_u = np.empty(0)
            best_val = sign * float(self.mean_yield(base[None, :], group)[0])
        else:
            per_axis = 9 if 9**m <= 200_000 else int(200_000 ** (1.0 / m))
            if per_axis >= 3:
                grid = np.stack(
                    np.meshgrid(*[np.linspace(0.0, 1.0, per_axis)] * m, indexing="ij"), axis=-1
                ).reshape(-1, m)
            else:
                grid = qmc.Sobol(d=m, rng=np.random.default_rng(0)).random(2**15)
            mean = self.mean_yield(full(grid), group)
            order = np.argsort(mean)[::-1] if space.response.maximise else np.argsort(mean)
            starts = grid[order[:4]]

            def objective(u: np.ndarray) -> float:
                return sign * float(self.mean_yield(full(u[None, :]), group)[0])

            best_u, best_val = starts[0], sign * float(mean[order[0]])
            for start in starts:
                res = optimize.minimize(
                    objective, start, method="L-BFGS-B", bounds=[(0.0, 1.0)] * m
                )
                if res.fun < best_val:
                    best_u, best_val = res.x, float(res.fun)
        x = full(np.clip(np.asarray(best_u), 0.0, 1.0)[None, :])[0] if m else base
        out = pd.Series(
            [*x, sign * best_val], index=[*space.factor_names, space.response.name], dtype=float
        )
        out.name = "/".join(str(group[c]) for c in self._structural) or "all"
        return out


class _BiologyTruth(Truth):
    """Truth of a declared process space, driven by a :class:`ProcessBiology`.

    Attributes
    ----------
    space : ProcessSpace
        The process.
    biology : ProcessBiology
        The complete biology (every field filled; drawn labels included in ``levels``).
    levels : dict of str to pandas.DataFrame
        Per group column that locates a group: one row per label with ``weight``, ``level``
        and ``<factor>_shift`` (optimum shift, factor unit).
    group_effects : pandas.DataFrame
        One row per combination of those labels: the labels, ``level`` (multiplicative),
        ``weight`` (share of batches) and ``<factor>_opt`` (the optimum of each factor there).
    campaign_effects : pandas.Series
        Multiplicative level shift by campaign label (empty without a ``campaign`` column).
    noise_cv : float
        Coefficient of variation of the batch-to-batch noise.
    """

    def __init__(
        self,
        space: ProcessSpace,
        biology: ProcessBiology,
        levels: dict[str, pd.DataFrame],
        campaign_effects: pd.Series,
        noise_cv: float,
    ) -> None:
        self.space = space
        self.biology = biology
        self.levels = levels
        self._structural = tuple(levels)
        self._campaign = "campaign" if "campaign" in space.groups else None
        self.campaign_effects = campaign_effects
        self.noise_cv = float(noise_cv)
        names = space.factor_names
        if levels:
            combos = pd.MultiIndex.from_product(
                [frame.index for frame in levels.values()], names=list(levels)
            ).to_frame(index=False)
        else:
            combos = pd.DataFrame(index=[0])
        level = np.ones(len(combos))
        weight = np.ones(len(combos))
        opt = np.tile([biology.optimum[n] for n in names], (len(combos), 1))
        for col, frame in levels.items():
            part = frame.loc[combos[col]]
            level *= part["level"].to_numpy()
            weight *= part["weight"].to_numpy() / frame["weight"].sum()
            opt += part[[f"{n}_shift" for n in names]].to_numpy()
        self.group_effects = pd.DataFrame(
            {
                **{c: combos[c].astype(str).to_numpy() for c in levels},
                "level": level,
                "weight": weight,
                **{f"{n}_opt": opt[:, j] for j, n in enumerate(names)},
            }
        )
        self._opt = opt
        self._level = level
        self._width = np.array([biology.width[n] for n in names])
        self._asym = np.array([biology.asymmetry[n] for n in names])
        self._sat = np.array([n in biology.saturating for n in names])
        self._inter = None
        if biology.interaction:
            a, b, s = biology.interaction
            self._inter = (names.index(a), names.index(b), float(s))
        self._optima = {}

    def __repr__(self) -> str:
        labels = {c: list(f.index) for c, f in self.levels.items()}
        return (
            f"Truth(process={self.space.name!r}, factors={list(self.space.factor_names)}, "
            f"groups={labels}, campaigns={len(self.campaign_effects)}, "
            f"noise_cv={self.noise_cv:g})"
        )

    def _group_index(
        self, X: pd.DataFrame | None, n: int, group: Mapping[str, Any] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        group = dict(group or {})
        valid = [*self._structural, *(() if self._campaign is None else (self._campaign,))]
        unknown = set(group) - set(valid)
        if unknown:
            raise ValueError(f"group has unknown key(s) {sorted(unknown)}; valid keys are {valid}")
        row = np.zeros(n, dtype=np.int64)
        for col, frame in self.levels.items():
            if col in group:
                labels = np.full(n, str(group[col]), dtype=object)
            elif X is not None and col in X.columns:
                labels = X[col].astype(str).to_numpy()
            else:
                raise ValueError(
                    f"no '{col}' for mean_yield: X has no '{col}' column and group does not "
                    f"set it; pass group={{'{col}': ...}} with one of {list(frame.index)}"
                )
            code = pd.Index(frame.index).get_indexer(labels)
            if (code < 0).any():
                bad = pd.unique(labels[code < 0])[:5].tolist()
                raise ValueError(f"unknown {col} {bad}; the truth knows {list(frame.index)}")
            row = row * len(frame) + code
        return row, self._campaign_factor(X, n, group)

    def _mean(self, x: np.ndarray, row: np.ndarray) -> np.ndarray:
        opt = self._opt[row]
        if self._inter is not None:
            a, b, s = self._inter
            hw = self.space.half_width
            opt = opt.copy()
            opt[:, b] += s * hw[b] * (x[:, a] - opt[:, a]) / hw[a]
        f = np.ones(len(x))
        for j in range(x.shape[1]):
            w = self._width[j]
            if self._sat[j]:
                # Haldane: maximal (1) at s = w, i.e. at the optimum; slow decline above
                k = _SAT_HALF * w
                ki = w * w / k
                s = np.maximum(x[:, j] - (opt[:, j] - w), 0.0)
                f *= (1.0 + 2.0 * math.sqrt(k / ki)) * s / (k + s + s * s / ki)
            else:
                # cardinal model (Rosso 1995): 0 at opt - w and at opt + asym * w
                lo = opt[:, j] - w
                hi = opt[:, j] + self._asym[j] * w
                v = np.clip(x[:, j], lo, hi)
                a = (v - lo) * (v - hi)
                f *= a / (a - (v - opt[:, j]) ** 2)
        f = np.maximum(f, _F_FLOOR)
        base = self.biology.baseline * self._level[row]
        if self.space.response.maximise:
            return base * f
        return base * (1.0 + _MINIMISE_SPAN * (1.0 - f))


def _response(
    mixing_time: np.ndarray,
    temperature: np.ndarray,
    ph: np.ndarray,
    dissolved_oxygen: np.ndarray,
    *,
    y_max: np.ndarray,
    t_opt: np.ndarray,
    ph_opt: np.ndarray,
    k_do: np.ndarray,
) -> np.ndarray:
    """Noise-free yield before the campaign shift (see the module docstring)."""
    # cardinal temperature model with inflection (Rosso 1993)
    t_min = t_opt - _T_MIN_OFFSET
    t_max = t_opt + _T_MAX_OFFSET
    t = np.clip(temperature, t_min, t_max)
    den = (t_opt - t_min) * (
        (t_opt - t_min) * (t - t_opt) - (t_opt - t_max) * (t_opt + t_min - 2 * t)
    )
    f_t = (t - t_max) * (t - t_min) ** 2 / den
    # cardinal pH model (Rosso 1995)
    p_min = ph_opt - _PH_MIN_OFFSET
    p_max = ph_opt + _PH_MAX_OFFSET
    p = np.clip(ph, p_min, p_max)
    a = (p - p_min) * (p - p_max)
    f_ph = a / (a - (p - ph_opt) ** 2)
    # oxygen: Haldane term in the effective DO; demand rises with temperature
    tm = np.maximum(mixing_time, 0.0)
    do_eff = np.maximum(dissolved_oxygen, 0.0) * (
        1.0 - _DO_GRADIENT * tm / (tm + _DO_GRADIENT_HALF)
    )
    k = k_do * np.exp(_K_DO_TEMP * (temperature - 37.0))
    f_do = _DO_NORM * do_eff / (k + do_eff + do_eff**2 / _KI_DO)
    # gradients: saturating mixing-time penalty
    f_mix = 1.0 - _MIX_PENALTY * tm / (tm + _MIX_HALF)
    return y_max * f_t * f_ph * f_do * f_mix


def _noise(rng: np.random.Generator, n: int, cv: float) -> np.ndarray:
    """Log-normal factors with mean 1 and coefficient of variation ``cv``."""
    s2 = np.log1p(cv**2)
    return np.exp(rng.normal(-0.5 * s2, np.sqrt(s2), size=n))


# -- configuration ----------------------------------------------------------------------------
def _scale_frame(scales: Mapping[str, Mapping[str, float]] | Sequence[str] | None) -> pd.DataFrame:
    if scales is None:
        scales = DEFAULT_SCALES
    if isinstance(scales, str):
        raise ValueError(
            f"scales must be a sequence of names or a mapping, got the string {scales!r}"
        )
    if not isinstance(scales, Mapping):
        names = [str(s) for s in scales]
        unknown = [s for s in names if s not in DEFAULT_SCALES]
        if unknown:
            raise ValueError(
                f"scales names unknown scale(s) {unknown}; known defaults are "
                f"{list(DEFAULT_SCALES)}, or pass a mapping {{name: {{...}}}} with keys "
                f"{list(_SCALE_NEUTRAL)}"
            )
        scales = {s: DEFAULT_SCALES[s] for s in names}
    if len(scales) == 0:
        raise ValueError("scales must name at least one scale")
    rows = {}
    for name, spec in scales.items():
        spec = dict(spec)
        bad = set(spec) - set(_SCALE_NEUTRAL)
        if bad:
            raise ValueError(
                f"scales[{name!r}] has unknown key(s) {sorted(bad)}; "
                f"valid keys {list(_SCALE_NEUTRAL)}"
            )
        base = DEFAULT_SCALES.get(str(name), _SCALE_NEUTRAL)
        row = {**base, **{k: float(v) for k, v in spec.items()}}
        for key in ("weight", "yield_factor", "oxygen_factor", "mixing_time"):
            if not np.isfinite(row[key]) or row[key] <= 0:
                raise ValueError(f"scales[{name!r}]['{key}'] must be positive, got {row[key]}")
        rows[str(name)] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "scale"
    return frame


def _site_frame(
    sites: Mapping[str, float] | Sequence[str] | None, rng: np.random.Generator
) -> pd.DataFrame:
    if sites is None:
        sites = DEFAULT_SITES
    if isinstance(sites, str):
        raise ValueError(
            f"sites must be a sequence of names or a mapping, got the string {sites!r}"
        )
    if not isinstance(sites, Mapping):
        sites = {str(s): 1.0 for s in sites}
    if len(sites) == 0:
        raise ValueError("sites must name at least one site")
    weights = np.array([float(w) for w in sites.values()])
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError(f"sites weights must be positive, got {dict(sites)}")
    k = len(weights)
    sd = SITE_EFFECT_SD
    frame = pd.DataFrame(
        {
            "weight": weights,
            "yield_factor": np.exp(rng.normal(0.0, sd["log_yield"], k)),
            "temperature_shift": rng.normal(0.0, sd["temperature_shift"], k),
            "ph_shift": rng.normal(0.0, sd["ph_shift"], k),
            "oxygen_factor": np.exp(rng.normal(0.0, sd["log_oxygen_factor"], k)),
        },
        index=pd.Index([str(s) for s in sites], name="site"),
    )
    return frame


# -- designs ----------------------------------------------------------------------------------
def _bounds(space: ProcessSpace = _DEFAULT_SPACE) -> tuple[np.ndarray, np.ndarray]:
    return space.lower, space.upper


def _historical(
    rng: np.random.Generator,
    scale_code: np.ndarray,
    site_code: np.ndarray,
    campaign_code: np.ndarray,
    truth: Truth,
    n_campaigns: int,
    excursion_rate: float,
    space: ProcessSpace = _DEFAULT_SPACE,
) -> np.ndarray:
    """Setpoints near the standard recipe of each (scale, site) group, drifting by campaign."""
    n = len(scale_code)
    n_sites = len(truth.sites)
    n_groups = len(truth.scales) * n_sites
    group_code = scale_code * n_sites + site_code
    out = np.empty((n, len(_PARAMS)))
    mix_typ = truth.scales["mixing_time"].to_numpy()[scale_code]
    out[:, 0] = mix_typ * np.exp(rng.normal(0.0, _MIX_LOG_SD, n))
    for j, p in enumerate(_PARAMS[1:], start=1):
        group_off = rng.normal(0.0, _RECIPE_GROUP_SD[p], n_groups)
        camp_off = rng.normal(0.0, _RECIPE_CAMPAIGN_SD[p], n_campaigns)
        out[:, j] = (
            _RECIPE[p]
            + group_off[group_code]
            + camp_off[campaign_code]
            + rng.normal(0.0, _BATCH_SD[p], n)
        )
    lo, hi = _bounds(space)
    # occasional excursions: one parameter anywhere in the operating range
    exc = rng.random(n) < excursion_rate
    which = rng.integers(0, len(lo), n)
    u = rng.uniform(lo[which], hi[which])
    rows = np.flatnonzero(exc)
    out[rows, which[rows]] = u[rows]
    pad = 0.05 * (hi - lo)
    return np.clip(out, lo - pad, hi + pad)


def _doe(rng: np.random.Generator, n: int, space: ProcessSpace = _DEFAULT_SPACE) -> np.ndarray:
    lo, hi = _bounds(space)
    sample = qmc.LatinHypercube(d=len(lo), rng=rng).random(n)
    return qmc.scale(sample, lo, hi)


def _uniform(rng: np.random.Generator, n: int, space: ProcessSpace = _DEFAULT_SPACE) -> np.ndarray:
    lo, hi = _bounds(space)
    return rng.uniform(lo, hi, size=(n, len(lo)))


def _batch_ids(n: int) -> np.ndarray:
    width = max(4, len(str(n)))
    return np.strings.add("B", np.strings.zfill(np.arange(1, n + 1).astype(str), width))


# -- a declared process space: world and designs ---------------------------------------------
def _auto_labels(column: str) -> dict[str, float]:
    if column == "site":
        return dict(_AUTO_SITES)
    initial = column[:1].upper() or "G"
    return {f"{initial}{i}": w for i, w in zip((1, 2, 3), (0.5, 0.3, 0.2), strict=True)}


def _draw_levels(
    space: ProcessSpace, bio: ProcessBiology, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """Labels and effects of every group column that locates a group (declared or drawn)."""
    names = space.factor_names
    hw = space.half_width
    columns = ["weight", "level", *[f"{n}_shift" for n in names]]
    levels: dict[str, pd.DataFrame] = {}
    for col in space.groups:
        if col == "campaign":
            continue
        if col in bio.groups:
            rows = {
                label: [lv.weight, lv.level, *[float(lv.shift.get(n, 0.0)) for n in names]]
                for label, lv in bio.groups[col].items()
            }
        else:
            weights = _auto_labels(col)
            m = len(weights)
            level = np.exp(rng.normal(0.0, bio.level_sd, m))
            shift = rng.normal(0.0, bio.shift_sd, (m, space.k)) * hw
            rows = {label: [w, level[i], *shift[i]] for i, (label, w) in enumerate(weights.items())}
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
        frame.index = pd.Index([str(i) for i in frame.index], name=col)
        levels[col] = frame
    return levels


def _decimals(scale: float) -> int:
    """Return the recorded decimals for values of natural scale ``scale`` (3 significant)."""
    return max(0, 2 - math.floor(math.log10(abs(scale)))) if scale > 0 else 3


def _historical_space(
    rng: np.random.Generator,
    space: ProcessSpace,
    bio: ProcessBiology,
    group_row: np.ndarray,
    n_groups: int,
    campaign_code: np.ndarray,
    n_campaigns: int,
    excursion_rate: float,
) -> np.ndarray:
    """Setpoints near the biology's recipe, offset per group and campaign, with excursions."""
    n, k = len(group_row), space.k
    hw = space.half_width
    recipe = np.array([bio.recipe[name] for name in space.factor_names])
    group_off = rng.normal(0.0, _GEN_GROUP_SD, (n_groups, k)) * hw
    camp_off = rng.normal(0.0, _GEN_CAMPAIGN_SD, (n_campaigns, k)) * hw
    out = (
        recipe
        + group_off[group_row]
        + camp_off[campaign_code]
        + rng.normal(0.0, _GEN_BATCH_SD, (n, k)) * hw
    )
    lo, hi = space.lower, space.upper
    exc = rng.random(n) < excursion_rate
    which = rng.integers(0, k, n)
    u = rng.uniform(lo[which], hi[which])
    rows = np.flatnonzero(exc)
    out[rows, which[rows]] = u[rows]
    pad = 0.05 * (hi - lo)
    llo = np.array([f.limits[0] for f in space.factors])
    lhi = np.array([f.limits[1] for f in space.factors])
    return np.clip(out, np.maximum(lo - pad, llo), np.minimum(hi + pad, lhi))


def _simulate_space(
    n: int,
    space: ProcessSpace,
    bio: ProcessBiology,
    *,
    design: str,
    n_campaigns: int,
    noise_cv: float,
    excursion_rate: float,
    defects: bool | Mapping[str, float],
    rates: dict[str, float],
    random_seed: int | np.random.Generator | None,
) -> SimulatedBatches:
    """:func:`simulate_batches` for a declared space (see the module docstring)."""
    rng_world, rng_design, rng_noise, rng_defects = _rng(random_seed).spawn(4)
    levels = _draw_levels(space, bio, rng_world)
    has_campaign = "campaign" in space.groups
    campaigns = [f"CMP{i + 1:02d}" for i in range(int(n_campaigns))] if has_campaign else []
    campaign_effects = pd.Series(
        np.exp(rng_world.normal(0.0, bio.campaign_sd, len(campaigns))),
        index=pd.Index(campaigns, name="campaign", dtype=object),
        name="campaign_effect",
        dtype=float,
    )
    truth = _BiologyTruth(space, bio, levels, campaign_effects, noise_cv)

    codes = {}
    for col, frame in levels.items():
        p = frame["weight"].to_numpy() / frame["weight"].sum()
        codes[col] = rng_design.choice(len(p), size=n, p=p)
    if has_campaign:
        share = rng_world.dirichlet(np.full(len(campaigns), 2.0))
        campaign_code = rng_design.choice(len(campaigns), size=n, p=share)
    else:
        campaign_code = np.zeros(n, dtype=np.int64)
    group_row = np.zeros(n, dtype=np.int64)
    for col, frame in levels.items():
        group_row = group_row * len(frame) + codes[col]
    if design == "historical":
        X = _historical_space(
            rng_design,
            space,
            bio,
            group_row,
            len(truth.group_effects),
            campaign_code,
            max(len(campaigns), 1),
            excursion_rate,
        )
    elif design == "doe":
        X = _doe(rng_design, n, space)
    else:
        X = _uniform(rng_design, n, space)
    decimals = [_decimals(h) for h in space.half_width]
    for j in range(space.k):
        X[:, j] = np.round(X[:, j], decimals[j])
    mu = truth._mean(X, group_row)
    if has_campaign:
        mu = mu * campaign_effects.to_numpy()[campaign_code]
    resp = space.response
    y_dec = _decimals(bio.baseline / 10.0)
    y = np.round(mu * _noise(rng_noise, n, noise_cv), y_dec)

    columns: dict[str, Any] = {space.batch_id: pd.array(_batch_ids(n), dtype="str")}
    for col in space.groups:
        if col == "campaign":
            labels = np.array(campaigns, dtype=str)[campaign_code]
        else:
            labels = levels[col].index.to_numpy(dtype=str)[codes[col]]
        columns[col] = pd.array(labels, dtype="str")
    columns.update({name: X[:, j] for j, name in enumerate(space.factor_names)})
    columns[resp.name] = y
    table = pd.DataFrame(columns)
    plan = _space_plan(space, truth, decimals, y_dec)
    rates = _applicable(rates, plan, explicit=isinstance(defects, Mapping))
    if not rates:
        return SimulatedBatches(table, truth, _empty_labels(space.batch_id))
    table, labels = _apply_defects(table, rates, rng_defects, plan)
    return SimulatedBatches(table, truth, labels)


class SimulatedBatches(NamedTuple):
    """Result of :func:`simulate_batches` (a NamedTuple: ``table, truth, defects = sim``).

    Attributes
    ----------
    table : pandas.DataFrame
        The batch table (with defects when requested).
    truth : Truth
        The data-generating process.
    defects : pandas.DataFrame
        Labelled defects: ``row`` (position in ``table``), ``batch_id``, ``column``,
        ``defect``, ``true_value``, ``recorded_value``. Empty without defects.
    """

    table: pd.DataFrame
    truth: Truth
    defects: pd.DataFrame

    @property
    def clean_table(self) -> pd.DataFrame:
        """The table before defects: labelled values restored, duplicate copies dropped.

        Equal to the ``table`` of the same call with ``defects=False``.
        """
        return _restore(self.table, self.defects, self.truth.space)


def _restore(table: pd.DataFrame, labels: pd.DataFrame, space: ProcessSpace) -> pd.DataFrame:
    out = table.copy()
    if labels.empty:
        return out
    dup = labels["defect"].isin(["duplicate_exact", "duplicate_near"]).to_numpy()
    rest = labels.loc[~dup]
    for col, part in rest.groupby("column", sort=False):
        rows = part["row"].to_numpy()
        vals = part["true_value"].to_numpy()
        if col in space.numeric_columns:
            vals = vals.astype(float)
        out.loc[out.index[rows], col] = vals
    keep = np.ones(len(out), dtype=bool)
    keep[labels.loc[dup, "row"].to_numpy()] = False
    return out.loc[keep].reset_index(drop=True)


_EMPTY_LABELS = {
    "row": "int64",
    "batch_id": "str",
    "column": "str",
    "defect": "str",
    "true_value": "object",
    "recorded_value": "object",
}


def _empty_labels(batch_id: str = _BATCH_ID) -> pd.DataFrame:
    return pd.DataFrame(
        {(batch_id if k == "batch_id" else k): pd.Series(dtype=v) for k, v in _EMPTY_LABELS.items()}
    )


def _demo_compatible(space: ProcessSpace) -> bool:
    """Whether the demo biology applies: the demo's factors, units, response and columns.

    Operating ranges, limits, labels and fixed values may differ (the truth's optimum and the
    designs then use the space's ranges).
    """
    demo = _DEFAULT_SPACE
    return (
        space.factor_names == demo.factor_names
        and all(f.unit == d.unit for f, d in zip(space.factors, demo.factors, strict=True))
        and (space.response.name, space.response.unit, space.response.direction)
        == (demo.response.name, demo.response.unit, demo.response.direction)
        and space.groups == demo.groups
        and space.batch_id == demo.batch_id
    )


def simulate_batches(
    n: int,
    *,
    design: str = "historical",
    scales: Mapping[str, Mapping[str, float]] | Sequence[str] | None = None,
    sites: Mapping[str, float] | Sequence[str] | None = None,
    n_campaigns: int = 6,
    noise_cv: float | None = None,
    excursion_rate: float = 0.05,
    defects: bool | Mapping[str, float] = False,
    random_seed: int | np.random.Generator | None = None,
    space: ProcessSpace | str | Path | None = None,
    biology: ProcessBiology | None = None,
) -> SimulatedBatches:
    """Simulate a batch table from a known, non-linear bioprocess truth.

    Parameters
    ----------
    n : int
        Number of (clean) batches, >= 1. Duplicate defects add rows on top.
    design : {"historical", "doe", "uniform"}, default "historical"
        ``"historical"``: plant history, most batches near a standard recipe of their group
        that drifts a little by campaign (demo: mixing times typical of each scale) and
        occasional excursions (``excursion_rate``) of one factor anywhere in the operating
        range. ``"doe"``: a Latin hypercube over the operating ranges. ``"uniform"``:
        independent uniform draws over the operating ranges.
    scales : mapping or sequence of str, optional
        Demo process only. Scale configuration; default :data:`DEFAULT_SCALES`. A sequence
        picks default scales by name; a mapping ``{name: {key: value}}`` sets any of
        ``weight``, ``yield_factor``, ``temperature_shift``, ``ph_shift``, ``oxygen_factor``,
        ``mixing_time`` (missing keys come from the default scale of that name, else neutral
        values).
    sites : mapping of str to float or sequence of str, optional
        Demo process only. Sites and their batch shares; default :data:`DEFAULT_SITES`. A
        sequence gives equal shares. Site effects are drawn from ``random_seed``
        (:data:`SITE_EFFECT_SD`).
    n_campaigns : int, default 6
        Number of campaigns (``"CMP01"``, ...) when the space has a ``campaign`` group
        column. Batches are spread over them with unequal, seeded shares; each campaign has a
        random level shift.
    noise_cv : float, optional
        Coefficient of variation of the multiplicative batch-to-batch noise, in [0, 0.5].
        Default: the biology's (0.06).
    excursion_rate : float, default 0.05
        Share of historical batches with an excursion, in [0, 1].
    defects : bool or mapping of str to float, default False
        ``True``: :data:`DEFAULT_DEFECT_RATES` (kinds the space does not allow left out); a
        mapping ``{kind: rate}`` with kinds from :data:`DEFECT_KINDS` and rates (fraction of
        ``n``) in [0, 1] summing to at most 1. Each defective row carries exactly one defect.
    random_seed : int, numpy.random.Generator or None, default None
        One seed for everything; it is split into independent streams for the world, the
        design, the noise and the defects, so the clean rows do not depend on ``defects``.
    space : ProcessSpace, path to a TOML file or None, default None
        The process to simulate: its factors, operating ranges, response, group columns and
        batch id. With ``biology=None``, None, the default space or a space with the demo's
        factors, units, response, group columns and batch id (ranges, limits and fixed values
        may differ) get the demo biology, with the same numbers for the same seed as always;
        any other space gets :meth:`ProcessBiology.for_space`.
    biology : ProcessBiology, optional
        The response of the process (for the demo space too); fields left out are derived
        from the space (:meth:`ProcessBiology.for_space`).

    Returns
    -------
    SimulatedBatches
        ``(table, truth, defects)``; ``.clean_table`` gives the table before defects.

    Raises
    ------
    ValueError
        For ``n < 1``, an unknown ``design``, bad rates or configuration, a defect kind the
        space does not allow, ``scales``/``sites`` with another space, naming the argument.

    Examples
    --------
    >>> sim = simulate_batches(200, defects=True, random_seed=1)
    >>> table, truth, labels = sim
    >>> best = truth.optimum({"scale": "2000L", "site": "A"})
    """
    n = check_int("n", n, minimum=1)
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {list(DESIGNS)}, got {design!r}")
    n_campaigns = check_int("n_campaigns", n_campaigns, minimum=1)
    resolved = resolve_space(space)
    demo = biology is None and _demo_compatible(resolved)
    bio = None if demo else _complete_biology(biology or ProcessBiology(), resolved)
    if noise_cv is None:
        noise_cv = 0.06 if bio is None else float(bio.noise_cv)
    try:
        noise_ok = np.isfinite(noise_cv) and 0.0 <= noise_cv <= 0.5
    except TypeError:
        noise_ok = False
    if not noise_ok:
        raise ValueError(f"noise_cv must be in [0, 0.5], got {noise_cv!r}")
    if not (np.isfinite(excursion_rate) and 0.0 <= excursion_rate <= 1.0):
        raise ValueError(f"excursion_rate must be in [0, 1], got {excursion_rate!r}")
    rates = _defect_rates(defects)
    if bio is not None:
        if scales is not None or sites is not None:
            raise ValueError(
                "scales and sites configure the demo process; for another process space or a "
                "biology declare the labels with ProcessBiology(groups={column: {label: "
                "GroupLevel(...)}})"
            )
        make_rng(random_seed)  # check the seed before any work
        return _simulate_space(
            n,
            resolved,
            bio,
            design=design,
            n_campaigns=n_campaigns,
            noise_cv=float(noise_cv),
            excursion_rate=float(excursion_rate),
            defects=defects,
            rates=rates,
            random_seed=random_seed,
        )

    rng_world, rng_design, rng_noise, rng_defects = _rng(random_seed).spawn(4)
    scale_frame = _scale_frame(scales)
    site_frame = _site_frame(sites, rng_world)
    campaigns = [f"CMP{i + 1:02d}" for i in range(int(n_campaigns))]
    campaign_effects = pd.Series(
        np.exp(rng_world.normal(0.0, SITE_EFFECT_SD["log_campaign"], len(campaigns))),
        index=pd.Index(campaigns, name="campaign"),
        name="campaign_effect",
    )
    campaign_share = rng_world.dirichlet(np.full(len(campaigns), 2.0))
    truth = Truth(scale_frame, site_frame, campaign_effects, noise_cv, resolved)

    # groups: scale x site x campaign with unbalanced shares
    p_scale = scale_frame["weight"].to_numpy() / scale_frame["weight"].sum()
    p_site = site_frame["weight"].to_numpy() / site_frame["weight"].sum()
    scale_code = rng_design.choice(len(p_scale), size=n, p=p_scale)
    site_code = rng_design.choice(len(p_site), size=n, p=p_site)
    campaign_code = rng_design.choice(len(campaigns), size=n, p=campaign_share)
    if design == "historical":
        X = _historical(
            rng_design,
            scale_code,
            site_code,
            campaign_code,
            truth,
            len(campaigns),
            excursion_rate,
            resolved,
        )
    elif design == "doe":
        X = _doe(rng_design, n, resolved)
    else:
        X = _uniform(rng_design, n, resolved)
    for j, p in enumerate(_PARAMS):
        X[:, j] = np.round(X[:, j], _DECIMALS[p])

    group_row = scale_code * len(site_frame) + site_code
    mu = truth._mean(X, group_row) * campaign_effects.to_numpy()[campaign_code]
    y = np.round(mu * _noise(rng_noise, n, noise_cv), _DECIMALS[_RESPONSE])

    table = pd.DataFrame(
        {
            _BATCH_ID: pd.array(_batch_ids(n), dtype="str"),
            "scale": pd.array(scale_frame.index.to_numpy(dtype=str)[scale_code], dtype="str"),
            "site": pd.array(site_frame.index.to_numpy(dtype=str)[site_code], dtype="str"),
            "campaign": pd.array(np.array(campaigns, dtype=str)[campaign_code], dtype="str"),
            **{p: X[:, j] for j, p in enumerate(_PARAMS)},
            _RESPONSE: y,
        }
    )
    if not rates:
        return SimulatedBatches(table, truth, _empty_labels())
    table, labels = _apply_defects(table, rates, rng_defects, _DEFAULT_PLAN)
    return SimulatedBatches(table, truth, labels)


# -- defects ----------------------------------------------------------------------------------
def _defect_rates(defects: bool | Mapping[str, float]) -> dict[str, float]:
    if defects is False or defects is None:
        return {}
    if defects is True:
        return dict(DEFAULT_DEFECT_RATES)
    if not isinstance(defects, Mapping):
        raise ValueError(
            f"defects must be True, False or a mapping {{kind: rate}}, got {type(defects).__name__}"
        )
    unknown = [k for k in defects if k not in DEFECT_KINDS]
    if unknown:
        raise ValueError(
            f"defects has unknown kind(s) {unknown}; valid kinds are {list(DEFECT_KINDS)}"
        )
    rates = {}
    for kind, rate in defects.items():
        try:
            r = float(rate)
        except (TypeError, ValueError):
            raise ValueError(
                f"defects[{kind!r}] must be a number in [0, 1], got {rate!r}"
            ) from None
        if not (np.isfinite(r) and 0.0 <= r <= 1.0):
            raise ValueError(f"defects[{kind!r}] must be a rate in [0, 1], got {rate!r}")
        rates[kind] = r
    total = sum(rates.values())
    if total > 1.0 + 1e-12:
        raise ValueError(
            f"defects rates sum to {total:g}; each defective row carries one defect, so they must "
            "sum to at most 1"
        )
    return {k: rates[k] for k in DEFECT_KINDS if rates.get(k, 0.0) > 0}


@dataclass(frozen=True)
class _DefectPlan:
    """Where each defect kind goes in the table of one process (columns and record functions)."""

    response: str
    batch_id: str
    missing_columns: tuple[str, ...]
    impossible: Mapping[str, Callable[[np.ndarray], np.ndarray]]
    unit_slips: Mapping[str, tuple[tuple[str, ...], Callable[[str, np.ndarray], np.ndarray]]]
    typo_columns: tuple[str, ...]
    near_decimals: Mapping[str, int]
    response_decimals: int = 3
    outlier_cap: float = math.inf

    def unavailable(self) -> dict[str, str]:
        """Defect kinds this process does not allow, with the reason."""
        out = {}
        for kind in ("unit_kelvin", "unit_fahrenheit", "unit_do_mg_per_l"):
            if not self.unit_slips.get(kind, ((), None))[0]:
                out[kind] = (
                    "no factor in % air saturation"
                    if kind == "unit_do_mg_per_l"
                    else "no factor with a temperature unit that can slip to "
                    + ("K" if kind == "unit_kelvin" else "degF")
                )
        if not self.typo_columns:
            out["label_typo"] = "no group column with labels"
        if not self.impossible:
            out["impossible"] = "no column with finite limits"
        return out


_DEFAULT_PLAN = _DefectPlan(
    response=_RESPONSE,
    batch_id=_BATCH_ID,
    missing_columns=(*_PARAMS, _RESPONSE),
    impossible={
        # column: how the impossible value is recorded
        "ph": lambda v: v * 10.0,  # decimal slip: pH 70
        "dissolved_oxygen": lambda v: -v,
        "yield": lambda v: -v,
        "mixing_time": lambda v: -v,
    },
    unit_slips={
        "unit_kelvin": (("temperature",), lambda c, v: np.round(v + 273.15, 2)),
        "unit_fahrenheit": (("temperature",), lambda c, v: np.round(v * 9.0 / 5.0 + 32.0, 2)),
        "unit_do_mg_per_l": (
            ("dissolved_oxygen",),
            lambda c, v: np.round(v * DO_MG_PER_L_AT_100_PERCENT / 100.0, 2),
        ),
    },
    typo_columns=("scale", "site"),
    near_decimals={"mixing_time": 0, "temperature": 1, "ph": 2, "dissolved_oxygen": 0},
)


def _converts_to(unit: str, target: str) -> bool:
    try:
        convert_units([1.0], unit, target)
    except SpaceError:
        return False
    return True


def _is_unit(unit: str, target: str) -> bool:
    return _converts_to(unit, target) and np.allclose(
        convert_units([0.0, 1.0], unit, target), [0.0, 1.0]
    )


def _impossible_record(
    low: float, high: float, span: float
) -> Callable[[np.ndarray], np.ndarray] | None:
    """How a value outside the limits ``[low, high]`` is recorded, or None when unbounded."""
    if math.isfinite(low) and low >= 0:
        return lambda v: np.where(v > 0, -v, low - span)  # sign slip
    if math.isfinite(high):
        return lambda v: np.where(v * 10.0 > high, v * 10.0, high + span)  # decimal slip
    if math.isfinite(low):
        return lambda v: np.full(len(v), low - span)
    return None


def _space_plan(
    space: ProcessSpace, truth: Truth, decimals: Sequence[int], response_decimals: int
) -> _DefectPlan:
    units = space.units
    impossible = {}
    for f in space.factors:
        func = _impossible_record(*f.limits, f.operating[1] - f.operating[0])
        if func is not None:
            impossible[f.name] = func
    resp = space.response
    func = _impossible_record(*resp.limits, max(float(truth.biology.baseline), 1e-3))
    if func is not None:
        impossible[resp.name] = func
    temps = [f.name for f in space.factors if _converts_to(f.unit, "K")]

    def to_unit(target: str, dec: int) -> Callable[[str, np.ndarray], np.ndarray]:
        return lambda c, v: np.round(convert_units(v, units[c], target), dec)

    def do_mg(c: str, v: np.ndarray) -> np.ndarray:
        pct = convert_units(v, units[c], "% air sat.")
        return np.round(pct * DO_MG_PER_L_AT_100_PERCENT / 100.0, 2)

    slips = {
        "unit_kelvin": (tuple(t for t in temps if not _is_unit(units[t], "K")), to_unit("K", 2)),
        "unit_fahrenheit": (
            tuple(t for t in temps if not _is_unit(units[t], "degF")),
            to_unit("degF", 2),
        ),
        "unit_do_mg_per_l": (
            tuple(
                f.name
                for f in space.factors
                if _converts_to(f.unit, "% air sat.") and not _is_unit(f.unit, "mg/L")
            ),
            do_mg,
        ),
    }
    structural = tuple(c for c in space.groups if c != "campaign")
    return _DefectPlan(
        response=resp.name,
        batch_id=space.batch_id,
        missing_columns=space.numeric_columns,
        impossible=impossible,
        unit_slips=slips,
        typo_columns=structural[:2],
        near_decimals={
            name: max(d - 1, 0) for name, d in zip(space.factor_names, decimals, strict=True)
        },
        response_decimals=response_decimals,
        outlier_cap=resp.limits[1],
    )


def _applicable(rates: dict[str, float], plan: _DefectPlan, *, explicit: bool) -> dict[str, float]:
    """Drop the kinds the process does not allow (an error when they were asked for by name)."""
    unavailable = plan.unavailable()
    bad = {k: unavailable[k] for k in rates if k in unavailable}
    if bad and explicit:
        reasons = "; ".join(f"{k}: {why}" for k, why in bad.items())
        raise ValueError(f"defects kind(s) {list(bad)} do not apply to this process ({reasons})")
    return {k: r for k, r in rates.items() if k not in unavailable}


def _typos(column: str, label: str) -> list[str]:
    """Plausible mis-typings of a group label, all different from it."""
    prefix = {"site": "Site-", "scale": "", "campaign": ""}.get(column, "")
    cands = [f" {label.lower()}", f"{label} ", label.lower(), label.upper()]
    if prefix:
        cands.append(f"{prefix}{label}")
    if label[-1:].isalpha() and label[:-1].strip() and label[:-1][-1:].isdigit():
        cands.append(f"{label[:-1]} {label[-1]}")  # "2000L" -> "2000 L"
        cands.append(f"{label[:-1]} {label[-1].lower()}")
    out = []
    for c in cands:
        if c != label and c not in out:
            out.append(c)
    return out


def _apply_defects(
    table: pd.DataFrame,
    rates: Mapping[str, float],
    rng: np.random.Generator,
    plan: _DefectPlan = _DEFAULT_PLAN,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply labelled defects to disjoint rows of a clean table (vectorised)."""
    n = len(table)
    counts = {k: round(r * n) for k, r in rates.items()}
    # each defective row carries exactly one defect: disjoint blocks of one permutation
    perm = rng.permutation(n)
    blocks: dict[str, np.ndarray] = {}
    start = 0
    for kind in DEFECT_KINDS:
        k = min(counts.get(kind, 0), n - start)
        blocks[kind] = np.sort(perm[start : start + k])
        start += k

    numeric = {c: table[c].to_numpy(dtype=float, copy=True) for c in plan.missing_columns}
    text = {c: table[c].to_numpy(dtype=object, copy=True) for c in plan.typo_columns}
    rows_l: list[np.ndarray] = []
    cols_l: list[np.ndarray] = []
    kinds_l: list[np.ndarray] = []
    true_l: list[np.ndarray] = []
    rec_l: list[np.ndarray] = []

    def record(rows: np.ndarray, column: np.ndarray, kind: str, true, rec) -> None:
        rows_l.append(rows)
        cols_l.append(np.asarray(column, dtype=object))
        kinds_l.append(np.full(len(rows), kind, dtype=object))
        true_l.append(np.asarray(true, dtype=object))
        rec_l.append(np.asarray(rec, dtype=object))

    def set_numeric(rows: np.ndarray, cols: np.ndarray, kind: str, func) -> None:
        true = np.empty(len(rows), dtype=object)
        rec = np.empty(len(rows), dtype=object)
        for col in pd.unique(cols):
            m = cols == col
            r = rows[m]
            old = numeric[col][r]
            new = func(col, old)
            numeric[col][r] = new
            true[m] = old
            rec[m] = new
        record(rows, cols, kind, true, rec)

    rows = blocks["missing"]
    if len(rows):
        cols = np.asarray(plan.missing_columns, dtype=object)[
            rng.integers(0, len(plan.missing_columns), len(rows))
        ]
        set_numeric(rows, cols, "missing", lambda c, v: np.full(len(v), np.nan))
    rows = blocks["outlier"]
    if len(rows):
        factor = np.where(rng.random(len(rows)) < 0.5, 3.0, 0.2)
        cols = np.full(len(rows), plan.response, dtype=object)
        if math.isfinite(plan.outlier_cap):
            # stay inside the physical limits: x 0.2 where x 3 would pass the upper one
            def outlier(c: str, v: np.ndarray) -> np.ndarray:
                up = np.where(v * factor > plan.outlier_cap, 0.2, factor)
                return np.round(v * up, plan.response_decimals)
        else:

            def outlier(c: str, v: np.ndarray) -> np.ndarray:
                return np.round(v * factor, 3)

        set_numeric(rows, cols, "outlier", outlier)
    rows = blocks["impossible"]
    if len(rows):
        names = np.asarray(list(plan.impossible), dtype=object)
        cols = names[rng.integers(0, len(names), len(rows))]
        set_numeric(rows, cols, "impossible", lambda c, v: plan.impossible[c](v))
    for kind in ("unit_kelvin", "unit_fahrenheit", "unit_do_mg_per_l"):
        rows = blocks[kind]
        if not len(rows):
            continue
        targets, func = plan.unit_slips[kind]
        if len(targets) == 1:
            cols = np.full(len(rows), targets[0], dtype=object)
        else:
            cols = np.asarray(targets, dtype=object)[rng.integers(0, len(targets), len(rows))]
        set_numeric(rows, cols, kind, func)
    rows = blocks["label_typo"]
    if len(rows):
        cols = np.asarray(plan.typo_columns, dtype=object)[
            rng.integers(0, len(plan.typo_columns), len(rows))
        ]
        true = np.empty(len(rows), dtype=object)
        rec = np.empty(len(rows), dtype=object)
        pick = rng.random(len(rows))
        for col in plan.typo_columns:
            m = cols == col
            old = text[col][rows[m]]
            new = np.empty(m.sum(), dtype=object)
            for label in pd.unique(old):
                lm = old == label
                variants = np.asarray(_typos(col, str(label)), dtype=object)
                new[lm] = variants[(pick[m][lm] * len(variants)).astype(int)]
            text[col][rows[m]] = new
            true[m] = old
            rec[m] = new
        record(rows, cols, "label_typo", true, rec)

    # duplicates: copies of clean rows, inserted at a random later position
    exact = blocks["duplicate_exact"]
    near = blocks["duplicate_near"]
    dup_src = np.concatenate([exact, near])
    copies = table.iloc[dup_src].reset_index(drop=True)
    if len(near):
        part = slice(len(exact), len(dup_src))
        for col, dec in plan.near_decimals.items():
            vals = copies[col].to_numpy(dtype=float, copy=True)
            vals[part] = np.round(vals[part], dec)
            copies[col] = vals
        y = copies[plan.response].to_numpy(dtype=float, copy=True)
        sign = np.where(rng.random(len(near)) < 0.5, -1.0, 1.0)
        y[part] = np.round(
            y[part] * (1.0 + sign * rng.uniform(0.002, 0.01, len(near))), plan.response_decimals
        )
        copies[plan.response] = y

    out = table.copy()
    for col, vals in numeric.items():
        out[col] = vals
    for col, vals in text.items():
        out[col] = pd.array(vals, dtype="str")
    if len(dup_src):
        out = pd.concat([out, copies], ignore_index=True)
    keys = np.concatenate([np.arange(n, dtype=float), rng.integers(dup_src + 1, n + 1) - 0.5])
    order = np.argsort(keys, kind="stable")
    out = out.iloc[order].reset_index(drop=True)
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))

    n_dup = len(dup_src)
    if n_dup:
        ids = copies[plan.batch_id].to_numpy(dtype=object)
        dup_kind = np.array(["duplicate_exact"] * len(exact) + ["duplicate_near"] * len(near))
        rows_l.append(n + np.arange(n_dup))
        cols_l.append(np.full(n_dup, plan.batch_id, dtype=object))
        kinds_l.append(dup_kind.astype(object))
        true_l.append(np.full(n_dup, None, dtype=object))
        rec_l.append(ids)
    if not rows_l:
        return out, _empty_labels(plan.batch_id)
    src_rows = np.concatenate(rows_l)
    new_rows = position[src_rows]
    labels = pd.DataFrame(
        {
            "row": new_rows.astype(np.int64),
            plan.batch_id: pd.array(
                out[plan.batch_id].to_numpy(dtype=object)[new_rows], dtype="str"
            ),
            "column": pd.array(np.concatenate(cols_l), dtype="str"),
            "defect": pd.array(np.concatenate(kinds_l), dtype="str"),
            "true_value": pd.Series(np.concatenate(true_l), dtype=object),
            "recorded_value": pd.Series(np.concatenate(rec_l), dtype=object),
        }
    )
    labels = labels.sort_values("row", kind="stable").reset_index(drop=True)
    return out, labels
