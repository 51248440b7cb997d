"""Independent ground-truth worlds for benchmarking models and recommenders.

Every figure measured on :mod:`bayesbio.simulate` alone flatters a model whose structure
matches that simulator. The worlds here are structurally different truths over the same
:meth:`bayesbio.space.ProcessSpace.default` operating box (mixing time 10-120 s, temperature
30-39 degC, pH 6.6-7.5, dissolved oxygen 10-80 % air saturation; yield in g/L; groups
scale > site, plus campaigns), each built on a published model family:

=================  ==========================================================================
``cardinal``       cardinal temperature / pH models with inflection (Rosso 1993, 1995) with a
                   cliff near the top of the box; mixing time inactive, DO nearly so
``haldane_do``     Haldane/Andrews DO inhibition in a mixing-reduced effective DO; Ratkowsky
                   square-root temperature model
``fed_batch_ode``  mechanistic fed batch: Monod growth, Luedeking-Piret product formation,
                   setpoint-dependent growth, death and maintenance (vectorised RK4)
``far_optimum``    a smooth log-quadratic hill whose optimum (low temperature, high pH and DO)
                   is far from the historical recipe: keeping the recipe loses >= 20 %
``failures``       Liebig/Blackman law of the minimum (plateau, kinks), heteroscedastic noise
                   and 3-10 % failed batches
``ridge``          a narrow ridge along the temperature x pH diagonal (strong interaction)
``scale_shift``    mixing-time and DO optima that move strongly with scale
=================  ==========================================================================

Each world follows the :class:`bayesbio.simulate.Truth` API as models and recommenders use
it (:meth:`World.mean_yield`, :meth:`World.optimum`, :meth:`World.noise_sd`,
:attr:`World.groups`) and adds :meth:`World.recipe`, :meth:`World.expected_yield`,
:meth:`World.failure_prob`, :meth:`World.sample_yield` and :meth:`World.sample`.

Common structure. Scales ``2L`` / ``200L`` / ``2000L`` (45 / 35 / 20 % of batches), sites
``A`` / ``B`` / ``C`` (50 / 30 / 20 %), six campaigns ``CMP01``... The world's
``random_seed`` draws the site effects (log level SD 0.05, optimum temperature shift SD
0.3 degC, optimum pH shift SD 0.03; each world decides where the shifts enter), the campaign
level shifts (log SD 0.03) and each group's historical recipe (offsets from the plant recipe
36.5 degC, pH 7.0, 40 % DO and a scale-typical mixing time of 12 / 35 / 80 s). Batch-to-batch
noise is multiplicative log-normal with mean 1 (CV 6 % unless a world says otherwise).

Examples
--------
>>> world = make_world("ridge", random_seed=1)
>>> table, truth, failed = world.sample(60, random_seed=2)
>>> best = world.optimum({"scale": "2000L", "site": "A"})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.stats import qmc

from bayesbio.space import ProcessSpace

__all__ = [
    "DESIGNS",
    "WORLDS",
    "CardinalWorld",
    "FailureWorld",
    "FarOptimumWorld",
    "FedBatchODEWorld",
    "HaldaneDOWorld",
    "RidgeWorld",
    "ScaleShiftWorld",
    "World",
    "WorldSample",
    "make_world",
]

#: Experimental designs understood by :meth:`World.sample`.
DESIGNS: tuple[str, ...] = ("historical", "doe", "uniform")

_RESPONSE = "yield"
_GROUP_COLUMNS = ("scale", "site", "campaign")
#: scale: (share of batches, typical historical mixing time in s)
_SCALES: dict[str, tuple[float, float]] = {
    "2L": (0.45, 12.0),
    "200L": (0.35, 35.0),
    "2000L": (0.20, 80.0),
}
_SITES: dict[str, float] = {"A": 0.5, "B": 0.3, "C": 0.2}
_N_CAMPAIGNS = 6
_SITE_SD = {"log_yield": 0.05, "temperature": 0.3, "ph": 0.03}
_CAMPAIGN_LOG_SD = 0.03
_RECIPE = {"temperature": 36.5, "ph": 7.0, "dissolved_oxygen": 40.0}
# historical variation: per (scale, site) group, per campaign, per batch (mixing time: log SD)
_GROUP_SD = np.array([0.10, 0.3, 0.03, 4.0])
_CAMPAIGN_SD = np.array([0.05, 0.2, 0.02, 3.0])
_BATCH_SD = np.array([0.10, 0.15, 0.02, 3.0])
_DECIMALS = (1, 2, 3, 1)
_FAILED_FRACTION = (0.05, 0.30)  # yield of a failed batch relative to a normal one


def _rng(random_seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(random_seed, np.random.Generator):
        return random_seed
    if random_seed is not None and (
        isinstance(random_seed, bool) or not isinstance(random_seed, int | np.integer)
    ):
        raise ValueError(
            "random_seed must be an int, a numpy Generator or None, "
            f"got {type(random_seed).__name__}"
        )
    return np.random.default_rng(random_seed)


def _lognormal(rng: np.random.Generator, cv: np.ndarray) -> np.ndarray:
    """Log-normal factors with mean 1 and coefficient of variation ``cv`` (per element)."""
    s2 = np.log1p(np.asarray(cv, dtype=float) ** 2)
    return np.exp(rng.normal(-0.5 * s2, np.sqrt(s2)))


def _ctmi(x: np.ndarray, x_min: Any, x_opt: Any, x_max: Any) -> np.ndarray:
    """Cardinal model with inflection, n = 2 (Rosso et al. 1993); 1 at ``x_opt``."""
    x = np.clip(x, x_min, x_max)
    den = (x_opt - x_min) * (
        (x_opt - x_min) * (x - x_opt) - (x_opt - x_max) * (x_opt + x_min - 2 * x)
    )
    return np.maximum((x - x_max) * (x - x_min) ** 2 / den, 0.0)


def _cpm(x: np.ndarray, x_min: Any, x_opt: Any, x_max: Any) -> np.ndarray:
    """Cardinal pH model, n = 1 (Rosso et al. 1995); 1 at ``x_opt``."""
    x = np.clip(x, x_min, x_max)
    a = (x - x_min) * (x - x_max)
    return np.maximum(a / (a - (x - x_opt) ** 2), 0.0)


def _trapezoid(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """0 below ``a``, linear up to 1 at ``b``, 1 up to ``c``, linear down to 0 at ``d``."""
    up = (x - a) / (b - a) if b > a else np.ones_like(x)
    down = (d - x) / (d - c) if d > c else np.ones_like(x)
    return np.clip(np.minimum(up, down), 0.0, 1.0)


class WorldSample(NamedTuple):
    """Result of :meth:`World.sample` (a NamedTuple: ``table, truth, failed = s``).

    Attributes
    ----------
    table : pandas.DataFrame
        Batch table: ``batch_id``, ``scale``, ``site``, ``campaign``, the four factors and
        ``yield`` (g/L).
    truth : World
        The world that generated it.
    failed : numpy.ndarray
        Boolean mask of failed batches (all False in worlds without failures).
    """

    table: pd.DataFrame
    truth: World
    failed: np.ndarray


class World:
    """Base class of a ground-truth world over the default process space.

    Subclasses set :attr:`name`, :attr:`description` and implement ``_response``; the base
    class handles groups, site and campaign levels, recipes, noise, failures, the numerical
    optimum and sampling.

    Parameters
    ----------
    random_seed : int, numpy.random.Generator or None, default None
        Seed of the world's random parts: site effects, campaign shifts, group recipes.

    Attributes
    ----------
    name : str
        Registry name.
    description : str
        One line on the structure.
    noise_cv : float
        Coefficient of variation of batch-to-batch noise (the typical value where it varies).
    failure_rate : float
        Share of failed batches in a historical sample (0 for worlds without failures).
    space : bayesbio.space.ProcessSpace
        The default process space: factor names and the operating box.
    site_effects : pandas.DataFrame
        Per site: ``weight``, ``yield_factor``, ``temperature_shift`` (degC), ``ph_shift``.
    campaign_effects : pandas.Series
        Multiplicative level shift by campaign label.
    recipes : pandas.DataFrame
        Historical recipe per (scale, site): ``scale``, ``site`` and the four factors.
    """

    name: ClassVar[str] = "world"
    description: ClassVar[str] = ""
    noise_cv: float = 0.06
    failure_rate: float = 0.0

    def __init__(self, *, random_seed: int | np.random.Generator | None = None) -> None:
        rng = _rng(random_seed)
        self.space = ProcessSpace.default()
        self.factors: tuple[str, ...] = tuple(self.space.factor_names)
        self.scale_names: tuple[str, ...] = tuple(_SCALES)
        self.site_names: tuple[str, ...] = tuple(_SITES)
        k = len(_SITES)
        self.site_effects = pd.DataFrame(
            {
                "weight": list(_SITES.values()),
                "yield_factor": np.exp(rng.normal(0.0, _SITE_SD["log_yield"], k)),
                "temperature_shift": rng.normal(0.0, _SITE_SD["temperature"], k),
                "ph_shift": rng.normal(0.0, _SITE_SD["ph"], k),
            },
            index=pd.Index(self.site_names, name="site"),
        )
        campaigns = [f"CMP{i + 1:02d}" for i in range(_N_CAMPAIGNS)]
        self.campaign_effects = pd.Series(
            np.exp(rng.normal(0.0, _CAMPAIGN_LOG_SD, _N_CAMPAIGNS)),
            index=pd.Index(campaigns, name="campaign"),
            name="campaign_effect",
        )
        rows = []
        for scale, (_, mix) in _SCALES.items():
            for site in self.site_names:
                off = rng.normal(0.0, _GROUP_SD)
                rows.append(
                    {
                        "scale": scale,
                        "site": site,
                        "mixing_time": mix * np.exp(off[0]),
                        **{p: _RECIPE[p] + off[j] for j, p in enumerate(self.factors[1:], 1)},
                    }
                )
        recipes = pd.DataFrame(rows)
        x = np.clip(recipes[list(self.factors)].to_numpy(), self.space.lower, self.space.upper)
        recipes[list(self.factors)] = x
        self.recipes = recipes
        self._site_level = self.site_effects["yield_factor"].to_numpy()
        self._site_t = self.site_effects["temperature_shift"].to_numpy()
        self._site_ph = self.site_effects["ph_shift"].to_numpy()
        self._optima: dict[tuple[str, str], pd.Series] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, failure_rate={self.failure_rate:g})"

    # -- groups ---------------------------------------------------------------------------
    @property
    def groups(self) -> pd.DataFrame:
        """The (scale, site) combinations, one row each, scales outermost."""
        return self.recipes[["scale", "site"]].copy()

    def _codes(
        self, X: pd.DataFrame | None, n: int, group: Mapping[str, Any] | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return scale code, site code and campaign level factor per row."""
        group = {} if group is None else dict(group)
        unknown = set(group) - set(_GROUP_COLUMNS)
        if unknown:
            raise ValueError(
                f"group has unknown key(s) {sorted(unknown)}; valid keys are {list(_GROUP_COLUMNS)}"
            )
        codes = []
        for col, names in (("scale", self.scale_names), ("site", self.site_names)):
            if col in group:
                labels = np.full(n, str(group[col]), dtype=object)
            elif X is not None and col in X.columns:
                labels = X[col].astype(str).to_numpy(dtype=object)
            else:
                raise ValueError(
                    f"no '{col}': X has no '{col}' column and group does not set it; pass "
                    f"group={{'{col}': ...}} with one of {list(names)}"
                )
            code = pd.Index(names).get_indexer(labels)
            if (code < 0).any():
                bad = pd.unique(labels[code < 0])[:5].tolist()
                raise ValueError(f"unknown {col} {bad}; the world knows {list(names)}")
            codes.append(code)
        if "campaign" in group:
            labels = np.full(n, str(group["campaign"]), dtype=object)
        elif X is not None and "campaign" in X.columns:
            labels = X["campaign"].astype(str).to_numpy(dtype=object)
        else:
            return codes[0], codes[1], np.ones(n)
        factor = self.campaign_effects.reindex(labels).fillna(1.0).to_numpy(dtype=float)
        return codes[0], codes[1], factor

    def _parse(
        self, X: pd.DataFrame | np.ndarray, group: Mapping[str, Any] | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if isinstance(X, pd.DataFrame):
            missing = [p for p in self.factors if p not in X.columns]
            if missing:
                raise ValueError(f"X is missing factor column(s) {missing}")
            x = X[list(self.factors)].to_numpy(dtype=float)
            frame: pd.DataFrame | None = X
        else:
            x = np.asarray(X, dtype=float)
            if x.ndim == 1:
                x = x[None, :]
            if x.ndim != 2 or x.shape[1] != len(self.factors):
                raise ValueError(
                    f"X as an array must have shape (n, {len(self.factors)}) with columns "
                    f"{list(self.factors)}, got shape {np.shape(X)}"
                )
            frame = None
        scale, site, campaign = self._codes(frame, len(x), group)
        return x, scale, site, campaign

    # -- the response ---------------------------------------------------------------------
    def _response(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        """Yield (g/L) before site level and campaign shift; ``x`` is ``(n, 4)``."""
        raise NotImplementedError

    def _mean(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        return self._response(x, scale, site) * self._site_level[site]

    def mean_yield(
        self, X: pd.DataFrame | np.ndarray, group: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Noise-free expected yield (g/L) of a normal (not failed) batch at each row of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            Setpoints: the four factor columns in domain units and group columns (``scale``,
            ``site``, optionally ``campaign``) unless ``group`` sets them. A 2-D array is read
            as the factors in space order and needs ``group``.
        group : mapping, optional
            ``{"scale": ..., "site": ..., "campaign": ...}`` for all rows, overriding the
            columns of ``X``. An unknown or absent campaign gets no campaign shift.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(X),)``, g/L.

        Raises
        ------
        ValueError
            If a factor column is missing, or a scale/site is missing or unknown.
        """
        x, scale, site, campaign = self._parse(X, group)
        return self._mean(x, scale, site) * campaign

    def failure_prob(
        self, X: pd.DataFrame | np.ndarray, group: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Probability that a batch at each row of ``X`` fails.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            As for :meth:`mean_yield`.
        group : mapping, optional
            As for :meth:`mean_yield`.

        Returns
        -------
        numpy.ndarray
            Zeros in worlds without failures.
        """
        x, scale, site, _ = self._parse(X, group)
        return self._failure_prob(x, scale, site)

    def _failure_prob(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        return np.zeros(len(x))

    def expected_yield(
        self, X: pd.DataFrame | np.ndarray, group: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Return the expected yield (g/L) of a new batch, failures included.

        A failed batch yields a uniform 5-30 % of a normal one, so this is
        ``mean_yield * (1 - p + p * 0.175)`` with ``p`` from :meth:`failure_prob`; equal to
        :meth:`mean_yield` in worlds without failures.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            As for :meth:`mean_yield`.
        group : mapping, optional
            As for :meth:`mean_yield`.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(X),)``, g/L.
        """
        x, scale, site, campaign = self._parse(X, group)
        p = self._failure_prob(x, scale, site)
        keep = 1.0 - p + p * float(np.mean(_FAILED_FRACTION))
        return self._mean(x, scale, site) * campaign * keep

    def _cv(self, x: np.ndarray, scale: np.ndarray, mean: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.noise_cv)

    def noise_sd(
        self, X: pd.DataFrame | np.ndarray, group: Mapping[str, Any] | None = None
    ) -> np.ndarray:
        """Return the SD (g/L) of a normal batch's yield at each row of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            As for :meth:`mean_yield`.
        group : mapping, optional
            As for :meth:`mean_yield`.

        Returns
        -------
        numpy.ndarray
            ``cv * mean_yield`` (the CV may depend on the setpoint); failures not included.
        """
        x, scale, site, campaign = self._parse(X, group)
        mean = self._mean(x, scale, site)
        return self._cv(x, scale, mean) * mean * campaign

    def _draw(
        self,
        x: np.ndarray,
        scale: np.ndarray,
        site: np.ndarray,
        campaign: np.ndarray,
        rng: np.random.Generator,
        failures: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        mean = self._mean(x, scale, site)
        y = mean * campaign * _lognormal(rng, self._cv(x, scale, mean))
        u = rng.random(len(x))
        frac = rng.uniform(*_FAILED_FRACTION, size=len(x))
        failed = u < self._failure_prob(x, scale, site) if failures else np.zeros(len(x), bool)
        return np.where(failed, y * frac, y), failed

    def sample_yield(
        self,
        X: pd.DataFrame | np.ndarray,
        group: Mapping[str, Any] | None = None,
        *,
        failures: bool = True,
        random_seed: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Draw the yields (g/L) of new batches run at the rows of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            As for :meth:`mean_yield`.
        group : mapping, optional
            As for :meth:`mean_yield`.
        failures : bool, default True
            Let batches fail (with :meth:`failure_prob`); False gives normal batches only.
        random_seed : int, numpy.random.Generator or None, default None
            Seed of the noise.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(X),)``, g/L.
        """
        x, scale, site, campaign = self._parse(X, group)
        return self._draw(x, scale, site, campaign, _rng(random_seed), failures)[0]

    # -- recipe and optimum ---------------------------------------------------------------
    def _group_row(self, group: Mapping[str, Any]) -> tuple[int, int]:
        group = dict(group)
        for key in ("scale", "site"):
            if key not in group:
                raise ValueError(f"group must set '{key}'; got keys {sorted(group)}")
        scale, site, _ = self._codes(None, 1, {k: group[k] for k in ("scale", "site")})
        return int(scale[0]), int(site[0])

    def recipe(self, group: Mapping[str, Any]) -> pd.Series:
        """Return the historical recipe setpoint of a (scale, site) group.

        Parameters
        ----------
        group : mapping
            ``{"scale": ..., "site": ...}`` (other keys ignored); a Series works too.

        Returns
        -------
        pandas.Series
            The four factors in domain units, named ``"<scale>/<site>"``.
        """
        s, t = self._group_row(group)
        row = self.recipes.iloc[s * len(self.site_names) + t]
        out = row[list(self.factors)].astype(float)
        out.name = f"{self.scale_names[s]}/{self.site_names[t]}"
        return out

    def optimum(self, group: Mapping[str, Any]) -> pd.Series:
        """Return the true best setpoint of a group within the operating box.

        Found numerically: 4096 scrambled Sobol points plus a 5^4 grid over the box, a
        vectorised shrinking random search around the best four, then L-BFGS-B with
        finite-difference gradients from there. Cached per group. The campaign only scales
        the level, so it is ignored.

        Parameters
        ----------
        group : mapping
            ``{"scale": ..., "site": ...}`` (a ``pandas.Series`` works too).

        Returns
        -------
        pandas.Series
            The four factors (domain units) and ``yield`` (g/L, :meth:`mean_yield` there),
            named ``"<scale>/<site>"``.
        """
        s, t = self._group_row(group)
        key = (self.scale_names[s], self.site_names[t])
        if key not in self._optima:
            self._optima[key] = self._find_optimum(s, t)
        return self._optima[key].copy()

    def _find_optimum(self, s: int, t: int) -> pd.Series:
        lo, hi = self.space.lower, self.space.upper
        d = len(lo)

        def f(u: np.ndarray) -> np.ndarray:
            u = np.clip(np.atleast_2d(u), 0.0, 1.0)
            n = len(u)
            return self._mean(lo + u * (hi - lo), np.full(n, s), np.full(n, t))

        rng = np.random.default_rng(20_240_601)
        sobol = qmc.Sobol(d, scramble=True, rng=rng).random_base2(12)
        axes = np.linspace(0.0, 1.0, 5)
        grid = np.stack(np.meshgrid(*[axes] * d, indexing="ij"), -1).reshape(-1, d)
        cand = np.vstack([sobol, grid])
        vals = f(cand)
        starts = cand[np.argsort(-vals)[:4]]
        best = f(starts)
        # shrinking random search, all starts in one call per round
        for radius in 0.15 * 0.6 ** np.arange(14):
            trial = starts[:, None, :] + radius * rng.normal(size=(len(starts), 96, d))
            trial = np.clip(trial, 0.0, 1.0).reshape(-1, d)
            tv = f(trial).reshape(len(starts), -1)
            j = tv.argmax(axis=1)
            better = tv[np.arange(len(starts)), j] > best
            starts[better] = trial.reshape(len(starts), -1, d)[better, j[better]]
            best[better] = tv[better, j[better]]

        h = 1e-6

        def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
            pts = np.vstack([u, np.clip(u + h * np.eye(d), 0, 1), np.clip(u - h * np.eye(d), 0, 1)])
            v = f(pts)
            step = pts[1 : d + 1].diagonal() - pts[d + 1 :].diagonal()
            grad = (v[1 : d + 1] - v[d + 1 :]) / np.where(step > 0, step, 1.0)
            return -float(v[0]), -grad

        best_u, best_v = starts[best.argmax()], float(best.max())
        for u0 in starts:
            res = optimize.minimize(fun, u0, jac=True, method="L-BFGS-B", bounds=[(0, 1)] * d)
            val = float(f(res.x)[0])
            if val > best_v:
                best_u, best_v = np.clip(res.x, 0.0, 1.0), val
        x = lo + best_u * (hi - lo)
        out = pd.Series([*x, best_v], index=[*self.factors, _RESPONSE], dtype=float)
        out.name = f"{self.scale_names[s]}/{self.site_names[t]}"
        return out

    # -- sampling -------------------------------------------------------------------------
    def sample(
        self,
        n: int,
        *,
        random_seed: int | np.random.Generator | None = None,
        design: str = "historical",
        near_share: float = 0.7,
    ) -> WorldSample:
        """Draw a batch table from the world.

        Parameters
        ----------
        n : int
            Number of batches, >= 1.
        random_seed : int, numpy.random.Generator or None, default None
            Seed of the design, the groups, the noise and the failures.
        design : {"historical", "doe", "uniform"}, default "historical"
            ``"historical"``: plant history; a share ``near_share`` of batches near their
            group's recipe (drifting by campaign, with batch-to-batch scatter), the rest
            spread uniformly over the operating box. ``"doe"``: a Latin hypercube over the
            box; ``"uniform"``: independent uniform draws.
        near_share : float, default 0.7
            Share of historical batches near the recipe, in [0, 1].

        Returns
        -------
        WorldSample
            ``(table, truth, failed)``.

        Raises
        ------
        ValueError
            For ``n < 1``, an unknown ``design`` or ``near_share`` outside [0, 1].
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if design not in DESIGNS:
            raise ValueError(f"design must be one of {list(DESIGNS)}, got {design!r}")
        if not (np.isfinite(near_share) and 0.0 <= near_share <= 1.0):
            raise ValueError(f"near_share must be in [0, 1], got {near_share!r}")
        n = int(n)
        rng_design, rng_noise = _rng(random_seed).spawn(2)
        lo, hi = self.space.lower, self.space.upper
        d = len(lo)
        p_scale = np.array([w for w, _ in _SCALES.values()])
        p_site = self.site_effects["weight"].to_numpy()
        scale = rng_design.choice(len(p_scale), size=n, p=p_scale / p_scale.sum())
        site = rng_design.choice(len(p_site), size=n, p=p_site / p_site.sum())
        share = rng_design.dirichlet(np.full(_N_CAMPAIGNS, 2.0))
        campaign = rng_design.choice(_N_CAMPAIGNS, size=n, p=share)
        if design == "historical":
            centre = self.recipes[list(self.factors)].to_numpy()[scale * len(p_site) + site]
            drift = rng_design.normal(0.0, _CAMPAIGN_SD, size=(_N_CAMPAIGNS, d))[campaign]
            jitter = rng_design.normal(0.0, _BATCH_SD, size=(n, d))
            x = centre + drift + jitter
            x[:, 0] = centre[:, 0] * np.exp(drift[:, 0] + jitter[:, 0])
            spread = rng_design.random(n) >= near_share
            x[spread] = rng_design.uniform(lo, hi, size=(int(spread.sum()), d))
        elif design == "doe":
            x = qmc.scale(qmc.LatinHypercube(d=d, rng=rng_design).random(n), lo, hi)
        else:
            x = rng_design.uniform(lo, hi, size=(n, d))
        x = np.clip(x, lo, hi)
        for j, dec in enumerate(_DECIMALS):
            x[:, j] = np.round(x[:, j], dec)
        level = self.campaign_effects.to_numpy()[campaign]
        y, failed = self._draw(x, scale, site, level, rng_noise, True)
        width = max(4, len(str(n)))
        table = pd.DataFrame(
            {
                "batch_id": pd.array([f"B{i:0{width}d}" for i in range(1, n + 1)], dtype="str"),
                "scale": pd.array(np.asarray(self.scale_names)[scale], dtype="str"),
                "site": pd.array(np.asarray(self.site_names)[site], dtype="str"),
                "campaign": pd.array(
                    np.asarray(self.campaign_effects.index)[campaign], dtype="str"
                ),
                **{p: x[:, j] for j, p in enumerate(self.factors)},
                _RESPONSE: np.round(y, 3),
            }
        )
        return WorldSample(table, self, failed)


# -- the worlds -------------------------------------------------------------------------------
class CardinalWorld(World):
    """Cardinal temperature and pH models with inflection: skewed, with a cliff.

    ``yield = Y_s * (0.02 + 0.98 CTMI(T; 22, T_opt, 39.9) CPM(pH; 5.9, pH_opt, 7.62)) f_DO``,
    after Rosso et al.'s cardinal temperature model with inflection (CTMI) and cardinal pH model:
    the optimum temperature ``T_opt = 37.7 - 0.4 (scale step) + site shift`` sits 2.2 degC
    below the maximum, so the response rises slowly from 30 degC and collapses near the top
    of the box; the pH optimum (7.27 - 0.03 per scale step + site shift) is only 0.35 below
    the 7.62 maximum, so yield falls off steeply at high pH. DO only matters when low
    (``1 - exp(-DO / 9 %)``); mixing time has no effect. Level ``Y_s`` = 7.0 / 6.5 / 6.0 g/L
    by scale.

    References
    ----------
    Rosso, L., Lobry, J. R. & Flandrois, J. P. (1993). An unexpected correlation between
    cardinal temperatures of microbial growth highlighted by a new model. *Journal of
    Theoretical Biology* 162, 447-463.

    Rosso, L., Lobry, J. R., Bajard, S. & Flandrois, J. P. (1995). Convenient model to
    describe the combined effects of temperature and pH on microbial growth. *Applied and
    Environmental Microbiology* 61, 610-616.
    """

    name: ClassVar[str] = "cardinal"
    description: ClassVar[str] = (
        "asymmetric CTMI temperature / CPM pH with a cliff near the top of the box; "
        "mixing time inactive"
    )

    def _response(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        _, temp, ph, do = x.T
        t_opt = 37.7 - 0.4 * scale + self._site_t[site]
        ph_opt = 7.27 - 0.03 * scale + self._ph_shift(site)
        f_t = _ctmi(temp, 22.0, t_opt, 39.9)
        f_ph = _cpm(ph, 5.9, ph_opt, 7.62)
        f_do = 1.0 - np.exp(-do / 9.0)
        level = np.array([7.0, 6.5, 6.0])[scale]
        return level * (0.02 + 0.98 * f_t * f_ph) * f_do

    def _ph_shift(self, site: np.ndarray) -> np.ndarray:
        return np.clip(self._site_ph[site], -0.1, 0.1)


_RATKOWSKY = (18.0, 41.5, 0.45)  # T_min, T_max (degC), c (1/degC)
_T_GRID = np.linspace(_RATKOWSKY[0], _RATKOWSKY[1], 4001)
_RATKOWSKY_PEAK = float(
    np.max((_T_GRID - _RATKOWSKY[0]) * (1.0 - np.exp(_RATKOWSKY[2] * (_T_GRID - _RATKOWSKY[1]))))
)


class HaldaneDOWorld(World):
    """Haldane/Andrews dissolved-oxygen inhibition, Ratkowsky temperature response.

    ``yield = Y_s * f_T(T) * f_pH(pH) * f_DO(DO_eff)``:

    * ``f_DO = DO_eff / (K_s + DO_eff + DO_eff^2 / K_i)``, normalised to 1 at its maximum
      ``sqrt(K_s K_i)``, the Haldane (Andrews) substrate-inhibition kinetics applied to
      oxygen: saturating, then inhibiting (oxidative stress), with ``K_s = 10 %`` times
      1 / 1.4 / 2 by scale (oxygen transfer) and ``K_i = 60 %``.
    * ``DO_eff = DO * (1 - 0.5 t_mix / (t_mix + 40 s))``: long mixing times leave oxygen-poor
      zones, so the best DO setpoint rises with mixing time (a DO x mixing interaction).
    * ``f_T`` from the Ratkowsky square-root model ``sqrt(r) = b (T - T_min)
      (1 - exp(c (T - T_max)))`` with ``T_min = 18``, ``T_max = 41.5 degC``, ``c = 0.45``:
      optimum near 36.5 degC plus site shift.
    * ``f_pH = 1 - ((pH - 7.08) / 0.85)^2``, a mild symmetric parabola.

    Level ``Y_s`` = 6.0 / 5.7 / 5.4 g/L by scale.

    References
    ----------
    Andrews, J. F. (1968). A mathematical model for the continuous culture of microorganisms
    utilizing inhibitory substrates. *Biotechnology and Bioengineering* 10, 707-723.

    Ratkowsky, D. A., Lowry, R. K., McMeekin, T. A., Stokes, A. N. & Chandler, R. E. (1983).
    Model for bacterial culture growth rate throughout the entire biokinetic temperature
    range. *Journal of Bacteriology* 154, 1222-1226.
    """

    name: ClassVar[str] = "haldane_do"
    description: ClassVar[str] = (
        "Haldane DO inhibition in a mixing-reduced effective DO; Ratkowsky temperature"
    )

    def _response(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        mix, temp, ph, do = x.T
        k_s = 10.0 * np.array([1.0, 1.4, 2.0])[scale]
        k_i = 60.0
        do_eff = do * (1.0 - 0.5 * mix / (mix + 40.0))
        f_do = do_eff / (k_s + do_eff + do_eff**2 / k_i) * (1.0 + 2.0 * np.sqrt(k_s / k_i))
        tt = temp - self._site_t[site]
        t_min, t_max, c = _RATKOWSKY
        sq = (tt - t_min) * (1.0 - np.exp(c * (tt - t_max)))
        f_t = np.clip(sq / _RATKOWSKY_PEAK, 0.0, None) ** 2
        f_ph = np.clip(1.0 - ((ph - 7.08 - self._site_ph[site]) / 0.85) ** 2, 0.0, None)
        level = np.array([6.0, 5.7, 5.4])[scale]
        return level * (0.02 + 0.98 * f_t * f_ph * f_do)


class FedBatchODEWorld(World):
    """Mechanistic fed batch: Monod growth and Luedeking-Piret product formation.

    Biomass ``X``, glucose ``S`` and product ``P`` (g/L) over a 14-day fed batch, integrated
    with a fixed-step fourth-order Runge-Kutta scheme (84 steps, vectorised over all
    setpoints at once)::

        mu    = mu_max(T, pH) * S / (K_S + S) * DO_eff / (K_O + DO_eff)
        dX/dt = (mu - k_d) X
        dS/dt = -(mu / Y_XS + m_S S / (0.05 + S)) X + F_S * [t >= 3 d]
        dP/dt = (alpha mu + beta(T, pH)) X

    Setpoint dependence: ``mu_max = 0.8 / d * exp(0.15 (T - 37)) * (1 - ((pH - 7.05) / 0.7)^2)``
    (Q10 of about 4.5); death ``k_d = 0.04 exp(0.45 (T - 37)) + 0.12 ((pH - 6.95) / 0.4)^2 +
    0.05 (DO / 80)^3`` per day (heat, pH stress, oxidative stress); the non-growth-associated
    specific productivity ``beta = 0.05 g/g/d * exp(-0.05 (T - 37)) * (1 + 0.4 (7.1 - pH))``
    rises at lower temperature and pH (the mild-hypothermia effect); ``DO_eff = DO * (1 - 0.5
    t_mix / (t_mix + 50 s))``, ``K_O = 6 %`` times 1 / 1.5 / 2.2 by scale; maintenance ``m_S =
    0.04 g/g/d`` times 1 / 1.2 / 1.5 by scale (gradients). ``X0 = 0.4``, ``S0 = 6``,
    ``F_S = 1.6 g/L/d``, ``K_S = 0.3``, ``Y_XS = 0.55``, ``alpha = 0.08``. Yield = ``P`` at
    day 14 plus 0.05 g/L, times the site level. The trade-offs (faster growth vs faster
    death, growth vs productivity) give an interior, asymmetric optimum that no closed form
    describes.

    References
    ----------
    Monod, J. (1949). The growth of bacterial cultures. *Annual Review of Microbiology* 3,
    371-394.

    Luedeking, R. & Piret, E. L. (1959). A kinetic study of the lactic acid fermentation.
    Batch process at controlled pH. *Journal of Biochemical and Microbiological Technology
    and Engineering* 1, 393-412.

    Yoon, S. K., Song, J. Y. & Lee, G. M. (2003). Effect of low culture temperature on
    specific productivity, transcription level, and heterogeneity of erythropoietin in
    Chinese hamster ovary cells. *Biotechnology and Bioengineering* 82, 289-298.
    """

    name: ClassVar[str] = "fed_batch_ode"
    description: ClassVar[str] = (
        "Monod + Luedeking-Piret fed-batch ODE with setpoint-dependent growth, death, productivity"
    )
    noise_cv: float = 0.05
    _DAYS = 14.0
    _STEPS = 84

    def _response(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        mix, temp, ph, do = x.T
        tt = temp - self._site_t[site]
        pp = ph - self._site_ph[site]
        mu_max = 0.8 * np.exp(0.15 * (tt - 37.0)) * np.clip(1.0 - ((pp - 7.05) / 0.7) ** 2, 0, 1)
        k_d = (
            0.04 * np.exp(0.45 * (tt - 37.0))
            + 0.12 * ((pp - 6.95) / 0.4) ** 2
            + 0.05 * (do / 80.0) ** 3
        )
        beta = 0.05 * np.exp(-0.05 * (tt - 37.0)) * (1.0 + 0.4 * (7.1 - pp))
        do_eff = do * (1.0 - 0.5 * mix / (mix + 50.0))
        k_o = 6.0 * np.array([1.0, 1.5, 2.2])[scale]
        m_s = 0.04 * np.array([1.0, 1.2, 1.5])[scale]
        f_o = do_eff / (k_o + do_eff)
        k_s, y_xs, alpha, feed = 0.3, 0.55, 0.08, 1.6

        def rhs(t: float, state: np.ndarray) -> np.ndarray:
            xb, s, _ = state
            s = np.maximum(s, 0.0)
            mu = mu_max * s / (k_s + s) * f_o
            return np.stack(
                [
                    (mu - k_d) * xb,
                    -(mu / y_xs + m_s * s / (0.05 + s)) * xb + (feed if t >= 3.0 - 1e-9 else 0.0),
                    (alpha * mu + beta) * xb,
                ]
            )

        n = len(x)
        state = np.stack([np.full(n, 0.4), np.full(n, 6.0), np.zeros(n)])
        h = self._DAYS / self._STEPS
        for i in range(self._STEPS):
            t = i * h
            k1 = rhs(t, state)
            k2 = rhs(t + h / 2, state + h / 2 * k1)
            k3 = rhs(t + h / 2, state + h / 2 * k2)
            k4 = rhs(t + h, state + h * k3)
            state = state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            state[:2] = np.maximum(state[:2], 0.0)
        return np.maximum(state[2], 0.0) + 0.05


class FarOptimumWorld(World):
    """A smooth hill whose optimum lies far from the historical recipe.

    ``log yield = log Y_s - 0.5 q(z)`` with ``z`` the factor deviations from the optimum
    (25 s, 32.6 degC + site shift, pH 7.32 + site shift, 66 % DO; scaled by widths 90 s,
    5.5 degC, 0.6, 55 %) and ``q`` a quadratic form with a positive temperature x DO
    correlation (0.4): lower temperature pairs with higher DO. The plant recipe (36.5 degC,
    pH 7.0, 40 % DO) loses about 50-70 % of the optimum, so keeping it is a costly habit that
    history near the recipe can hardly reveal. The low-temperature, higher-pH optimum follows
    reports that mild hypothermia raises the specific productivity of CHO cells. Level
    ``Y_s`` = 8.0 / 7.6 / 7.2 g/L by scale; optimum shifts slightly with scale
    (-0.3 degC, +4 % DO per scale step).

    References
    ----------
    Yoon, S. K., Song, J. Y. & Lee, G. M. (2003). Effect of low culture temperature on
    specific productivity, transcription level, and heterogeneity of erythropoietin in
    Chinese hamster ovary cells. *Biotechnology and Bioengineering* 82, 289-298.

    Trummer, E., Fauland, K., Seidinger, S., et al. (2006). Process parameter shifting:
    Part I. Effect of DOT, pH, and temperature on the performance of Epo-Fc expressing CHO
    cells cultivated in controlled batch bioreactors. *Biotechnology and Bioengineering* 94,
    1033-1044.
    """

    name: ClassVar[str] = "far_optimum"
    description: ClassVar[str] = (
        "smooth log-quadratic hill, optimum (low T, high pH/DO) far from the recipe"
    )
    _WIDTH = np.array([90.0, 5.5, 0.6, 55.0])
    _CORR = np.array(
        [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.4], [0.0, 0.0, 1.0, 0.0], [0.0, 0.4, 0.0, 1.0]]
    )

    def _response(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        centre = np.stack(
            [
                np.full(len(x), 25.0),
                32.6 - 0.3 * scale + self._site_t[site],
                7.32 + self._site_ph[site],
                66.0 + 4.0 * scale,
            ],
            axis=1,
        )
        z = (x - centre) / self._WIDTH
        q = np.einsum("ni,ij,nj->n", z, np.linalg.inv(self._CORR), z)
        level = np.array([8.0, 7.6, 7.2])[scale]
        return level * np.exp(-0.5 * q)


class FailureWorld(World):
    """Law of the minimum with heteroscedastic noise and failed batches.

    ``yield = Y_s * (0.15 + 0.85 min(f_T, f_pH, f_DO, f_mix))``: the most limiting factor
    sets the yield (Liebig's law of the minimum in Blackman's limiting-factor form), each
    ``f`` a trapezoid -- temperature 29 / 34.5-36 / 40.5 degC, pH 6.3 / 6.9-7.1 / 7.7, DO
    0 / 30-60 / 110 %, mixing time flat to 30 s then falling to 0 at 200 s (edges shifted by
    the site effects). A plateau of equal optima, kinks and no interactions in the usual
    sense: quadratic and smooth models mis-shape it.

    Noise is heteroscedastic: CV ``(0.03 + 0.12 (1 - mean / peak))`` times 1 / 1.2 / 1.5 by
    scale, i.e. batches away from the plateau and at large scale scatter more (the mean-
    variance link of dual-response surface methodology). Batches fail (contamination,
    equipment) with probability 4 / 6 / 9 % by scale, about 6 % of a historical sample; a
    failed batch yields a uniform 5-30 % of a normal one. The failure probability does not
    depend on the setpoint, so the optimum of :meth:`expected_yield` is that of
    :meth:`mean_yield`. Level ``Y_s`` = 6.5 / 6.2 / 5.9 g/L.

    References
    ----------
    Blackman, F. F. (1905). Optima and limiting factors. *Annals of Botany* 19, 281-295.

    Vining, G. G. & Myers, R. H. (1990). Combining Taguchi and response surface philosophies:
    a dual response approach. *Journal of Quality Technology* 22, 38-45.

    Langer, E. S. (ed.). *Annual Report and Survey of Biopharmaceutical Manufacturing
    Capacity and Production*. BioPlan Associates (yearly): batch failures, mostly from
    contamination and equipment failure, are a recurring share of production batches.
    """

    name: ClassVar[str] = "failures"
    description: ClassVar[str] = (
        "Liebig law of the minimum (plateau, kinks), heteroscedastic noise, 3-10 % failed batches"
    )
    noise_cv: float = 0.06
    failure_rate: float = 0.45 * 0.04 + 0.35 * 0.06 + 0.20 * 0.09
    _FAIL = np.array([0.04, 0.06, 0.09])
    _CV_SCALE = np.array([1.0, 1.2, 1.5])

    def _limits(self, x: np.ndarray, site: np.ndarray) -> np.ndarray:
        mix, temp, ph, do = x.T
        tt = temp - self._site_t[site]
        pp = ph - self._site_ph[site]
        f = np.stack(
            [
                _trapezoid(tt, 29.0, 34.5, 36.0, 40.5),
                _trapezoid(pp, 6.3, 6.9, 7.1, 7.7),
                _trapezoid(do, 0.0, 30.0, 60.0, 110.0),
                _trapezoid(mix, -1.0, 0.0, 30.0, 200.0),
            ]
        )
        return f.min(axis=0)

    def _response(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        level = np.array([6.5, 6.2, 5.9])[scale]
        return level * (0.15 + 0.85 * self._limits(x, site))

    def _cv(self, x: np.ndarray, scale: np.ndarray, mean: np.ndarray) -> np.ndarray:
        # relative position below the plateau, from the mean itself (level-free)
        level = np.array([6.5, 6.2, 5.9])[scale]
        rel = np.clip(mean / level / np.max(self._site_level), 0.0, 1.0)
        return (0.03 + 0.12 * (1.0 - rel)) * self._CV_SCALE[scale]

    def _failure_prob(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        return self._FAIL[scale]


class RidgeWorld(World):
    """A narrow ridge along the temperature x pH diagonal.

    The best pH falls with temperature, ``pH_opt(T) = 7.0 - 0.09 (T - 36.5) + site
    shift``; across the ridge yield falls as ``exp(-0.5 (d / 0.09)^2)`` in the
    pH distance ``d``, along it only gently (``exp(-0.5 ((T - 35.2) / 2.8)^2)``), so the
    response is a rising ridge (Box & Wilson) oblique to the factor axes: pH and temperature
    have no separate optimum, and main-effect or additive models fail. The recipe sits on
    the ridge at 36.5 degC, a little past its best point. DO acts through a logistic
    ``1 / (1 + exp(-(DO - 18) / 5))``, mixing time through a mild linear loss of 8 % per
    100 s. Level ``Y_s`` = 7.0 / 6.7 / 6.4 g/L. The interaction follows the temperature-pH
    interaction terms of Le Marc et al. and the joint temperature-pH effects on CHO cells
    reported by Trummer et al.

    References
    ----------
    Box, G. E. P. & Wilson, K. B. (1951). On the experimental attainment of optimum
    conditions. *Journal of the Royal Statistical Society B* 13, 1-45.

    Le Marc, Y., Huchet, V., Bourgeois, C. M., et al. (2002). Modelling the growth kinetics
    of Listeria as a function of temperature, pH and organic acid concentration.
    *International Journal of Food Microbiology* 73, 219-237.

    Trummer, E., Fauland, K., Seidinger, S., et al. (2006). Process parameter shifting:
    Part I. Effect of DOT, pH, and temperature on the performance of Epo-Fc expressing CHO
    cells cultivated in controlled batch bioreactors. *Biotechnology and Bioengineering* 94,
    1033-1044.
    """

    name: ClassVar[str] = "ridge"
    description: ClassVar[str] = "narrow ridge along the temperature x pH diagonal"

    def _response(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        mix, temp, ph, do = x.T
        ph_opt = 7.0 - 0.09 * (temp - 36.5) + self._site_ph[site]
        across = np.exp(-0.5 * ((ph - ph_opt) / 0.09) ** 2)
        along = np.exp(-0.5 * ((temp - 35.2 - self._site_t[site]) / 2.8) ** 2)
        f_do = 1.0 / (1.0 + np.exp(-(do - 18.0) / 5.0))
        f_mix = 1.0 - 0.08 * mix / 100.0
        level = np.array([7.0, 6.7, 6.4])[scale]
        return level * (0.05 + 0.95 * across * along) * f_do * f_mix


class ScaleShiftWorld(World):
    """Mixing-time and DO optima that move strongly with scale.

    ``yield = Y_s * f_mix * f_DO * f_T * f_pH`` with

    * ``f_mix = exp(-0.5 (ln(t_mix / t*_s) / 0.45)^2)``: shorter mixing times need more power
      input, i.e. more shear and foaming, which costs more at large scale, while long ones
      leave substrate, pH and CO2 gradients; the best mixing time ``t*_s`` is 15 / 40 / 90 s
      at 2 / 200 / 2000 L.
    * ``f_DO = exp(-0.5 ((DO - DO*_s) / 20)^2)`` with ``DO*_s`` = 28 / 42 / 62 %: large
      vessels need a higher setpoint to keep oxygen-poor zones away from the cells.
    * ``f_T``, ``f_pH``: mild symmetric parabolas around 36.8 degC and pH 7.05 (plus site
      shifts), widths 5 degC and 0.6, identical at every scale.

    A model that pools the scales on the mixing time and DO effects gets the large scale
    wrong. Level ``Y_s`` = 6.0 / 5.8 / 5.6 g/L.

    References
    ----------
    Nienow, A. W. (2006). Reactor engineering in large scale animal cell culture.
    *Cytotechnology* 50, 9-33.

    Lara, A. R., Galindo, E., Ramirez, O. T. & Palomares, L. A. (2006). Living with
    heterogeneities in bioreactors: understanding the effects of environmental gradients on
    cells. *Molecular Biotechnology* 34, 355-381.
    """

    name: ClassVar[str] = "scale_shift"
    description: ClassVar[str] = "mixing-time and DO optima shift strongly with scale"

    def _response(self, x: np.ndarray, scale: np.ndarray, site: np.ndarray) -> np.ndarray:
        mix, temp, ph, do = x.T
        t_star = np.array([15.0, 40.0, 90.0])[scale]
        do_star = np.array([28.0, 42.0, 62.0])[scale]
        f_mix = np.exp(-0.5 * (np.log(mix / t_star) / 0.45) ** 2)
        f_do = np.exp(-0.5 * ((do - do_star) / 20.0) ** 2)
        f_t = np.clip(1.0 - ((temp - 36.8 - self._site_t[site]) / 5.0) ** 2, 0.0, None)
        f_ph = np.clip(1.0 - ((ph - 7.05 - self._site_ph[site]) / 0.6) ** 2, 0.0, None)
        level = np.array([6.0, 5.8, 5.6])[scale]
        return level * (0.03 + 0.97 * f_mix * f_do * f_t * f_ph)


#: Registry of the worlds by name.
WORLDS: dict[str, Callable[..., World]] = {
    cls.name: cls
    for cls in (
        CardinalWorld,
        HaldaneDOWorld,
        FedBatchODEWorld,
        FarOptimumWorld,
        FailureWorld,
        RidgeWorld,
        ScaleShiftWorld,
    )
}


def make_world(name: str, random_seed: int | np.random.Generator | None = None) -> World:
    """Build a world from the registry.

    Parameters
    ----------
    name : str
        One of :data:`WORLDS`.
    random_seed : int, numpy.random.Generator or None, default None
        Seed of the world's site effects, campaign shifts and group recipes.

    Returns
    -------
    World

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; known worlds are {list(WORLDS)}")
    return WORLDS[name](random_seed=random_seed)
