"""Parameters of the harvest-timing model and the two named scenarios.

Amounts are in units of the starting amounts (``p0 = i0 = 1`` by default); growth rates are
one-epoch log growth rates (one epoch = 6 h). See ``docs/harvest_model.md`` §1 and §5.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SCENARIOS", "HarvestParams", "get_scenario"]


@dataclass(frozen=True)
class HarvestParams:
    """True process, economics and numerical settings of the harvest problem.

    Parameters
    ----------
    T : int, default 16
        Stationary-phase epoch (96 h at 6 h per epoch); the batch must be harvested at ``T``.
    p0, i0 : float, default 1.0
        Starting protein and impurity amounts (units of the starting amounts).
    mu_p, sigma_p : float, default 0.30, 0.10
        True mean and SD of the protein log growth rate per epoch.
    mu_i, sigma_i : float, default 0.25, 0.15
        True mean and SD of the impurity log growth rate per epoch.
    p_bar : float, default 50.0
        Protein cap (reactor capacity): the first epoch with ``p >= p_bar`` forces harvest and
        revenue counts ``min(p, p_bar)``.
    i_bar : float, default 40.0
        Impurity failure limit: ``i > i_bar`` after a "continue" fails the batch.
    r, c : float, default 10.0, 2.0
        Protein price and impurity (purification) cost per unit.
    c_u : float, default 2.0
        Cost of each "continue".
    r_f : float, default 100.0
        Failure penalty.
    n_grid : int, default 101
        Grid points per axis of the log-state grid.
    q_normal, q_t : int, default 16, 128
        Gauss-Legendre nodes per shock for normal and Student-t shock laws.

    Raises
    ------
    ValueError
        If an argument is out of range; the message names it.
    """

    T: int = 16
    p0: float = 1.0
    i0: float = 1.0
    mu_p: float = 0.30
    sigma_p: float = 0.10
    mu_i: float = 0.25
    sigma_i: float = 0.15
    p_bar: float = 50.0
    i_bar: float = 40.0
    r: float = 10.0
    c: float = 2.0
    c_u: float = 2.0
    r_f: float = 100.0
    n_grid: int = 101
    q_normal: int = 16
    q_t: int = 128

    def __post_init__(self) -> None:
        # a frozen dataclass is a value, not an estimator: checking here keeps every
        # HarvestParams in existence valid
        for name in ("sigma_p", "sigma_i", "p0", "i0", "p_bar", "i_bar"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"argument {name!r} must be a positive finite number, got {value}")
        for name in ("mu_p", "mu_i", "r", "c", "c_u", "r_f"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"argument {name!r} must be finite, got {value}")
        for name in ("r", "c", "c_u", "r_f"):
            if getattr(self, name) < 0:
                raise ValueError(f"argument {name!r} must be >= 0, got {getattr(self, name)}")
        if int(self.T) != self.T or self.T < 1:
            raise ValueError(f"argument 'T' must be an integer >= 1, got {self.T}")
        if self.p0 >= self.p_bar:
            raise ValueError(f"argument 'p0' ({self.p0}) must be below 'p_bar' ({self.p_bar})")
        if self.i0 > self.i_bar:
            raise ValueError(f"argument 'i0' ({self.i0}) must not exceed 'i_bar' ({self.i_bar})")
        for name, low in (("n_grid", 3), ("q_normal", 1), ("q_t", 1)):
            value = getattr(self, name)
            if int(value) != value or value < low:
                raise ValueError(f"argument {name!r} must be an integer >= {low}, got {value}")

    def replace(self, **changes: float) -> HarvestParams:
        """Return a copy with some fields changed (validated again).

        Parameters
        ----------
        **changes : float
            Field names and new values.

        Returns
        -------
        HarvestParams
            The modified copy.
        """
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown HarvestParams argument(s) {unknown}")
        return dataclasses.replace(self, **changes)

    def reward(self, p: float | np.ndarray, i: float | np.ndarray) -> float | np.ndarray:
        """Harvest reward ``R(p, i) = r * min(p, p_bar) - c * i`` (works on arrays too)."""
        return self.r * np.minimum(p, self.p_bar) - self.c * i


SCENARIOS: dict[str, HarvestParams] = {
    "default": HarvestParams(),
    "high_risk": HarvestParams(i_bar=25.0, sigma_i=0.25),
}


def get_scenario(name: str | HarvestParams) -> HarvestParams:
    """Return the parameters of a named scenario.

    Parameters
    ----------
    name : {"default", "high_risk"} or HarvestParams
        Scenario name; a ``HarvestParams`` is returned unchanged.

    Returns
    -------
    HarvestParams
        The scenario's parameters.

    Raises
    ------
    ValueError
        If ``name`` is not a known scenario.
    """
    if isinstance(name, HarvestParams):
        return name
    try:
        return SCENARIOS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"argument 'scenario': unknown scenario {name!r}; expected one of {sorted(SCENARIOS)}"
        ) from None
