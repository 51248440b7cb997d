"""Argument checks shared by every public function (one place, one wording).

Every check raises :class:`ValueError` (or a subclass) whose message names the argument, what
was given and what is accepted, so a bad call reads as one line in the CLI.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "CONVERGENCE",
    "KINDS",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_positive",
    "make_rng",
    "seed_int",
]

#: Prediction kinds of the yield-model protocol: groups seen in training, a new group drawn
#: from the population distribution, or the population mean.
KINDS: tuple[str, ...] = ("existing", "new_group", "population")

#: Convergence thresholds every MCMC fit is checked against (Vehtari et al. 2021).
CONVERGENCE: dict[str, float] = {"max_r_hat": 1.01, "min_ess": 400.0, "divergences": 0.0}


def check_choice(argument: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``; else ValueError naming ``argument``."""
    try:
        ok = value in choices
    except TypeError:
        ok = False
    if not ok or isinstance(value, bool) != any(isinstance(c, bool) for c in choices):
        raise ValueError(f"{argument} must be one of {list(choices)}, got {value!r}")
    return value


def check_int(
    argument: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as an int within ``[minimum, maximum]``; else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{argument} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{argument} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{argument} must be <= {maximum}, got {value}")
    return value


def check_positive(argument: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float > 0 (or >= 0); else ValueError naming it."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{argument} must be a finite number {bound}, got {value!r}")
    return out


def check_fraction(argument: str, value: Any) -> float:
    """Return ``value`` as a float strictly between 0 and 1; else ValueError naming it."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a number in (0, 1), got {value!r}") from None
    if isinstance(value, bool) or not 0.0 < out < 1.0:
        raise ValueError(f"{argument} must be in (0, 1), got {value!r}")
    return out


def seed_int(random_seed: Any, argument: str = "random_seed") -> int | None:
    """Return ``random_seed`` checked as a non-negative int (None passes through)."""
    if random_seed is None:
        return None
    return check_int(argument, random_seed, minimum=0)


def make_rng(
    random_seed: int | np.random.Generator | None, argument: str = "random_seed"
) -> np.random.Generator:
    """Return a numpy Generator from a seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(random_seed, np.random.Generator):
        return random_seed
    return np.random.default_rng(seed_int(random_seed, argument))
