"""Synthetic batch records with a known truth, group structure, noise and labelled defects.

:func:`simulate_batches` draws a batch table (see :mod:`bayesbio.schema`) from a plausible
upstream-bioprocess response, and returns it together with the :class:`Truth` that generated
it and a table of labelled data defects.

The biology (per row, with group ``g = (scale, site)`` and campaign ``c``)::

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

Defects (``defects=True`` or ``{kind: rate}``; rates are fractions of ``n``, counts are
``round(rate * n)``, each defective row carries exactly one defect, and defects are applied to
the finished clean table):

* ``missing`` -- one of the four parameters or ``yield`` set to NaN.
* ``duplicate_exact`` / ``duplicate_near`` -- an extra copy of a clean row, inserted at a random
  later position, keeping its ``batch_id``; the label is on the copy (``column="batch_id"``).
  Near copies have the parameters rounded coarser (0.1 degC, 0.01 pH, 1 s, 1 %) and the yield
  moved by 0.2-1 %.
* ``outlier`` -- ``yield`` times 3 or times 0.2 (inside the physical limits).
* ``impossible`` -- pH times 10, or a negative DO, yield or mixing time.
* ``unit_kelvin`` / ``unit_fahrenheit`` -- temperature recorded in K / degF.
* ``unit_do_mg_per_l`` -- DO recorded in mg/L (:data:`DO_MG_PER_L_AT_100_PERCENT`).
* ``label_typo`` -- ``scale`` or ``site`` mis-typed (``" a"``, ``"Site-A"``, ``"2000 L"``, ...).

Randomness: one ``random_seed`` is split into independent streams for the world (site and
campaign effects), the design (setpoints and groups), the noise and the defects. Hence the same
seed with ``defects=False`` gives exactly the clean rows of the run with defects, and
:attr:`SimulatedBatches.clean_table` recovers them from a defective table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.stats import qmc

from bayesbio import schema

__all__ = [
    "DEFAULT_DEFECT_RATES",
    "DEFAULT_SCALES",
    "DEFAULT_SITES",
    "DEFECT_KINDS",
    "DESIGNS",
    "DO_MG_PER_L_AT_100_PERCENT",
    "SITE_EFFECT_SD",
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


def _rng(random_seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(random_seed, np.random.Generator):
        return random_seed
    if random_seed is not None and not isinstance(random_seed, int | np.integer):
        raise ValueError(
            "random_seed must be an int, a numpy Generator or None, "
            f"got {type(random_seed).__name__}"
        )
    return np.random.default_rng(random_seed)


class Truth:
    """The data-generating process of a simulation: noise-free yield, optimum and noise.

    Built by :func:`simulate_batches`; not meant to be constructed by hand.

    Attributes
    ----------
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

    def __init__(
        self,
        scales: pd.DataFrame,
        sites: pd.DataFrame,
        campaign_effects: pd.Series,
        noise_cv: float,
    ) -> None:
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
        self._optima: dict[tuple[str, str, str | None], pd.Series] = {}

    @property
    def groups(self) -> pd.DataFrame:
        """The (scale, site) combinations, one row each."""
        return self.group_effects[["scale", "site"]].copy()

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
        if "campaign" in group:
            labels = np.full(n, str(group["campaign"]), dtype=object)
        elif X is not None and "campaign" in X.columns:
            labels = X["campaign"].astype(str).to_numpy()
        else:
            return row, np.ones(n)
        # an unseen campaign gets no shift
        factor = self.campaign_effects.reindex(labels).fillna(1.0).to_numpy(dtype=float)
        return row, factor

    # -- the response ---------------------------------------------------------------------
    def mean_yield(
        self, X: pd.DataFrame | np.ndarray, group: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Noise-free expected yield (g/L) for each row of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            Setpoints: the four :data:`bayesbio.schema.PARAMETERS` columns in domain units, and
            group columns (``scale``, ``site``, optionally ``campaign``) unless ``group`` sets
            them. A 2-D array is read as the parameters in schema order; it needs ``group``.
        group : mapping, optional
            ``{"scale": ..., "site": ..., "campaign": ...}`` applied to all rows, overriding the
            columns of ``X``. A campaign not in the truth gets no campaign shift; no campaign
            at all means no shift.

        Returns
        -------
        numpy.ndarray
            Expected yield, g/L, shape ``(len(X),)``.

        Raises
        ------
        ValueError
            If a parameter column is missing, or a scale/site is missing or unknown.
        """
        if isinstance(X, pd.DataFrame):
            missing = [p for p in schema.PARAMETERS if p not in X.columns]
            if missing:
                raise ValueError(f"X is missing parameter column(s) {missing}")
            params = [X[p].to_numpy(dtype=float) for p in schema.PARAMETERS]
            frame: pd.DataFrame | None = X
        else:
            arr = np.asarray(X, dtype=float)
            if arr.ndim == 1:
                arr = arr[None, :]
            if arr.ndim != 2 or arr.shape[1] != len(schema.PARAMETERS):
                raise ValueError(
                    f"X as an array must have shape (n, {len(schema.PARAMETERS)}) with columns "
                    f"{list(schema.PARAMETERS)}, got shape {np.shape(X)}"
                )
            params = [arr[:, j] for j in range(arr.shape[1])]
            frame = None
        n = len(params[0])
        row, campaign = self._group_index(frame, n, group)
        ge = self.group_effects
        return (
            _response(
                *params,
                y_max=ge["yield_max"].to_numpy()[row],
                t_opt=ge["temperature_opt"].to_numpy()[row],
                ph_opt=ge["ph_opt"].to_numpy()[row],
                k_do=ge["k_do"].to_numpy()[row],
            )
            * campaign
        )

    def noise_sd(
        self, X: pd.DataFrame | np.ndarray, group: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Return the standard deviation (g/L) of a new batch's yield at each row of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            As for :meth:`mean_yield`.
        group : mapping, optional
            As for :meth:`mean_yield`.

        Returns
        -------
        numpy.ndarray
            ``noise_cv * mean_yield(X, group)``.
        """
        return self.noise_cv * self.mean_yield(X, group)

    def sample_yield(
        self,
        X: pd.DataFrame | np.ndarray,
        group: Mapping[str, Any] | None = None,
        *,
        random_seed: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Draw noisy yields (g/L) of new batches run at the rows of ``X``.

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

    def optimum(self, group: Mapping[str, Any]) -> pd.Series:
        """Return the true best setpoint of a group within :data:`bayesbio.schema.BOUNDS`.

        Found numerically: a 9^4 grid over the bounds, then L-BFGS-B from the best grid
        points. Results are cached per group.

        Parameters
        ----------
        group : mapping
            ``{"scale": ..., "site": ...}`` and optionally ``"campaign"`` (which scales the
            yield, not the location). A ``pandas.Series`` works too.

        Returns
        -------
        pandas.Series
            The four parameters (domain units) and ``yield`` (g/L, the expected yield there),
            named ``"<scale>/<site>"``.
        """
        group = dict(group)
        for key in ("scale", "site"):
            if key not in group:
                raise ValueError(f"group must set '{key}'; got keys {sorted(group)}")
        group = {k: v for k, v in group.items() if k in _GROUP_COLUMNS}
        key = (str(group["scale"]), str(group["site"]), group.get("campaign"))
        key = (key[0], key[1], None if key[2] is None else str(key[2]))
        if key not in self._optima:
            self._optima[key] = self._find_optimum(group)
        return self._optima[key].copy()

    def _find_optimum(self, group: Mapping[str, Any]) -> pd.Series:
        lo = np.array([schema.BOUNDS[p][0] for p in schema.PARAMETERS])
        hi = np.array([schema.BOUNDS[p][1] for p in schema.PARAMETERS])
        self._group_index(None, 1, group)  # fail early on unknown labels
        grid = np.stack(
            np.meshgrid(*[np.linspace(0.0, 1.0, 9)] * len(lo), indexing="ij"), axis=-1
        ).reshape(-1, len(lo))
        values = self.mean_yield(lo + grid * (hi - lo), group)
        starts = grid[np.argsort(values)[::-1][:4]]

        def objective(u: np.ndarray) -> float:
            return -float(self.mean_yield(lo + u * (hi - lo), group)[0])

        best_u, best_val = starts[0], -values.max()
        for start in starts:
            res = optimize.minimize(
                objective, start, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(lo)
            )
            if res.fun < best_val:
                best_u, best_val = res.x, float(res.fun)
        x = lo + np.clip(best_u, 0.0, 1.0) * (hi - lo)
        out = pd.Series([*x, -best_val], index=[*schema.PARAMETERS, schema.RESPONSE], dtype=float)
        out.name = f"{group['scale']}/{group['site']}"
        return out


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
def _bounds() -> tuple[np.ndarray, np.ndarray]:
    lo = np.array([schema.BOUNDS[p][0] for p in schema.PARAMETERS])
    hi = np.array([schema.BOUNDS[p][1] for p in schema.PARAMETERS])
    return lo, hi


def _historical(
    rng: np.random.Generator,
    scale_code: np.ndarray,
    site_code: np.ndarray,
    campaign_code: np.ndarray,
    truth: Truth,
    n_campaigns: int,
    excursion_rate: float,
) -> np.ndarray:
    """Setpoints near the standard recipe of each (scale, site) group, drifting by campaign."""
    n = len(scale_code)
    n_sites = len(truth.sites)
    n_groups = len(truth.scales) * n_sites
    group_code = scale_code * n_sites + site_code
    out = np.empty((n, len(schema.PARAMETERS)))
    mix_typ = truth.scales["mixing_time"].to_numpy()[scale_code]
    out[:, 0] = mix_typ * np.exp(rng.normal(0.0, _MIX_LOG_SD, n))
    for j, p in enumerate(schema.PARAMETERS[1:], start=1):
        group_off = rng.normal(0.0, _RECIPE_GROUP_SD[p], n_groups)
        camp_off = rng.normal(0.0, _RECIPE_CAMPAIGN_SD[p], n_campaigns)
        out[:, j] = (
            _RECIPE[p]
            + group_off[group_code]
            + camp_off[campaign_code]
            + rng.normal(0.0, _BATCH_SD[p], n)
        )
    lo, hi = _bounds()
    # occasional excursions: one parameter anywhere in the operating range
    exc = rng.random(n) < excursion_rate
    which = rng.integers(0, len(lo), n)
    u = rng.uniform(lo[which], hi[which])
    rows = np.flatnonzero(exc)
    out[rows, which[rows]] = u[rows]
    pad = 0.05 * (hi - lo)
    return np.clip(out, lo - pad, hi + pad)


def _doe(rng: np.random.Generator, n: int) -> np.ndarray:
    lo, hi = _bounds()
    sample = qmc.LatinHypercube(d=len(lo), rng=rng).random(n)
    return qmc.scale(sample, lo, hi)


def _uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    lo, hi = _bounds()
    return rng.uniform(lo, hi, size=(n, len(lo)))


def _batch_ids(n: int) -> np.ndarray:
    width = max(4, len(str(n)))
    return np.strings.add("B", np.strings.zfill(np.arange(1, n + 1).astype(str), width))


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
        return _restore(self.table, self.defects)


def _restore(table: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    if labels.empty:
        return out
    dup = labels["defect"].isin(["duplicate_exact", "duplicate_near"]).to_numpy()
    rest = labels.loc[~dup]
    for col, part in rest.groupby("column", sort=False):
        rows = part["row"].to_numpy()
        vals = part["true_value"].to_numpy()
        if col in schema.PARAMETERS or col == schema.RESPONSE:
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


def _empty_labels() -> pd.DataFrame:
    return pd.DataFrame({k: pd.Series(dtype=v) for k, v in _EMPTY_LABELS.items()})


def simulate_batches(
    n: int,
    *,
    design: str = "historical",
    scales: Mapping[str, Mapping[str, float]] | Sequence[str] | None = None,
    sites: Mapping[str, float] | Sequence[str] | None = None,
    n_campaigns: int = 6,
    noise_cv: float = 0.06,
    excursion_rate: float = 0.05,
    defects: bool | Mapping[str, float] = False,
    random_seed: int | np.random.Generator | None = None,
) -> SimulatedBatches:
    """Simulate a batch table from a known, non-linear bioprocess truth.

    Parameters
    ----------
    n : int
        Number of (clean) batches, >= 1. Duplicate defects add rows on top.
    design : {"historical", "doe", "uniform"}, default "historical"
        ``"historical"``: plant history, most batches near a standard recipe of their
        (scale, site) group that drifts a little by campaign, mixing times typical of each
        scale and occasional excursions (``excursion_rate``) of one parameter anywhere in the
        operating range.
        ``"doe"``: a Latin hypercube over :data:`bayesbio.schema.BOUNDS`. ``"uniform"``:
        independent uniform draws over the bounds.
    scales : mapping or sequence of str, optional
        Scale configuration; default :data:`DEFAULT_SCALES`. A sequence picks default scales
        by name; a mapping ``{name: {key: value}}`` sets any of ``weight``, ``yield_factor``,
        ``temperature_shift``, ``ph_shift``, ``oxygen_factor``, ``mixing_time`` (missing keys
        come from the default scale of that name, else neutral values).
    sites : mapping of str to float or sequence of str, optional
        Sites and their batch shares; default :data:`DEFAULT_SITES`. A sequence gives equal
        shares. Site effects are drawn from ``random_seed`` (:data:`SITE_EFFECT_SD`).
    n_campaigns : int, default 6
        Number of campaigns (``"CMP01"``, ...). Batches are spread over them with unequal,
        seeded shares; each campaign has a random level shift.
    noise_cv : float, default 0.06
        Coefficient of variation of the multiplicative batch-to-batch noise, in [0, 0.5].
    excursion_rate : float, default 0.05
        Share of historical batches with an excursion, in [0, 1].
    defects : bool or mapping of str to float, default False
        ``True``: :data:`DEFAULT_DEFECT_RATES`; a mapping ``{kind: rate}`` with kinds from
        :data:`DEFECT_KINDS` and rates (fraction of ``n``) in [0, 1] summing to at most 1.
        Each defective row carries exactly one defect.
    random_seed : int, numpy.random.Generator or None, default None
        One seed for everything; it is split into independent streams for the world, the
        design, the noise and the defects, so the clean rows do not depend on ``defects``.

    Returns
    -------
    SimulatedBatches
        ``(table, truth, defects)``; ``.clean_table`` gives the table before defects.

    Raises
    ------
    ValueError
        For ``n < 1``, an unknown ``design``, bad rates or configuration, naming the argument.

    Examples
    --------
    >>> sim = simulate_batches(200, defects=True, random_seed=1)
    >>> table, truth, labels = sim
    >>> best = truth.optimum({"scale": "2000L", "site": "A"})
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    n = int(n)
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {list(DESIGNS)}, got {design!r}")
    if (
        isinstance(n_campaigns, bool)
        or not isinstance(n_campaigns, int | np.integer)
        or n_campaigns < 1
    ):
        raise ValueError(f"n_campaigns must be an integer >= 1, got {n_campaigns!r}")
    if not (np.isfinite(noise_cv) and 0.0 <= noise_cv <= 0.5):
        raise ValueError(f"noise_cv must be in [0, 0.5], got {noise_cv!r}")
    if not (np.isfinite(excursion_rate) and 0.0 <= excursion_rate <= 1.0):
        raise ValueError(f"excursion_rate must be in [0, 1], got {excursion_rate!r}")
    rates = _defect_rates(defects)

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
    truth = Truth(scale_frame, site_frame, campaign_effects, noise_cv)

    # groups: scale x site x campaign with unbalanced shares
    p_scale = scale_frame["weight"].to_numpy() / scale_frame["weight"].sum()
    p_site = site_frame["weight"].to_numpy() / site_frame["weight"].sum()
    scale_code = rng_design.choice(len(p_scale), size=n, p=p_scale)
    site_code = rng_design.choice(len(p_site), size=n, p=p_site)
    campaign_code = rng_design.choice(len(campaigns), size=n, p=campaign_share)
    if design == "historical":
        X = _historical(
            rng_design, scale_code, site_code, campaign_code, truth, len(campaigns), excursion_rate
        )
    elif design == "doe":
        X = _doe(rng_design, n)
    else:
        X = _uniform(rng_design, n)
    for j, p in enumerate(schema.PARAMETERS):
        X[:, j] = np.round(X[:, j], _DECIMALS[p])

    group_row = scale_code * len(site_frame) + site_code
    ge = truth.group_effects
    mu = (
        _response(
            *X.T,
            y_max=ge["yield_max"].to_numpy()[group_row],
            t_opt=ge["temperature_opt"].to_numpy()[group_row],
            ph_opt=ge["ph_opt"].to_numpy()[group_row],
            k_do=ge["k_do"].to_numpy()[group_row],
        )
        * campaign_effects.to_numpy()[campaign_code]
    )
    y = np.round(mu * _noise(rng_noise, n, noise_cv), _DECIMALS[schema.RESPONSE])

    table = pd.DataFrame(
        {
            schema.BATCH_ID: pd.array(_batch_ids(n), dtype="str"),
            "scale": pd.array(scale_frame.index.to_numpy(dtype=str)[scale_code], dtype="str"),
            "site": pd.array(site_frame.index.to_numpy(dtype=str)[site_code], dtype="str"),
            "campaign": pd.array(np.array(campaigns, dtype=str)[campaign_code], dtype="str"),
            **{p: X[:, j] for j, p in enumerate(schema.PARAMETERS)},
            schema.RESPONSE: y,
        }
    )
    if not rates:
        return SimulatedBatches(table, truth, _empty_labels())
    table, labels = _apply_defects(table, rates, rng_defects)
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


_IMPOSSIBLE = {
    # column: how the impossible value is recorded
    "ph": lambda v: v * 10.0,  # decimal slip: pH 70
    "dissolved_oxygen": lambda v: -v,
    "yield": lambda v: -v,
    "mixing_time": lambda v: -v,
}
_NEAR_DECIMALS = {"mixing_time": 0, "temperature": 1, "ph": 2, "dissolved_oxygen": 0}
_MISSING_COLUMNS = (*schema.PARAMETERS, schema.RESPONSE)
_TYPO_COLUMNS = ("scale", "site")


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
    table: pd.DataFrame, rates: Mapping[str, float], rng: np.random.Generator
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

    numeric = {c: table[c].to_numpy(dtype=float, copy=True) for c in _MISSING_COLUMNS}
    text = {c: table[c].to_numpy(dtype=object, copy=True) for c in _TYPO_COLUMNS}
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
        cols = np.asarray(_MISSING_COLUMNS, dtype=object)[
            rng.integers(0, len(_MISSING_COLUMNS), len(rows))
        ]
        set_numeric(rows, cols, "missing", lambda c, v: np.full(len(v), np.nan))
    rows = blocks["outlier"]
    if len(rows):
        factor = np.where(rng.random(len(rows)) < 0.5, 3.0, 0.2)
        cols = np.full(len(rows), schema.RESPONSE, dtype=object)
        set_numeric(rows, cols, "outlier", lambda c, v: np.round(v * factor, 3))
    rows = blocks["impossible"]
    if len(rows):
        names = np.asarray(list(_IMPOSSIBLE), dtype=object)
        cols = names[rng.integers(0, len(names), len(rows))]
        set_numeric(rows, cols, "impossible", lambda c, v: _IMPOSSIBLE[c](v))
    unit_slips = {
        "unit_kelvin": ("temperature", lambda c, v: np.round(v + 273.15, 2)),
        "unit_fahrenheit": ("temperature", lambda c, v: np.round(v * 9.0 / 5.0 + 32.0, 2)),
        "unit_do_mg_per_l": (
            "dissolved_oxygen",
            lambda c, v: np.round(v * DO_MG_PER_L_AT_100_PERCENT / 100.0, 2),
        ),
    }
    for kind, (col, func) in unit_slips.items():
        rows = blocks[kind]
        if len(rows):
            set_numeric(rows, np.full(len(rows), col, dtype=object), kind, func)
    rows = blocks["label_typo"]
    if len(rows):
        cols = np.asarray(_TYPO_COLUMNS, dtype=object)[
            rng.integers(0, len(_TYPO_COLUMNS), len(rows))
        ]
        true = np.empty(len(rows), dtype=object)
        rec = np.empty(len(rows), dtype=object)
        pick = rng.random(len(rows))
        for col in _TYPO_COLUMNS:
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
        for col, dec in _NEAR_DECIMALS.items():
            vals = copies[col].to_numpy(dtype=float, copy=True)
            vals[part] = np.round(vals[part], dec)
            copies[col] = vals
        y = copies[schema.RESPONSE].to_numpy(dtype=float, copy=True)
        sign = np.where(rng.random(len(near)) < 0.5, -1.0, 1.0)
        y[part] = np.round(y[part] * (1.0 + sign * rng.uniform(0.002, 0.01, len(near))), 3)
        copies[schema.RESPONSE] = y

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
        ids = copies[schema.BATCH_ID].to_numpy(dtype=object)
        dup_kind = np.array(["duplicate_exact"] * len(exact) + ["duplicate_near"] * len(near))
        rows_l.append(n + np.arange(n_dup))
        cols_l.append(np.full(n_dup, schema.BATCH_ID, dtype=object))
        kinds_l.append(dup_kind.astype(object))
        true_l.append(np.full(n_dup, None, dtype=object))
        rec_l.append(ids)
    if not rows_l:
        return out, _empty_labels()
    src_rows = np.concatenate(rows_l)
    new_rows = position[src_rows]
    labels = pd.DataFrame(
        {
            "row": new_rows.astype(np.int64),
            schema.BATCH_ID: pd.array(
                out[schema.BATCH_ID].to_numpy(dtype=object)[new_rows], dtype="str"
            ),
            "column": pd.array(np.concatenate(cols_l), dtype="str"),
            "defect": pd.array(np.concatenate(kinds_l), dtype="str"),
            "true_value": pd.Series(np.concatenate(true_l), dtype=object),
            "recorded_value": pd.Series(np.concatenate(rec_l), dtype=object),
        }
    )
    labels = labels.sort_values("row", kind="stable").reset_index(drop=True)
    return out, labels


def __getattr__(name: str) -> Any:
    # ``simulate_growth`` (protein/impurity trajectories) lives with the harvest problem; it is
    # re-exported lazily so that importing this module never imports the harvest package.
    if name == "simulate_growth":
        import importlib

        for module, attr in (
            ("bayesbio.harvest", "simulate_growth"),
            ("bayesbio.harvest.growth", "simulate_growth"),
            ("bayesbio.harvest.growth", "simulate_trajectories"),
        ):
            try:
                return getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError):
                continue
        raise AttributeError("simulate_growth: the harvest growth simulator is not available")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
