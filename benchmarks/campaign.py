"""Benchmark: the closed-loop Campaign against simple baselines on independent worlds.

:mod:`benchmarks.worlds` scores one recommendation from a fixed history; this one runs the
loop a process-development team runs: propose a few batches, run them, add the results,
refit, repeat. Worlds are the structurally different truths of :mod:`bayesbio.worlds` (plus,
with ``--worlds simulator``, bayesbio's own simulator, see below). For each world x n0 x
seed: build the world (``random_seed=seed``), sample a plant history of ``n0`` batches
(``design="historical"``), take the target group of :func:`benchmarks.worlds.targets` (the
sampled (scale, site) group with most batches) and its most frequent campaign (new batches are
labelled with it), and give every method the same start. Each method then runs ``--rounds``
rounds of ``--batch-size`` batches ``q`` for the target group: it proposes ``q`` setpoints,
their noisy yields are drawn from the world (:meth:`World.sample_yield`, failures included)
with a noise stream seeded by (seed, round) only, so all methods face the same noise (common
random numbers), the batches are appended and the method refits. Scores, in % of the true
expected yield at the group's true optimum (:meth:`World.optimum`; the campaign only scales
the level, so it is left out), from :meth:`World.expected_yield` (failures included):

* ``regret``  -- after every round and at round 0: true regret of the method's current answer
  (the setpoint it would hand to production);
* ``lost``    -- per round: mean true yield lost by the round's proposed batches;
* ``unsafe``  -- per round: share of proposed batches whose true expected yield is below
  80 % of the true expected yield at the recipe (:meth:`World.recipe`).

Methods (``--methods``):

* ``campaign``  -- :class:`bayesbio.recommend.Campaign` with its defaults (default
  ``BayesianYieldModel``, q-Thompson proposals under the safety rule, answer
  :meth:`Campaign.best`) for the target (scale, site, campaign), the world's recipe as
  ``recipe=`` and ``random_seed=seed``; the
  model gets ``random_seed=seed`` plus ``--model-params`` (JSON, e.g. lighter sampler
  settings for quick runs; printed in the header so every figure states its settings);
* ``campaign_free`` -- the same with ``trust_region=False``: proposals anywhere in the box
  under the safety rule alone (the default until 2026-12-07);
* ``campaign_pooled`` -- the default with ``transfer_risk=False``: the safety rule judged
  from the model's own draws, without the target group's slope deviation (the default until
  2026-12-07, third session);
* ``recipe``    -- keep the recipe: ``q`` replicates of it; answer = recipe;
* ``random``    -- ``q`` setpoints uniform in the box spanned by the 5-95 % quantiles per
  factor of the starting history; answer = setpoint of the best observed batch of the group;
* ``rf_argmax`` -- :class:`bayesbio.models.ForestYield` refitted every round; proposals =
  :func:`bayesbio.interpret.argmax_setpoint` for the group plus ``q - 1`` Gaussian
  perturbations of it (SD 2 % of each factor's range, clipped to the box); answer = argmax;
* ``gp_ei``     -- scikit-learn ``GaussianProcessRegressor`` (constant x Matern 2.5 with one
  length scale per input + WhiteKernel, ``normalize_y``) on log yield, fitted to *all*
  batches with the factors scaled to [0, 1] by the space's operating ranges and scale and
  site one-hot encoded (the campaign is left to the noise term); ``q`` batches by
  kriging-believer expected improvement (incumbent: best posterior mean at the group's
  batches) over a seeded Latin hypercube of 2,000 setpoints in the operating box; answer =
  posterior-mean argmax over those setpoints and the group's batches;
* ``botorch``   -- the same inputs in a BoTorch ``SingleTaskGP`` with ``qLogExpectedImprovement``
  (``optimize_acqf``, group one-hot held fixed); run only when BoTorch is installed, else
  skipped with a note (it is not a bayesbio dependency).

``--no-bayes`` drops the three ``campaign`` methods. World ``simulator`` wraps
:func:`bayesbio.simulate.simulate_batches` (demo process) in the same API: its world and its
history come from one seed, it has no failures (expected = mean yield), and as it does not
expose the group recipes the recipe is the group's median setpoint in the history (what
:class:`Campaign` itself uses without ``recipe=``). It is opt-in, as the Bayesian model shares
its structure.

Prints one table per n0 (means over worlds and seeds: regret per round, ``lost`` and
``unsafe`` averaged over rounds) and the final-round regret per world; ``--out FILE.csv``
writes the tidy rows (world, n0, seed, method, round, metric, value; besides the three
scores ``seconds`` per round and ``warnings`` in the last round).

    python benchmarks/campaign.py                       # 7 worlds x n0 20, 40 x 10 seeds
    python benchmarks/campaign.py --quick --no-bayes    # 3 worlds x n0 20 x 2 seeds x 3 rounds
    python benchmarks/campaign.py --worlds cardinal --n0 20 --seeds 1 --rounds 2 \\
        --methods campaign recipe --model-params '{"draws": 200, "tune": 200, "chains": 2}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats
from scipy.stats import qmc

from bayesbio.interpret import argmax_setpoint
from bayesbio.models import ForestYield
from bayesbio.simulate import simulate_batches
from bayesbio.space import ProcessSpace
from bayesbio.worlds import WORLDS, WorldSample, make_world

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worlds import QUICK_WORLDS, targets  # benchmarks/worlds.py

BAYES_METHODS = ("campaign", "campaign_free", "campaign_pooled")
METHODS = (*BAYES_METHODS, "recipe", "random", "rf_argmax", "gp_ei", "botorch")
WORLD_NAMES = (*WORLDS, "simulator")
METRICS = ("regret", "lost", "unsafe")
UNSAFE_FRACTION = 0.8  # a batch below this share of the recipe's true expected yield
PERTURB_SD = 0.02  # rf_argmax: perturbation SD in units of each factor's range
N_CANDIDATES = 2000  # gp_ei / botorch: Latin-hypercube candidates
NOISE_STREAM = 7  # seed tag of the world's noise, (seed, round): the same for all methods
_STREAM = {"random": 3, "rf_argmax": 4, "gp_ei": 5, "botorch": 6}  # methods' own seeds


# -- worlds ------------------------------------------------------------------------------------
class SimulatorWorld:
    """bayesbio's own simulator behind the :class:`bayesbio.worlds.World` API used here.

    Parameters
    ----------
    random_seed : int
        Seed of :func:`~bayesbio.simulate.simulate_batches`, which draws the world (site and
        campaign effects) and the history from one seed.
    """

    name = "simulator"

    def __init__(self, *, random_seed: int) -> None:
        self.random_seed = int(random_seed)
        self.truth = simulate_batches(1, random_seed=self.random_seed).truth
        self.space: ProcessSpace = self.truth.space
        self.factors: tuple[str, ...] = tuple(self.space.factor_names)
        self.scale_names: tuple[str, ...] = tuple(self.truth.scales.index.astype(str))
        self._recipes: dict[tuple[str, str], pd.Series] = {}

    def sample(self, n: int, *, random_seed: int | None = None) -> WorldSample:
        """Simulate ``n`` historical batches (the seed must be the world's)."""
        if random_seed is not None and int(random_seed) != self.random_seed:
            raise ValueError("the simulator draws world and history from one seed")
        table, truth, _ = simulate_batches(n, random_seed=self.random_seed)
        self.truth = truth  # the same world: its stream does not depend on n
        for (scale, site), part in table.groupby(["scale", "site"]):
            self._recipes[(str(scale), str(site))] = part[list(self.factors)].median()
        return WorldSample(table, self, np.zeros(len(table), dtype=bool))  # type: ignore[arg-type]

    def recipe(self, group: Mapping[str, Any]) -> pd.Series:
        """Return the group's median historical setpoint (after :meth:`sample`)."""
        return self._recipes[(str(group["scale"]), str(group["site"]))].astype(float)

    def optimum(self, group: Mapping[str, Any]) -> pd.Series:
        """Return the true optimum (factors and ``yield``) of the group."""
        return self.truth.optimum({k: group[k] for k in ("scale", "site")})

    def expected_yield(self, X: np.ndarray, group: Mapping[str, Any]) -> np.ndarray:
        """Return the true expected yield (no failures: the mean yield)."""
        return self.truth.mean_yield(X, group)

    def sample_yield(
        self, X: np.ndarray, group: Mapping[str, Any], *, random_seed: np.random.Generator
    ) -> np.ndarray:
        """Draw noisy yields of new batches."""
        return self.truth.sample_yield(X, group, random_seed=random_seed)


def build_world(name: str, seed: int) -> Any:
    """A world of :data:`bayesbio.worlds.WORLDS`, or ``"simulator"``."""
    if name == "simulator":
        return SimulatorWorld(random_seed=seed)
    return make_world(name, random_seed=seed)


class Case:
    """One world x n0 x seed: the starting history, the target group and the true scores.

    Parameters
    ----------
    world_name : str
        A world of :data:`WORLD_NAMES`.
    n0 : int
        Size of the starting history.
    seed : int
        Seed of the world, the history and the noise of the new batches.
    """

    def __init__(self, world_name: str, n0: int, seed: int) -> None:
        self.world = build_world(world_name, seed)
        self.seed = seed
        self.table: pd.DataFrame = self.world.sample(n0, random_seed=seed)[0]
        self.factors = list(self.world.factors)
        self.lo = np.asarray(self.world.space.lower, dtype=float)
        self.hi = np.asarray(self.world.space.upper, dtype=float)
        self.group = {k: str(v) for k, v in targets(self.table, self.world.scale_names)[0].items()}
        in_group = (self.table["scale"] == self.group["scale"]) & (
            self.table["site"] == self.group["site"]
        )
        counts = self.table.loc[in_group, "campaign"].astype(str).value_counts()
        self.full_group = {**self.group, "campaign": str(counts.sort_index().idxmax())}
        self.recipe = self.world.recipe(self.group)[self.factors].to_numpy(dtype=float)
        optimum = self.world.optimum(self.group)[self.factors].to_numpy(dtype=float)
        self.best_value = float(self.value(optimum[None])[0])
        self.recipe_value = float(self.value(self.recipe[None])[0])

    def value(self, x: np.ndarray) -> np.ndarray:
        """True expected yield (g/L, failures included) of the group at setpoints ``x``."""
        return np.asarray(self.world.expected_yield(np.atleast_2d(x), self.group), dtype=float)

    def regret(self, x: np.ndarray) -> np.ndarray:
        """True regret (% of the optimum's expected yield) at setpoints ``x``."""
        return 100.0 * (self.best_value - self.value(x)) / self.best_value

    def run(self, x: np.ndarray, round_: int) -> pd.DataFrame:
        """Run batches at setpoints ``x`` in round ``round_``: the new rows of the table."""
        rng = np.random.default_rng([NOISE_STREAM, self.seed, round_])
        y = self.world.sample_yield(x, self.full_group, random_seed=rng)
        n = len(x)
        out = pd.DataFrame(
            {
                "batch_id": pd.array([f"R{round_:02d}-{i + 1:02d}" for i in range(n)], dtype="str"),
                **{c: pd.array([v] * n, dtype="str") for c, v in self.full_group.items()},
                **{p: x[:, j] for j, p in enumerate(self.factors)},
                "yield": np.round(y, 3),
            }
        )
        return out[list(self.table.columns)]


# -- methods -----------------------------------------------------------------------------------
class Method:
    """A closed-loop method: ``answer``, ``propose(q, round)``, ``add(rows)``.

    Parameters
    ----------
    case : Case
        The starting history, target group and box.
    """

    def __init__(self, case: Case) -> None:
        self.case = case
        self.table = case.table.copy()
        self.details: pd.DataFrame | None = None  # the method's own figures per proposal

    def in_group(self) -> pd.DataFrame:
        """The target group's batches so far."""
        t = self.table
        return t[(t["scale"] == self.case.group["scale"]) & (t["site"] == self.case.group["site"])]

    def answer(self) -> np.ndarray:
        """The setpoint the method would hand to production now, shape ``(k,)``."""
        raise NotImplementedError

    def propose(self, q: int, round_: int) -> np.ndarray:
        """The next ``q`` setpoints, shape ``(q, k)``."""
        raise NotImplementedError

    def add(self, rows: pd.DataFrame) -> None:
        """Append the new batches (and refit)."""
        self.table = pd.concat([self.table, rows], ignore_index=True)


class Recipe(Method):
    """Keep the recipe."""

    def answer(self) -> np.ndarray:
        return self.case.recipe.copy()

    def propose(self, q: int, round_: int) -> np.ndarray:
        return np.tile(self.case.recipe, (q, 1))


class Random(Method):
    """Uniform setpoints in the 5-95 % quantile box of the starting history."""

    def __init__(self, case: Case) -> None:
        super().__init__(case)
        x = case.table[case.factors].to_numpy(dtype=float)
        self.box = np.quantile(x, [0.05, 0.95], axis=0)

    def answer(self) -> np.ndarray:
        part = self.in_group()
        best = part["yield"].to_numpy(dtype=float).argmax()
        return part[self.case.factors].to_numpy(dtype=float)[best]

    def propose(self, q: int, round_: int) -> np.ndarray:
        rng = np.random.default_rng([_STREAM["random"], self.case.seed, round_])
        return rng.uniform(self.box[0], self.box[1], size=(q, len(self.case.factors)))


class ForestArgmax(Method):
    """Random Forest argmax plus small perturbations of it."""

    def __init__(self, case: Case) -> None:
        super().__init__(case)
        self._fit(0)

    def _fit(self, round_: int) -> None:
        model = ForestYield(random_state=self.case.seed).fit(self.table)
        best = argmax_setpoint(
            model, group=self.case.full_group, random_seed=self.case.seed + round_
        )
        self.best = best[self.case.factors].to_numpy(dtype=float)

    def answer(self) -> np.ndarray:
        return self.best.copy()

    def propose(self, q: int, round_: int) -> np.ndarray:
        rng = np.random.default_rng([_STREAM["rf_argmax"], self.case.seed, round_])
        sd = PERTURB_SD * (self.case.hi - self.case.lo)
        jitter = rng.normal(0.0, sd, size=(q - 1, len(sd)))
        x = np.vstack([self.best, np.clip(self.best + jitter, self.case.lo, self.case.hi)])
        self._round = round_
        return x

    def add(self, rows: pd.DataFrame) -> None:
        super().add(rows)
        self._fit(self._round)


class GaussianProcessEI(Method):
    """scikit-learn GP on log yield, kriging-believer EI over a Latin hypercube."""

    def __init__(self, case: Case) -> None:
        super().__init__(case)
        self.levels = {c: sorted(case.table[c].astype(str).unique()) for c in ("scale", "site")}
        self.target = np.concatenate(
            [np.array(lv) == case.group[c] for c, lv in self.levels.items()]
        ).astype(float)
        self._fit(0)

    def features(self, x: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """Scaled factors and one-hot groups (the target group's when ``groups`` is None)."""
        u = (np.atleast_2d(x) - self.case.lo) / (self.case.hi - self.case.lo)
        g = np.tile(self.target, (len(u), 1)) if groups is None else groups
        return np.hstack([u, g])

    def _train(self) -> tuple[np.ndarray, np.ndarray]:
        t = self.table
        onehot = np.hstack(
            [
                (t[c].astype(str).to_numpy()[:, None] == np.array(lv))
                for c, lv in self.levels.items()
            ]
        ).astype(float)
        X = self.features(t[self.case.factors].to_numpy(dtype=float), onehot)
        y = np.log(np.maximum(t["yield"].to_numpy(dtype=float), 1e-3))
        return X, y

    def _candidates(self, round_: int) -> np.ndarray:
        rng = np.random.default_rng([_STREAM["gp_ei"], self.case.seed, round_])
        u = qmc.LatinHypercube(d=len(self.case.factors), rng=rng).random(N_CANDIDATES)
        lhs = self.case.lo + u * (self.case.hi - self.case.lo)
        return np.vstack([lhs, self.in_group()[self.case.factors].to_numpy(dtype=float)])

    def _fit(self, round_: int) -> None:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        X, y = self._train()
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(
            length_scale=np.ones(X.shape[1]), length_scale_bounds=(1e-2, 1e2), nu=2.5
        ) + WhiteKernel(1e-2, (1e-6, 1.0))
        self.gp = GaussianProcessRegressor(
            kernel, normalize_y=True, n_restarts_optimizer=2, random_state=self.case.seed
        ).fit(X, y)
        self.cands = self._candidates(round_)
        self.mean = self.gp.predict(self.features(self.cands))
        self._round = round_

    def answer(self) -> np.ndarray:
        return self.cands[int(np.argmax(self.mean))].copy()

    def propose(self, q: int, round_: int) -> np.ndarray:
        from sklearn.base import clone

        X, y = self._train()
        F = self.features(self.cands)
        n_group = len(self.in_group())
        incumbent = float(self.mean[-n_group:].max()) if n_group else float(y.max())
        gp, chosen = self.gp, []
        for _ in range(q):
            mu, sd = gp.predict(F, return_std=True)
            sd = np.maximum(sd, 1e-9)
            z = (mu - incumbent) / sd
            ei = (mu - incumbent) * stats.norm.cdf(z) + sd * stats.norm.pdf(z)
            ei[chosen] = -np.inf
            i = int(np.argmax(ei))
            chosen.append(i)
            # kriging believer: pretend the batch yields the posterior mean, keep the kernel
            X = np.vstack([X, F[i]])
            y = np.append(y, mu[i])
            gp = clone(self.gp).set_params(kernel=self.gp.kernel_, optimizer=None).fit(X, y)
        return self.cands[chosen]

    def add(self, rows: pd.DataFrame) -> None:
        super().add(rows)
        self._fit(self._round + 1)


class BoTorchQEI(GaussianProcessEI):
    """BoTorch SingleTaskGP with qLogExpectedImprovement (only when BoTorch is installed)."""

    def _fit(self, round_: int) -> None:
        import torch
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood

        torch.manual_seed(self.case.seed + round_)
        X, y = self._train()
        self.tX = torch.tensor(X, dtype=torch.double)
        tY = torch.tensor(y, dtype=torch.double)[:, None]
        self.gp = SingleTaskGP(self.tX, tY, outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(self.gp.likelihood, self.gp))
        self.cands = self._candidates(round_)
        self.mean = self._posterior_mean(self.features(self.cands))
        self._round = round_

    def _posterior_mean(self, F: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            post = self.gp.posterior(torch.tensor(F, dtype=torch.double))
            return post.mean.squeeze(-1).numpy()

    def propose(self, q: int, round_: int) -> np.ndarray:
        import torch
        from botorch.acquisition import qLogExpectedImprovement
        from botorch.optim import optimize_acqf

        n_group = len(self.in_group())
        incumbent = float(self.mean[-n_group:].max()) if n_group else float(self.mean.max())
        acq = qLogExpectedImprovement(self.gp, best_f=incumbent)
        dim = self.tX.shape[1]
        k = len(self.case.factors)
        bounds = torch.tensor([[0.0] * dim, [1.0] * dim], dtype=torch.double)
        fixed = {k + j: float(v) for j, v in enumerate(self.target)}
        cand, _ = optimize_acqf(
            acq, bounds, q=q, num_restarts=10, raw_samples=256, fixed_features=fixed
        )
        u = cand.detach().numpy()[:, :k]
        return self.case.lo + u * (self.case.hi - self.case.lo)


class CampaignMethod(Method):
    """:class:`bayesbio.recommend.Campaign` with its defaults."""

    def __init__(
        self,
        case: Case,
        model_params: Mapping[str, Any],
        *,
        trust_region: bool = True,
        transfer_risk: bool = True,
    ) -> None:
        from bayesbio.recommend import Campaign

        super().__init__(case)
        self.campaign = Campaign(
            case.world.space,
            case.table,
            model_params={"random_seed": case.seed, **model_params},
            group=case.full_group,
            recipe=dict(zip(case.factors, case.recipe.tolist(), strict=True)),
            trust_region=trust_region,
            transfer_risk=transfer_risk,
            random_seed=case.seed,
        )

    def answer(self) -> np.ndarray:
        return self.campaign.best().setpoint[self.case.factors].to_numpy(dtype=float)

    def propose(self, q: int, round_: int) -> np.ndarray:
        out = self.campaign.recommend(batch_size=q)
        self.details = out.drop(columns=self.case.factors, errors="ignore").reset_index(drop=True)
        return out[self.case.factors].to_numpy(dtype=float)

    def add(self, rows: pd.DataFrame) -> None:
        super().add(rows)
        self.campaign.add(rows)


def has_botorch() -> bool:
    """Whether BoTorch can be imported."""
    try:
        import botorch  # noqa: F401
    except ImportError:
        return False
    return True


def make_method(name: str, case: Case, model_params: Mapping[str, Any]) -> Method:
    """Build one method on the case's starting history (fits it)."""
    if name in BAYES_METHODS:
        return CampaignMethod(
            case,
            model_params,
            trust_region=name != "campaign_free",
            transfer_risk=name != "campaign_pooled",
        )
    classes = {
        "recipe": Recipe,
        "random": Random,
        "rf_argmax": ForestArgmax,
        "gp_ei": GaussianProcessEI,
        "botorch": BoTorchQEI,
    }
    return classes[name](case)


# -- the loop ----------------------------------------------------------------------------------
def nearest_gap(new: np.ndarray, past: np.ndarray) -> np.ndarray:
    """Max-norm distance of each row of ``new`` to its nearest row of ``past`` (inf if none)."""
    if not len(past):
        return np.full(len(new), np.inf)
    return np.abs(new[:, None, :] - past[None, :, :]).max(axis=2).min(axis=1)


def repeats(x: np.ndarray, table: pd.DataFrame, case: Case) -> float:
    """Share of the proposed setpoints ``x`` that repeat one already in ``table``.

    Within 0.1 % of each factor's operating range: a batch the history has already run.
    """
    width = case.hi - case.lo
    past = (table[case.factors].to_numpy(dtype=float) - case.lo) / width
    new = (np.atleast_2d(x) - case.lo) / width
    return float(np.mean(nearest_gap(new, past) < 1e-3))


def crowded(x: np.ndarray, case: Case, gap: float = 0.1) -> float:
    """Share of the proposed setpoints ``x`` within ``gap`` of another one of the same round.

    Unit scale over each factor's operating range, max norm: two batches of one round spent
    on nearly the same guess.
    """
    new = (np.atleast_2d(x) - case.lo) / (case.hi - case.lo)
    if len(new) < 2:
        return 0.0
    dist = np.abs(new[:, None, :] - new[None, :, :]).max(axis=2)
    np.fill_diagonal(dist, np.inf)
    return float(np.mean(dist.min(axis=1) < gap))


def proposal_rows(x: np.ndarray, method: Method, case: Case, base: Mapping[str, Any]) -> list[dict]:
    """One record per proposed setpoint: where it is, what it truly yields, what was near.

    ``ratio`` is the true expected yield over the recipe's; ``near_low`` the distance (max
    norm, share of the ranges) to the nearest batch of the group so far whose observed yield
    was below 80 % of the recipe's true expected yield (``inf`` when none): a proposal next
    to a low batch the model has discounted as an outlier. The method's own columns (e.g.
    the campaign's ``p_safe``, ``q05``) follow.
    """
    value = case.value(x)
    width = case.hi - case.lo
    part = method.in_group()
    low = part[part["yield"].to_numpy(dtype=float) < UNSAFE_FRACTION * case.recipe_value]
    past = (low[case.factors].to_numpy(dtype=float) - case.lo) / width
    new = (np.atleast_2d(x) - case.lo) / width
    near = nearest_gap(new, past)
    recipe_gap = np.abs(new - (case.recipe - case.lo) / width).max(axis=1)
    out = []
    for i in range(len(new)):
        rec = {**base, "batch": i + 1}
        rec.update({p: float(x[i, j]) for j, p in enumerate(case.factors)})
        rec.update(
            ratio=float(value[i] / case.recipe_value),
            unsafe=bool(value[i] < UNSAFE_FRACTION * case.recipe_value),
            near_low=float(near[i]),
            from_recipe=float(recipe_gap[i]),
        )
        if method.details is not None and len(method.details) == len(new):
            rec.update(method.details.iloc[i].to_dict())
        out.append(rec)
    return out


def run_case(
    world_name: str,
    n0: int,
    seed: int,
    methods: tuple[str, ...],
    rounds: int,
    batch_size: int,
    model_params: Mapping[str, Any],
) -> tuple[list[dict], list[dict]]:
    """Run every method's closed loop on one world x n0 x seed.

    Returns the tidy score rows and one record per proposed batch (:func:`proposal_rows`).
    """
    case = Case(world_name, n0, seed)
    rows: list[dict] = []
    proposals: list[dict] = []
    base = {"world": world_name, "n0": n0, "seed": seed}

    def add(method: str, round_: int, metric: str, value: float) -> None:
        rows.append({**base, "method": method, "round": round_, "metric": metric, "value": value})

    for name in methods:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            method = make_method(name, case, model_params)
            add(name, 0, "regret", float(case.regret(method.answer())[0]))
            add(name, 0, "seconds", time.perf_counter() - t0)
            for r in range(1, rounds + 1):
                t0 = time.perf_counter()
                x = method.propose(batch_size, r)
                value = case.value(x)
                add(name, r, "lost", float(np.mean(case.regret(x))))
                add(name, r, "unsafe", float(np.mean(value < UNSAFE_FRACTION * case.recipe_value)))
                add(name, r, "repeat", repeats(x, method.table, case))
                add(name, r, "crowded", crowded(x, case))
                proposals.extend(
                    proposal_rows(x, method, case, {**base, "method": name, "round": r})
                )
                method.add(case.run(x, r))
                add(name, r, "regret", float(case.regret(method.answer())[0]))
                add(name, r, "seconds", time.perf_counter() - t0)
        add(name, rounds, "warnings", float(len(caught)))
    return rows, proposals


def summarise(results: pd.DataFrame) -> dict[int, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per n0: (method x [regret per round, lost, unsafe %, s], world x method final regret)."""
    order = [m for m in METHODS if m in set(results["method"])]
    tables = {}
    for n0, part in results.groupby("n0"):
        means = part.groupby(["metric", "method", "round"])["value"].mean()
        regret = means.loc["regret"].unstack("round").reindex(order)
        regret.columns = [f"regret r{r}" for r in regret.columns]
        wide = regret.copy()
        wide["lost"] = means.loc["lost"].groupby("method").mean()
        wide["unsafe %"] = 100.0 * means.loc["unsafe"].groupby("method").mean()
        if "repeat" in means.index.get_level_values("metric"):
            wide["repeat %"] = 100.0 * means.loc["repeat"].groupby("method").mean()
        if "crowded" in means.index.get_level_values("metric"):
            wide["crowded %"] = 100.0 * means.loc["crowded"].groupby("method").mean()
        total = part[part["metric"] == "seconds"].groupby(["method", "world", "seed"])["value"]
        wide["s/run"] = total.sum().groupby("method").mean()
        last = part["round"].max()
        final = part[(part["metric"] == "regret") & (part["round"] == last)]
        by_world = final.groupby(["world", "method"])["value"].mean().unstack("method")
        by_world = by_world[[m for m in order if m in by_world.columns]]
        by_world.loc["mean"] = by_world.mean()
        tables[int(n0)] = (wide, by_world)
    return tables


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 worlds, n0 20, 2 seeds, 3 rounds")
    parser.add_argument("--worlds", nargs="+", choices=list(WORLD_NAMES), help="worlds to run")
    parser.add_argument("--n0", nargs="+", type=int, help="starting history sizes (default 20 40)")
    parser.add_argument("--seeds", type=int, help="seeds per world and n0 (default 10)")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="first seed (new histories for a confirmation)"
    )
    parser.add_argument("--rounds", type=int, help="rounds per campaign (default 5)")
    parser.add_argument("--batch-size", type=int, default=4, help="batches per round (default 4)")
    parser.add_argument(
        "--methods", nargs="+", choices=list(METHODS), help="methods to run (default all)"
    )
    parser.add_argument("--no-bayes", action="store_true", help="skip the Bayesian campaign")
    parser.add_argument(
        "--model-params",
        type=json.loads,
        default={},
        help="JSON keyword arguments of the campaign's BayesianYieldModel",
    )
    parser.add_argument("--jobs", type=int, default=1, help="joblib workers (default 1)")
    parser.add_argument("--out", help="CSV file for the tidy per-run rows")
    parser.add_argument(
        "--proposals", help="CSV file with every proposed batch (setpoint, true ratio to recipe)"
    )
    args = parser.parse_args(argv)
    worlds = args.worlds or (list(QUICK_WORLDS) if args.quick else list(WORLDS))
    n0s = args.n0 or ([20] if args.quick else [20, 40])
    seeds = args.seeds or (2 if args.quick else 10)
    rounds = args.rounds or (3 if args.quick else 5)
    if not isinstance(args.model_params, dict):
        parser.error("--model-params must be a JSON object")
    methods = list(args.methods or METHODS)
    if args.no_bayes:
        methods = [m for m in methods if m not in BAYES_METHODS]
    if "botorch" in methods and not has_botorch():
        methods.remove("botorch")
        print("note: BoTorch is not installed; method botorch skipped")
    first = args.first_seed
    cases = [(w, n, s) for w in worlds for n in n0s for s in range(first, first + seeds)]
    settings = json.dumps(args.model_params, sort_keys=True) if args.model_params else "defaults"
    header = (
        f"{len(cases)} cases: worlds {worlds}, n0 {n0s}, seeds {first}-{first + seeds - 1}, "
        f"{rounds} round(s) x "
        f"{args.batch_size} batches, methods {methods}, {args.jobs} job(s)"
    )
    if set(methods) & set(BAYES_METHODS):
        header += f"\ncampaign model: BayesianYieldModel({settings}, random_seed=seed)"
    print(header, flush=True)
    t0 = time.perf_counter()
    parts = Parallel(n_jobs=args.jobs)(
        delayed(run_case)(w, n, s, tuple(methods), rounds, args.batch_size, args.model_params)
        for w, n, s in cases
    )
    results = pd.DataFrame([row for part, _ in parts for row in part])
    print(f"done in {time.perf_counter() - t0:.0f} s\n")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        for n0, (table, by_world) in summarise(results).items():
            print(
                f"n0 = {n0}: true regret % of the answer per round, lost % and unsafe % of the "
                f"proposed batches (means over rounds), seconds per run"
            )
            print(table.round(2).to_string())
            print(f"\nn0 = {n0}: final-round regret % by world")
            print(by_world.round(2).to_string())
            print()
    if args.out:
        results.to_csv(args.out, index=False)
        print(f"rows written to {args.out}")
    if args.proposals:
        pd.DataFrame([rec for _, recs in parts for rec in recs]).to_csv(args.proposals, index=False)
        print(f"proposals written to {args.proposals}")
    return results


if __name__ == "__main__":
    main()
