"""Protein and impurity growth: trajectories, historical data and one batch under a policy.

Under "continue", ``p_{t+1} = p_t exp(phi_t)`` and ``i_{t+1} = i_t exp(psi_t)`` with independent
normal log growth rates (spec §1). A batch fails when ``i_{t+1} > i_bar`` (checked first), is
forced to harvest when ``p_t >= p_bar`` or ``t = T``, and earns ``R(p, i) - c_u tau`` when
harvested at ``tau`` or ``-r_f - c_u tau`` when it fails at ``tau``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .knowledge import KnowledgeState
from .params import HarvestParams, get_scenario
from .policies import HARVEST, HarvestPolicy, HarvestState

__all__ = ["BatchOutcome", "growth_rates", "run_batch", "simulate_trajectories"]


def growth_rates(params: HarvestParams, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map standard normal draws to true growth rates.

    Parameters
    ----------
    params : HarvestParams
        True parameters.
    z : ndarray
        Standard normal draws with last axis of length 2 (protein, impurity).

    Returns
    -------
    tuple of ndarray
        ``phi = mu_p + sigma_p z[..., 0]`` and ``psi = mu_i + sigma_i z[..., 1]``.
    """
    z = np.asarray(z, dtype=float)
    if z.shape[-1] != 2:
        raise ValueError(f"argument 'z': last axis must have length 2, got shape {z.shape}")
    return params.mu_p + params.sigma_p * z[..., 0], params.mu_i + params.sigma_i * z[..., 1]


def simulate_trajectories(
    params: HarvestParams | str,
    n_batches: int,
    random_seed: int | np.random.SeedSequence | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Simulate batches from the true parameters, run until the cap, ``T`` or failure.

    Vectorised over batches; the draws are ``default_rng(random_seed).standard_normal(
    (n_batches, T, 2))`` (protein, impurity), the same layout as the case study's batch shocks.

    Parameters
    ----------
    params : HarvestParams or str
        True parameters, or a scenario name (``"default"``, ``"high_risk"``).
    n_batches : int
        Number of batches (>= 1).
    random_seed : int, SeedSequence or Generator, optional
        Seed.

    Returns
    -------
    pandas.DataFrame
        One row per batch and epoch reached: ``batch``, ``epoch``, ``time_h`` (6 h per epoch),
        ``protein``, ``impurity``, ``phi`` and ``psi`` (log growth to the next epoch; missing on
        a batch's last row), ``failed`` (True on the row where impurity exceeded ``i_bar``) and
        ``harvested`` (True on the last row of a batch that did not fail).
    """
    if int(n_batches) != n_batches or n_batches < 1:
        raise ValueError(f"argument 'n_batches' must be an integer >= 1, got {n_batches}")
    n_batches = int(n_batches)
    params = get_scenario(params)
    T = params.T
    z = np.random.default_rng(random_seed).standard_normal((n_batches, T, 2))
    phi, psi = growth_rates(params, z)
    logp = np.log(params.p0) + np.concatenate([np.zeros((n_batches, 1)), phi.cumsum(1)], axis=1)
    logi = np.log(params.i0) + np.concatenate([np.zeros((n_batches, 1)), psi.cumsum(1)], axis=1)
    p, i = np.exp(logp), np.exp(logi)
    fail_at = np.where((i > params.i_bar).any(1), (i > params.i_bar).argmax(1), T + 1)
    cap_at = np.where((p >= params.p_bar).any(1), (p >= params.p_bar).argmax(1), T + 1)
    # failure is checked before the cap: a batch reaching both at one epoch fails
    end = np.minimum(np.minimum(fail_at, cap_at), T)
    failed = fail_at <= end
    epochs = np.arange(T + 1)
    keep = epochs[None, :] <= end[:, None]
    batch_idx, epoch_idx = np.nonzero(keep)
    last = epoch_idx == end[batch_idx]
    phi_full = np.concatenate([phi, np.full((n_batches, 1), np.nan)], axis=1)
    psi_full = np.concatenate([psi, np.full((n_batches, 1), np.nan)], axis=1)
    return pd.DataFrame(
        {
            "batch": batch_idx,
            "epoch": epoch_idx,
            "time_h": 6.0 * epoch_idx,
            "protein": p[batch_idx, epoch_idx],
            "impurity": i[batch_idx, epoch_idx],
            "phi": np.where(last, np.nan, phi_full[batch_idx, epoch_idx]),
            "psi": np.where(last, np.nan, psi_full[batch_idx, epoch_idx]),
            "failed": last & failed[batch_idx],
            "harvested": last & ~failed[batch_idx],
        }
    )


@dataclass(frozen=True)
class BatchOutcome:
    """Result of one batch run under a policy.

    Attributes
    ----------
    reward : float
        Total reward (harvest reward or ``-r_f``, minus ``c_u`` per continue).
    harvest_epoch : int
        Stopping epoch (the failure epoch for a failed batch).
    failed : bool
        Whether the batch failed.
    p_final, i_final : float
        Protein and impurity at the stopping epoch.
    """

    reward: float
    harvest_epoch: int
    failed: bool
    p_final: float
    i_final: float


def run_batch(
    policy: HarvestPolicy,
    params: HarvestParams,
    z: np.ndarray,
    knowledge: KnowledgeState | None = None,
) -> BatchOutcome:
    """Run one batch along fixed shocks under ``policy``, updating the knowledge online.

    Parameters
    ----------
    policy : HarvestPolicy
        The policy (its own random stream, if any, is used as is).
    params : HarvestParams
        True parameters.
    z : ndarray
        Standard normal shocks, shape ``(T, 2)``: ``phi_t = mu_p + sigma_p z[t, 0]``,
        ``psi_t = mu_i + sigma_i z[t, 1]``.
    knowledge : KnowledgeState, optional
        Initial knowledge ``I_0``; required by learning policies.

    Returns
    -------
    BatchOutcome
        Reward, stopping epoch, failure flag and final state.
    """
    z = np.asarray(z, dtype=float)
    if z.shape != (params.T, 2):
        raise ValueError(f"argument 'z' must have shape ({params.T}, 2), got {z.shape}")
    if policy.uses_data and knowledge is None:
        raise ValueError(f"argument 'knowledge' is required by policy {policy.name!r}")
    phi, psi = growth_rates(params, z)
    p, i, kn = float(params.p0), float(params.i0), knowledge
    for t in range(params.T + 1):
        if policy.decide(HarvestState(t, p, i, kn)) == HARVEST:
            reward = float(params.reward(p, i)) - params.c_u * t
            return BatchOutcome(reward, t, False, p, i)
        p *= float(np.exp(phi[t]))
        i *= float(np.exp(psi[t]))
        if i > params.i_bar:
            return BatchOutcome(-params.r_f - params.c_u * (t + 1), t + 1, True, p, i)
        if kn is not None:
            kn = kn.update(float(phi[t]), float(psi[t]))
    raise AssertionError("unreachable: epoch T always harvests")  # pragma: no cover
