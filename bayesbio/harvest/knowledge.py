"""Normal-inverse-gamma knowledge states for the two growth rates (spec §2).

Each growth rate ``x`` (protein ``phi`` or impurity ``psi``) has
``sigma^2 ~ InvGamma(shape=lam, scale=beta)`` and ``mu | sigma^2 ~ N(alpha, sigma^2 / nu)``.
The default prior ``pi(mu, sigma^2) ~ 1/sigma^2`` is ``NIG(alpha=0, nu=0, lam=-1/2, beta=0)``
(improper; a posterior from it needs at least two data points).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["DEFAULT_PRIOR", "NIG", "KnowledgeState", "nig_posterior"]


@dataclass(frozen=True)
class NIG:
    """Normal-inverse-gamma belief ``(alpha, nu, lam, beta)`` about one growth rate.

    Parameters
    ----------
    alpha : float
        Location of ``mu``.
    nu : float
        Pseudo-count of ``mu`` (``Var[mu | sigma^2] = sigma^2 / nu``).
    lam : float
        Shape of the inverse-gamma law of ``sigma^2``.
    beta : float
        Scale of the inverse-gamma law of ``sigma^2``.
    """

    alpha: float
    nu: float
    lam: float
    beta: float

    @property
    def is_proper(self) -> bool:
        """Whether the belief is a proper distribution (``nu, lam, beta > 0``)."""
        return self.nu > 0 and self.lam > 0 and self.beta > 0

    def _require_proper(self, what: str) -> None:
        if not self.is_proper:
            raise ValueError(
                f"{what} needs a proper NIG belief (nu, lam, beta > 0), got {self}; with the "
                "default improper prior use at least n >= 2 data points"
            )

    def update(self, x: float) -> NIG:
        """Return the belief after observing one growth rate ``x`` (``I (+) x``).

        Parameters
        ----------
        x : float
            The observed one-epoch log growth rate.

        Returns
        -------
        NIG
            The updated belief.
        """
        nu1 = self.nu + 1.0
        return NIG(
            alpha=(self.nu * self.alpha + x) / nu1,
            nu=nu1,
            lam=self.lam + 0.5,
            beta=self.beta + self.nu * (x - self.alpha) ** 2 / (2.0 * nu1),
        )

    def predictive_params(self) -> tuple[float, float, float]:
        """Student-t predictive of the next growth rate as ``(df, loc, scale)``.

        Returns
        -------
        tuple of float
            ``df = 2 lam``, ``loc = alpha``, ``scale = sqrt(beta (nu + 1) / (lam nu))``.
        """
        self._require_proper("the predictive")
        scale = np.sqrt(self.beta * (self.nu + 1.0) / (self.lam * self.nu))
        return 2.0 * self.lam, self.alpha, float(scale)

    def predictive(self) -> stats.rv_continuous:
        """Student-t predictive law of the next growth rate as a frozen scipy distribution.

        Returns
        -------
        scipy.stats frozen distribution
            ``alpha + scale * t_{2 lam}``.
        """
        df, loc, scale = self.predictive_params()
        return stats.t(df, loc=loc, scale=scale)

    def predictive_variance_split(self) -> tuple[float, float]:
        """Split of the predictive variance (needs ``lam > 1``).

        Returns
        -------
        tuple of float
            ``(E[sigma^2 | I], Var[mu | I])``: inherent stochasticity and model risk.
        """
        self._require_proper("the predictive variance")
        if self.lam <= 1:
            return float("inf"), float("inf")
        inherent = self.beta / (self.lam - 1.0)
        return inherent, inherent / self.nu

    def plug_in(self) -> tuple[float, float]:
        """Plug-in estimate ``(mu_hat, sigma_hat)`` with ``sigma_hat^2 = beta / lam``.

        Returns
        -------
        tuple of float
            Point estimates of the mean and SD of the growth rate.
        """
        self._require_proper("the plug-in estimate")
        return self.alpha, float(np.sqrt(self.beta / self.lam))

    def thompson(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``(mu, sigma)`` from the belief, the spec's way (gamma first, then normal).

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness.
        size : int
            Number of draws.

        Returns
        -------
        tuple of ndarray
            ``mu`` and ``sigma``, each of shape ``(size,)``.
        """
        self._require_proper("Thompson sampling")
        g = rng.gamma(self.lam, 1.0, size)
        sigma2 = self.beta / g
        z = rng.standard_normal(size)
        mu = self.alpha + z * np.sqrt(sigma2 / self.nu)
        return mu, np.sqrt(sigma2)


DEFAULT_PRIOR = NIG(alpha=0.0, nu=0.0, lam=-0.5, beta=0.0)


def nig_posterior(x: Sequence[float] | np.ndarray, prior: NIG = DEFAULT_PRIOR) -> NIG:
    """Closed-form NIG posterior from growth-rate observations.

    Parameters
    ----------
    x : array-like of float
        Observed one-epoch log growth rates.
    prior : NIG, default DEFAULT_PRIOR
        Prior belief; the default is the improper ``1/sigma^2`` prior.

    Returns
    -------
    NIG
        The posterior belief.

    Raises
    ------
    ValueError
        If ``x`` holds non-finite values, or the posterior is improper (e.g. ``n < 2``
        with the default prior, or no spread in ``x``).
    """
    x = np.asarray(x, dtype=float).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError("argument 'x': growth rates must be finite")
    n = x.size
    if n == 0:
        post = prior
    else:
        xbar = float(x.mean())
        ss = float(((x - xbar) ** 2).sum())
        nu_n = prior.nu + n
        post = NIG(
            alpha=(prior.nu * prior.alpha + n * xbar) / nu_n,
            nu=nu_n,
            lam=prior.lam + n / 2.0,
            beta=prior.beta + ss / 2.0 + prior.nu * n * (xbar - prior.alpha) ** 2 / (2.0 * nu_n),
        )
    if not post.is_proper:
        raise ValueError(
            f"argument 'x': n = {n} data points give an improper posterior {post}; the default "
            "(improper) prior needs n >= 2 points that are not all equal"
        )
    return post


