"""Yield models sharing one protocol: LASSO and Random Forest baselines, the Bayesian model.

:class:`LassoYield` and :class:`ForestYield` live in :mod:`bayesbio.models.baselines`;
``BayesianYieldModel`` (in :mod:`bayesbio.models.bayesian`) is imported on first access so that
using the baselines never imports PyMC. :func:`simulation_based_calibration` (in
:mod:`bayesbio.models.calibration`) checks the Bayesian model's inference on a declared design.
"""

from __future__ import annotations

import importlib
from typing import Any

from bayesbio.models._tables import ExtrapolationWarning
from bayesbio.models.baselines import ForestYield, LassoYield

__all__ = [
    "BayesianYieldModel",
    "ExtrapolationWarning",
    "ForestYield",
    "LassoYield",
    "simulation_based_calibration",
]

_LAZY = {
    "BayesianYieldModel": "bayesbio.models.bayesian",
    "simulation_based_calibration": "bayesbio.models.calibration",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bayesbio.models' has no attribute {name!r}")
