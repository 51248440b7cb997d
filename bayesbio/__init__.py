"""bayesbio: defensible decisions from small, messy bioprocess batch histories.

The pipeline, in order: :mod:`~bayesbio.space` (the declared process: factors, units, ranges,
response, groups), :mod:`~bayesbio.schema` (validation of a batch table against it),
:mod:`~bayesbio.simulate` (synthetic batches with a known truth, for any space),
:mod:`~bayesbio.clean` (audited cleaning),
:mod:`~bayesbio.eda`, :mod:`~bayesbio.features`, :mod:`~bayesbio.models` (LASSO, Random
Forest, hierarchical Bayesian), :mod:`~bayesbio.evaluate`, :mod:`~bayesbio.recommend`
(risk-aware setpoints and design spaces) and :mod:`~bayesbio.harvest` (harvest timing under
model risk).

Submodules are imported on first use, so ``import bayesbio`` stays fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bayesbio")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

_SUBMODULES = (
    "space",
    "checks",
    "schema",
    "simulate",
    "clean",
    "eda",
    "features",
    "models",
    "evaluate",
    "interpret",
    "recommend",
    "harvest",
    "study",
    "replicate",
    "report",
    "cli",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'bayesbio' has no attribute {name!r}")