@dataclass(frozen=True)
class KnowledgeState:
    """Beliefs about the protein and impurity growth rates, ``I = (I^(p), I^(i))``.

    Parameters
    ----------
    protein : NIG
        Belief about the protein log growth rate ``phi``.
    impurity : NIG
        Belief about the impurity log growth rate ``psi``.
    """

    protein: NIG
    impurity: NIG

    @classmethod
    def from_data(
        cls,
        phi: Sequence[float] | np.ndarray,
        psi: Sequence[float] | np.ndarray,
        *,
        prior: KnowledgeState | None = None,
    ) -> KnowledgeState:
        """Posterior knowledge state from historical growth rates.

        Parameters
        ----------
        phi, psi : array-like of float
            Historical protein and impurity one-epoch log growth rates.
        prior : KnowledgeState, optional
            Prior beliefs; default the improper ``1/sigma^2`` prior for both.

        Returns
        -------
        KnowledgeState
            The posterior.
        """
        pp = prior.protein if prior is not None else DEFAULT_PRIOR
        pi = prior.impurity if prior is not None else DEFAULT_PRIOR
        try:
            protein = nig_posterior(phi, pp)
        except ValueError as err:
            raise ValueError(str(err).replace("argument 'x'", "argument 'phi'")) from None
        try:
            impurity = nig_posterior(psi, pi)
        except ValueError as err:
            raise ValueError(str(err).replace("argument 'x'", "argument 'psi'")) from None
        return cls(protein, impurity)

    @classmethod
    def from_trajectories(
        cls, trajectories: pd.DataFrame, *, prior: KnowledgeState | None = None
    ) -> KnowledgeState:
        """Posterior knowledge state from simulated or recorded trajectories.

        Parameters
        ----------
        trajectories : pandas.DataFrame
            Table with columns ``phi`` and ``psi`` (as from
            :func:`~bayesbio.harvest.simulate_trajectories`); missing values (the last epoch
            of each batch) are skipped.
        prior : KnowledgeState, optional
            Prior beliefs; default the improper ``1/sigma^2`` prior for both.

        Returns
        -------
        KnowledgeState
            The posterior.
        """
        for column in ("phi", "psi"):
            if column not in trajectories.columns:
                raise ValueError(f"argument 'trajectories': missing column {column!r}")
        rows = trajectories[["phi", "psi"]].dropna()
        return cls.from_data(rows["phi"].to_numpy(), rows["psi"].to_numpy(), prior=prior)

    @classmethod
    def typical(
        cls, mu_p: float, sigma_p: float, mu_i: float, sigma_i: float, n: int
    ) -> KnowledgeState:
        """Typical posterior of ``n`` points under the default prior (spec Fig. 4).

        Parameters
        ----------
        mu_p, sigma_p, mu_i, sigma_i : float
            Growth-rate means and SDs the data are typical of.
        n : int
            Number of data points (>= 2).

        Returns
        -------
        KnowledgeState
            ``alpha = mu``, ``nu = n``, ``lam = (n - 1) / 2``, ``beta = (n - 1) sigma^2 / 2``.
        """
        if n < 2:
            raise ValueError(f"argument 'n' must be >= 2 with the default prior, got {n}")
        lam = (n - 1) / 2.0
        return cls(
            NIG(mu_p, float(n), lam, lam * sigma_p**2),
            NIG(mu_i, float(n), lam, lam * sigma_i**2),
        )

    def update(self, phi: float, psi: float) -> KnowledgeState:
        """Return the state after one observed epoch ``(phi, psi)`` of the running batch.

        Parameters
        ----------
        phi, psi : float
            Observed protein and impurity log growth rates.

        Returns
        -------
        KnowledgeState
            ``I (+) (phi, psi)``.
        """
        return KnowledgeState(self.protein.update(phi), self.impurity.update(psi))

    def plug_in(self) -> tuple[float, float, float, float]:
        """Plug-in estimates ``(mu_p, sigma_p, mu_i, sigma_i)``.

        Returns
        -------
        tuple of float
            Point estimates of both growth-rate laws.
        """
        return (*self.protein.plug_in(), *self.impurity.plug_in())

    def thompson(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, ...]:
        """Draw ``size`` parameter sets; the order of draws is ``G_p, Z_p, G_i, Z_i``.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness.
        size : int
            Number of draws.

        Returns
        -------
        tuple of ndarray
            ``(mu_p, sigma_p, mu_i, sigma_i)``, each of shape ``(size,)``.
        """
        mu_p, sigma_p = self.protein.thompson(rng, size)
        mu_i, sigma_i = self.impurity.thompson(rng, size)
        return mu_p, sigma_p, mu_i, sigma_i
