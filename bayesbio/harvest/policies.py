"""Harvest policies behind one interface (spec §4).

Every policy has ``decide(state) -> action`` (``CONTINUE = 0``, ``HARVEST = 1``) and, where it
has a control limit, ``threshold(t, p, knowledge)`` giving the impurity level ``i*`` above which
it harvests. All policies harvest in forced states (``t = T`` or ``p >= p_bar``); policies with
a continuation estimate ``Q`` harvest iff ``R(p, i) >= Q`` (ties harvest).

=================  ===========================================================================
``"PI-MDP"``       true parameters known; backward induction (upper benchmark)
``"CP"``           common practice: continue until the cap or ``T``
``"myopic"``       one-step look-ahead with the Student-t predictives of the running knowledge
``"myopic-PI"``    one-step look-ahead with the true normals
``"plug-in"``      re-solve the PI problem at each epoch with the plug-in estimates of ``I_t``
``"plug-in-static"`` solve the PI problem once with the plug-in estimates of ``I_0``
``"RL-MR"``        Bayesian RL with model risk: Thompson draws from ``I_t`` (+ sparse sampling)
=================  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .knowledge import KnowledgeState
from .mdp import PISolution, backward_induction, solve_pi
from .operator import (
    Grid,
    ShockLaw,
    continuation,
    continuation_in_impurity,
    grid_operator,
    make_grid,
)
from .params import HarvestParams

__all__ = [
    "CONTINUE",
    "HARVEST",
    "PIMDP",
    "POLICY_NAMES",
    "RLMR",
    "CommonPractice",
    "HarvestPolicy",
    "HarvestState",
    "Myopic",
    "MyopicPI",
    "PlugIn",
    "PlugInStatic",
    "make_policy",
]

CONTINUE = 0
HARVEST = 1
_MARGIN = 1e-9  # skip the full RL-MR computation only when the bound clears R by this much

ContinuationFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class HarvestState:
    """Hyper-state ``H_t = (t, p_t, i_t, I_t)`` seen by a policy.

    Parameters
    ----------
    t : int
        Decision epoch (0..T).
    p, i : float
        Protein and impurity amounts.
    knowledge : KnowledgeState, optional
        Current beliefs; needed by the learning policies.
    """

    t: int
    p: float
    i: float
    knowledge: KnowledgeState | None = None


@lru_cache(maxsize=64)
def _cached_pi(params: HarvestParams, theta: tuple[float, float, float, float]) -> PISolution:
    return solve_pi(params, theta)


def _true_theta(params: HarvestParams) -> tuple[float, float, float, float]:
    return (params.mu_p, params.sigma_p, params.mu_i, params.sigma_i)


class HarvestPolicy:
    """Base class: forced harvests, ``R >= Q`` decisions and bisection thresholds.

    Parameters
    ----------
    params : HarvestParams
        Model parameters.
    """

    name = "base"
    uses_data = False
    randomised = False
    has_threshold = True

    def __init__(self, params: HarvestParams) -> None:
        self.params = params

    def is_forced(self, state: HarvestState) -> bool:
        """Whether ``state`` must be harvested (``t = T`` or ``p >= p_bar``)."""
        return state.t >= self.params.T or state.p >= self.params.p_bar

    def _check_state(self, state: HarvestState) -> None:
        if not 0 <= state.t <= self.params.T:
            raise ValueError(f"argument 'state': epoch t={state.t} outside 0..{self.params.T}")
        if self.uses_data and state.knowledge is None:
            raise ValueError(f"argument 'state': policy {self.name!r} needs state.knowledge")

    def continuation_function(
        self, t: int, knowledge: KnowledgeState | None, rng: np.random.Generator | None = None
    ) -> ContinuationFn:
        """Return the continuation estimate ``Q(p, i)`` used at epoch ``t < T``.

        Parameters
        ----------
        t : int
            Decision epoch.
        knowledge : KnowledgeState or None
            Current beliefs (ignored by policies that use no data).
        rng : numpy.random.Generator, optional
            Randomness for randomised policies.

        Returns
        -------
        callable
            Vectorised ``Q(p, i)``.
        """
        raise NotImplementedError

    def decide(self, state: HarvestState) -> int:
        """Choose the action at ``state``: ``HARVEST`` (1) or ``CONTINUE`` (0).

        Parameters
        ----------
        state : HarvestState
            The current hyper-state.

        Returns
        -------
        int
            The action.
        """
        self._check_state(state)
        if self.is_forced(state):
            return HARVEST
        q = self.continuation_function(state.t, state.knowledge)(
            np.asarray(state.p), np.asarray(state.i)
        )
        return HARVEST if self.params.reward(state.p, state.i) >= float(q) else CONTINUE

    def threshold(
        self,
        t: int,
        p: float | np.ndarray,
        knowledge: KnowledgeState | None = None,
        *,
        n_bisect: int = 40,
        i_low: float = 0.5,
    ) -> np.ndarray:
        """Control limit ``i*(p)``: the policy harvests at ``(t, p, i)`` iff ``i >= i*``.

        Bisection on ``ln i`` in ``[ln i_low, ln i_bar]`` keeping "harvest" at the upper end;
        ``i_low`` if it harvests everywhere, ``i_bar`` if nowhere.

        Parameters
        ----------
        t : int
            Decision epoch (``< T``).
        p : float or ndarray
            Protein amounts (``< p_bar``).
        knowledge : KnowledgeState, optional
            Beliefs (needed by the learning policies).
        n_bisect : int, default 40
            Bisection steps.
        i_low : float, default 0.5
            Lower end of the search.

        Returns
        -------
        ndarray
            ``i*`` for each ``p``.
        """
        if not self.has_threshold:
            raise ValueError(f"policy {self.name!r} has no control limit")
        if not 0 <= t < self.params.T:
            raise ValueError(f"argument 't' must be in 0..{self.params.T - 1}, got {t}")
        p = np.atleast_1d(np.asarray(p, dtype=float))
        if np.any(p >= self.params.p_bar) or np.any(p <= 0):
            raise ValueError(f"argument 'p' must lie in (0, p_bar={self.params.p_bar})")
        if self.uses_data and knowledge is None:
            raise ValueError(f"argument 'knowledge' is required by policy {self.name!r}")
        qfun = self._threshold_function(t, knowledge, p)

        def harvests(log_i: np.ndarray) -> np.ndarray:
            i = np.exp(log_i)
            return self.params.reward(p, i) >= qfun(i)

        lo = np.full(p.shape, np.log(i_low))
        hi = np.full(p.shape, np.log(self.params.i_bar))
        everywhere = harvests(lo)
        nowhere = ~harvests(hi)
        for _ in range(n_bisect):
            mid = 0.5 * (lo + hi)
            h = harvests(mid)
            hi = np.where(h, mid, hi)
            lo = np.where(h, lo, mid)
        out = np.exp(hi)
        out[everywhere] = i_low
        out[nowhere] = self.params.i_bar
        return out

    def _threshold_function(
        self, t: int, knowledge: KnowledgeState | None, p: np.ndarray
    ) -> Callable[[np.ndarray], np.ndarray]:
        qfun = self.continuation_function(t, knowledge)
        return lambda i: qfun(p, i)


class PIMDP(HarvestPolicy):
    """Perfect-information MDP policy: true parameters known (upper benchmark).

    Parameters
    ----------
    params : HarvestParams
        Model parameters (the truth).
    """

    name = "PI-MDP"

    @property
    def solution(self) -> PISolution:
        """The backward-induction solution under the true parameters (cached)."""
        return _cached_pi(self.params, _true_theta(self.params))

    def continuation_function(  # noqa: D102
        self,
        t: int,
        knowledge: KnowledgeState | None = None,
        rng: np.random.Generator | None = None,
    ) -> ContinuationFn:
        sol = self.solution
        return lambda p, i: sol.continuation(t, p, i)


class CommonPractice(HarvestPolicy):
    """Common practice: continue until the protein cap or the last epoch.

    Parameters
    ----------
    params : HarvestParams
        Model parameters.
    """

    name = "CP"
    has_threshold = False

    def decide(self, state: HarvestState) -> int:  # noqa: D102
        self._check_state(state)
        return HARVEST if self.is_forced(state) else CONTINUE

    def continuation_function(  # noqa: D102
        self,
        t: int,
        knowledge: KnowledgeState | None = None,
        rng: np.random.Generator | None = None,
    ) -> ContinuationFn:
        return lambda p, i: np.full(np.broadcast_shapes(np.shape(p), np.shape(i)), np.inf)


class MyopicPI(HarvestPolicy):
    """One-step look-ahead with the true normal shock laws: ``Q = C[R]``.

    Parameters
    ----------
    params : HarvestParams
        Model parameters (the truth).
    """

    name = "myopic-PI"

    def continuation_function(  # noqa: D102
        self,
        t: int,
        knowledge: KnowledgeState | None = None,
        rng: np.random.Generator | None = None,
    ) -> ContinuationFn:
        law_p = ShockLaw.normal(self.params.mu_p, self.params.sigma_p)
        law_i = ShockLaw.normal(self.params.mu_i, self.params.sigma_i)
        return lambda p, i: continuation(self.params, law_p, law_i, p, i)


class Myopic(HarvestPolicy):
    """One-step look-ahead under model risk: ``Q = C[R]`` with the Student-t predictives of ``I_t``.

    Parameters
    ----------
    params : HarvestParams
        Model parameters (economics and limits only).
    """

    name = "myopic"
    uses_data = True

    def continuation_function(  # noqa: D102
        self,
        t: int,
        knowledge: KnowledgeState | None,
        rng: np.random.Generator | None = None,
    ) -> ContinuationFn:
        law_p = ShockLaw.student_t(*knowledge.protein.predictive_params())
        law_i = ShockLaw.student_t(*knowledge.impurity.predictive_params())
        return lambda p, i: continuation(self.params, law_p, law_i, p, i, q=self.params.q_t)


def _solve_from(
    params: HarvestParams, law_p: ShockLaw, law_i: ShockLaw, t: int, grid: Grid
) -> np.ndarray | None:
    """``V_{t+1}`` for a batch of normal laws (``None`` if ``t + 1 = T``: then ``g = R``)."""
    if t + 1 >= params.T:
        return None
    op = grid_operator(params, law_p, law_i, grid)
    return backward_induction(params, op, grid, t_stop=t + 1)[0]


def _reward_bound(
    params: HarvestParams, law_p: ShockLaw, law_i: ShockLaw, p: float, i: float, grid: Grid
) -> np.ndarray:
    """Lower bound ``C[interp R](p, i)`` of ``C[interp V_{t+1}](p, i)`` (``V >= R`` on the grid)."""
    return continuation(params, law_p, law_i, p, i, "interpolated-reward", grid=grid)


class PlugIn(HarvestPolicy):
    """Certainty-equivalent MDP: at each epoch re-solve the PI problem with ``I_t``'s plug-in.

    Parameters
    ----------
    params : HarvestParams
        Model parameters (economics and limits only).
    """

    name = "plug-in"
    uses_data = True

    def continuation_function(  # noqa: D102
        self,
        t: int,
        knowledge: KnowledgeState | None,
        rng: np.random.Generator | None = None,
    ) -> ContinuationFn:
        mu_p, s_p, mu_i, s_i = knowledge.plug_in()
        law_p, law_i = ShockLaw.normal(mu_p, s_p), ShockLaw.normal(mu_i, s_i)
        grid = make_grid(self.params)
        values = _solve_from(self.params, law_p, law_i, t, grid)
        return lambda p, i: continuation(self.params, law_p, law_i, p, i, values, grid=grid)

    def decide(self, state: HarvestState) -> int:  # noqa: D102
        self._check_state(state)
        if self.is_forced(state):
            return HARVEST
        reward = self.params.reward(state.p, state.i)
        if state.t + 1 < self.params.T:
            # exact shortcut: Q >= C[interp R], so R below that bound means "continue"
            mu_p, s_p, mu_i, s_i = state.knowledge.plug_in()
            law_p, law_i = ShockLaw.normal(mu_p, s_p), ShockLaw.normal(mu_i, s_i)
            bound = _reward_bound(
                self.params, law_p, law_i, state.p, state.i, make_grid(self.params)
            )
            if reward < float(bound) - _MARGIN:
                return CONTINUE
        return super().decide(state)


class PlugInStatic(HarvestPolicy):
    """Solve the PI problem once with the plug-in estimates of the initial knowledge ``I_0``.

    Parameters
    ----------
    params : HarvestParams
        Model parameters (economics and limits only).
    knowledge : KnowledgeState
        Initial knowledge ``I_0`` (from the historical data).
    """

    name = "plug-in-static"

    def __init__(self, params: HarvestParams, knowledge: KnowledgeState) -> None:
        super().__init__(params)
        if knowledge is None:
            raise ValueError("argument 'knowledge' is required by policy 'plug-in-static'")
        self.knowledge = knowledge

    @property
    def solution(self) -> PISolution:
        """The PI solution under the plug-in estimates of ``I_0`` (cached)."""
        return _cached_pi(self.params, tuple(float(x) for x in self.knowledge.plug_in()))

    def continuation_function(  # noqa: D102
        self,
        t: int,
        knowledge: KnowledgeState | None = None,
        rng: np.random.Generator | None = None,
    ) -> ContinuationFn:
        sol = self.solution
        return lambda p, i: sol.continuation(t, p, i)


class RLMR(HarvestPolicy):
    """Bayesian reinforcement learning with model risk (spec §4.5).

    With ``depth=1`` the continuation estimate is the posterior average, over ``n_draws``
    Thompson draws ``theta_m ~ NIG(I_t)``, of the ``theta_m``-optimal continuation values
    ``C_theta_m[V^theta_m_{t+1}](p, i)``. The backward inductions of all draws run batched.
    ``depth >= 2`` adds Bayesian sparse sampling with ``children`` sampled next states per node.

    Parameters
    ----------
    params : HarvestParams
        Model parameters (economics and limits only).
    n_draws : int, default 32
        Thompson draws ``M`` per leaf.
    depth : int, default 1
        Sparse-sampling depth ``D``.
    children : int, default 8
        Sampled children ``K`` per sparse-sampling node.
    random_seed : int, numpy.random.SeedSequence or Generator, optional
        Seed of the policy's random stream.
    n_threshold_draws : int, default 256
        Draws used by :meth:`threshold` (from ``default_rng(threshold_seed)``).
    """

    name = "RL-MR"
    uses_data = True
    randomised = True

    def __init__(
        self,
        params: HarvestParams,
        *,
        n_draws: int = 32,
        depth: int = 1,
        children: int = 8,
        random_seed: int | np.random.SeedSequence | np.random.Generator | None = None,
        n_threshold_draws: int = 256,
    ) -> None:
        super().__init__(params)
        for arg, value in (
            ("n_draws", n_draws),
            ("depth", depth),
            ("children", children),
            ("n_threshold_draws", n_threshold_draws),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"argument {arg!r} must be an integer >= 1, got {value}")
        self.n_draws = int(n_draws)
        self.depth = int(depth)
        self.children = int(children)
        self.n_threshold_draws = int(n_threshold_draws)
        self.random_seed = random_seed
        self.rng = np.random.default_rng(random_seed)
        self.threshold_seed = random_seed
        self.n_full_solves = 0  # decisions that needed the batched backward induction

    def _leaf_laws(
        self, knowledge: KnowledgeState, rng: np.random.Generator, size: int
    ) -> tuple[ShockLaw, ShockLaw]:
        mu_p, s_p, mu_i, s_i = knowledge.thompson(rng, size)
        return ShockLaw.normal(mu_p, s_p), ShockLaw.normal(mu_i, s_i)

    def _leaf_function(
        self, t: int, law_p: ShockLaw, law_i: ShockLaw, *, per_draw: bool = False
    ) -> ContinuationFn:
        grid = make_grid(self.params)
        values = _solve_from(self.params, law_p, law_i, t, grid)
        self.n_full_solves += values is not None

        def qfun(p: np.ndarray, i: np.ndarray) -> np.ndarray:
            p = np.asarray(p)[..., None]
            i = np.asarray(i)[..., None]
            q = continuation(self.params, law_p, law_i, p, i, values, grid=grid)
            return q if per_draw else q.mean(-1)

        return qfun

    def continuation_draws(
        self,
        t: int,
        knowledge: KnowledgeState,
        p: float,
        i: float,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Return the continuation value at ``(p, i)`` under each Thompson draw, ``(n_draws,)``.

        Their mean is :meth:`continuation_function`'s value (``depth=1``, same ``rng`` state);
        their spread is the model risk in the value of continuing: what it is worth under each
        growth law the knowledge state still allows.
        """
        rng = self.rng if rng is None else rng
        laws = self._leaf_laws(knowledge, rng, self.n_draws)
        return self._leaf_function(t, *laws, per_draw=True)(np.asarray(p), np.asarray(i))

    def continuation_function(  # noqa: D102
        self,
        t: int,
        knowledge: KnowledgeState | None,
        rng: np.random.Generator | None = None,
    ) -> ContinuationFn:
        rng = self.rng if rng is None else rng
        if self.depth == 1 or t + 1 >= self.params.T:
            return self._leaf_function(t, *self._leaf_laws(knowledge, rng, self.n_draws))
        return lambda p, i: np.vectorize(
            lambda pp, ii: self._qcont(t, pp, ii, knowledge, self.depth, rng)
        )(p, i)

    def _qcont(
        self,
        t: int,
        p: float,
        i: float,
        knowledge: KnowledgeState,
        d: int,
        rng: np.random.Generator,
    ) -> float:
        prm = self.params
        if d == 1 or t + 1 >= prm.T:
            laws = self._leaf_laws(knowledge, rng, self.n_draws)
            return float(self._leaf_function(t, *laws)(np.asarray(p), np.asarray(i)))
        total = 0.0
        for _ in range(self.children):
            mu_p, s_p, mu_i, s_i = knowledge.thompson(rng, 1)
            z = rng.standard_normal(2)
            phi = float(mu_p[0] + s_p[0] * z[0])
            psi = float(mu_i[0] + s_i[0] * z[1])
            p1, i1 = p * np.exp(phi), i * np.exp(psi)
            if i1 > prm.i_bar:
                total += -prm.r_f
            elif p1 >= prm.p_bar or t + 1 == prm.T:
                total += float(prm.reward(p1, i1))
            else:
                q = self._qcont(t + 1, p1, i1, knowledge.update(phi, psi), d - 1, rng)
                total += max(float(prm.reward(p1, i1)), q)
        return -prm.c_u + total / self.children

    def decide(self, state: HarvestState) -> int:  # noqa: D102
        self._check_state(state)
        if self.is_forced(state):
            return HARVEST
        prm = self.params
        reward = float(prm.reward(state.p, state.i))
        if self.depth > 1 and state.t + 1 < prm.T:
            q = self._qcont(state.t, state.p, state.i, state.knowledge, self.depth, self.rng)
            return HARVEST if reward >= q else CONTINUE
        law_p, law_i = self._leaf_laws(state.knowledge, self.rng, self.n_draws)
        if state.t + 1 < prm.T:
            # exact shortcut (same draws, same decision): each q_m >= C_m[interp R], so if R is
            # below their mean the full batched backward induction cannot change the answer
            grid = make_grid(prm)
            bound = _reward_bound(prm, law_p, law_i, state.p, state.i, grid).mean()
            if reward < bound - _MARGIN:
                return CONTINUE
        q = self._leaf_function(state.t, law_p, law_i)(np.asarray(state.p), np.asarray(state.i))
        return HARVEST if reward >= float(q) else CONTINUE

    def _threshold_function(
        self, t: int, knowledge: KnowledgeState | None, p: np.ndarray
    ) -> Callable[[np.ndarray], np.ndarray]:
        rng = np.random.default_rng(self.threshold_seed)
        law_p, law_i = self._leaf_laws(knowledge, rng, self.n_threshold_draws)
        grid = make_grid(self.params)
        values = _solve_from(self.params, law_p, law_i, t, grid)
        qfun = continuation_in_impurity(self.params, law_p, law_i, p[..., None], values, grid=grid)
        return lambda i: qfun(np.asarray(i)[..., None]).mean(-1)


