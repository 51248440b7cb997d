"""Group-varying slopes: a scale-dependent optimum recovered by ``varying_terms="linear"``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayesbio.models.bayesian import BayesianYieldModel
from bayesbio.space import Factor, ProcessSpace, Response

OPTIMA = {"2L": 12.0, "2000L": 28.0}  # the mixing-time optimum moves with scale


def _space() -> ProcessSpace:
    return ProcessSpace(
        (Factor("mixing_time", "s", (5.0, 35.0), (0.0, 300.0), short="mix"),),
        Response("titer", "g/L", (0.0, 50.0), "maximise", "Titer"),
        groups=("scale",),
        batch_id="run",
        name="1-factor scale-shift process",
    )


def _truth(mix: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Log-titer: the same parabola at both scales, centred on each scale's own optimum."""
    centre = np.array([OPTIMA[s] for s in scale])
    return np.log(4.0) - 0.5 * ((mix - centre) / 12.0) ** 2


def _table(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    scale = np.array(list(OPTIMA))[np.arange(n) % 2]
    # each scale's history spreads around its own recipe, as a plant's does
    recipe = np.where(scale == "2L", 14.0, 25.0)
    mix = np.clip(recipe + 8.0 * rng.standard_normal(n), 5.0, 35.0)
    y = np.exp(_truth(mix, scale) + 0.05 * rng.standard_normal(n))
    return pd.DataFrame({"run": [f"R{i}" for i in range(n)], "mixing_time": mix,
                         "scale": scale, "titer": y})  # fmt: skip


@pytest.fixture(scope="module")
def scale_fits():
    table = _table()
    fits = {}
    for name, kw in {
        "pooled": {"varying_slopes": False},
        "linear": {"varying_slopes": True, "varying_terms": "linear"},
    }.items():
        model = BayesianYieldModel(
            space=_space(), structures=("quadratic",), draws=400, tune=500, chains=2,
            random_seed=1, **kw,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[name] = model.fit(table)
    return fits


def _argmax(model: BayesianYieldModel, scale: str) -> float:
    grid = pd.DataFrame({"mixing_time": np.linspace(5.0, 35.0, 121), "scale": scale})
    return float(grid["mixing_time"].to_numpy()[np.argmax(model.predict(grid))])


def test_linear_varying_terms_recover_each_scales_optimum(scale_fits):
    linear = scale_fits["linear"]
    for scale, optimum in OPTIMA.items():
        assert abs(_argmax(linear, scale) - optimum) <= 2.5, (scale, _argmax(linear, scale))
    # a pooled surface has one optimum for both scales: it misses at least one by > 5 s
    pooled = scale_fits["pooled"]
    misses = [abs(_argmax(pooled, s) - o) for s, o in OPTIMA.items()]
    # (the same up to the grid step and the scales' different offsets under the mean of exp)
    assert abs(_argmax(pooled, "2L") - _argmax(pooled, "2000L")) <= 1.0
    assert max(misses) > 5.0, misses
    d = linear.diagnostics_["quadratic"]
    assert d["max_r_hat"] < 1.05 and d["divergences"] <= 2


def test_linear_varying_terms_round_trip(scale_fits, tmp_path):
    model = scale_fits["linear"]
    model.save(tmp_path / "m")
    back = BayesianYieldModel.load(tmp_path / "m")
    assert back.varying_terms == "linear" and back.spec_["varying_terms"] == "linear"
    table = _table(10, seed=5)
    np.testing.assert_allclose(back.predict(table), model.predict(table), rtol=1e-10)


def test_stacking_gives_a_scale_dependent_optimum_to_the_by_group_quadratic():
    # 15 batches per scale: below the size where varying_slopes="auto" switches slopes on
    table = _table(30, seed=3)
    model = BayesianYieldModel(
        space=_space(), structures=("quadratic", "quadratic_by_group"), draws=400, tune=500,
        chains=2, random_seed=1,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(table)
    assert model.spec_["primary"] is None  # the plain quadratic pools the scales
    assert model.stacking_weights_["quadratic_by_group"] >= 0.7, model.stacking_weights_
    for scale, optimum in OPTIMA.items():
        assert abs(_argmax(model, scale) - optimum) <= 3.0, (scale, _argmax(model, scale))
    d = model.diagnostics_["quadratic_by_group"]
    assert d["max_r_hat"] < 1.05 and d["divergences"] <= 2