POLICY_NAMES = ("PI-MDP", "CP", "myopic", "myopic-PI", "plug-in", "plug-in-static", "RL-MR")


def make_policy(
    name: str,
    params: HarvestParams,
    *,
    knowledge: KnowledgeState | None = None,
    random_seed: int | np.random.SeedSequence | np.random.Generator | None = None,
    **options: int,
) -> HarvestPolicy:
    """Build a policy by name.

    Parameters
    ----------
    name : str
        One of :data:`POLICY_NAMES`.
    params : HarvestParams
        Model parameters.
    knowledge : KnowledgeState, optional
        Initial knowledge ``I_0``; required by ``"plug-in-static"``.
    random_seed : int, SeedSequence or Generator, optional
        Seed of a randomised policy (``"RL-MR"``).
    **options : int
        Extra options of :class:`RLMR` (``n_draws``, ``depth``, ``children``).

    Returns
    -------
    HarvestPolicy
        The policy.

    Raises
    ------
    ValueError
        If ``name`` is unknown or a needed argument is missing.
    """
    simple = {
        "PI-MDP": PIMDP,
        "CP": CommonPractice,
        "myopic": Myopic,
        "myopic-PI": MyopicPI,
        "plug-in": PlugIn,
    }
    if options and name != "RL-MR":
        raise ValueError(f"argument 'options' {sorted(options)}: only policy 'RL-MR' takes options")
    if name in simple:
        return simple[name](params)
    if name == "plug-in-static":
        return PlugInStatic(params, knowledge)
    if name == "RL-MR":
        return RLMR(params, random_seed=random_seed, **options)
    raise ValueError(
        f"argument 'name': unknown policy {name!r}; expected one of {list(POLICY_NAMES)}"
    )
